"""What the fault tests share: a client that retries what the API says is retryable (and
fails at once on anything else, UNKNOWN above all), services run as their own processes
so that they can be SIGKILLed, and the check that after a fault nothing was lost, nothing
doubled, and every report is complete."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc

from tests.support.stack import REFERENCE, Candidate, Stack
from vibe.platform.healthcheck import wait_serving
from vibe_api.gateway.v1 import gateway_pb2
from vibe_dev.stack import free_port

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
# What a client may retry: a store or backend briefly down, a concurrent attempt, a
# guard that ran out of time. Anything else during a fault is a bug of ours.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED})


class Ledger:
    """Every error a retrying client saw, by status code."""

    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()

    async def until_done(self, op: Callable[[], Awaitable[T]], budget_s: float, pause_s: float = 0.2) -> T:
        """`op()` until it succeeds, retrying RETRYABLE errors within `budget_s`; any
        other error fails the test at once."""
        deadline = time.monotonic() + budget_s
        while True:
            try:
                return await op()
            except grpc.aio.AioRpcError as exc:
                self.codes[exc.code().name] += 1
                failure = f"{exc.code().name} {exc.details()!r}"
                if exc.code() not in RETRYABLE:
                    raise AssertionError(f"not retryable: {failure}") from exc
                if time.monotonic() >= deadline:
                    raise AssertionError(f"still failing after {budget_s}s: {failure}") from exc
            await asyncio.sleep(pause_s)

    def only_retryable(self) -> None:
        print(f"errors the client retried: {dict(self.codes)}")  # shown with -s / on failure
        assert set(self.codes) <= {c.name for c in RETRYABLE}, dict(self.codes)


@contextlib.asynccontextmanager
async def service_process(
    stack: Stack, module: str, addr_var: str, addr: str = "", **overrides: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m <module>` on the stack's database and Redis prefix, serving on `addr`
    (a free port when empty); terminated on the way out unless a test killed it."""
    addr = addr or f"127.0.0.1:{free_port()}"
    env = {**os.environ, **stack.env, addr_var: addr, "VIBE_LOG_LEVEL": "error", **overrides}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, env=env, cwd=ROOT, stdout=subprocess.DEVNULL
    )
    try:
        await wait_serving(addr, 60)
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out after {timeout_s}s waiting until {what}"
        await asyncio.sleep(0.02)


async def assert_intact(stack: Stack, sent: dict[str, list[str]], graded: bool = True) -> None:
    """Each session holds exactly the messages sent to it, in order, once each, turns
    1..N with one reply each; and when `graded`, one submission whose stored report is
    complete (every turn evaluated once, the holistic judgement, the code's result, a
    grade)."""
    db = await stack.db()
    try:
        for session_id, messages in sent.items():
            rows = await db.fetch(
                "SELECT turn, role, content FROM messages WHERE session_id = $1 ORDER BY turn, role DESC", session_id
            )
            users = [r["content"] for r in rows if r["role"] == "user"]
            assert users == messages, f"session {session_id}: stored {users}, sent {messages}"
            assert [(r["turn"], r["role"]) for r in rows] == [
                (t, role) for t in range(1, len(messages) + 1) for role in ("user", "assistant")
            ]
            assert await db.fetchval("SELECT turn_count FROM sessions WHERE session_id = $1", session_id) == len(
                messages
            )
            if not graded:
                continue
            [submission] = await db.fetch("SELECT report FROM submissions WHERE session_id = $1", session_id)
            assert submission["report"] is not None, f"session {session_id} has no stored report"
            report = json.loads(submission["report"])
            assert [t["turn"] for t in report["turns"]] == list(range(1, len(messages) + 1))
            assert report["scores"]["grade"] and "score" in report["holistic"] and report["code"]["total"] > 0
            evaluations = await db.fetch(
                "SELECT turn FROM prompt_evaluations WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL'"
                " ORDER BY turn",
                session_id,
            )
            assert [r["turn"] for r in evaluations] == list(range(1, len(messages) + 1))
            status = await db.fetchval("SELECT status FROM sessions WHERE session_id = $1", session_id)
            assert status == "graded"
    finally:
        await db.close()


def completed_turn(events: list[gateway_pb2.ChatEvent]) -> int:
    """The turn of a chat's `completed` event (the chat's last)."""
    assert events and events[-1].WhichOneof("event") == "completed", events[-1:]
    return events[-1].completed.turn


def reported(events: list[gateway_pb2.SubmitEvent]) -> gateway_pb2.Report:
    assert events and events[-1].WhichOneof("event") == "report", events[-1:]
    return events[-1].report


async def resend(
    ledger: Ledger, candidate: Candidate, message: str, key: str, budget_s: float, pause_s: float = 0.2
) -> list[gateway_pb2.ChatEvent]:
    """The same chat request (same key) until it is answered."""
    return await ledger.until_done(lambda: candidate.chat(message, key), budget_s, pause_s)


async def chat_turn(ledger: Ledger, candidate: Candidate, message: str, budget_s: float = 30) -> int:
    """`message` as the session's next turn, retried with one key until it is stored."""
    key = os.urandom(8).hex()
    return completed_turn(await ledger.until_done(lambda: candidate.chat(message, key), budget_s))


async def submit(ledger: Ledger, candidate: Candidate, budget_s: float = 60) -> gateway_pb2.Report:
    key = os.urandom(8).hex()
    return reported(await ledger.until_done(lambda: candidate.submit(REFERENCE, key=key), budget_s))
