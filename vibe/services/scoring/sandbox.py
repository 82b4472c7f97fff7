"""Run untrusted commands under whole-run limits, isolated as the operator chose, measured from
outside the program's reach.

Layout (details in ``vibe-box.c``)::

    Sandbox --request + 6 fds over a socket--> slot server (vibe-box serve, one per worker slot,
                                                 in the slot's cgroup)
                                                   | fork: keeper -> clone: proxy (PID 1) -> program

A run takes a free slot, writes the slot's limits into its cgroup, sends the request and then
only moves bytes: input files and stdin in, stdout and stderr out (capped: past the output limit
the keeper is told to stop the run), and the report, whose last line is the run's outcome as the
keeper measured it.  Nothing the program can write reaches that report.

Failures of the sandbox itself (a helper that cannot start, a run that cannot be set up, a report
that never comes) raise :class:`SandboxError`: retryable, never a verdict for the candidate.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vibe.platform.server import StartupRefused
from vibe.services.scoring.cgroups import CgroupTree, CgroupUnavailable, SlotCgroup, proc_stat_field
from vibe.services.scoring.isolation import DESCRIPTIONS, HelperProblem, IsolationMode, find_helper
from vibe.services.scoring.languages import PYTHON

log = logging.getLogger(__name__)

STDERR_KEEP_BYTES = 8 * 1024
MINIMAL_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
#: The run's directory as the program sees it (namespaces mode).
BOX = "/box"
#: Processes of the slot itself inside the slot's cgroup (server, keeper, proxy, one exiting
#: keeper not yet reaped), on top of the program's own processes and threads.
_OWN_TASKS = 4
#: Memory of those processes (static binaries) plus slack for the page cache the run touches.
_OWN_MEMORY_MB = 8
#: The stack limit of a run's program: its memory limit, at most this (MiB).
MAX_STACK_MB = 256
#: How long past its wall limit a run may take before the sandbox itself is presumed broken.
_BACKSTOP_S = 5.0
_SERVER_START_S = 10.0


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the program): the caller may retry."""


class RunNotWanted(Exception):
    """The caller's ``still_wanted`` said no once the run's turn came: nothing was run."""


class FilesTooLarge(ValueError):
    """The run's input files do not fit its directory: the caller's data against the caller's
    limits, decided before anything runs (never a SandboxError: the sandbox is fine)."""


class SandboxUnavailable(SandboxError, StartupRefused):
    """The configured isolation cannot run on this machine (the message says exactly why)."""


# Run by `Sandbox.readable_inside`: the paths on stdin (NUL-separated), those it could open
# for reading on stdout. Reading a byte, not only opening: a directory opens too.
_READABLE_PROBE = """\
import os, sys
out = []
for path in sys.stdin.buffer.read().split(b"\\0"):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        continue
    try:
        os.read(fd, 1)
        out.append(path)
    except OSError:
        pass
    finally:
        os.close(fd)
sys.stdout.buffer.write(b"\\0".join(out))
"""


@dataclass(frozen=True)
class RunLimits:
    cpu_time_s: float
    wall_time_s: float
    memory_mb: int
    output_bytes: int = 1 << 20
    file_size_bytes: int = 1 << 20
    max_processes: int = 64
    #: rlimits mode only: address space granted on top of ``memory_mb`` for the runtime itself.
    address_space_headroom_mb: int = 32
    #: Resident memory of the runtime itself (interpreter, VM) on top of ``memory_mb``.
    runtime_memory_mb: int = 16
    #: Bytes and inodes of the run's directory (/box; also /tmp) and of /dev/shm; together they
    #: also stay within the memory limit (see :func:`tmpfs_sizes`).
    disk_bytes: int = 64 << 20
    disk_inodes: int = 2048

    def __post_init__(self) -> None:
        if self.cpu_time_s <= 0 or self.wall_time_s <= 0 or self.memory_mb <= 0:
            raise ValueError("limits must be positive")
        if self.output_bytes <= 0 or self.file_size_bytes < 0 or self.max_processes <= 0:
            raise ValueError("limits must be positive")
        if self.disk_bytes <= 0 or self.disk_inodes <= 0:
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
    #: rlimits mode only: the program killed its launcher, so there are no exact measurements.
    aborted: bool
    isolation: IsolationMode
    #: The kernel killed a process of the run for exceeding the run's memory (cgroup OOM kill).
    memory_limit_hit: bool = False
    #: Files the caller asked to collect from the working directory (compiler output).
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.cpu_limit_hit
            and not self.output_limit_hit
            and not self.memory_limit_hit
            and not self.aborted
        )

    def looks_out_of_memory(self, markers: Sequence[bytes], memory_mb: int) -> bool:
        """A failed run that ran out of memory: the kernel killed it for that, the runtime said
        so, or its resident memory reached the limit."""
        if self.ok:
            return False
        tail = self.stderr[-4096:]
        return self.memory_limit_hit or any(m in tail for m in markers) or self.peak_memory_kb >= memory_mb * 1024


