"""The judge: runs a submission against a problem's tests and scores correctness and performance.

Correctness: ``correctness_score = 100 * passed / total`` (2 decimals).

Performance (the rule, also returned as ``CheckResult.performance_rule``): only accepted tests
earn credit.  For an accepted test the ratio ``r = cpu_ms / max(reference_cpu_ms, 30 ms)`` compares
the submission's CPU time (user + system, interpreter start-up included) with the CPU time of the
problem's reference solution on the same test (the floor keeps start-up noise from dominating
tiny tests).  Credit is 100 when ``r <= 1.5`` and ``100 * 1.5 / r`` above that (2x slower -> 75,
10x slower -> 15).  ``performance_score`` is the weighted mean of the credits over ALL tests,
failed tests counting 0; tests flagged ``large`` weigh 3, the others 1, because the large tests
are where asymptotic complexity shows.  So a reference-like solution scores ~100, a correct but
quadratic one that times out on the large tests well under 60, and a wrong or crashing one ~0.

Reference CPU times are measured by running the reference solution in the same sandbox (best of
3 runs on large tests, 1 run otherwise), once per problem per Judge (memoised).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal as signal_mod
from dataclasses import dataclass

from scoring_service.bank import ProblemSpec, TestCase
from scoring_service.sandbox import ISOLATION_DESCRIPTION, RunLimits, RunResult, run_python

log = logging.getLogger(__name__)

SUPPORTED_LANGUAGES: tuple[str, ...] = ("python",)
_LANGUAGE_ALIASES = {"python": "python", "python3": "python", "py": "python"}

PERF_FLOOR_MS = 30.0
PERF_TOLERANCE = 1.5
LARGE_TEST_WEIGHT = 3
REFERENCE_RUNS_LARGE = 3
DETAIL_MAX_CHARS = 120
MAX_CODE_BYTES = 256 * 1024

PERFORMANCE_RULE = (
    "Only accepted tests earn performance credit: per test r = your CPU time / max(reference CPU "
    f"time, {PERF_FLOOR_MS:g} ms); credit = 100 if r <= {PERF_TOLERANCE:g}, else "
    f"100 * {PERF_TOLERANCE:g} / r; the score is the mean credit over all tests (failed tests "
    f"count 0) with large tests weighted {LARGE_TEST_WEIGHT}x."
)

# Syntax check, run inside the sandbox (never compile() candidate code in our own process).
_COMPILE_CHECK = """\
import sys, traceback
src = sys.stdin.buffer.read()
try:
    compile(src, "solution.py", "exec")
except BaseException as exc:
    sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
    sys.exit(1)
