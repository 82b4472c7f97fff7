"""Tests of scoring_service.sandbox (no database, no gRPC). Small limits keep them fast."""

from __future__ import annotations

import os
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from scoring_service.sandbox import ISOLATION_DESCRIPTION, RunLimits, run_python

FAST = RunLimits(cpu_time_s=1, wall_time_s=3, memory_mb=64, output_bytes=64 * 1024)


def _procs_with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _wait_gone(marker: str, timeout: float = 2.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        left = _procs_with_marker(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


async def test_normal_run_reports_output_cpu_and_memory():
    code = "import sys\ndata = sys.stdin.read().split()\nprint(sum(map(int, data)))\n"
    r = await run_python(code, b"1 2 3\n4\n", FAST)
    assert r.exit_code == 0 and r.signal is None
    assert r.stdout == b"10\n"
    assert r.stderr == b""
    assert r.cpu_ms > 0 and r.wall_ms > 0
    assert r.peak_memory_kb > 1000  # the interpreter alone is several MB
    assert not (r.timed_out or r.cpu_limit_hit or r.memory_limit_hit or r.output_limit_hit)
    assert r.ok


async def test_infinite_loop_hits_cpu_limit_quickly():
    start = time.monotonic()
    r = await run_python("while True:\n    pass\n", b"", RunLimits(cpu_time_s=1, wall_time_s=5, memory_mb=64))
    elapsed = time.monotonic() - start
    assert r.cpu_limit_hit
    assert not r.ok
    assert r.cpu_ms >= 900
    assert elapsed < 1 + 1.5, elapsed


async def test_sleep_hits_wall_limit():
    start = time.monotonic()
    r = await run_python("import time\ntime.sleep(100)\n", b"", RunLimits(cpu_time_s=1, wall_time_s=1, memory_mb=64))
    elapsed = time.monotonic() - start
    assert r.timed_out
    assert not r.cpu_limit_hit
    assert r.cpu_ms < 500
    assert elapsed < 1 + 1.5, elapsed


async def test_memory_bomb_hits_memory_limit():
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(10 ** 6))\n"
    start = time.monotonic()
    r = await run_python(code, b"", FAST)
    assert r.memory_limit_hit
    assert not r.ok
    assert time.monotonic() - start < 2


async def test_huge_single_allocation_is_memory_limit():
    r = await run_python("x = bytearray(10 ** 10)\n", b"", FAST)
    assert r.memory_limit_hit


async def test_endless_output_is_cut_and_killed_quickly():
    start = time.monotonic()
    r = await run_python("while True:\n    print('x' * 1000)\n", b"", RunLimits(cpu_time_s=5, wall_time_s=10, memory_mb=64, output_bytes=64 * 1024))
    assert r.output_limit_hit
    assert len(r.stdout) <= 64 * 1024
    assert not r.timed_out
    assert time.monotonic() - start < 2


async def test_endless_stderr_is_also_capped():
    r = await run_python("import sys\nwhile True:\n    sys.stderr.write('e' * 1000)\n", b"", FAST)
    assert r.output_limit_hit
    assert len(r.stderr) <= 8 * 1024


async def test_stderr_is_truncated_keeping_the_tail():
    code = "import sys\nsys.stderr.write('noise\\n' * 20000)\nraise ValueError('the-last-line')\n"
    r = await run_python(code, b"", RunLimits(cpu_time_s=1, wall_time_s=3, memory_mb=64))
    assert r.exit_code == 1
    assert len(r.stderr) <= 8 * 1024
    assert r.stderr.rstrip().endswith(b"ValueError: the-last-line")


@pytest.mark.parametrize("how", ["popen", "fork", "setsid-double-fork"])
async def test_background_processes_are_killed(how):
    marker = f"vibe-marker-{uuid.uuid4().hex}"
    sleeper = f"[{sys.executable!r}, '-c', 'import time; time.sleep(100)', {marker!r}]"
    code = {
        "popen": f"import subprocess\nsubprocess.Popen({sleeper})\nprint('started')\n",
        "fork": textwrap.dedent(f"""\
            import os
            if os.fork() == 0:
                os.execv({sys.executable!r}, {sleeper})
            print('started')
            """),
        "setsid-double-fork": textwrap.dedent(f"""\
            import os
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv({sys.executable!r}, {sleeper})
                os._exit(0)
            os.wait()
            print('started')
            """),
    }[how]
    start = time.monotonic()
    r = await run_python(code, b"", FAST)
    assert r.stdout == b"started\n", r.stderr
    assert time.monotonic() - start < 2.5  # did not wait for the sleeper
    assert _wait_gone(marker) == []


async def test_candidate_killing_its_launcher_leaves_nothing_behind():
    marker = f"vibe-marker-{uuid.uuid4().hex}"
    code = textwrap.dedent(f"""\
        import os, subprocess, time
        subprocess.Popen([{sys.executable!r}, '-c', 'import time; time.sleep(100)', {marker!r}])
        os.kill(os.getppid(), 9)
        time.sleep(100)
        """)
    start = time.monotonic()
    r = await run_python(code, b"", FAST)
    assert not r.ok
    assert time.monotonic() - start < 2.5
    assert _wait_gone(marker) == []


async def test_environment_is_not_inherited(monkeypatch):
    monkeypatch.setenv("VIBE_SECRET_FOR_TEST", "s3cr3t-value")
    r = await run_python("import os\nprint(sorted(os.environ.items()))\n", b"", FAST)
    assert r.exit_code == 0
    assert b"VIBE_SECRET_FOR_TEST" not in r.stdout and b"s3cr3t-value" not in r.stdout
    env = dict(eval(r.stdout.decode()))  # noqa: S307 - our own test output
    assert set(env) <= {"PATH", "LANG", "LC_CTYPE"}
    assert env["PATH"] == "/usr/bin:/bin"


async def test_temp_dir_is_cwd_and_removed_afterwards():
    code = "import os\nopen('scratch.txt', 'w').write('x')\nprint(os.getcwd())\n"
    r = await run_python(code, b"", FAST)
    cwd = Path(r.stdout.decode().strip())
    assert cwd.name.startswith("vibe-run-")
    assert not cwd.exists()


async def test_file_size_limit():
    code = "open('big.bin', 'wb').write(b'x' * (4 << 20))\n"
    r = await run_python(code, b"", RunLimits(cpu_time_s=1, wall_time_s=3, memory_mb=64, file_size_bytes=1 << 20))
    assert not r.ok
    assert b"File too large" in r.stderr or r.signal is not None


async def test_program_that_ignores_or_closes_stdin():
    big = b"1 " * (2 << 20)  # 4 MiB, more than a pipe buffer
    r = await run_python("import os\nos.close(0)\nprint('done')\n", big, FAST)
    assert r.exit_code == 0 and r.stdout == b"done\n"
    r = await run_python("print('no read')\n", big, FAST)
    assert r.exit_code == 0 and r.stdout == b"no read\n"


async def test_runs_in_isolated_mode_without_site_packages():
    r = await run_python("import sys\nprint(sys.flags.isolated, sys.flags.no_site)\n", b"", FAST)
    assert r.stdout == b"1 1\n"


def test_isolation_description_is_honest():
    assert "not" in ISOLATION_DESCRIPTION.lower()
    assert "network" in ISOLATION_DESCRIPTION


def test_limits_validation():
    with pytest.raises(ValueError):
        RunLimits(cpu_time_s=0, wall_time_s=1, memory_mb=64)