# ----------------------------------------------------------------------------- byte plumbing


class _Drain:
    """Reads a non-blocking pipe from the event loop; keeps up to ``keep`` bytes (head or tail);
    calls ``on_over`` once past ``cap``; sets ``done`` at EOF."""

    def __init__(
        self,
        fd: int,
        cap: int,
        keep: int,
        keep_tail: bool,
        on_over: Callable[[], None],
        on_data: Callable[[bytes], None] | None = None,
    ) -> None:
        self.fd, self.cap, self.keep, self.keep_tail, self.on_over = fd, cap, keep, keep_tail, on_over
        self.on_data = on_data
        self.total = 0
        self.buf = bytearray()
        self.over = False
        self.done = asyncio.get_running_loop().create_future()
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return
        if self.on_data is not None:
            self.on_data(chunk)
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

    def close(self) -> None:
        if self.fd >= 0:
            asyncio.get_running_loop().remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if not self.done.done():
            self.done.set_result(None)

    def data(self) -> bytes:
        if self.keep_tail and len(self.buf) > self.keep:
            return bytes(self.buf[-self.keep :])
        return bytes(self.buf)


class _Feed:
    """Writes ``data`` into a non-blocking pipe from the event loop, then closes it; a reader that
    goes away early (the program closed stdin) is fine."""

    def __init__(self, fd: int, data: bytes | memoryview) -> None:
        self.fd = fd
        self.view = memoryview(data)
        os.set_blocking(fd, False)
        if self.view:
            self._writable()
        if self.fd >= 0:
            if self.view:
                asyncio.get_running_loop().add_writer(fd, self._writable)
            else:
                self.close()

    def _writable(self) -> None:
        try:
            while self.view:
                n = os.write(self.fd, self.view[: 1 << 16])
                self.view = self.view[n:]
        except BlockingIOError:
            return
        except OSError:
            pass  # EPIPE: the program exited or closed stdin early
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(ValueError):
                asyncio.get_running_loop().remove_writer(self.fd)
            os.close(self.fd)
            self.fd = -1


def _frame_files(files: Mapping[str, bytes]) -> bytes:
    parts = []
    for name, data in files.items():
        if not name or "/" in name or name in (".", "..") or "\n" in name:
            raise ValueError(f"bad file name {name!r}")
        parts.append(b"F 755 %d %s\n" % (len(data), name.encode()))
        parts.append(data)
    parts.append(b"E\n")
    return b"".join(parts)


