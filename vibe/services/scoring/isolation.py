"""Which isolation a run gets, and the bubblewrap command line that provides it.

Two modes:

* ``bubblewrap``: the launcher and the candidate run inside ``bwrap`` with fresh user, PID,
  network, IPC, UTS and cgroup namespaces; the filesystem is an empty read-only root with
  ``/usr`` (and the ``/bin``, ``/lib*`` links), ``/etc/ld.so.cache`` and ``/etc/alternatives``
  read-only, a private ``/proc`` and minimal ``/dev``, and the run's temp dir as the only
  writable place (``/box``).  The launcher is PID 1 of the namespace (``--as-pid-1``): the
  kernel drops signals the candidate sends it, and when it exits every process left in the
  namespace is killed.  (With bwrap's own init as PID 1 instead, bwrap exits without reaping
  that init, which leaves a zombie wherever the host's PID 1 does not reap orphans; measured.)  When the service is root, bwrap itself is started as the
  unprivileged ``SANDBOX_UID``: root is exempt from RLIMIT_NPROC even inside a user namespace
  (measured: a fork bomb is not stopped), an ordinary uid is not, and its count is per user
  namespace, i.e. per run.
* ``rlimits`` (fallback when bwrap cannot run): the launcher in its own session with rlimits,
  and as root the candidate drops to ``SANDBOX_UID``; no namespaces.
"""

from __future__ import annotations

import enum
import functools
import os
import shutil
import subprocess
from pathlib import Path

from vibe.services.scoring.languages import PYTHON

LAUNCHER = Path(__file__).with_name("_launcher.py")
#: Where the launcher and the run directory appear inside the sandbox.
LAUNCHER_IN_BOX = "/run/vibe/launcher.py"
BOX = "/box"
#: "nobody": owns nothing, so a run can read only what is world-readable under /usr.
SANDBOX_UID = 65534


class IsolationMode(enum.StrEnum):
    BUBBLEWRAP = "bubblewrap"
    RLIMITS = "rlimits"


DESCRIPTIONS = {
    IsolationMode.BUBBLEWRAP: (
        "bubblewrap: own user/PID/network/IPC/UTS namespaces (no network at all, not even "
        "loopback; only the run's own processes visible), read-only /usr and nothing else of the "
        "host filesystem, a private writable temp dir removed afterwards, empty environment, "
        "unprivileged uid, no capabilities; rlimits on CPU time, address space, processes, file "
        "size; wall-time and output caps; everything killed with the PID namespace at the end. "
        "Not a VM: it shares the host kernel, and disk use inside the temp dir is bounded only "
        "per file."
    ),
    IsolationMode.RLIMITS: (
        "rlimits fallback (bubblewrap unavailable): own session/process group, a fresh temp dir "
        "as cwd, empty environment, rlimits on CPU time, address space, file size and processes "
        "(the candidate runs as an unprivileged uid when the service is root), wall-time and "
        "output caps, process tree killed at the end. NOT a security boundary: no network or "
        "filesystem isolation (world-readable files and sockets are reachable)."
    ),
}


def sandbox_uid() -> int | None:
    """The uid runs use when the service is root (``None``: runs keep the service's uid)."""
    return SANDBOX_UID if os.geteuid() == 0 else None


def as_sandbox_user(command: list[str]) -> list[str]:
    """``command`` run as :data:`SANDBOX_UID` when we are root.

    Through ``setpriv`` rather than ``subprocess(user=...)``: switching uid in the forked child
    makes Python use fork() instead of vfork(), which runs gRPC's fork handlers in the child of
    a threaded server, and those crash it (measured: SIGSEGV before exec)."""
    uid = sandbox_uid()
    if uid is None:
        return command
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin") or "setpriv"
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *command]


def _system_dirs() -> list[str]:
    """``/bin``, ``/lib``... as on the host: symlinks into /usr (merged /usr) or read-only binds."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/", name)
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


def bwrap_argv(workdir: str, command: list[str]) -> list[str]:
    """The bwrap command line that runs ``command`` with ``workdir`` as ``/box``."""
    argv = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
        *_system_dirs(),
        "--ro-bind-try",
        "/etc/ld.so.cache",
        "/etc/ld.so.cache",
        "--ro-bind-try",
        "/etc/alternatives",
        "/etc/alternatives",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--ro-bind",
        str(LAUNCHER),
        LAUNCHER_IN_BOX,
        "--bind",
        workdir,
        BOX,
        "--chdir",
        BOX,
    ]
    if not PYTHON.startswith("/usr/"):  # no system python: mount the service's one
        prefix = str(Path(PYTHON).resolve().parents[1])
        argv += ["--ro-bind", prefix, prefix]
    # Last: the root tmpfs bwrap builds would otherwise be writable (measured).
    argv += ["--remount-ro", "/", "--", *command]
    return argv


@functools.cache
def detect_mode() -> IsolationMode:
    """``bubblewrap`` when a trivial sandboxed command succeeds here, else ``rlimits``.

    Blocking (one ~50 ms process), so call it once at start-up or via ``asyncio.to_thread``."""
    if shutil.which("bwrap") is None or (sandbox_uid() is not None and shutil.which("setpriv") is None):
        return IsolationMode.RLIMITS
    probe = Path("/tmp") if os.access("/tmp", os.W_OK) else Path.cwd()
    try:
        done = subprocess.run(
            as_sandbox_user(bwrap_argv(str(probe), [PYTHON, "-I", "-S", "-c", "pass"])),
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return IsolationMode.RLIMITS
    return IsolationMode.BUBBLEWRAP if done.returncode == 0 else IsolationMode.RLIMITS
