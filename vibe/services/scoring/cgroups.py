"""The sandbox's cgroups: one per worker slot, whole-run limits on memory and processes, CPU
accounted for every process of a run.

Where they live: under the scoring service's own cgroup (so the runs stay inside whatever budget
the operator gave the service), in a directory named after this process
(``vibe-sandbox-<pid>-<start time>``) with one ``slot-<i>`` per worker slot.  A slot's cgroup
holds the slot's server (``vibe-box serve``) and, during a run, the run's keeper, proxy and
program.  The limits are rewritten before every run (they depend on the problem).

cgroup v2 is used where its ``memory`` and ``pids`` controllers are available to us; else the
v1 hierarchies ``memory``, ``pids`` and ``cpuacct`` (this is what the CI machines mount).  A
directory left by a service that died is swept (its processes killed, its cgroups removed) when
the next one starts.

Everything here is a few small writes to cgroupfs: synchronous and quick, called from the
event loop.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

V1_CONTROLLERS = ("memory", "pids", "cpuacct")
V2_CONTROLLERS = ("memory", "pids")
_OWN_DIR = re.compile(r"^vibe-sandbox-(\d+)-(\d+)$")


class CgroupUnavailable(RuntimeError):
    """The cgroups the isolated sandbox needs cannot be used here (the message says why)."""


def _write(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read()


def proc_stat_field(pid: int, index: int) -> int | None:
    """A numeric field of /proc/<pid>/stat, counted after the command name (0: state, 1: ppid,
    19: start time), or None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(raw[raw.rindex(b")") + 2 :].split()[index])


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (stable identity across pid reuse)."""
    return proc_stat_field(pid, 19)


def _own_dir_name() -> str:
    return f"vibe-sandbox-{os.getpid()}-{_start_time(os.getpid())}"


@dataclass(frozen=True)
class _Mount:
    version: int
    root: str  # the mount's root inside its hierarchy
    point: Path
    controllers: frozenset[str]


def _mounts() -> list[_Mount]:
    found = []
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
            continue
        root, point = fields[3], Path(fields[4].replace("\\040", " "))
        if rfields[0] == "cgroup2":
            try:
                controllers = frozenset(_read(point / "cgroup.controllers").split())
            except OSError:
                continue
            found.append(_Mount(2, root, point, controllers))
        else:
            found.append(_Mount(1, root, point, frozenset(rfields[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Controller (or "" for v2) -> this process's cgroup path in that hierarchy."""
    paths: dict[str, str] = {}
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(",") if names else [""]:
            paths[name] = path
    return paths


def _under(mount: _Mount, path: str) -> Path:
    """Where our cgroup ``path`` of that hierarchy appears under the mount point."""
    rel = os.path.relpath(path, mount.root) if mount.root != "/" else path.lstrip("/")
    if rel.startswith(".."):
        raise CgroupUnavailable(f"our cgroup {path} is outside the mount {mount.point} (root {mount.root})")
    return mount.point / rel if rel != "." else mount.point


def _kill_and_wait_empty(procs_file: Path, timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pids = [int(p) for p in _read(procs_file).split()]
        except OSError:
            return True
        if not pids:
            return True
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def _remove_tree(top: Path) -> None:
    """rmdir a cgroup directory and its children, deepest first (cgroupfs needs rmdir, not unlink)."""
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
        procs = Path(dirpath, "cgroup.procs")
        _kill_and_wait_empty(procs)
        with contextlib.suppress(FileNotFoundError):
            try:
                os.rmdir(dirpath)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise


@dataclass(frozen=True)
class SlotCgroup:
    """One slot's cgroup(s): what the slot server joins, what a run's limits are written to."""

    version: int
    dirs: dict[str, Path]  # controller -> directory (v2: one directory under "")

    def _dir(self, controller: str) -> Path:
        return self.dirs[controller if self.version == 1 else ""]

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in dict.fromkeys(self.dirs.values())]

    @property
    def cpu_file(self) -> Path:
        return self._dir("cpuacct") / "cpuacct.usage" if self.version == 1 else self._dir("") / "cpu.stat"

    @property
    def oom_file(self) -> Path:
        return self._dir("memory") / ("memory.oom_control" if self.version == 1 else "memory.events")

    def server_args(self) -> list[str]:
        return [
            *(f"--cg-procs={p}" for p in self.procs_files),
            f"--cg-cpu={self.cpu_file}",
            f"--cg-oom={self.oom_file}",
        ]

    def set_limits(self, memory_bytes: int, tasks: int) -> None:
        """The next run's whole-run limits: memory (page cache, tmpfs and shm pages included,
        no swap) and tasks (processes and threads, the slot's own included)."""
        mem = self._dir("memory")
        if self.version == 1:
            swap = mem / "memory.memsw.limit_in_bytes"
            has_swap_file = swap.exists()
            if has_swap_file:  # memsw >= memory at every moment: widen it first, then tighten both
                _write(swap, "-1")
            self._set_memory(mem / "memory.limit_in_bytes", memory_bytes, mem / "memory.force_empty")
            if has_swap_file:
                _write(swap, str(memory_bytes))
            _write(self._dir("pids") / "pids.max", str(tasks))
        else:
            self._set_memory(mem / "memory.max", memory_bytes, None)
            with contextlib.suppress(FileNotFoundError):
                _write(mem / "memory.swap.max", "0")
            _write(mem / "pids.max", str(tasks))

    @staticmethod
    def _set_memory(path: Path, value: int, force_empty: Path | None) -> None:
        try:
            _write(path, str(value))
        except OSError as exc:
            # v1 refuses a limit under the current usage it cannot reclaim: drop the slot's page
            # cache (nothing of a run is left in it between runs) and try once more.
            if exc.errno != errno.EBUSY or force_empty is None:
                raise
            with contextlib.suppress(OSError):
                _write(force_empty, "0")
            _write(path, str(value))

    def tasks(self) -> list[int]:
        pids: list[int] = []
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                pids += [int(p) for p in _read(procs).split()]
        return sorted(set(pids))