class _Report:
    """The report stream, parsed as it arrives: collected files, then the final "R" line (the
    run's outcome) or "X" line (the sandbox failed).  ``final`` resolves at that line, which the
    keeper writes before the run's namespaces are torn down; the stream's end comes after."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0
        self.outcome: dict[str, int] | None = None
        self.error: str | None = None
        self.files: dict[str, bytes] = {}
        self.final = asyncio.get_running_loop().create_future()

    def feed(self, chunk: bytes) -> None:
        self.buf += chunk
        while not self.final.done():
            nl = self.buf.find(b"\n", self.pos)
            if nl < 0:
                return
            line = self.buf[self.pos : nl].decode("utf-8", "replace")
            if line.startswith("F "):
                size_s, _, name = line[2:].partition(" ")
                end = nl + 1 + int(size_s)
                if len(self.buf) < end:
                    return  # the file's bytes are still coming
                self.files[name] = bytes(self.buf[nl + 1 : end])
                self.pos = end
                continue
            self.pos = nl + 1
            if line.startswith("R "):
                self.outcome = {k: int(v) for k, v in (kv.split("=", 1) for kv in line[2:].split())}
                self.final.set_result(None)
            elif line.startswith("X "):
                self.error = line[2:]
                self.final.set_result(None)

    def ended(self) -> None:
        if not self.final.done():
            self.final.set_result(None)


# ----------------------------------------------------------------------------- slots


class _SlotServer:
    """One ``vibe-box serve`` process and the socket its runs are sent on."""

    def __init__(self, helper: Path, mode: IsolationMode, cgroup: SlotCgroup | None) -> None:
        self.helper, self.mode, self.cgroup = helper, mode, cgroup
        self.proc: asyncio.subprocess.Process | None = None
        self.sock: socket.socket | None = None

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        mode = "isolated" if self.mode is IsolationMode.NAMESPACES else "rlimits"
        argv = [str(self.helper), "serve", f"--sock-fd={theirs.fileno()}", f"--mode={mode}"]
        if self.cgroup is not None:
            argv += self.cgroup.server_args()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(theirs.fileno(),),
                env=dict(MINIMAL_ENV),
            )
        except OSError as exc:
            ours.close()
            raise SandboxUnavailable(f"cannot start the sandbox helper {self.helper}: {exc.strerror}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        loop = asyncio.get_running_loop()
        try:
            ready = await asyncio.wait_for(loop.sock_recv(ours, 4096), _SERVER_START_S)
        except TimeoutError:
            ready = b""
        if ready != b"ready\n":
            stderr = b""
            if self.proc.stderr is not None:
                with contextlib.suppress(asyncio.TimeoutError):
                    stderr = await asyncio.wait_for(self.proc.stderr.read(4096), 1.0)
            await self.stop()
            why = (ready or stderr).decode("utf-8", "replace").strip().removeprefix("X ") or "no answer"
            raise SandboxUnavailable(f"the sandbox helper {self.helper} could not start a worker slot: {why}")

    @property
    def alive(self) -> bool:
        """Running, as far as the kernel knows: a server killed a moment ago is a zombie (or
        gone) before the event loop's child watcher notices."""
        if self.proc is None or self.proc.returncode is not None:
            return False
        try:
            raw = Path(f"/proc/{self.proc.pid}/stat").read_bytes()
        except OSError:
            return False
        return raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] not in (b"Z", b"X")

    def send(self, payload: bytes, fds: Sequence[int]) -> None:
        assert self.sock is not None
        self.sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])

    async def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()  # EOF: the server exits; its runs die with it (PDEATHSIG)
            self.sock = None
        if self.proc is not None and self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()


@dataclass
class _Slot:
    index: int
    uid: int | None
    cgroup: SlotCgroup | None
    server: _SlotServer


