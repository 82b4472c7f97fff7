"""Nothing doubled: idempotent chat and submit (a retry replays the stored turn or report),
the dedup window without a key, leases that free themselves within their TTL, fencing
tokens that stay monotonic, a stale holder's write refused, and start-up refusing lease
and guard timings that contradict each other."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import asyncpg
import grpc
import pytest

from tests.support.stack import REFERENCE, Stack, StartStack, new_candidate, reply_text
from tests.test_http_api import read_sse
from vibe.platform.config import ConfigError, GatewaySettings
from vibe.platform.hot_state import Keys
from vibe.platform.leases import Lease
from vibe.services.evaluator.store import EvaluationStore, TurnLog
from vibe.services.gateway.store import GatewayStore

QUESTION = "Which data structure helps me avoid checking every pair?"


async def message_rows(stack: Stack, session_id: str) -> list[tuple[int, str, str]]:
    db = await stack.db()
    try:
        rows = await db.fetch(
            "SELECT turn, role, content FROM messages WHERE session_id = $1 ORDER BY turn, role DESC", session_id
        )
    finally:
        await db.close()
    return [(r["turn"], r["role"], r["content"]) for r in rows]


async def test_a_retry_with_the_same_key_replays_the_stored_turn(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    key = str(uuid.uuid4())
    first = await candidate.chat(QUESTION, key)
    again = await candidate.chat(QUESTION, key)
    assert [e.WhichOneof("event") for e in again] == ["turn_started", "delta", "completed"]
    assert again[-1].completed.turn == first[-1].completed.turn == 1
    assert reply_text(again) == reply_text(first) == again[-1].completed.assistant_message.content
    assert again[-1].completed.user_message == first[-1].completed.user_message
    assert [(t, r) for t, r, _ in await message_rows(stack, candidate.session_id)] == [(1, "user"), (1, "assistant")]
    # The same key with another message is a client bug, said plainly; nothing is stored.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await candidate.chat("Something else entirely", key)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "another message" in (err.value.details() or "")
    # A new key is a new turn; the old key still replays turn 1, also after the submit.
    assert (await candidate.chat("What about duplicates?", str(uuid.uuid4())))[-1].completed.turn == 2
    assert (await candidate.submit(REFERENCE))[-1].WhichOneof("event") == "report"
    assert (await candidate.chat(QUESTION, key))[-1].completed.turn == 1
    assert len(await message_rows(stack, candidate.session_id)) == 4


async def test_concurrent_attempts_with_one_key_store_one_turn(start_stack: StartStack) -> None:
    async with start_stack(VIBE_OFFLINE_LATENCY_MS="800", EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        key = str(uuid.uuid4())
        results = await asyncio.gather(*(candidate.chat(QUESTION, key) for _ in range(3)))
        assert {r[-1].completed.turn for r in results} == {1}
        assert {reply_text(r) for r in results} == {results[0][-1].completed.assistant_message.content}
        assert len(await message_rows(stack, candidate.session_id)) == 2


async def test_without_a_key_the_same_message_within_the_window_is_the_same_turn(start_stack: StartStack) -> None:
    async with start_stack(EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        turns = [(await candidate.chat(QUESTION))[-1].completed.turn for _ in range(2)]
        assert turns == [1, 1]
        assert (await candidate.chat("Another question"))[-1].completed.turn == 2
        assert (await candidate.chat(QUESTION))[-1].completed.turn == 3, "only the last turn is a retry"
    async with start_stack(EVALUATOR_WORKERS="0", VIBE_CHAT_DEDUP_WINDOW_S="0") as stack:
        candidate = await new_candidate(stack)
        turns = [(await candidate.chat(QUESTION))[-1].completed.turn for _ in range(2)]
        assert turns == [1, 2], "with the window off, a repeated message is a new turn"


async def test_http_idempotency_key_header(stack: Stack) -> None:
    base = f"http://{stack.addrs.http}"
    async with aiohttp.ClientSession() as http:
        key = {"X-API-Key": stack.env["VIBE_API_KEY"]}
        async with http.post(
            base + "/api/sessions", json={"candidate_id": "web", "problem_id": "two-sum"}, headers=key
        ) as r:
            created = await r.json()
        sid = created["session"]["session_id"]
        headers = {"Authorization": f"Bearer {created['session_token']}", "Idempotency-Key": "retry-1"}
        replies = []
        for _ in range(2):
            async with http.post(f"{base}/api/sessions/{sid}/chat", json={"message": QUESTION}, headers=headers) as r:
                replies.append(await read_sse(r))
        assert [events[-1][1]["turn"] for events in replies] == [1, 1]
        bad = {**headers, "Idempotency-Key": "has spaces"}
        async with http.post(f"{base}/api/sessions/{sid}/chat", json={"message": QUESTION}, headers=bad) as r:
            assert r.status == 400 and "idempotency key" in (await r.json())["error"]["message"]
        # Two keys: the first was taken, so a proxy that reads the last one retried another request.
        two = [*headers.items(), ("Idempotency-Key", "retry-2")]
        async with http.post(f"{base}/api/sessions/{sid}/chat", json={"message": "Other?"}, headers=two) as r:
            assert r.status == 400 and "more than one Idempotency-Key" in (await r.json())["error"]["message"]
        reports = []
        for _ in range(2):
            body = {"language": "python", "code": REFERENCE}
            async with http.post(f"{base}/api/sessions/{sid}/submit", json=body, headers=headers) as r:
                reports.append((await read_sse(r))[-1])
        assert reports[0] == reports[1] and reports[0][0] == "report"
    assert len(await message_rows(stack, sid)) == 2


async def test_a_lease_frees_itself_when_its_holder_stops_and_holds_while_it_beats(stack: Stack) -> None:
    redis = stack.redis()
    try:
        key = stack.key(f"lock:test:{uuid.uuid4()}")
        dead = Lease(redis, key, ttl_s=0.5)
        assert await dead.try_acquire()  # and never renews: its holder died
        other = Lease(redis, key, ttl_s=0.5)
        assert not await other.try_acquire()
        started = time.monotonic()
        assert await other.acquire(timeout_s=5)
        assert time.monotonic() - started < 2.0, "free within about one TTL"
        other.start_heartbeat()
        await asyncio.sleep(1.5)  # three TTLs: the heartbeat kept it
        assert not await Lease(redis, key, ttl_s=0.5).try_acquire()
        await other.release()
        assert await Lease(redis, key, ttl_s=0.5).try_acquire()
    finally:
        await redis.aclose()


async def test_fencing_tokens_grow_even_after_redis_lost_its_counters(stack: Stack) -> None:
    redis = stack.redis()
    try:
        key = stack.key(f"lock:test:{uuid.uuid4()}")
        tokens = []
        for _ in range(3):
            lease = Lease(redis, key, ttl_s=5)
            assert await lease.try_acquire()
            tokens.append(lease.fence)
            await lease.release()
        await redis.delete(key + ":fence")  # as after a restart without persistence
        lease = Lease(redis, key, ttl_s=5)
        assert await lease.try_acquire()
        tokens.append(lease.fence)
        assert tokens == sorted(set(tokens)), tokens
    finally:
        await redis.aclose()


async def test_a_stale_holder_never_overwrites_a_newer_result(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    await candidate.chat(QUESTION)
    evaluation = await evaluation_of(stack, candidate.session_id)
    pool = await asyncpg.create_pool(
        stack.env["DATABASE_URL"], server_settings={"search_path": stack.env["VIBE_DB_SCHEMA"]}, min_size=1, max_size=2
    )
    redis = stack.redis()
    try:
        keys = Keys(stack.env["VIBE_REDIS_PREFIX"])
        evaluations = EvaluationStore(pool, redis, keys, 3600)
        newer: TurnLog = {**evaluation, "final_reasoning_marker": "newer"}  # type: ignore[typeddict-unknown-key]
        stale: TurnLog = {**evaluation, "final_reasoning_marker": "stale"}  # type: ignore[typeddict-unknown-key]
        assert (await evaluations.save_turn_log(newer, fence=2**60))[1]
        stored, ours = await evaluations.save_turn_log(stale, fence=2**60 - 1)
        assert not ours and stored.get("final_reasoning_marker") == "newer"
        current = await evaluations.get_turn_log(candidate.session_id, 1)
        assert current is not None and current.get("final_reasoning_marker") == "newer"

        reports = GatewayStore(pool, redis, keys)
        session = await reports.freeze(
            candidate.session_id, "python", REFERENCE, chat_fence=2**60, submit_fence=2**60, idempotency_key=""
        )
        assert session.status == "submitted"
        assert not await reports.save_report(candidate.session_id, {"who": "stale"}, fence=2**60 - 1)
        assert await reports.save_report(candidate.session_id, {"who": "newer"}, fence=2**60)
        assert not await reports.save_report(candidate.session_id, {"who": "again"}, fence=2**61), "stored once"
        assert await reports.report(candidate.session_id) == {"who": "newer"}
    finally:
        await redis.aclose()
        await pool.close()


async def evaluation_of(stack: Stack, session_id: str) -> TurnLog:
    """Turn 1's evaluation, waiting for the background worker."""
    db = await stack.db()
    try:
        for _ in range(500):
            details = await db.fetchval(
                "SELECT details FROM prompt_evaluations WHERE session_id = $1 AND turn = 1", session_id
            )
            if details is not None:
                import json

                return json.loads(details)  # type: ignore[no-any-return]
            await asyncio.sleep(0.02)
    finally:
        await db.close()
    raise AssertionError("turn 1 was never evaluated")


def test_start_up_refuses_lease_and_guard_timings_that_contradict() -> None:
    with pytest.raises(ConfigError) as err:
        GatewaySettings.from_env({"VIBE_SUBMIT_GUARD_TIMEOUT_S": "10", "VIBE_LEASE_TTL_S": "5"})
    message = str(err.value)
    assert "VIBE_SUBMIT_GUARD_TIMEOUT_S=10" in message and "VIBE_LEASE_TTL_S=5" in message
    assert "at least 26" in message
    with pytest.raises(ConfigError) as err:
        GatewaySettings.from_env({"VIBE_CHAT_LOCK_TTL_S": "300"})
    assert "VIBE_CHAT_LOCK_TTL_S is no longer read" in str(err.value)
    secret = {"VIBE_SERVICE_SECRET": "x" * 32}
    settings = GatewaySettings.from_env({"VIBE_LEASE_TTL_S": "2", "VIBE_LLM_CALL_BUDGET_S": "5", **secret})
    assert settings.common.lease_ttl_s == 2 and settings.submit_guard_timeout_s == 60
