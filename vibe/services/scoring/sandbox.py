"""Run one untrusted command under resource limits, isolated as well as this machine allows.

Layout of one run::

    event loop --create_subprocess_exec--> [bwrap, as an unprivileged uid, own namespaces]
                                              _launcher.py (own session, empty env, cwd = /box)
                                                |  fork + rlimits (+ uid drop) + execve
                                                v
                                              the candidate (own process group)

The launcher reports exact rusage (CPU time, peak RSS) and the exit status as a JSON line on an
extra pipe; a second pipe lets us ask it to kill the candidate early (output limit) while still
getting that report.  This module feeds stdin, reads stdout/stderr concurrently with caps, and
on every exit path kills whatever is left (under bwrap: the whole PID namespace dies with its
init), then removes the temp dir.  Runs are bounded by a semaphore (the worker pool) and never
block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from vibe.services.scoring.isolation import (
    BOX,
    DESCRIPTIONS,
    LAUNCHER,
    LAUNCHER_IN_BOX,
    IsolationMode,
    as_sandbox_user,
    bwrap_argv,
    detect_mode,
    sandbox_uid,
)
from vibe.services.scoring.languages import PYTHON

STDERR_KEEP_BYTES = 8 * 1024
#: After the launcher is asked to stop, how long we wait for its final report.
_KILL_GRACE_S = 2.0
#: The parent's own backstop on top of the launcher's wall timer.
_BACKSTOP_S = 3.0
#: Processes the sandbox itself needs besides the candidate's (bwrap's init, the launcher).
_OWN_PROCESSES = 2

MINIMAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class RunLimits:
    cpu_time_s: float
    wall_time_s: float
    memory_mb: int
    output_bytes: int = 1 << 20
    file_size_bytes: int = 1 << 20
    max_processes: int = 64
    #: Address space granted on top of ``memory_mb`` for the runtime itself (see languages.py).
    address_space_headroom_mb: int = 32

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
    output_limit_hit: bool
    #: The sandbox lost its launcher (the program killed it): no exact measurements.
    aborted: bool
    isolation: IsolationMode
    #: Files the caller asked to collect from the working directory (compiler output).
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.cpu_limit_hit
            and not self.output_limit_hit
            and not self.aborted
        )

    def looks_out_of_memory(self, markers: Sequence[bytes], memory_mb: int) -> bool:
        """A failed run that ran out of memory: the runtime said so, or RSS reached the limit."""
        if self.ok and self.exit_code == 0:
            return False
        tail = self.stderr[-4096:]
        return any(m in tail for m in markers) or self.peak_memory_kb >= memory_mb * 1024


class _CappedReader:
    """Drains a stream; keeps up to ``keep`` bytes (head or tail); calls ``on_over`` past ``cap``."""

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
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat_line = fh.read()
            fields = stat_line[stat_line.rindex(b")") + 2 :].split()
            if int(fields[3]) == sid:  # state ppid pgrp session
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


async def _wind_down(proc: asyncio.subprocess.Process) -> None:
    """Stop the run's process tree from the bottom so that every process is reaped by its parent.

    Killing bwrap first would orphan the namespace's init to PID 1, which in a container is often
    not an init that reaps (measured: zombies pile up).  So kill ``proc``'s children (bwrap's
    namespace init, whose death kills the whole PID namespace; or the fallback launcher's
    candidate), let ``proc`` exit by itself, and only then SIGKILL whatever remains.
    """
    for child in _children(proc.pid):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    deadline = time.monotonic() + _KILL_GRACE_S
    while proc.returncode is None and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    _kill_group(proc.pid)
    _kill_session(proc.pid)


def _read_regular_file(path: Path, max_bytes: int) -> bytes | None:
    """Contents of a regular file the program wrote, never following a link it may have planted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)


