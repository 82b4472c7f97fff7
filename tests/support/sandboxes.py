"""Helpers for the sandbox tests: limits that keep hostile programs fast, a run that checks
nothing of the run's uids survives it, and the verdict the judge would give."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from vibe.services.scoring.isolation import IsolationMode
from vibe.services.scoring.judge import Verdict, failure
from vibe.services.scoring.languages import language
from vibe.services.scoring.programs import Program, build, execute
from vibe.services.scoring.sandbox import RunLimits, RunResult, Sandbox

FAST = RunLimits(cpu_time_s=1, wall_time_s=2, memory_mb=64, output_bytes=64 * 1024)
#: Slack on top of a limit for the sandbox to notice, kill and clean up.
MARGIN_S = 1.5
#: The runs' uids: a range of this test process's own, so that test runs going on side by side
#: (several checkouts on one machine) never see each other's processes as left behind.
UID_BASE = 61000 + (os.getpid() % 2000) * 4
SLOTS = 2


def _procs_of_uids(uids: range) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid in uids:
                    found.add(int(entry))
            except OSError:
                continue
    return found


def _wait_no_new_procs(uids: range, before: set[int], timeout: float = 1.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := _procs_of_uids(uids) - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def existing(*paths: str) -> list[str]:
    """Which of these host paths exist (tests assert a run wrote nothing outside)."""
    return [p for p in paths if Path(p).exists()]


def run_dirs() -> set[Path]:
    """The rlimits mode's host run directories in TMPDIR (removed after each run)."""
    return set(Path(tempfile.gettempdir()).glob("vibe-run-*"))


def _procs_with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def wait_gone(marker: str, timeout: float = 2.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _procs_with_marker(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


async def started(mode: IsolationMode) -> AsyncIterator[Sandbox]:
    sandbox = Sandbox(SLOTS, mode, uid_base=UID_BASE)
    await sandbox.start()
    try:
        yield sandbox
    finally:
        await sandbox.close()


async def run(
    sandbox: Sandbox, lang: str, source: str, limits: RunLimits = FAST, stdin: bytes = b""
) -> tuple[RunResult, float]:
    program = await build(sandbox, language(lang), source)
    assert isinstance(program, Program), program
    uids = range(UID_BASE, UID_BASE + SLOTS)
    before = _procs_of_uids(uids)
    start = time.monotonic()
    result = await execute(sandbox, program, stdin, limits)
    elapsed = time.monotonic() - start
    left = await asyncio.to_thread(_wait_no_new_procs, uids, before)  # nothing of the run's uids survives it
    assert not left, f"processes left behind: {left}"
    return result, elapsed


def verdict(result: RunResult, lang: str, limits: RunLimits = FAST) -> Verdict | None:
    found = failure(result, language(lang), limits)
    return None if found is None else found[0]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive and not a zombie (its exit and its CPU time are accounted once it is a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] not in (b"Z", b"X")


def _stopped(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] in (b"T", b"t")


class LateKeeper:
    """The keeper of a namespaces-mode run at its worst on a loaded machine: descheduled from
    before the program starts until the program has ended (or for ``hold_s`` of the program's
    life).  Done for real, with SIGSTOP and SIGCONT on the keeper process of the run.

    :meth:`watch` runs in a thread next to the run; it returns None once it has held the keeper
    that way, else why not (the run was too quick to catch: the caller runs it again)."""

    def __init__(self, sandbox: Sandbox) -> None:
        # The slots' servers and the keepers already there (a run's teardown): not this run's.
        self.servers = [s.server.proc.pid for s in sandbox._slots if s.server.proc is not None]
        self.before = {k for s in self.servers for k in _children(s)}

    def _new_run(self) -> tuple[int, int] | None:
        """A keeper of a run that started since, and the run's init (the proxy), if any."""
        for keeper in (k for s in self.servers for k in _children(s) if k not in self.before):
            if (kids := _children(keeper)) and _running(kids[0]):
                return keeper, kids[0]
        return None

    def watch(self, hold_s: float | None = None, timeout_s: float = 30.0) -> str | None:
        deadline = time.monotonic() + timeout_s
        while (found := self._new_run()) is None:
            if time.monotonic() > deadline:
                return "no run started"
            time.sleep(0.0002)
        keeper, proxy = found
        os.kill(keeper, signal.SIGSTOP)
        try:
            while not _stopped(keeper):
                if time.monotonic() > deadline or not _running(keeper):
                    return "the keeper did not stop"
                time.sleep(0.0002)
            # The proxy reports the start only once the program runs (its only child): with no
            # child yet, the keeper cannot have seen that report before it stopped.
            if _children(proxy):
                return "the program had started before the keeper stopped"
            program, started = None, 0.0
            while time.monotonic() < deadline:
                if program is None and (kids := _children(proxy)):
                    program, started = kids[0], time.monotonic()
                if program is not None and not _running(program):
                    return None
                if program is not None and hold_s is not None and time.monotonic() - started >= hold_s:
                    return None
                if program is None and not _running(proxy):
                    return "the program came and went unseen"
                time.sleep(0.0005)
            return "the program did not end"
        finally:
            os.kill(keeper, signal.SIGCONT)


async def run_with_late_keeper(
    sandbox: Sandbox, program: Program, limits: RunLimits = FAST, hold_s: float | None = None
) -> tuple[RunResult, float]:
    """``program`` run while its keeper is held (see :class:`LateKeeper`): a few attempts, as the
    holding needs the keeper caught between its run's start and the program's, then a failure."""
    # Input files the run's init writes into /box before it starts the program: time to catch
    # the keeper in, on a busy machine too.
    program = replace(program, files={**program.files, "padding": bytes(16 << 20)})
    why = None
    for _ in range(5):
        late = LateKeeper(sandbox)
        watcher = asyncio.create_task(asyncio.to_thread(late.watch, hold_s))
        start = time.monotonic()
        result = await execute(sandbox, program, b"", limits)
        elapsed = time.monotonic() - start
        why = await watcher
        if why is None:
            return result, elapsed
    raise AssertionError(f"could not hold the keeper of a run: {why}")
