"""Sandbox cost, measured in one process on this machine:

- overhead per run: wall time of the same program run bare (an asyncio subprocess, no limits)
  and through the sandbox (bubblewrap, and the rlimits fallback), interleaved so that both see
  the same machine state; medians and the ratio sandboxed / bare;
- throughput: runs per second through the worker pool (SCORING_MAX_PARALLEL_RUNS, default the
  CPU count).

    .venv/bin/python -m bench.bench_sandbox [--runs 40] [--pool-runs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from vibe.platform.config import ScoringSettings
from vibe.services.scoring.isolation import IsolationMode, detect_mode
from vibe.services.scoring.languages import language
from vibe.services.scoring.programs import Program, build, execute
from vibe.services.scoring.sandbox import RunLimits, Sandbox

LIMITS = RunLimits(cpu_time_s=2, wall_time_s=4, memory_mb=256)
STDIN = b" ".join(str(i).encode() for i in range(1000)) + b"\n"
PROGRAMS = {
    "python": "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n",
    "cpp": '#include <iostream>\nint main(){long a,s=0;while(std::cin>>a)s+=a;std::cout<<s<<"\\n";}\n',
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
    await proc.communicate(STDIN)
    return (time.perf_counter() - start) * 1000


async def sandboxed(sandbox: Sandbox, program: Program) -> float:
    start = time.perf_counter()
    result = await execute(sandbox, program, STDIN, LIMITS)
    assert result.ok, result.stderr
    return (time.perf_counter() - start) * 1000


async def overhead(lang: str, runs: int) -> None:
    modes = [IsolationMode.RLIMITS] + ([IsolationMode.BUBBLEWRAP] if detect_mode() is IsolationMode.BUBBLEWRAP else [])
    sandboxes = {mode: Sandbox(1, mode) for mode in modes}
    program = await build(sandboxes[modes[0]], language(lang), PROGRAMS[lang])
    assert isinstance(program, Program), program
    times: dict[str, list[float]] = {"bare": [], **{str(m): [] for m in modes}}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):  # interleaved: same machine state for every variant
            times["bare"].append(await bare(program, Path(tmp)))
            for mode, sandbox in sandboxes.items():
                times[str(mode)].append(await sandboxed(sandbox, program))
    base = statistics.median(times["bare"])
    print(f"{lang}: bare median {base:.1f} ms over {runs} runs")
    for mode in modes:
        med = statistics.median(times[str(mode)])
        print(f"{lang}: {mode} median {med:.1f} ms, ratio {med / base:.2f}x, overhead {med - base:+.1f} ms per run")


async def throughput(pool_runs: int, parallel: int) -> None:
    sandbox = Sandbox(parallel)
    program = await build(sandbox, language("python"), PROGRAMS["python"])
    assert isinstance(program, Program), program
    start = time.perf_counter()
    await asyncio.gather(*(sandboxed(sandbox, program) for _ in range(pool_runs)))
    elapsed = time.perf_counter() - start
    print(
        f"throughput ({await sandbox.mode()}, pool of {parallel} on {os.cpu_count()} CPUs): "
        f"{pool_runs / elapsed:.1f} runs/s ({pool_runs} python runs in {elapsed:.2f} s)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--pool-runs", type=int, default=200)
    args = parser.parse_args()
    print(f"isolation available: {detect_mode()}")
    for lang in PROGRAMS:
        await overhead(lang, args.runs)
    await throughput(args.pool_runs, ScoringSettings.from_env().max_parallel_runs)


if __name__ == "__main__":
    asyncio.run(main())
