"""Tiny launcher that runs ONE candidate program under resource limits.

Run as ``python -I -S _launcher.py <report_fd> <control_fd> <config-json>`` by
:mod:`vibe.services.scoring.sandbox` (which has already put this process in its own session, with an
empty environment and the run's temp dir as cwd, inside bubblewrap when it can).  It:

1. becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``) so every orphaned descendant of the
   candidate -- even one that called ``setsid()`` to leave the process group -- is re-parented to
   us and can be killed;
2. forks; the child applies the rlimits, drops to the unprivileged ``uid`` of the config when the
   launcher runs as root (so RLIMIT_NPROC applies and the candidate cannot signal us), and
   ``execve``s the candidate with the inherited stdin/stdout/stderr; the child gets its own
   process group (pgid = its pid), so the candidate and its ordinary children die as one group;
3. enforces the wall-clock limit with an interval timer (SIGKILL to the candidate);
4. ``os.wait4``s the candidate (exact ru_utime + ru_stime and ru_maxrss, which asyncio's child
   watchers throw away), then SIGKILLs and reaps every remaining descendant;
5. kills the candidate's group as soon as anything arrives on ``control_fd`` (the parent's
   "output limit reached"), so even then the exact rusage is reported;
6. writes one JSON line with the exit status, signal, CPU/wall time and peak RSS to
   ``report_fd``.

Only the standard library is used, and nothing from this package is imported (the launcher runs
with ``-I``, so the project is not on ``sys.path``).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except Exception:  # pragma: no cover - non-Linux
        return False


def _children() -> list[int]:
    pids: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/children") as fh:
                    pids.extend(int(p) for p in fh.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return pids


def _reap_everything(candidate_pid: int) -> None:
    """SIGKILL the candidate's group and every descendant re-parented to us; reap them all."""
    for _ in range(10_000):
        try:
            os.killpg(candidate_pid, signal.SIGKILL)
        except OSError:
            pass
        for pid in _children():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except InterruptedError:  # pragma: no cover
            pass


def _set_limits(cfg: dict) -> None:
    def lim(res: int, soft: int, hard: int | None = None) -> None:
        try:
            resource.setrlimit(res, (soft, soft if hard is None else hard))
        except (ValueError, OSError):
            pass

    cpu = int(cfg["cpu_s"])
    lim(resource.RLIMIT_CPU, cpu, cpu + 1)
    lim(resource.RLIMIT_AS, int(cfg["as_bytes"]))
    lim(resource.RLIMIT_FSIZE, int(cfg["fsize_bytes"]))
    lim(resource.RLIMIT_CORE, 0)
    # RLIMIT_NPROC is ignored for uid 0 (kernel: INIT_USER is exempt), hence the uid drop below.
    # Under bubblewrap the run has its own user namespace, so the count is per run.
    lim(resource.RLIMIT_NPROC, int(cfg["nproc"]))


def _drop_privileges(uid: int | None) -> None:
    if uid is None or os.geteuid() != 0:
        return
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _kill_on_request(control_fd: int, candidate_pid: int) -> None:
    """Thread: the parent writes to (or closes) the control pipe to stop the candidate early."""
    try:
        os.read(control_fd, 1)
    except OSError:
        pass
    try:
        os.killpg(candidate_pid, signal.SIGKILL)
    except OSError:
        pass


def main() -> int:
    report_fd, control_fd = int(sys.argv[1]), int(sys.argv[2])
    cfg = json.loads(sys.argv[3])
    # The candidate must get neither pipe.
    os.set_inheritable(report_fd, False)
    os.set_inheritable(control_fd, False)
    report = os.fdopen(report_fd, "w", buffering=1)
    subreaper = _become_subreaper()

    argv: list[str] = cfg["argv"]
    env: dict[str, str] = cfg["env"]
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # candidate
        try:
            os.setpgid(0, 0)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            _set_limits(cfg)
            _drop_privileges(cfg.get("uid"))
            os.execve(argv[0], argv, env)
        except BaseException as exc:  # exec failed
            try:
                os.write(2, f"sandbox: cannot start program: {exc}\n".encode())
            finally:
                os._exit(127)

    try:
        os.setpgid(pid, pid)  # also here, so the group exists before anyone signals it
    except OSError:
        pass
    threading.Thread(target=_kill_on_request, args=(control_fd, pid), daemon=True).start()

    timed_out = False

    def on_alarm(signum, frame):
        nonlocal timed_out
        timed_out = True
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, float(cfg["wall_s"]))
    while True:
        try:
            _, status, ru = os.wait4(pid, 0)
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
    wall = time.monotonic() - start
    signal.setitimer(signal.ITIMER_REAL, 0)

    # Kill whatever the candidate left behind: its process group and re-parented orphans.
    _reap_everything(pid)

    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    report.write(
        json.dumps(
            {
                "exit_code": exit_code,
                "signal": sig,
                "cpu_s": ru.ru_utime + ru.ru_stime,
                "wall_s": wall,
                "maxrss_kb": ru.ru_maxrss,
                "timed_out": timed_out,
                "subreaper": subreaper,
            }
        )
        + "\n"
    )
    report.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
