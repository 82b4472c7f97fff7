"""Which isolation a run gets, said once: the modes, what each one is and is not, and where the
compiled sandbox helper lives.

The operator chooses the mode (``SCORING_ISOLATION``); the service never picks a weaker one by
itself.  When the chosen mode cannot run here, the service refuses to start and says exactly why
(see :meth:`vibe.services.scoring.sandbox.Sandbox.start`).
"""

from __future__ import annotations

import enum
import os
import shutil
import stat
import sys
from pathlib import Path

HELPER_NAME = "vibe-box"
HELPER_SOURCE = Path(__file__).with_name("vibe-box.c")


class IsolationMode(enum.StrEnum):
    NAMESPACES = "namespaces"
    RLIMITS = "rlimits"

    @classmethod
    def parse(cls, value: str) -> IsolationMode:
        """The setting's value; ``bubblewrap`` (the isolation's earlier name) means ``namespaces``."""
        name = value.strip().lower()
        if name == "bubblewrap":
            return cls.NAMESPACES
        return cls(name)


DESCRIPTIONS = {
    IsolationMode.NAMESPACES: (
        "namespaces: each run has its own PID, mount, network (none at all, not even loopback), IPC, UTS and "
        "cgroup namespaces; a read-only root with /usr and nothing else of the host; /box (its directory) and "
        "/dev/shm as tmpfs bounded in bytes and inodes; an unprivileged uid per worker slot, no capabilities, "
        "no_new_privs, a seccomp filter (no ptrace, process_vm_*, pidfd_getfd, namespaces, mount, bpf, perf, "
        "io_uring, sockets but Unix, IP and netlink); whole-run limits in a cgroup (memory incl. tmpfs/shm, processes+threads, CPU time of every "
        "process); wall-time and output caps; measured and reported by root processes outside the program's "
        "reach. Not a VM: it shares the host kernel."
    ),
    IsolationMode.RLIMITS: (
        "rlimits (development only): own session/process group, a fresh host directory as cwd, empty "
        "environment, rlimits on CPU time, address space, file size and processes per process, the same seccomp "
        "filter, an unprivileged uid when the service is root, wall-time and output caps. NOT a security "
        "boundary: no network or filesystem isolation, no whole-run memory or disk bound, and when the service "
        "is not root the program runs as the service's own user."
    ),
}


class HelperProblem(RuntimeError):
    """The compiled helper is missing or not trustworthy (the message says what to do)."""


def find_helper(configured: str = "") -> Path:
    """The ``vibe-box`` binary: the configured path, else next to this Python (``make setup``
    builds it into the virtualenv's ``bin``), else on ``PATH``.  It runs as root, so it must not
    be writable by anybody else."""
    candidates = [Path(configured)] if configured else [Path(sys.prefix, "bin", HELPER_NAME)]
    if not configured and (on_path := shutil.which(HELPER_NAME)):
        candidates.append(Path(on_path))
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        where = " or ".join(str(c) for c in candidates)
        raise HelperProblem(
            f"the sandbox helper {HELPER_NAME} is not built (looked for {where}); run `make setup`, or build it with "
            f"`cc -O2 -static -o <prefix>/bin/{HELPER_NAME} {HELPER_SOURCE}` and set SCORING_SANDBOX_HELPER"
        )
    info = found.stat()
    if os.geteuid() == 0 and (info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        raise HelperProblem(
            f"{found} is owned by uid {info.st_uid} with mode {stat.filemode(info.st_mode)}; the sandbox helper runs "
            f"as root, so it must be owned by root and writable by nobody else"
        )
    if not os.access(found, os.X_OK):
        raise HelperProblem(f"{found} is not executable")
    return found