def tmpfs_sizes(limits: RunLimits) -> tuple[int, int]:
    """Bytes of /box and of /dev/shm: each at most ``disk_bytes``, and together at most the
    program's memory (their pages are the run's memory): so once the program's processes are
    gone, whatever it left in them still leaves the slot's own processes room to report."""
    budget = (limits.memory_mb + limits.runtime_memory_mb) << 20
    box = min(limits.disk_bytes, budget * 3 // 4)
    return box, max(1 << 20, min(limits.disk_bytes, budget - box))


def files_footprint(files: Mapping[str, bytes]) -> tuple[int, int]:
    """Bytes and inodes that ``files`` take in a run's directory (a tmpfs: whole pages; its own
    root directory is an inode too)."""
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(-(-len(data) // page) * page for data in files.values()), len(files) + 1


def check_files_fit(files: Mapping[str, bytes], limits: RunLimits) -> None:
    """Raise FilesTooLarge when ``files`` cannot all be written into the directory of a run under
    ``limits`` (in both modes, so that a program gets the same verdict in either)."""
    size, inodes = files_footprint(files)
    room = tmpfs_sizes(limits)[0]
    if size > room or inodes > limits.disk_inodes:
        raise FilesTooLarge(
            f"the run's files take {size} bytes and {inodes} inodes; its directory holds {room} bytes and "
            f"{limits.disk_inodes} inodes"
        )


class _Lease:
    """A slot taken from the free queue; it goes back exactly once: when the run's teardown is
    over (handed over) or at once if the run never got that far."""

    def __init__(self, slot: _Slot, free: asyncio.Queue[_Slot]) -> None:
        self.slot, self._free = slot, free
        self._returned = self._handed_over = False

    def _release(self, _: object = None) -> None:
        if not self._returned:
            self._returned = True
            self._free.put_nowait(self.slot)

    def hand_over(self, teardown: asyncio.Future[None]) -> None:
        self._handed_over = True
        teardown.add_done_callback(self._release)

    def release_unless_handed_over(self) -> None:
        if not self._handed_over:
            self._release()


def remove_tree(path: str) -> None:
    """Remove a directory whatever a program did to it (``rlimits`` mode's host directories): any
    depth with one open descriptor at a time (no recursion, no path longer than a name), no
    permission left that stops us, symlinks never followed.  Only called once every process of
    the run is gone, so nothing moves underneath."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return
    depth = 0
    try:
        while True:
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o700)
            child = None
            for entry in os.scandir(fd):
                if not entry.is_dir(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.name, dir_fd=fd)
                    continue
                try:
                    os.rmdir(entry.name, dir_fd=fd)  # empty already (e.g. after we came back up)
                    continue
                except OSError:
                    pass
                with contextlib.suppress(OSError):
                    os.chmod(entry.name, 0o700, dir_fd=fd)
                child = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                break
            if child is not None:
                os.close(fd)
                fd, depth = child, depth + 1
                continue
            if depth == 0:
                break
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = parent, depth - 1  # the emptied child is removed on the next pass here
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.rmdir(path)


class Sandbox:
    """Runs commands under :class:`RunLimits`, at most ``max_parallel_runs`` at once, in the
    configured isolation mode.  :meth:`start` before the first run (it refuses with
    :class:`SandboxUnavailable` when the mode cannot run here), :meth:`close` at the end."""

    def __init__(
        self,
        max_parallel_runs: int,
        mode: IsolationMode = IsolationMode.NAMESPACES,
        *,
        helper: str = "",
        uid_base: int = 60000,
        on_failure: Callable[[str], None] | None = None,
        secrets: Sequence[Path] = (),
    ) -> None:
        if max_parallel_runs < 1:
            raise ValueError("max_parallel_runs must be >= 1")
        self._mode = mode
        self._secrets = tuple(secrets)
        self._slots_wanted = max_parallel_runs
        self._helper_setting = helper
        self._uid_base = uid_base
        self._on_failure = on_failure
        self._free: asyncio.Queue[_Slot] | None = None
        self._slots: list[_Slot] = []
        self._cgroups: CgroupTree | None = None
        self._started = False
        self._start_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def mode(self) -> IsolationMode:
        return self._mode

    @property
    def slots(self) -> int:
        """How many runs go at once (the worker slots)."""
        return self._slots_wanted

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self._mode]

    async def start(self) -> None:
        """Check that the configured isolation can run here and prepare its worker slots, or
        raise SandboxUnavailable naming the cause (which path, which uid, which errno)."""
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._started:
                return
            await self._start()
            self._started = True

    async def _start(self) -> None:
        try:
            helper = find_helper(self._helper_setting)
        except HelperProblem as exc:
            raise SandboxUnavailable(str(exc)) from None
        root = os.geteuid() == 0
        if self._mode is IsolationMode.NAMESPACES:
            if not root:
                raise SandboxUnavailable(
                    f"SCORING_ISOLATION=namespaces needs the scoring service to run as root (it runs as uid "
                    f"{os.geteuid()}): it creates the runs' namespaces and cgroups and runs each program as an "
                    f"unprivileged uid of its own. Run it as root (in a container: see the README), or choose "
                    f"SCORING_ISOLATION=rlimits for development, which is not a security boundary"
                )
            try:
                self._cgroups = CgroupTree.detect()
                for path in self._cgroups.sweep_stale():
                    log.warning("removed the sandbox cgroups of a service that is gone: %s", path)
                cgroups: list[SlotCgroup | None] = list(self._cgroups.create(self._slots_wanted))
            except (CgroupUnavailable, OSError) as exc:
                await self.close()
                raise SandboxUnavailable(f"SCORING_ISOLATION=namespaces cannot set up its cgroups: {exc}") from None
        else:
            cgroups = [None] * self._slots_wanted
        self._free = asyncio.Queue()
        try:
            for i, cgroup in enumerate(cgroups):
                server = _SlotServer(helper, self._mode, cgroup)
                await server.start()
                slot = _Slot(i, self._uid_base + i if root else None, cgroup, server)
                self._slots.append(slot)
                self._free.put_nowait(slot)
            await self._probe()
            if self._mode is IsolationMode.NAMESPACES:
                await self._check_secrets_hidden()
        except BaseException:
            await self.close()
            raise

    async def probe(self) -> None:
        """One trivial run through every part of the sandbox (at start, and to recover after a
        failure); raises SandboxUnavailable when it does not work."""
        await self._probe()

    async def _probe(self) -> None:
        try:
            result = await self._run(
                {}, ["/usr/bin/true"], b"", RunLimits(cpu_time_s=5, wall_time_s=10, memory_mb=64), ()
            )
        except SandboxError as exc:
            raise SandboxUnavailable(f"{self._mode} isolation does not work here: {exc}") from None
        if not result.ok:
            raise SandboxUnavailable(
                f"{self._mode} isolation does not work here: a trivial program failed "
                f"(exit {result.exit_code}, signal {result.signal}): {result.stderr[-500:].decode('utf-8', 'replace')}"
            )

    async def readable_inside(self, paths: Sequence[str]) -> list[str]:
        """Which of ``paths`` a program can open for reading inside a run (asked by one run of
        the system Python as a run's unprivileged uid, with the mounts every run gets)."""
        result = await self._run(
            {"probe.py": _READABLE_PROBE.encode()},
            [PYTHON, "-I", "-S", "probe.py"],
            b"\0".join(os.fsencode(p) for p in paths),
            RunLimits(cpu_time_s=5, wall_time_s=10, memory_mb=128, output_bytes=len(paths) * 4200 + 64),
            (),
        )
        if not result.ok:
            raise SandboxUnavailable(
                f"{self._mode} isolation does not work here: the probe of what a run can read failed "
                f"(exit {result.exit_code}, signal {result.signal}): {result.stderr[-500:].decode('utf-8', 'replace')}"
            )
        return [os.fsdecode(line) for line in result.stdout.split(b"\0") if line]

    async def _check_secrets_hidden(self) -> None:
        """Fail closed when a run could read what the service keeps secret on disk (the problem
        bank's hidden tests and reference solutions): a package installed under /usr (the system
        Python's site-packages, /usr/local) is inside every run's read-only root."""
        if not self._secrets:
            return
        readable = await self.readable_inside([str(p) for p in self._secrets])
        if readable:
            raise SandboxUnavailable(
                f"{len(readable)} of the {len(self._secrets)} files the service keeps from candidates are readable "
                f"inside a run (e.g. {readable[0]}): a submitted program could print the hidden tests' expected "
                "output. Runs see /usr read-only, so install the package outside /usr (a virtualenv under /opt, as "
                "the image does), or make those files readable by their owner only (chmod -R go-rwx on the "
                "problem bank: runs use an unprivileged uid)"
            )

    async def close(self) -> None:
        for slot in self._slots:
            await slot.server.stop()
        self._slots = []
        if self._cgroups is not None:
            self._cgroups.remove()
            self._cgroups = None
        self._started = False

    # ------------------------------------------------------------------ runs

    async def run(
        self,
        files: Mapping[str, bytes],
        argv: Sequence[str],
        stdin: bytes,
        limits: RunLimits,
        collect: Sequence[str] = (),
        still_wanted: Callable[[], bool] | None = None,
    ) -> RunResult:
        """Put ``files`` into a fresh directory and run ``argv`` there with ``stdin``.  Never
        raises for anything the program does; raises SandboxError when the sandbox itself fails.
        ``still_wanted`` is asked once a slot is free for the run (runs may queue for a while):
        when it says no, nothing runs and RunNotWanted is raised.  Files that cannot fit the run's
        directory raise FilesTooLarge before anything runs."""
        check_files_fit(files, limits)
        if not self._started:
            await self.start()
        return await self._run(files, argv, stdin, limits, collect, still_wanted)

    async def _run(
        self,
        files: Mapping[str, bytes],
        argv: Sequence[str],
        stdin: bytes,
        limits: RunLimits,
        collect: Sequence[str],
        still_wanted: Callable[[], bool] | None = None,
    ) -> RunResult:
        assert self._free is not None
        lease = _Lease(await self._free.get(), self._free)
        try:
            if still_wanted is not None and not still_wanted():
                raise RunNotWanted()
            slot = lease.slot
            if not slot.server.alive:
                log.warning(
                    "sandbox slot %d: its server exited (code %s); restarting it",
                    slot.index,
                    slot.server.proc.returncode if slot.server.proc else None,
                )
                await slot.server.stop()
                await slot.server.start()
            return await self._run_in(lease, files, list(argv), stdin, limits, collect)
        except SandboxError as exc:
            if self._on_failure is not None:
                self._on_failure(str(exc))
            raise
        finally:
            lease.release_unless_handed_over()

    def _request(
        self, slot: _Slot, argv: list[str], limits: RunLimits, collect: Sequence[str], workdir: str | None
    ) -> bytes:
        box = BOX if self._mode is IsolationMode.NAMESPACES else workdir
        box_bytes, shm_bytes = tmpfs_sizes(limits)
        env = {**MINIMAL_ENV, "TMPDIR": str(box), "HOME": str(box)}
        options = [
            f"--cpu-ms={max(1, math.ceil(limits.cpu_time_s * 1000))}",
            f"--wall-ms={max(1, math.ceil(limits.wall_time_s * 1000))}",
            f"--rlimit-cpu={max(1, math.ceil(limits.cpu_time_s))}",
            f"--rlimit-fsize={limits.file_size_bytes}",
            f"--box-bytes={box_bytes}",
            f"--box-inodes={limits.disk_inodes}",
            f"--shm-bytes={shm_bytes}",
            f"--collect-max={max(limits.file_size_bytes, 1)}",
            *(f"--env={k}={v}" for k, v in env.items()),
            *(f"--collect={name}" for name in collect),
        ]
        if slot.uid is not None:
            options += [f"--uid={slot.uid}", f"--gid={slot.uid}"]
        if self._mode is IsolationMode.NAMESPACES:
            # Deep recursion is fair game up to a judge-like stack (it counts as memory anyway).
            # Not in rlimits mode: each thread would reserve that much of the address-space limit.
            options.append(f"--rlimit-stack={min(max(8, limits.memory_mb), MAX_STACK_MB) << 20}")
        else:
            # RLIMIT_NPROC counts the uid's processes host-wide: only here, where no cgroup counts
            # the run's tasks (in namespaces mode the pids cgroup does, per run, and two services
            # on one host may share the slot uids).
            options += [
                f"--workdir={workdir}",
                f"--rlimit-as={(limits.memory_mb + limits.address_space_headroom_mb) << 20}",
                f"--rlimit-nproc={limits.max_processes}",
            ]
        for item in (*options, "--", *argv):
            if "\0" in item:
                raise ValueError("NUL in a sandbox argument")
        return "\0".join([*options, "--", *argv]).encode()

    async def _run_in(
        self,
        lease: _Lease,
        files: Mapping[str, bytes],
        argv: list[str],
        stdin: bytes,
        limits: RunLimits,
        collect: Sequence[str],
    ) -> RunResult:
        slot = lease.slot
        workdir = None
        if self._mode is IsolationMode.RLIMITS:
            workdir = tempfile.mkdtemp(prefix="vibe-run-")
            if slot.uid is not None:
                os.chown(workdir, slot.uid, slot.uid)
        try:
            if slot.cgroup is not None:
                memory = (limits.memory_mb + limits.runtime_memory_mb + _OWN_MEMORY_MB) << 20
                try:
                    slot.cgroup.set_limits(memory, limits.max_processes + _OWN_TASKS)
                except OSError as exc:
                    raise SandboxError(f"cannot set the run's limits in {slot.cgroup.dirs}: {exc}") from None
            return await self._exchange(lease, _frame_files(files), argv, stdin, limits, collect, workdir)
        finally:
            if workdir is not None:
                await asyncio.to_thread(remove_tree, workdir)

    async def _exchange(
        self,
        lease: _Lease,
        framed: bytes,
        argv: list[str],
        stdin: bytes,
        limits: RunLimits,
        collect: Sequence[str],
        workdir: str | None,
    ) -> RunResult:
        slot = lease.slot
        request = self._request(slot, argv, limits, collect, workdir)
        # Ours and theirs for each descriptor; theirs in the order the server expects them.
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
        stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
        files_r, files_w = os.pipe2(os.O_CLOEXEC)
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        control_r, control_w = os.pipe2(os.O_CLOEXEC)
        theirs = [stdin_r, stdout_w, stderr_w, files_r, report_w, control_r]
        try:
            try:
                slot.server.send(request, theirs)
            except OSError as exc:
                # Its server died since the last run (killed, crashed): start it again, once.
                log.warning("sandbox slot %d: its server is gone (%s); restarting it", slot.index, exc)
                await slot.server.stop()
                await slot.server.start()
                slot.server.send(request, theirs)
        except BaseException as exc:
            for fd in (*theirs, stdin_w, stdout_r, stderr_r, files_w, report_r, control_w):
                os.close(fd)
            if isinstance(exc, OSError):
                raise SandboxError(f"cannot reach sandbox slot {slot.index}: {exc}") from None
            raise
        for fd in theirs:
            os.close(fd)

        output_limit_hit = False

        def stop_run() -> None:
            nonlocal output_limit_hit
            output_limit_hit = True
            with contextlib.suppress(OSError):
                os.write(control_w, b"k")

        started = time.monotonic()
        feeds = [_Feed(files_w, framed), _Feed(stdin_w, stdin)]
        out = _Drain(stdout_r, limits.output_bytes, limits.output_bytes, False, stop_run)
        err = _Drain(stderr_r, limits.output_bytes, STDERR_KEEP_BYTES, True, stop_run)
        report = _Report()
        report_pipe = _Drain(report_r, 0, 0, False, lambda: None, on_data=report.feed)
        report_pipe.done.add_done_callback(lambda _: report.ended())
        try:
            try:
                await asyncio.wait_for(asyncio.shield(report.final), limits.wall_time_s + _BACKSTOP_S)
            except TimeoutError:
                raise SandboxError(
                    f"sandbox slot {slot.index} did not finish a run within {_BACKSTOP_S:.0f} s of its "
                    f"{limits.wall_time_s:g} s wall limit; the slot is restarted"
                ) from None
            # Every process of the run is gone once the result is out: its output is at EOF.
            await asyncio.wait({out.done, err.done}, timeout=2.0)
        except BaseException:
            # Cancelled or broken: the control pipe's EOF stops the run; a slot that does not
            # come back is restarted (its server's death kills whatever it still runs).
            os.close(control_w)
            control_w = -1
            if not report_pipe.done.done():
                done, _ = await asyncio.wait({report_pipe.done}, timeout=_BACKSTOP_S)
                if not done:
                    await slot.server.stop()
                    report_pipe.close()
            raise
        finally:
            for feed in feeds:
                feed.close()
            out.close()
            err.close()
            if control_w >= 0:
                os.close(control_w)
        # The slot is free once the run's namespaces are gone (the report's end), a moment after
        # the result: the caller does not wait for that.
        lease.hand_over(asyncio.ensure_future(self._teardown(slot, report_pipe)))
        if report.error is not None:
            raise SandboxError(f"the sandbox could not run the program: {report.error}")
        if report.outcome is None:
            if self._mode is IsolationMode.RLIMITS and slot.server.alive:
                # rlimits mode without the uid drop: the program can kill its own keeper.
                return self._aborted(out, err, limits, time.monotonic() - started, output_limit_hit)
            why = "its server died during the run" if not slot.server.alive else "the report ended early"
            raise SandboxError(f"sandbox slot {slot.index} ended a run without a report ({why})")
        o = report.outcome
        sig = o["signal"] if o["signal"] >= 0 else None
        cpu_ms = o["cpu_us"] / 1000
        result = RunResult(
            exit_code=o["exit"] if o["exit"] >= 0 else None,
            signal=sig,
            cpu_ms=round(cpu_ms, 3),
            wall_ms=round(o["wall_us"] / 1000, 3),
            peak_memory_kb=o["maxrss_kb"],
            stdout=out.data(),
            stderr=err.data(),
            timed_out=bool(o["timed_out"]),
            cpu_limit_hit=not output_limit_hit
            and (bool(o["cpu_limit"]) or sig == signal.SIGXCPU or cpu_ms > limits.cpu_time_s * 1000),
            output_limit_hit=output_limit_hit,
            aborted=False,
            isolation=self._mode,
            memory_limit_hit=o["oom_kills"] > 0,
            files=report.files,
        )
        return result

    async def _teardown(self, slot: _Slot, report_pipe: _Drain) -> None:
        """Wait for the end of a run's report (the keeper's exit), then check that nothing of
        the run is left in the slot's cgroup; a slot that does not come back is restarted."""
        try:
            await asyncio.wait_for(asyncio.shield(report_pipe.done), _BACKSTOP_S)
        except TimeoutError:
            log.error("sandbox slot %d: a run's keeper did not exit; restarting the slot", slot.index)
            report_pipe.close()
            await slot.server.stop()
            return
        if slot.cgroup is not None:
            try:
                await self._check_slot_empty(slot)
            except SandboxError as exc:
                log.error("%s", exc)
                if self._on_failure is not None:
                    self._on_failure(str(exc))

    def _aborted(self, out: _Drain, err: _Drain, limits: RunLimits, wall_s: float, output_limit_hit: bool) -> RunResult:
        stderr = (err.data() + b"\nsandbox: the run was aborted (the program killed its launcher)\n")[
            -STDERR_KEEP_BYTES:
        ]
        return RunResult(
            exit_code=None,
            signal=signal.SIGKILL,
            cpu_ms=0.0,
            wall_ms=round(wall_s * 1000, 3),
            peak_memory_kb=0,
            stdout=out.data(),
            stderr=stderr,
            timed_out=wall_s >= limits.wall_time_s,
            cpu_limit_hit=False,
            output_limit_hit=output_limit_hit,
            aborted=True,
            isolation=self._mode,
        )

    async def _check_slot_empty(self, slot: _Slot) -> None:
        """Between runs only the slot's server may be in its cgroup (an exiting keeper for a
        moment): anything else would be a process of the run that escaped its namespace."""
        assert slot.cgroup is not None and slot.server.proc is not None
        deadline = time.monotonic() + 1.0
        while True:
            extra = [
                p
                for p in slot.cgroup.tasks()
                if p != slot.server.proc.pid and proc_stat_field(p, 1) != slot.server.proc.pid
            ]
            if not extra:
                return
            if time.monotonic() > deadline:
                for pid in extra:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                raise SandboxError(f"sandbox slot {slot.index}: processes {extra} outlived their run; killed")
            await asyncio.sleep(0.005)
