"""Run untrusted Python code in a child process under resource limits (asyncio, database-free).

Layout of one run::

    event loop --create_subprocess_exec--> _launcher.py (own session, empty env, cwd = temp dir)
                                              |  fork + rlimits + execve
                                              v
                                           python -I -S solution.py (own process group)

The launcher reports exact rusage (CPU time, peak RSS) and the exit status as JSON lines on an
extra pipe; this module feeds stdin, reads stdout/stderr concurrently with caps, and on every
exit path kills the candidate's process group, the launcher's group and anything else left in the
launcher's session, then removes the temp dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = Path(__file__).with_name("_launcher.py")

#: Address space the interpreter itself needs on top of the program's memory limit
#: (measured: ``python -I -S`` maps ~12-16 MiB before running any user code; it fails to start
#: below ~16 MiB of RLIMIT_AS).
INTERPRETER_HEADROOM_MB = 32

STDERR_KEEP_BYTES = 8 * 1024
#: After the launcher is asked to stop, how long we wait for its final report.
_KILL_GRACE_S = 2.0
#: The parent's own backstop on top of the launcher's wall timer.
_BACKSTOP_S = 3.0

MINIMAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

ISOLATION_DESCRIPTION = (
    "Each run is a separate process (python -I -S) in a fresh temp working dir with an empty "
    "environment, its own session/process group and rlimits on CPU time, address space, file "
    "size and core dumps, plus wall-time and output caps, and the whole process tree is killed "
    "afterwards; it does NOT yet isolate the network, the filesystem outside the working dir, "
    "other processes or the user id (and RLIMIT_NPROC has no effect when running as root), so "
    "it is not a security boundary until the bubblewrap sandbox lands."
)


@dataclass(frozen=True)
class RunLimits:
    cpu_time_s: float
    wall_time_s: float
    memory_mb: int
    output_bytes: int = 1 << 20
    file_size_bytes: int = 1 << 20
    max_processes: int = 64

    def __post_init__(self) -> None:
        if self.cpu_time_s <= 0 or self.wall_time_s <= 0 or self.memory_mb <= 0:
            raise ValueError("limits must be positive")
        if self.output_bytes <= 0 or self.file_size_bytes < 0 or self.max_processes <= 0:
            raise ValueError("limits must be positive")


@dataclass(frozen=True)
class RunResult:
    exit_code: int | None
    signal: int | None
    cpu_ms: float
    wall_ms: float
    peak_memory_kb: int
    stdout: bytes
    stderr: bytes
    timed_out: bool
    cpu_limit_hit: bool
    memory_limit_hit: bool
    output_limit_hit: bool

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.cpu_limit_hit
            and not self.memory_limit_hit
            and not self.output_limit_hit
        )


class _CappedReader:
    """Drains a stream; keeps up to ``cap`` bytes (head or tail); calls ``on_over`` past ``cap``."""

    def __init__(self, cap: int, keep: int, keep_tail: bool, on_over) -> None:
        self.cap = cap
        self.keep = keep
        self.keep_tail = keep_tail
        self.on_over = on_over
        self.total = 0
        self.buf = bytearray()
        self.over = False

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return
            self.total += len(chunk)
            if self.keep_tail:
                self.buf += chunk
                if len(self.buf) > 2 * self.keep:
                    del self.buf[: len(self.buf) - self.keep]
            elif len(self.buf) < self.keep:
                self.buf += chunk[: self.keep - len(self.buf)]
            if self.total > self.cap and not self.over:
                self.over = True
                self.on_over()

    def data(self) -> bytes:
        if self.keep_tail and len(self.buf) > self.keep:
            return bytes(self.buf[-self.keep :])
        return bytes(self.buf)


def _kill_group(pgid: int | None) -> None:
    if pgid is None or pgid <= 1:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_session(sid: int) -> None:
    """SIGKILL every process whose session id is ``sid`` (final sweep, Linux /proc)."""
    if sid <= 1:
        return
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(b")") + 2 :].split()
            if int(fields[3]) == sid:  # state ppid pgrp session
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


def _looks_like_memory_error(stderr: bytes) -> bool:
    tail = stderr[-2048:]
    return (
        b"MemoryError" in tail
        or b"Cannot allocate memory" in tail
        or b"memory allocation failed" in tail
        or b"std::bad_alloc" in tail
    )


async def run_python(code: str, stdin: bytes, limits: RunLimits) -> RunResult:
    """Run ``code`` as ``solution.py`` with ``stdin`` under ``limits``; never raises for
    anything the program does (only for failures to start the launcher itself)."""
    workdir = tempfile.mkdtemp(prefix="vibe-run-")
    try:
        sol = Path(workdir, "solution.py")
        sol.write_text(code, encoding="utf-8", errors="surrogatepass")
        return await _run(workdir, [sys.executable, "-I", "-S", "solution.py"], stdin, limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _run(workdir: str, argv: list[str], stdin: bytes, limits: RunLimits) -> RunResult:
    cpu_soft = max(1, math.ceil(limits.cpu_time_s))
    cfg = {
        "argv": argv,
        "env": MINIMAL_ENV,
        "cpu_s": cpu_soft,
        "as_bytes": (limits.memory_mb + INTERPRETER_HEADROOM_MB) << 20,
        "fsize_bytes": limits.file_size_bytes,
        "nproc": limits.max_processes,
        "wall_s": limits.wall_time_s,
    }
    report_r, report_w = os.pipe()
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            str(LAUNCHER),
            str(report_w),
            json.dumps(cfg),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=(report_w,),
            cwd=workdir,
            env=dict(MINIMAL_ENV),
            start_new_session=True,
        )
    except BaseException:
        os.close(report_r)
        os.close(report_w)
        raise
    os.close(report_w)

    launcher_pid = proc.pid
    candidate_pid: int | None = None
    reports: list[dict] = []
    report_reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(report_reader), os.fdopen(report_r, "rb", 0)
    )
    output_limit_hit = False

    def stop_candidate() -> None:
        nonlocal output_limit_hit
        output_limit_hit = True
        if candidate_pid is not None:
            _kill_group(candidate_pid)
        else:  # not started yet / unknown: take everything down
            _kill_group(launcher_pid)

    out = _CappedReader(limits.output_bytes, limits.output_bytes, False, stop_candidate)
    err = _CappedReader(limits.output_bytes, STDERR_KEEP_BYTES, True, stop_candidate)

    async def read_reports() -> None:
        nonlocal candidate_pid
        while True:
            line = await report_reader.readline()
            if not line:
                return
            with contextlib.suppress(ValueError):
                msg = json.loads(line)
                if "pid" in msg and candidate_pid is None:
                    candidate_pid = int(msg["pid"])
                else:
                    reports.append(msg)

    async def feed_stdin() -> None:
        assert proc.stdin is not None
        try:
            if stdin:
                proc.stdin.write(stdin)
                await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the program closed stdin / exited early: fine
        finally:
            with contextlib.suppress(Exception):
                proc.stdin.close()
            with contextlib.suppress(Exception):
                await proc.stdin.wait_closed()

    assert proc.stdout is not None and proc.stderr is not None
    tasks = [
        asyncio.ensure_future(feed_stdin()),
        asyncio.ensure_future(out.drain(proc.stdout)),
        asyncio.ensure_future(err.drain(proc.stderr)),
        asyncio.ensure_future(read_reports()),
    ]
    reports_done = tasks[3]
    backstop_hit = False
    try:
        # EOF on the report pipe == the launcher has exited (only it holds the write end; the
        # candidate never gets it).  Note asyncio's proc.wait() would also wait for every holder
        # of stdout/stderr, i.e. for background children, so it is not used as the exit signal.
        try:
            await asyncio.wait_for(asyncio.shield(reports_done), limits.wall_time_s + _BACKSTOP_S)
        except asyncio.TimeoutError:
            backstop_hit = True
            _kill_group(candidate_pid)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(reports_done), _KILL_GRACE_S)
    finally:
        # Whatever happened (including cancellation): leave nothing running.
        _kill_group(candidate_pid)
        _kill_group(launcher_pid)
        _kill_session(launcher_pid)
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(proc.wait()), _KILL_GRACE_S)
        # Pipes reach EOF once every holder is dead; don't hang if something escaped.
        done, pending = await asyncio.wait(tasks, timeout=_KILL_GRACE_S)
        for t in pending:
            t.cancel()
        for t in done:
            if not t.cancelled():
                t.exception()  # mark retrieved
        transport.close()
    wall_parent = time.monotonic() - started

    final = reports[-1] if reports else None
    stderr = err.data()
    mem_limit_kb = limits.memory_mb * 1024
    if final is None:
        # The launcher died before reporting (killed by the candidate or by the backstop).
        exit_code, sig = None, signal.SIGKILL
        cpu_ms, wall_ms, peak_kb = 0.0, wall_parent * 1000, 0
        timed_out = backstop_hit or wall_parent >= limits.wall_time_s
        if not timed_out and not output_limit_hit:
            stderr = (stderr + b"\nsandbox: the run was aborted (launcher lost)\n")[-STDERR_KEEP_BYTES:]
    else:
        exit_code, sig = final["exit_code"], final["signal"]
        cpu_ms = round(float(final["cpu_s"]) * 1000, 3)
        wall_ms = round(float(final["wall_s"]) * 1000, 3)
        peak_kb = int(final["maxrss_kb"])
        timed_out = bool(final["timed_out"]) or backstop_hit
    cpu_limit_hit = sig == signal.SIGXCPU or (
        cpu_ms > limits.cpu_time_s * 1000 and not output_limit_hit
    )
    memory_limit_hit = (
        not (exit_code == 0 and sig is None)
        and not cpu_limit_hit
        and not timed_out
        and (_looks_like_memory_error(stderr) or peak_kb >= mem_limit_kb)
    )
    return RunResult(
        exit_code=exit_code,
        signal=sig,
        cpu_ms=cpu_ms,
        wall_ms=wall_ms,
        peak_memory_kb=peak_kb,
        stdout=out.data(),
        stderr=stderr,
        timed_out=timed_out,
        cpu_limit_hit=cpu_limit_hit,
        memory_limit_hit=memory_limit_hit,
        output_limit_hit=output_limit_hit,
    )
