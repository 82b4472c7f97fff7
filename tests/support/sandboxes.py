"""Helpers for the sandbox tests: limits that keep hostile programs fast, a run that checks
nothing of the run's uids survives it, and the verdict the judge would give."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
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