"""
_COMPILE_LIMITS = RunLimits(cpu_time_s=5, wall_time_s=10, memory_mb=256, output_bytes=64 * 1024)


class Verdict(enum.StrEnum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"


_VERDICT_TEXT = {
    Verdict.ACCEPTED: "accepted",
    Verdict.WRONG_ANSWER: "wrong answer",
    Verdict.TIME_LIMIT_EXCEEDED: "time limit exceeded",
    Verdict.MEMORY_LIMIT_EXCEEDED: "memory limit exceeded",
    Verdict.RUNTIME_ERROR: "runtime error",
    Verdict.COMPILE_ERROR: "compile error",
    Verdict.OUTPUT_LIMIT_EXCEEDED: "output limit exceeded",
}


class UnsupportedLanguage(ValueError):
    pass


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


# ----------------------------------------------------------------------------- helpers


def _clip(text: str, limit: int = DETAIL_MAX_CHARS) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(tokens: list[bytes], limit: int) -> str:
    return _clip(b" ".join(tokens).decode("utf-8", "replace"), limit)


def compare_tokens(expected: bytes, got: bytes) -> str | None:
    """``None`` if the whitespace-separated tokens are equal, else a short (<= 120 chars) detail."""
    e, g = expected.split(), got.split()
    if e == g:
        return None
    if not g:
        return _clip(f"expected `{_show(e, 80)}`, got no output")
    if len(e) <= 6 and len(g) <= 6:
        return _clip(f"expected `{_show(e, 50)}`, got `{_show(g, 50)}`")
    k = next((i for i, (a, b) in enumerate(zip(e, g)) if a != b), min(len(e), len(g)))
    if k < len(e) and k < len(g):
        return _clip(f"token {k + 1}: expected `{_show([e[k]], 45)}`, got `{_show([g[k]], 45)}`")
    if len(g) < len(e):
        return _clip(f"output ended after {len(g)} tokens, expected {len(e)}")
    return _clip(f"extra output after {len(e)} tokens: `{_show(g[len(e):len(e) + 3], 50)}`")


def _last_stderr_line(stderr: bytes) -> str:
    for line in reversed(stderr.decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()
    return ""


def _signal_name(sig: int) -> str:
    try:
        return signal_mod.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _is_large(problem: ProblemSpec, test: TestCase) -> bool:
    return test.large


def limits_for(problem: ProblemSpec, test: TestCase) -> RunLimits:
    cpu_s = problem.time_limit_ms / 1000
    return RunLimits(
        cpu_time_s=cpu_s,
        wall_time_s=max(2 * cpu_s + 1.0, cpu_s + 2.0),
        memory_mb=problem.memory_limit_mb,
        output_bytes=max(1 << 20, 2 * len(test.expected) + 4096),
    )


def classify(run: RunResult, problem: ProblemSpec, test: TestCase) -> tuple[Verdict, str]:
    """Verdict and detail for one run (details of hidden tests never include data)."""
    limits = limits_for(problem, test)
    if run.output_limit_hit:
        v, d = Verdict.OUTPUT_LIMIT_EXCEEDED, f"more than {limits.output_bytes} bytes of output"
    elif run.cpu_limit_hit:
        v, d = Verdict.TIME_LIMIT_EXCEEDED, f"CPU time limit of {problem.time_limit_ms} ms exceeded"
    elif run.timed_out:
        v, d = Verdict.TIME_LIMIT_EXCEEDED, (
            f"wall-clock limit of {limits.wall_time_s:g} s exceeded (waiting or sleeping?)"
        )
    elif run.memory_limit_hit or (not run.ok and b"MemoryError" in run.stderr[-2048:]):
        v, d = Verdict.MEMORY_LIMIT_EXCEEDED, f"memory limit of {problem.memory_limit_mb} MB exceeded"
    elif run.exit_code != 0 or run.signal is not None:
        v = Verdict.RUNTIME_ERROR
        if test.hidden:
            d = (
                f"killed by {_signal_name(run.signal)}"
                if run.signal is not None
                else f"exit code {run.exit_code}"
            )
        elif run.signal is not None:
            d = _last_stderr_line(run.stderr) or f"killed by {_signal_name(run.signal)}"
        else:
            d = _last_stderr_line(run.stderr) or f"exit code {run.exit_code}"
    else:
        diff = compare_tokens(test.expected, run.stdout)
        if diff is None:
            return Verdict.ACCEPTED, ""
        v, d = Verdict.WRONG_ANSWER, diff
    if test.hidden:
        if v in (Verdict.WRONG_ANSWER,):
            return v, "hidden test: wrong answer"
        if v is Verdict.RUNTIME_ERROR:
            return v, _clip(f"hidden test: runtime error ({d})")
        return v, _clip(f"hidden test: {d}")
    return v, _clip(d)


def performance_credit(cpu_ms: float, reference_cpu_ms: float | None) -> float:
    r = cpu_ms / max(reference_cpu_ms or 0.0, PERF_FLOOR_MS)
    return 100.0 if r <= PERF_TOLERANCE else 100.0 * PERF_TOLERANCE / r


# ----------------------------------------------------------------------------- judge


class Judge:
    def __init__(self, max_parallel_runs: int) -> None:
        if max_parallel_runs < 1:
            raise ValueError("max_parallel_runs must be >= 1")
        self._sem = asyncio.Semaphore(max_parallel_runs)
        self._ref_times: dict[str, dict[str, float]] = {}
        self._ref_locks: dict[str, asyncio.Lock] = {}

    async def _run(self, code: str, stdin: bytes, limits: RunLimits) -> RunResult:
        async with self._sem:
            return await run_python(code, stdin, limits)

    async def compile_check(self, code: str) -> str | None:
        """``None`` if ``code`` compiles, else the compiler's message (checked in the sandbox)."""
        source = code.encode("utf-8", "surrogatepass")
        if len(source) > MAX_CODE_BYTES:
            return f"source code is {len(source)} bytes, more than the {MAX_CODE_BYTES} allowed"
        run = await self._run(_COMPILE_CHECK, source, _COMPILE_LIMITS)
        if run.ok:
            return None
        if run.exit_code == 1 and run.stderr.strip():
            return run.stderr.decode("utf-8", "replace").strip()
        return "the compiler exceeded its limits (source too complex?)"

    async def reference_times(self, problem: ProblemSpec) -> dict[str, float]:
        """CPU ms of the reference solution per test id (memoised per problem)."""
        cached = self._ref_times.get(problem.problem_id)
        if cached is not None:
            return cached
        lock = self._ref_locks.setdefault(problem.problem_id, asyncio.Lock())
        async with lock:
            cached = self._ref_times.get(problem.problem_id)
            if cached is not None:
                return cached

            async def measure(test: TestCase) -> tuple[str, float]:
                runs = REFERENCE_RUNS_LARGE if _is_large(problem, test) else 1
                best: float | None = None
                for _ in range(runs):
                    run = await self._run(problem.reference_solution, test.input, limits_for(problem, test))
                    verdict, _ = classify(run, problem, test)
                    if verdict is not Verdict.ACCEPTED:
                        log.error(
                            "reference solution of %s gets %s on test %s",
                            problem.problem_id, verdict, test.test_id,
                        )
                    best = run.cpu_ms if best is None else min(best, run.cpu_ms)
                return test.test_id, float(best or 0.0)

            times = dict(await asyncio.gather(*(measure(t) for t in problem.tests)))
            self._ref_times[problem.problem_id] = times
            return times

    async def check(self, problem: ProblemSpec, language: str, code: str) -> CheckResult:
        lang = _LANGUAGE_ALIASES.get(language.strip().lower())
        if lang is None:
            raise UnsupportedLanguage(
                f"unsupported language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)}"
            )
        if problem.checker != "tokens":
            raise ValueError(f"problem {problem.problem_id}: unknown checker {problem.checker!r}")

        compile_output = await self.compile_check(code)
        if compile_output is not None:
            outcomes = [
                TestOutcome(t.test_id, t.hidden, Verdict.COMPILE_ERROR, 0.0, 0.0, 0, None,
                            "compile error", None)
                for t in problem.tests
            ]
            return self._result(problem, lang, outcomes, compile_output)

        ref = await self.reference_times(problem)

        async def one(test: TestCase) -> TestOutcome:
            run = await self._run(code, test.input, limits_for(problem, test))
            verdict, detail = classify(run, problem, test)
            return TestOutcome(
                test_id=test.test_id,
                hidden=test.hidden,
                verdict=verdict,
                cpu_ms=run.cpu_ms,
                wall_ms=run.wall_ms,
                peak_memory_kb=run.peak_memory_kb,
                exit_code=run.exit_code,
                detail=detail,
                reference_cpu_ms=ref.get(test.test_id),
            )

        outcomes = list(await asyncio.gather(*(one(t) for t in problem.tests)))
        return self._result(problem, lang, outcomes, "")

    def _result(self, problem: ProblemSpec, lang: str, outcomes: list[TestOutcome],
                compile_output: str) -> CheckResult:
        total = len(outcomes)
        passed = sum(o.verdict is Verdict.ACCEPTED for o in outcomes)
        failing = next((o.verdict for o in outcomes if o.verdict is not Verdict.ACCEPTED), None)
        large = {t.test_id for t in problem.tests if _is_large(problem, t)}
        weight_sum = credit_sum = 0.0
        for o in outcomes:
            w = LARGE_TEST_WEIGHT if o.test_id in large else 1
            weight_sum += w
            if o.verdict is Verdict.ACCEPTED:
                credit_sum += w * performance_credit(o.cpu_ms, o.reference_cpu_ms)
        return CheckResult(
            problem_id=problem.problem_id,
            language=lang,
            verdict=failing or Verdict.ACCEPTED,
            tests=outcomes,
            passed=passed,
            total=total,
            correctness_score=round(100 * passed / total, 2) if total else 0.0,
            performance_score=round(credit_sum / weight_sum, 2) if weight_sum else 0.0,
            performance_rule=PERFORMANCE_RULE,
            compile_output=compile_output,
            isolation=ISOLATION_DESCRIPTION,
        )
