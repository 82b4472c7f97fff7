"""Sandbox cost, measured in one process on this machine, every figure beside its baseline from
the same run:

- overhead per run: wall time of the same program run bare (an asyncio subprocess, no limits,
  no isolation: what the service would do without a sandbox) and through the sandbox in each
  mode, interleaved so that all see the same machine state; medians, the ratio and the
  difference (targets: Python hello <= 1.3x, a compiled C++ hello <= +3 ms);
- the code checks of a 9-test two-sum submission, reference already measured (target <= 0.5 s);
- how long hostile submissions take to a verdict against their wall limit (target: a fork bomb
  and a sleeper within the wall limit + 1 s);
- throughput: runs per second through the worker pool.

    .venv/bin/python -m bench.bench_sandbox [--runs 40] [--checks 5] [--pool-runs 200] [--json out.json]

Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vibe.platform.config import ScoringSettings
from vibe.services.scoring.bank import load_problem_bank
from vibe.services.scoring.isolation import IsolationMode
from vibe.services.scoring.judge import Judge, Verdict, run_limits
from vibe.services.scoring.languages import language
from vibe.services.scoring.programs import Program, build, execute
from vibe.services.scoring.sandbox import RunLimits, Sandbox
from vibe_dev.stack import with_dev_secrets

LIMITS = RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=256)
HELLO = {
    "python": 'print("hello")\n',
    "cpp": '#include <cstdio>\nint main(){ std::puts("hello"); }\n',
}
TARGETS = {"python_ratio": 1.3, "cpp_added_ms": 3.0, "two_sum_checks_s": 0.5, "hostile_over_wall_s": 1.0}
#: The figures of one run, as printed and written to --json.
Figures = dict[str, Any]
HOSTILE = {
    "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "sleeper": "import time\ntime.sleep(1000)\n",
}


async def bare(program: Program, workdir: Path) -> float:
    for name, data in program.files.items():
        path = workdir / name
        path.write_bytes(data)
        path.chmod(0o755)
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        *program.language.run_argv(LIMITS.memory_mb),
        cwd=workdir,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate(b"")
    assert out == b"hello\n", out
    return (time.perf_counter() - start) * 1000


async def sandboxed(sandbox: Sandbox, program: Program) -> float:
    start = time.perf_counter()
    result = await execute(sandbox, program, b"", LIMITS)
    assert result.ok and result.stdout == b"hello\n", result
    return (time.perf_counter() - start) * 1000


async def overhead(lang: str, runs: int, sandboxes: dict[IsolationMode, Sandbox], figures: Figures) -> None:
    program = await build(sandboxes[IsolationMode.NAMESPACES], language(lang), HELLO[lang])
    assert isinstance(program, Program), program
    times: dict[str, list[float]] = {"bare": [], **{str(m): [] for m in sandboxes}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):  # warm caches
            await bare(program, Path(tmp))
            for sandbox in sandboxes.values():
                await sandboxed(sandbox, program)
        for _ in range(runs):  # interleaved: same machine state for every variant
            times["bare"].append(await bare(program, Path(tmp)))
            for mode, sandbox in sandboxes.items():
                times[str(mode)].append(await sandboxed(sandbox, program))
    base = statistics.median(times["bare"])
    print(f"{lang} hello: bare median {base:.2f} ms over {runs} runs")
    for mode in sandboxes:
        med = statistics.median(times[str(mode)])
        print(f"{lang} hello: {mode:<10} median {med:.2f} ms, ratio {med / base:.2f}x, added {med - base:+.2f} ms")
        figures[f"{lang}_{mode}"] = {
            "bare_ms": round(base, 3),
            "median_ms": round(med, 3),
            "ratio": round(med / base, 3),
            "added_ms": round(med - base, 3),
        }


async def code_checks(sandbox: Sandbox, checks: int, figures: Figures) -> None:
    problem = next(p for p in load_problem_bank() if p.problem_id == "two-sum")
    judge = Judge(sandbox)
    await judge.profile(problem, language("python"))  # the reference is measured once per process
    times = []
    for _ in range(checks):
        start = time.perf_counter()
        result = await judge.check(problem, "python", problem.reference_solution)
        times.append(time.perf_counter() - start)
        assert result.verdict is Verdict.ACCEPTED, result.tests
    med = statistics.median(times)
    print(
        f"two-sum code checks ({len(problem.tests)} tests + {len(problem.scaling_sizes)} scaling runs): "
        f"median {med:.3f} s over {checks} (min {min(times):.3f} s)"
    )
    figures["two_sum_checks_s"] = round(med, 3)
    for name, source in HOSTILE.items():
        start = time.perf_counter()
        result = await judge.check(problem, "python", source)
        elapsed = time.perf_counter() - start
        wall = run_limits(problem, result.time_limit_ms, b"").wall_time_s
        not_run = sum(t.verdict is Verdict.NOT_RUN for t in result.tests)
        print(f"{name}: {result.verdict} in {elapsed:.2f} s (wall limit {wall:g} s, {not_run} tests not run)")
        figures[name.replace(" ", "_")] = {
            "seconds": round(elapsed, 3),
            "wall_limit_s": wall,
            "over_wall_s": round(elapsed - wall, 3),
        }


async def throughput(pool_runs: int, parallel: int, figures: Figures) -> None:
    sandbox = Sandbox(parallel)
    await sandbox.start()
    try:
        program = await build(sandbox, language("python"), HELLO["python"])
        assert isinstance(program, Program), program
        start = time.perf_counter()
        await asyncio.gather(*(sandboxed(sandbox, program) for _ in range(pool_runs)))
        elapsed = time.perf_counter() - start
    finally:
        await sandbox.close()
    print(
        f"throughput ({sandbox.mode}, pool of {parallel} on {os.cpu_count()} CPUs): "
        f"{pool_runs / elapsed:.1f} runs/s ({pool_runs} python runs in {elapsed:.2f} s)"
    )
    figures["throughput_runs_per_s"] = round(pool_runs / elapsed, 1)


def verdicts(figures: Figures) -> list[str]:
    missed = []
    if figures["python_namespaces"]["ratio"] > TARGETS["python_ratio"]:
        missed.append(f"python hello ratio {figures['python_namespaces']['ratio']} > {TARGETS['python_ratio']}")
    if figures["cpp_namespaces"]["added_ms"] > TARGETS["cpp_added_ms"]:
        missed.append(f"cpp hello added {figures['cpp_namespaces']['added_ms']} ms > {TARGETS['cpp_added_ms']} ms")
    if figures["two_sum_checks_s"] > TARGETS["two_sum_checks_s"]:
        missed.append(f"two-sum code checks {figures['two_sum_checks_s']} s > {TARGETS['two_sum_checks_s']} s")
    missed += [
        f"{name} took {figures[name]['over_wall_s']} s past its wall limit"
        for name in ("fork_bomb", "sleeper")
        if figures[name]["over_wall_s"] > TARGETS["hostile_over_wall_s"]
    ]
    return missed


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--checks", type=int, default=5)
    parser.add_argument("--pool-runs", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    figures: Figures = {"targets": TARGETS}
    sandboxes = {mode: Sandbox(1, mode) for mode in (IsolationMode.NAMESPACES, IsolationMode.RLIMITS)}
    for sandbox in sandboxes.values():
        await sandbox.start()
    try:
        for lang in HELLO:
            await overhead(lang, args.runs, sandboxes, figures)
    finally:
        for sandbox in sandboxes.values():
            await sandbox.close()
    settings = ScoringSettings.from_env(with_dev_secrets(os.environ))  # only max_parallel_runs is used
    checker = Sandbox(settings.max_parallel_runs)
    await checker.start()
    try:
        await code_checks(checker, args.checks, figures)
    finally:
        await checker.close()
    await throughput(args.pool_runs, settings.max_parallel_runs, figures)
    missed = verdicts(figures)
    figures["missed"] = missed
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print("targets:", "all met" if not missed else "MISSED: " + "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