class Sandbox:
    """Runs commands in fresh temp dirs under :class:`RunLimits`, at most ``max_parallel_runs``
    at once; ``mode`` forces an isolation mode (tests), else the best available is detected."""

    def __init__(self, max_parallel_runs: int, mode: IsolationMode | None = None) -> None:
        if max_parallel_runs < 1:
            raise ValueError("max_parallel_runs must be >= 1")
        self._slots = asyncio.Semaphore(max_parallel_runs)
        self._mode = mode
        self._uid = sandbox_uid()

    async def mode(self) -> IsolationMode:
        if self._mode is None:
            self._mode = await asyncio.to_thread(detect_mode)
        return self._mode

    async def description(self) -> str:
        return DESCRIPTIONS[await self.mode()]

    async def run(
        self,
        files: Mapping[str, bytes],
        argv: Sequence[str],
        stdin: bytes,
        limits: RunLimits,
        collect: Sequence[str] = (),
    ) -> RunResult:
        """Write ``files`` into a fresh working dir, run ``argv`` there with ``stdin``; never
        raises for anything the program does (only when the sandbox itself cannot start)."""
        mode = await self.mode()
        async with self._slots:
            workdir = tempfile.mkdtemp(prefix="vibe-run-")
            try:
                for name, data in files.items():
                    path = Path(workdir, name)
                    path.write_bytes(data)
                    path.chmod(0o755)
                if self._uid is not None:  # the run's uid must own its only writable dir
                    os.chown(workdir, self._uid, self._uid)
                    for name in files:
                        os.chown(Path(workdir, name), self._uid, self._uid)
                result = await self._run(workdir, list(argv), stdin, limits, mode)
                if collect:
                    grabbed = {n: _read_regular_file(Path(workdir, n), limits.file_size_bytes) for n in collect}
                    result = replace(result, files={n: d for n, d in grabbed.items() if d is not None})
                return result
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    async def _run(
        self, workdir: str, argv: list[str], stdin: bytes, limits: RunLimits, mode: IsolationMode
    ) -> RunResult:
        box = BOX if mode is IsolationMode.BUBBLEWRAP else workdir
        cfg = {
            "argv": argv,
            "env": {**MINIMAL_ENV, "TMPDIR": box, "HOME": box},
            "cpu_s": max(1, math.ceil(limits.cpu_time_s)),
            "as_bytes": (limits.memory_mb + limits.address_space_headroom_mb) << 20,
            "fsize_bytes": limits.file_size_bytes,
            "nproc": limits.max_processes + _OWN_PROCESSES,
            "wall_s": limits.wall_time_s,
            "uid": self._uid if mode is IsolationMode.RLIMITS else None,
        }
        report_r, report_w = os.pipe()
        control_r, control_w = os.pipe()
        if mode is IsolationMode.BUBBLEWRAP:
            launcher = [PYTHON, "-I", "-S", LAUNCHER_IN_BOX, str(report_w), str(control_r), json.dumps(cfg)]
            command = as_sandbox_user(bwrap_argv(workdir, launcher))
        else:
            command = [PYTHON, "-I", "-S", str(LAUNCHER), str(report_w), str(control_r), json.dumps(cfg)]
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(report_w, control_r),
                cwd=workdir,
                env=dict(MINIMAL_ENV),
                start_new_session=True,
            )
        except BaseException:
            for fd in (report_r, report_w, control_r, control_w):
                os.close(fd)
            raise
        os.close(report_w)
        os.close(control_r)

        reports: list[dict] = []
        report_reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(report_reader), os.fdopen(report_r, "rb", 0)
        )
        output_limit_hit = False

        def stop_candidate() -> None:
            nonlocal output_limit_hit
            output_limit_hit = True
            with contextlib.suppress(OSError):
                os.write(control_w, b"k")

        out = _CappedReader(limits.output_bytes, limits.output_bytes, False, stop_candidate)
        err = _CappedReader(limits.output_bytes, STDERR_KEEP_BYTES, True, stop_candidate)

        async def read_reports() -> None:
            while line := await report_reader.readline():
                with contextlib.suppress(ValueError):
                    reports.append(json.loads(line))

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
            # EOF on the report pipe == the launcher has exited (only it holds the write end).
            # asyncio's proc.wait() would also wait for every holder of stdout/stderr, i.e. for
            # background children, so it is not the exit signal.
            try:
                await asyncio.wait_for(asyncio.shield(reports_done), limits.wall_time_s + _BACKSTOP_S)
            except TimeoutError:
                backstop_hit = True
        finally:
            # Whatever happened (including cancellation): leave nothing running.  Under bwrap,
            # killing the outer bwrap kills the namespace's init and with it every process in it.
            os.close(control_w)
            await _wind_down(proc)
            # Pipes reach EOF once every holder is dead; don't hang if something escaped.
            done, pending = await asyncio.wait(tasks, timeout=_KILL_GRACE_S)
            for t in pending:
                t.cancel()
            for t in done:
                if not t.cancelled():
                    t.exception()  # mark retrieved
            transport.close()
        wall_parent = time.monotonic() - started
        return _result(
            reports[-1] if reports else None, out, err, limits, mode, wall_parent, backstop_hit, output_limit_hit
        )


def _result(
    final: dict | None,
    out: _CappedReader,
    err: _CappedReader,
    limits: RunLimits,
    mode: IsolationMode,
    wall_parent: float,
    backstop_hit: bool,
    output_limit_hit: bool,
) -> RunResult:
    stderr = err.data()
    if final is None:
        # The launcher died before reporting: the program killed it, or the backstop did.
        timed_out = backstop_hit or wall_parent >= limits.wall_time_s
        aborted = not timed_out and not output_limit_hit
        if aborted:
            stderr = (stderr + b"\nsandbox: the run was aborted (the program killed its launcher)\n")[
                -STDERR_KEEP_BYTES:
            ]
        return RunResult(
            exit_code=None,
            signal=signal.SIGKILL,
            cpu_ms=0.0,
            wall_ms=round(wall_parent * 1000, 3),
            peak_memory_kb=0,
            stdout=out.data(),
            stderr=stderr,
            timed_out=timed_out,
            cpu_limit_hit=False,
            output_limit_hit=output_limit_hit,
            aborted=aborted,
            isolation=mode,
        )
    sig = final["signal"]
    cpu_ms = round(float(final["cpu_s"]) * 1000, 3)
    return RunResult(
        exit_code=final["exit_code"],
        signal=sig,
        cpu_ms=cpu_ms,
        wall_ms=round(float(final["wall_s"]) * 1000, 3),
        peak_memory_kb=int(final["maxrss_kb"]),
        stdout=out.data(),
        stderr=stderr,
        timed_out=bool(final["timed_out"]) or backstop_hit,
        cpu_limit_hit=not output_limit_hit and (sig == signal.SIGXCPU or cpu_ms > limits.cpu_time_s * 1000),
        output_limit_hit=output_limit_hit,
        aborted=False,
        isolation=mode,
    )
