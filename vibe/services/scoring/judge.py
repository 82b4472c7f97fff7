"""The judge: runs a submission against a problem's tests and scores correctness and performance.

Correctness: ``correctness_score = 100 * passed / total`` (2 decimals).

Time limit (as judges derive it): ``max(TL_FLOOR_MS, TL_MULTIPLIER x the slowest CPU time of the
problem's reference solution in the submission's language over the tests)``, rounded up to
100 ms.  So a C++ submission is held to C++ speed and a Python one to Python speed.

Performance (the rule, also returned as ``CheckResult.performance_rule``): only accepted tests and
accepted scaling runs earn credit.

* time score: per accepted test ``r = cpu_ms / max(reference_cpu_ms, PERF_FLOOR_MS)`` (on large
  tests both are the minimum of several runs; a submission's runs stop as soon as its credit is
  100, more runs could only lower r); credit 100 when ``r <= PERF_TOLERANCE``, else
  ``100 * PERF_TOLERANCE / r``; the mean over ALL tests, failed ones counting 0, large tests
  weighing ``LARGE_TEST_WEIGHT``.
* complexity credit: the program runs on scaling inputs of doubling size ``n`` (from the
  problem's generator) until one is not accepted; the class is fitted from those CPU times
  (:mod:`complexity`).  Credit 100 when every size passed and the fitted exponent is within
  ``EXPONENT_SLACK`` of the reference's, 50 when every size passed with a steeper growth that
  also shows as ``STEEPER_MIN_RATIO`` x the reference's CPU time at the largest size, else
  ``50 x sizes passed / sizes``.
* ``performance = TIME_WEIGHT x time score + (1 - TIME_WEIGHT) x complexity credit``.

Early stop (``stop_after_timeout``, on by default): tests and scaling inputs run smallest input
first, as many at a time as the sandbox has slots; once one exceeds the time limit, the runs of
inputs at least as large that have not started yet are not run, and such tests count as not
passed (verdict ``not_run``).  A sleeping or fork-bombing program
then costs one wall limit, not one per test.  The rule is in every result (``early_stop``).

Reference measurements (times, time limit, scaling outputs) are taken in the same sandbox once
per problem and language per process, and shared by every Judge.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import math
import signal as signal_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from vibe.platform.metrics import SANDBOX_RUNS
from vibe.platform.telemetry import tracer
from vibe.services.scoring import complexity
from vibe.services.scoring.bank import ProblemSpec, TestCase
from vibe.services.scoring.checkers import (
    CHECKERS,
    clip,
    compare_exact,
    compare_floats,
    compare_tokens,
    run_custom_checker,
)
from vibe.services.scoring.integrity import NOT_CHECKED, IntegrityReport
from vibe.services.scoring.languages import LANGUAGES, PYTHON, Language, language
from vibe.services.scoring.programs import CompileError, Program, build, execute, too_large
from vibe.services.scoring.sandbox import RunLimits, RunNotWanted, RunResult, Sandbox

log = logging.getLogger(__name__)

TL_MULTIPLIER = 3
TL_FLOOR_MS = 1000
PERF_FLOOR_MS = 30.0
PERF_TOLERANCE = 1.5
LARGE_TEST_WEIGHT = 3
#: Runs per large test, minimum taken (CPU time noise is one-sided: it only ever adds).
REFERENCE_RUNS_LARGE = 3
SUBMISSION_RUNS_LARGE = 3
REFERENCE_RUNS_SCALING = 2
TIME_WEIGHT = 0.75
EXPONENT_SLACK = 0.5
#: A steeper fitted growth counts only when it also shows at the largest size: on a busy machine
#: the slope of a few noisy points can tilt, a real complexity gap cannot hide at n = 10^5.
STEEPER_MIN_RATIO = 2.0
#: Generous cap for the reference itself, which defines the limit rather than obeying it.
_REFERENCE_CPU_S = 20.0
_GENERATOR_LIMITS = RunLimits(cpu_time_s=20, wall_time_s=40, memory_mb=1024, output_bytes=8 << 20)

PERFORMANCE_RULE = (
    f"Time limit = max({TL_FLOOR_MS} ms, {TL_MULTIPLIER}x the reference solution's slowest test in "
    f"your language). Only accepted runs earn credit. Time score: per test r = your CPU time / "
    f"max(reference CPU time, {PERF_FLOOR_MS:g} ms), minimum of up to {SUBMISSION_RUNS_LARGE} runs on large "
    f"tests (no more once the credit is 100); credit 100 if r <= {PERF_TOLERANCE:g}, else 100 * {PERF_TOLERANCE:g} / r; mean over all "
    f"tests (failed = 0, large tests weigh {LARGE_TEST_WEIGHT}x). Complexity: runs on doubling input "
    f"sizes until one fails; class = best fit of CPU time minus start-up against n (log-log); credit "
    f"100 if every size passed and the exponent is within {EXPONENT_SLACK:g} of the reference's, 50 if "
    f"every size passed but it grows faster and is at least {STEEPER_MIN_RATIO:g}x the reference's CPU time "
    f"at the largest size, else 50 x sizes passed / sizes. Performance = "
    f"{TIME_WEIGHT:g} x time score + {1 - TIME_WEIGHT:g} x complexity credit."
)


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"
    NOT_RUN = "not_run"


@dataclass(frozen=True)
class TestOutcome:
    __test__ = False  # not a pytest test class

    test_id: str
    hidden: bool
    verdict: Verdict
    cpu_ms: float
    wall_ms: float
    peak_memory_kb: int
    exit_code: int | None
    detail: str
    reference_cpu_ms: float | None
    signal: int | None = None


@dataclass(frozen=True)
class ScalingPoint:
    n: int
    verdict: Verdict
    cpu_ms: float
    reference_cpu_ms: float


@dataclass(frozen=True)
class Complexity:
    estimated_class: str
    exponent: float | None
    reference_class: str
    reference_exponent: float | None
    points: list[ScalingPoint]
    sizes: int
    credit: float


@dataclass(frozen=True)
class CheckResult:
    problem_id: str
    language: str
    verdict: Verdict
    tests: list[TestOutcome]
    passed: int
    total: int
    correctness_score: float
    performance_score: float
    performance_rule: str
    compile_output: str
    isolation: str
    isolation_mode: str
    time_limit_ms: int
    time_score: float
    complexity: Complexity | None
    integrity: IntegrityReport = NOT_CHECKED
    early_stop: str = ""


@dataclass(frozen=True)
class VisibleResult:
    """The visible tests of a submission run before it is submitted (never graded, never stored)."""

    problem_id: str
    language: str
    verdict: Verdict
    tests: list[TestOutcome]
    compile_output: str
    time_limit_ms: int


@dataclass(frozen=True)
class ScalingCase:
    n: int
    input: bytes
    expected: bytes
    reference_cpu_ms: float


@dataclass(frozen=True)
class ReferenceProfile:
    """What the reference solution of one problem does in one language, on this machine."""

    test_cpu_ms: dict[str, float]
    time_limit_ms: int
    scaling: list[ScalingCase]
    fit: complexity.Fit


# Process-wide: measurements depend on the machine, not on which Judge asked.  Plain dicts are
# safe across event loops (tests run one loop per test); the locks are per Judge.
_PROFILES: dict[tuple[str, str, str], ReferenceProfile] = {}
_SCALING_INPUTS: dict[tuple[str, str], dict[int, bytes]] = {}


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _signal_name(sig: int) -> str:
    try:
        return signal_mod.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _last_stderr_line(stderr: bytes) -> str:
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()
    return ""


def run_limits(problem: ProblemSpec, time_limit_ms: float, expected: bytes) -> RunLimits:
    cpu_s = time_limit_ms / 1000
    return RunLimits(
        cpu_time_s=cpu_s,
        wall_time_s=2 * cpu_s + 1.0,
        memory_mb=problem.memory_limit_mb,
        output_bytes=max(1 << 20, 2 * len(expected) + 4096),
    )


def failure(run: RunResult, lang: Language, limits: RunLimits) -> tuple[Verdict, str] | None:
    """The verdict of a run that did not finish normally (``None``: its output decides)."""
    if run.output_limit_hit:
        return Verdict.OUTPUT_LIMIT_EXCEEDED, f"more than {limits.output_bytes} bytes of output"
    if run.memory_limit_hit:  # the kernel killed a process of the run at the run's memory limit
        return Verdict.MEMORY_LIMIT_EXCEEDED, f"memory limit of {limits.memory_mb} MB exceeded"
    if (
        not run.ok
        and run.looks_out_of_memory(lang.memory_error_markers, limits.memory_mb)
        and not (run.cpu_limit_hit or run.timed_out)
    ):
        return Verdict.MEMORY_LIMIT_EXCEEDED, f"memory limit of {limits.memory_mb} MB exceeded"
    if run.cpu_limit_hit:
        return Verdict.TIME_LIMIT_EXCEEDED, f"CPU time limit of {limits.cpu_time_s * 1000:g} ms exceeded"
    if run.timed_out:
        return (
            Verdict.TIME_LIMIT_EXCEEDED,
            f"wall-clock limit of {limits.wall_time_s:g} s exceeded (waiting or sleeping?)",
        )
    if run.aborted:
        return Verdict.RUNTIME_ERROR, "the program killed the sandbox's launcher"
    if run.exit_code != 0 or run.signal is not None:
        how = f"killed by {_signal_name(run.signal)}" if run.signal is not None else f"exit code {run.exit_code}"
        last = _last_stderr_line(run.stderr)
        return Verdict.RUNTIME_ERROR, f"{how}: {last}" if last else how
    return None


def performance_credit(cpu_ms: float, reference_cpu_ms: float | None) -> float:
    r = cpu_ms / max(reference_cpu_ms or 0.0, PERF_FLOOR_MS)
    return 100.0 if r <= PERF_TOLERANCE else 100.0 * PERF_TOLERANCE / r


def early_stop_rule(enabled: bool) -> str:
    if not enabled:
        return "Early stop off: every test runs."
    return (
        "Early stop: tests run smallest input first; once a run exceeds the time limit, tests with inputs at least "
        "as large that have not started yet are not run and count as not passed."
    )


class Judge:
    def __init__(self, sandbox: Sandbox, *, stop_after_timeout: bool = True) -> None:
        self.sandbox = sandbox
        self.stop_after_timeout = stop_after_timeout
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    # ------------------------------------------------------------------ output checking

    async def _output_verdict(self, problem: ProblemSpec, test_input: bytes, expected: bytes, got: bytes) -> str | None:
        if problem.checker == "tokens":
            return compare_tokens(expected, got)
        if problem.checker == "float":
            return compare_floats(expected, got, problem.float_tolerance)
        if problem.checker == "exact":
            return compare_exact(expected, got)
        return await run_custom_checker(self.sandbox, problem.checker_source, test_input, expected, got)

    async def _judge_run(
        self,
        problem: ProblemSpec,
        program: Program,
        test_input: bytes,
        expected: bytes,
        limits: RunLimits,
        still_wanted: Callable[[], bool] | None = None,
    ) -> tuple[RunResult, Verdict, str]:
        with tracer.start_as_current_span(
            "sandbox.run", attributes={"sandbox.language": program.language.name}
        ) as span:
            run = await execute(self.sandbox, program, test_input, limits, still_wanted=still_wanted)
            failed = failure(run, program.language, limits)
            if failed is not None:
                verdict, detail = failed
            else:
                diff = await self._output_verdict(problem, test_input, expected, run.stdout)
                verdict, detail = (Verdict.ACCEPTED, "") if diff is None else (Verdict.WRONG_ANSWER, diff)
            span.set_attributes({"sandbox.verdict": str(verdict), "sandbox.cpu_ms": run.cpu_ms})
            SANDBOX_RUNS.add(1, {"language": program.language.name, "verdict": str(verdict)})
            return run, verdict, detail

    async def _build(self, problem: ProblemSpec, lang: Language, source: str) -> Program | CompileError:
        """Compile ``source``; a program too large for a run of this problem is a compile error
        (the room of a run depends on the problem's memory only, not on the test)."""
        program = await build(self.sandbox, lang, source)
        if isinstance(program, CompileError):
            return program
        return too_large(program, run_limits(problem, TL_FLOOR_MS, b"")) or program

    # ------------------------------------------------------------------ the reference

    async def _scaling_inputs(self, problem: ProblemSpec) -> dict[int, bytes]:
        key = (problem.problem_id, _digest(problem.scale_generator))
        if key not in _SCALING_INPUTS:
            gen = {"scale.py": problem.scale_generator.encode()}

            async def one(n: int) -> tuple[int, bytes]:
                run = await self.sandbox.run(gen, [PYTHON, "-I", "-S", "scale.py", str(n)], b"", _GENERATOR_LIMITS)
                if not run.ok:
                    raise RuntimeError(f"{problem.problem_id}: scale.py {n} failed: {run.stderr[-300:]!r}")
                return n, run.stdout

            _SCALING_INPUTS[key] = dict(await asyncio.gather(*(one(n) for n in problem.scaling_sizes)))
        return _SCALING_INPUTS[key]

    async def profile(self, problem: ProblemSpec, lang: Language) -> ReferenceProfile:
        """The reference's times, the derived time limit and the scaling cases (memoised)."""
        source = problem.references.get(lang.name) or problem.reference_solution
        ref_lang = lang if lang.name in problem.references else LANGUAGES["python"]
        key = (problem.problem_id, ref_lang.name, _digest(source, *(t.input for t in problem.tests)))
        lock = self._locks.setdefault(key[:2], asyncio.Lock())
        async with lock:
            if key not in _PROFILES:
                _PROFILES[key] = await self._measure_reference(problem, ref_lang, source)
        return _PROFILES[key]

    async def _measure_reference(self, problem: ProblemSpec, lang: Language, source: str) -> ReferenceProfile:
        program = await self._build(problem, lang, source)
        if isinstance(program, CompileError):
            raise RuntimeError(f"reference of {problem.problem_id} in {lang.name} does not compile: {program.message}")

        async def best_of(runs: int, test_input: bytes, expected: bytes) -> tuple[float, bytes]:
            limits = run_limits(problem, _REFERENCE_CPU_S * 1000, expected)
            results = [await execute(self.sandbox, program, test_input, limits) for _ in range(runs)]
            for r in results:
                if not r.ok:
                    log.error("reference of %s (%s) fails: %r", problem.problem_id, lang.name, r.stderr[-300:])
            return min(r.cpu_ms for r in results), results[0].stdout

        async def on_test(t: TestCase) -> tuple[str, float]:
            cpu, out = await best_of(REFERENCE_RUNS_LARGE if t.large else 1, t.input, t.expected)
            if await self._output_verdict(problem, t.input, t.expected, out) is not None:
                log.error("reference of %s (%s) is wrong on test %s", problem.problem_id, lang.name, t.test_id)
            return t.test_id, cpu

        test_cpu = dict(await asyncio.gather(*(on_test(t) for t in problem.tests)))
        slowest = max(test_cpu.values(), default=0.0)
        time_limit_ms = max(TL_FLOOR_MS, math.ceil(TL_MULTIPLIER * slowest / 100.0) * 100)

        inputs = await self._scaling_inputs(problem) if problem.scaling_sizes else {}
        scaling = []
        for n in sorted(inputs):  # one at a time: timings of growing sizes must not compete
            cpu, out = await best_of(REFERENCE_RUNS_SCALING, inputs[n], b"")
            scaling.append(ScalingCase(n, inputs[n], out, cpu))
        fit = complexity.fit([(c.n, c.reference_cpu_ms) for c in scaling], min(test_cpu.values(), default=0.0))
        log.info("reference of %s (%s): time limit %d ms, %s", problem.problem_id, lang.name, time_limit_ms, fit.label)
        return ReferenceProfile(test_cpu, time_limit_ms, scaling, fit)

    # ------------------------------------------------------------------ the submission

    async def _judge_test(
        self,
        problem: ProblemSpec,
        program: Program,
        test: TestCase,
        profile: ReferenceProfile,
        still_wanted: Callable[[], bool] | None = None,
    ) -> TestOutcome:
        limits = run_limits(problem, profile.time_limit_ms, test.expected)
        run, verdict, detail = await self._judge_run(problem, program, test.input, test.expected, limits, still_wanted)
        cpu = run.cpu_ms
        reference = profile.test_cpu_ms.get(test.test_id)
        if verdict is Verdict.ACCEPTED and test.large:
            for _ in range(SUBMISSION_RUNS_LARGE - 1):
                if performance_credit(cpu, reference) >= 100.0:
                    break  # another run can only lower r, and the credit is already full
                again = await execute(self.sandbox, program, test.input, limits)
                if again.ok:
                    cpu = min(cpu, again.cpu_ms)
        if test.hidden and verdict is not Verdict.ACCEPTED:
            # Never show data of a hidden test: no diff, no stderr (it could echo the input).
            if verdict is Verdict.WRONG_ANSWER:
                detail = "hidden test: wrong answer"
            elif verdict is Verdict.RUNTIME_ERROR:
                detail = f"hidden test: runtime error ({detail.split(':')[0]})"
            else:
                detail = f"hidden test: {detail}"
        return TestOutcome(
            test_id=test.test_id,
            hidden=test.hidden,
            verdict=verdict,
            cpu_ms=cpu,
            wall_ms=run.wall_ms,
            peak_memory_kb=run.peak_memory_kb,
            exit_code=run.exit_code,
            detail=clip(detail),
            reference_cpu_ms=reference,
            signal=run.signal,
        )

    def _complexity(
        self, profile: ReferenceProfile, measured: list[ScalingPoint], baseline_ms: float
    ) -> Complexity | None:
        if not profile.scaling:
            return None
        # Smallest first, up to the first size that was not accepted (bigger ones only fail slower);
        # sizes not run because of the early stop count as not passed.
        points: list[ScalingPoint] = []
        for point in sorted(measured, key=lambda p: p.n):
            points.append(point)
            if point.verdict is not Verdict.ACCEPTED:
                break
        passed = [(p.n, p.cpu_ms) for p in points if p.verdict is Verdict.ACCEPTED]
        fit = complexity.fit(passed, baseline_ms)
        sizes = len(profile.scaling)
        if len(passed) == sizes:
            ref_exp = profile.fit.exponent
            largest = points[-1]
            slower = largest.cpu_ms >= STEEPER_MIN_RATIO * max(largest.reference_cpu_ms or 0.0, PERF_FLOOR_MS)
            steeper = fit.exponent is not None and ref_exp is not None and fit.exponent > ref_exp + EXPONENT_SLACK
            credit = 50.0 if steeper and slower else 100.0
        else:
            credit = round(50.0 * len(passed) / sizes, 2)
        return Complexity(fit.label, fit.exponent, profile.fit.label, profile.fit.exponent, points, sizes, credit)

    async def check(self, problem: ProblemSpec, language_name: str, code: str) -> CheckResult:
        """Raises UnsupportedLanguage for an unknown language; everything the code does is a verdict."""
        lang = language(language_name)
        if problem.checker not in CHECKERS:
            raise ValueError(f"problem {problem.problem_id}: unknown checker {problem.checker!r}")
        program = await self._build(problem, lang, code)
        if isinstance(program, CompileError):
            outcomes = [
                TestOutcome(t.test_id, t.hidden, Verdict.COMPILE_ERROR, 0.0, 0.0, 0, None, "compile error", None)
                for t in problem.tests
            ]
            return await self._result(problem, lang, outcomes, program.message, 0, None)
        profile = await self.profile(problem, lang)
        outcomes, points = await self._run_all(problem, program, profile, problem.tests, profile.scaling)
        accepted = [o.cpu_ms for o in outcomes if o.verdict is Verdict.ACCEPTED]
        scaling = self._complexity(profile, points, min(accepted, default=0.0))
        return await self._result(problem, lang, outcomes, "", profile.time_limit_ms, scaling)

    async def check_visible(self, problem: ProblemSpec, language_name: str, code: str) -> VisibleResult:
        """The candidate's "run the examples" before submitting: the visible tests only, under
        the same limits and sandbox, with their diffs; nothing is graded or stored."""
        lang = language(language_name)
        visible = problem.visible_tests
        program = await self._build(problem, lang, code)
        if isinstance(program, CompileError):
            outcomes = [
                TestOutcome(t.test_id, t.hidden, Verdict.COMPILE_ERROR, 0.0, 0.0, 0, None, "compile error", None)
                for t in visible
            ]
            return VisibleResult(problem.problem_id, lang.name, Verdict.COMPILE_ERROR, outcomes, program.message, 0)
        profile = await self.profile(problem, lang)
        outcomes, _ = await self._run_all(problem, program, profile, visible, ())
        failing = next((o.verdict for o in outcomes if o.verdict is not Verdict.ACCEPTED), Verdict.ACCEPTED)
        if failing is Verdict.NOT_RUN:
            failing = Verdict.TIME_LIMIT_EXCEEDED
        return VisibleResult(problem.problem_id, lang.name, failing, outcomes, "", profile.time_limit_ms)

    async def _run_all(
        self,
        problem: ProblemSpec,
        program: Program,
        profile: ReferenceProfile,
        tests: Sequence[TestCase],
        scaling: Sequence[ScalingCase],
    ) -> tuple[list[TestOutcome], list[ScalingPoint]]:
        """Every test and every scaling input as one queue, smallest input first, as many at a
        time as the sandbox has slots (so the machine stays busy to the end).  With the early stop,
        once a run has exceeded the time limit, runs of inputs at least as large that have not
        started yet are not run; a scaling input larger than one that failed is not run either."""
        jobs: list[tuple[int, int, TestCase | ScalingCase]] = [(len(t.input), 0, t) for t in tests]
        jobs += [(len(c.input), 1, c) for c in scaling]
        pending = sorted(jobs, key=lambda j: (j[0], j[1]), reverse=True)
        outcomes: dict[str, TestOutcome] = {}
        points: list[ScalingPoint] = []
        stop: dict[str, tuple[int, str]] = {}  # "timeout": (input size, what), "scaling": (n, "")

        def cut_by_timeout(size: int) -> str | None:
            if self.stop_after_timeout and "timeout" in stop and size >= stop["timeout"][0]:
                return stop["timeout"][1]
            return None

        def not_run(test: TestCase, why: str) -> TestOutcome:
            return TestOutcome(
                test.test_id,
                test.hidden,
                Verdict.NOT_RUN,
                0.0,
                0.0,
                0,
                None,
                f"not run: {why} exceeded the time limit first",
                profile.test_cpu_ms.get(test.test_id),
            )

        def timed_out(size: int, what: str) -> None:
            if "timeout" not in stop or size < stop["timeout"][0]:
                stop["timeout"] = (size, what)

        async def worker() -> None:
            while pending:
                size, _, job = pending.pop()
                if isinstance(job, TestCase):
                    if (why := cut_by_timeout(size)) is not None:
                        outcomes[job.test_id] = not_run(job, why)
                        continue

                    def wanted_test(size: int = size) -> bool:
                        return cut_by_timeout(size) is None

                    try:
                        outcome = await self._judge_test(problem, program, job, profile, still_wanted=wanted_test)
                    except RunNotWanted:
                        outcomes[job.test_id] = not_run(job, cut_by_timeout(size) or "another run")
                        continue
                    outcomes[job.test_id] = outcome
                    if outcome.verdict is Verdict.TIME_LIMIT_EXCEEDED:
                        timed_out(size, f"test {job.test_id}")
                else:
                    failed_n = stop.get("scaling", (None, ""))[0]
                    if cut_by_timeout(size) is not None or (failed_n is not None and job.n > failed_n):
                        continue

                    def wanted(size: int = size, n: int = job.n) -> bool:
                        failed = stop.get("scaling", (None, ""))[0]
                        return cut_by_timeout(size) is None and (failed is None or n <= failed)

                    limits = run_limits(problem, profile.time_limit_ms, job.expected)
                    try:
                        run, verdict, _ = await self._judge_run(
                            problem, program, job.input, job.expected, limits, wanted
                        )
                    except RunNotWanted:
                        continue
                    points.append(ScalingPoint(job.n, verdict, run.cpu_ms, job.reference_cpu_ms))
                    if verdict is not Verdict.ACCEPTED and ("scaling" not in stop or job.n < stop["scaling"][0]):
                        stop["scaling"] = (job.n, "")
                    if verdict is Verdict.TIME_LIMIT_EXCEEDED:
                        timed_out(size, f"the scaling input n={job.n}")

        await asyncio.gather(*(worker() for _ in range(max(1, self.sandbox.slots))))
        return [outcomes[t.test_id] for t in tests], points

    async def _result(
        self,
        problem: ProblemSpec,
        lang: Language,
        outcomes: list[TestOutcome],
        compile_output: str,
        time_limit_ms: int,
        scaling: Complexity | None,
    ) -> CheckResult:
        total = len(outcomes)
        passed = sum(o.verdict is Verdict.ACCEPTED for o in outcomes)
        failing = next((o.verdict for o in outcomes if o.verdict not in (Verdict.ACCEPTED, Verdict.NOT_RUN)), None)
        not_run = [o.test_id for o in outcomes if o.verdict is Verdict.NOT_RUN]
        if failing is None and not_run:  # only a run that exceeded the time limit leaves tests out
            failing = Verdict.TIME_LIMIT_EXCEEDED
        large = {t.test_id for t in problem.tests if t.large}
        weight_sum = credit_sum = 0.0
        for o in outcomes:
            w = LARGE_TEST_WEIGHT if o.test_id in large else 1
            weight_sum += w
            if o.verdict is Verdict.ACCEPTED:
                credit_sum += w * performance_credit(o.cpu_ms, o.reference_cpu_ms)
        time_score = round(credit_sum / weight_sum, 2) if weight_sum else 0.0
        performance = time_score if scaling is None else TIME_WEIGHT * time_score + (1 - TIME_WEIGHT) * scaling.credit
        early_stop = early_stop_rule(self.stop_after_timeout)
        if not_run:
            early_stop += f" Not run here: tests {', '.join(not_run)}."
        return CheckResult(
            problem_id=problem.problem_id,
            language=lang.name,
            verdict=failing or Verdict.ACCEPTED,
            tests=outcomes,
            passed=passed,
            total=total,
            correctness_score=round(100 * passed / total, 2) if total else 0.0,
            performance_score=round(performance, 2) if passed else 0.0,
            performance_rule=PERFORMANCE_RULE,
            compile_output=compile_output,
            isolation=self.sandbox.description,
            isolation_mode=str(self.sandbox.mode),
            time_limit_ms=time_limit_ms,
            time_score=time_score,
            complexity=scaling,
            early_stop=early_stop,
        )


def with_integrity(result: CheckResult, integrity: IntegrityReport) -> CheckResult:
    return replace(result, integrity=integrity)
