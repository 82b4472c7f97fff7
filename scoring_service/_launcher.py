"""Tiny launcher that runs ONE candidate program under resource limits.

Run as ``python -I _launcher.py <report_fd> <config-json>`` by :mod:`scoring_service.sandbox`
(which has already put this process in its own session / process group, with an empty
environment and the run's temp dir as cwd).  It:

1. becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``) so every orphaned descendant of the
   candidate -- even one that called ``setsid()`` to leave the process group -- is re-parented to
   us and can be killed;
2. forks; the child applies the rlimits and ``execve``s the candidate with the inherited
   stdin/stdout/stderr; the child gets its own process group (pgid = its pid) inside the
   launcher's session, so the candidate and its ordinary children can be killed as one group;
3. enforces the wall-clock limit with an interval timer (SIGKILL to the candidate);
4. ``os.wait4``s the candidate (exact ru_utime + ru_stime and ru_maxrss, which asyncio's child
   watchers throw away), then SIGKILLs and reaps every remaining descendant;
5. writes ``{"pid": ...}`` right after the fork and one final JSON line with the exit status,
   signal, CPU/wall time and peak RSS to ``report_fd``.

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
    # NOTE: RLIMIT_NPROC counts processes of the real uid and is NOT enforced for root
    # (CAP_SYS_RESOURCE / CAP_SYS_ADMIN); when the service runs as root a fork bomb is only
    # stopped by the wall-time limit + group kill.  The bubblewrap sandbox will fix this.
    lim(resource.RLIMIT_NPROC, int(cfg["nproc"]))


def main() -> int:
    report_fd = int(sys.argv[1])
    cfg = json.loads(sys.argv[2])
    os.set_inheritable(report_fd, False)  # the candidate must not get the report pipe
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
    report.write(json.dumps({"pid": pid}) + "\n")

    timed_out = False

    def on_alarm(signum, frame):  # noqa: ARG001
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