class CgroupTree:
    """This service's sandbox cgroups: created at start, swept of a dead predecessor's, removed at stop."""

    def __init__(self, version: int, bases: dict[str, Path]) -> None:
        self.version = version
        self.bases = bases  # controller -> our cgroup directory (v2: one, under "")
        self.name = _own_dir_name()
        self.slots: list[SlotCgroup] = []

    @classmethod
    def detect(cls) -> CgroupTree:
        """The cgroups this process may create children in, v2 preferred; raises CgroupUnavailable."""
        mounts = _mounts()
        own = _own_paths()
        problems: list[str] = []
        for m in mounts:
            if m.version == 2 and set(V2_CONTROLLERS) <= m.controllers:
                base = _under(m, own.get("", "/"))
                if os.access(base, os.W_OK):
                    return cls(2, {"": base})
                problems.append(f"cgroup v2 at {base} is not writable by uid {os.geteuid()}")
        bases: dict[str, Path] = {}
        for controller in V1_CONTROLLERS:
            mount = next((m for m in mounts if m.version == 1 and controller in m.controllers), None)
            if mount is None:
                problems.append(f"no cgroup v1 hierarchy with the {controller} controller is mounted")
                continue
            base = _under(mount, own.get(controller, "/"))
            if not base.is_dir():
                problems.append(f"{base} does not exist (the cgroup filesystem is not visible here)")
                continue
            if not os.access(base, os.W_OK):
                problems.append(f"{base} is not writable by uid {os.geteuid()}")
                continue
            bases[controller] = base
        if len(bases) == len(V1_CONTROLLERS):
            return cls(1, bases)
        v2 = [m for m in mounts if m.version == 2]
        if v2 and not problems:
            problems.append(f"cgroup v2 at {v2[0].point} lacks the memory/pids controllers")
        raise CgroupUnavailable(
            "whole-run limits need cgroups with memory, pids and CPU accounting: "
            + "; ".join(problems or ["none found"])
        )

    def _top(self, controller: str) -> Path:
        return self.bases[controller] / self.name

    def sweep_stale(self) -> list[str]:
        """Remove the sandbox cgroups of services that are gone (and kill what is left in them)."""
        swept = []
        for base in dict.fromkeys(self.bases.values()):
            with contextlib.suppress(FileNotFoundError):
                for entry in os.scandir(base):
                    match = _OWN_DIR.match(entry.name)
                    if not match or not entry.is_dir(follow_symlinks=False) or entry.name == self.name:
                        continue
                    pid, started = int(match[1]), int(match[2])
                    if _start_time(pid) == started:
                        continue  # its service is alive (another instance on this host)
                    _remove_tree(Path(entry.path))
                    swept.append(entry.path)
        return swept

    def create(self, slots: int) -> list[SlotCgroup]:
        if self.version == 2:
            self._enable_v2_controllers()
        for i in range(slots):
            dirs = {}
            for controller in self.bases:
                d = self._top(controller) / f"slot-{i}"
                d.mkdir(parents=True, exist_ok=True)
                dirs[controller] = d
            self.slots.append(SlotCgroup(self.version, dirs))
        if self.version == 2:
            for slot in self.slots:
                with contextlib.suppress(OSError):  # no swap for runs (may be absent)
                    _write(slot.dirs[""] / "memory.swap.max", "0")
        return self.slots

    def _enable_v2_controllers(self) -> None:
        """cgroup v2 forbids processes in a cgroup that hands controllers to its children: move
        this service into a leaf of its own first, then delegate memory and pids downwards."""
        base = self.bases[""]
        leaf = base / f"{self.name}-service"
        wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS)
        try:
            if str(os.getpid()) in _read(base / "cgroup.procs").split():
                leaf.mkdir(exist_ok=True)
                _write(leaf / "cgroup.procs", str(os.getpid()))
            _write(base / "cgroup.subtree_control", wanted)
            top = self._top("")
            top.mkdir(exist_ok=True)
            _write(top / "cgroup.subtree_control", wanted)
        except OSError as exc:
            others = _read(base / "cgroup.procs").split()
            raise CgroupUnavailable(
                f"cannot delegate the memory and pids controllers below {base} ({exc.strerror}); other processes in "
                f"it: {', '.join(others) or 'none'}. Run the scoring service in a cgroup of its own (systemd "
                f"Delegate=yes, or a container with its own cgroup namespace)"
            ) from exc

    def remove(self) -> None:
        for controller in self.bases:
            with contextlib.suppress(OSError):
                _remove_tree(self._top(controller))
        if self.version == 2:
            with contextlib.suppress(OSError):
                leaf = self.bases[""] / f"{self.name}-service"
                if leaf.exists():
                    _write(self.bases[""] / "cgroup.procs", str(os.getpid()))
                    os.rmdir(leaf)
        self.slots = []
