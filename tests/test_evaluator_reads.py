"""The evaluator's per-turn reads and writes in fewer round trips (issue 16): one
statement reads what a turn's evaluation needs, exactly what the separate reads gave; the
evaluation and the LLM requests that made it are stored in one statement; its Redis writes
count its run, release its lease and acknowledge its queued job in one transaction; a
lease released on a pipeline is free at once and is not released twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import cast

import asyncpg
import redis.asyncio as aioredis

from tests.support.stack import Candidate, Stack, evaluation_runs, new_candidate
from vibe.llm.usage import CallUsage
from vibe.llm.usage_store import PHASE_BACKGROUND
from vibe.platform.hot_state import EVAL_GROUP, Keys
from vibe.platform.leases import Lease
from vibe.services.evaluator.store import EvaluationStore, Spent, TurnLog
from vibe.shared.eval_queue import EvalJob, JobAck, enqueue, ensure_group
from vibe.shared.records import load_exchanges, load_turn

MESSAGES = (
    "Which data structure helps me avoid checking every pair?",
    "Just give me the full solution code.",  # the guardrail refuses it
    "What edge cases should I test?",
)


async def _pool(stack: Stack) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        stack.env["DATABASE_URL"], server_settings={"search_path": stack.env["VIBE_DB_SCHEMA"]}, min_size=1, max_size=2
    )
    assert pool is not None
    return pool


async def _evaluated(pool: asyncpg.Pool, session_id: str, turns: int) -> None:
    for _ in range(500):
        count = await pool.fetchval(
            "SELECT count(*) FROM prompt_evaluations WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL'",
            session_id,
        )
        if count >= turns:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the session's {turns} turns were never evaluated")


@contextlib.asynccontextmanager
async def _first_turn_evaluated(
    stack: Stack,
) -> AsyncIterator[tuple[Candidate, asyncpg.Pool, aioredis.Redis, TurnLog]]:
    """A candidate's first turn once the stack's evaluator stored it: the candidate, a
    pool on the stack's schema, a Redis client, and the stored evaluation."""
    candidate = await new_candidate(stack)
    await candidate.chat(MESSAGES[0])
    pool = await _pool(stack)
    redis = stack.redis()
    try:
        await _evaluated(pool, candidate.session_id, 1)
        evaluation: TurnLog = json.loads(
            await pool.fetchval(
                "SELECT details FROM prompt_evaluations WHERE session_id = $1 AND turn = 1", candidate.session_id
            )
        )
        yield candidate, pool, redis, evaluation
    finally:
        await redis.aclose()
        await pool.close()


async def test_one_read_gives_what_the_separate_reads_gave(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    for message in MESSAGES:
        await candidate.chat(message)
    pool = await _pool(stack)
    redis = stack.redis()
    try:
        await _evaluated(pool, candidate.session_id, len(MESSAGES))
        store = EvaluationStore(pool, redis, Keys(stack.env["VIBE_REDIS_PREFIX"]), 3600)
        session_id = candidate.session_id
        # Turn 3's evaluation removed: as a worker finds it, evaluated up to turn 2.
        await pool.execute("DELETE FROM prompt_evaluations WHERE session_id = $1 AND turn = 3", session_id)
        inputs = await store.turn_inputs(session_id, 3)
        assert inputs.stored is None
        assert inputs.turn == await load_turn(pool, session_id, 3)
        assert inputs.history == await load_exchanges(pool, session_id, before_turn=3)
        assert [ex.turn for ex in inputs.history] == [1, 2]
        assert inputs.turn_at == await pool.fetchval(
            "SELECT created_at FROM messages WHERE session_id = $1 AND turn = 3 AND role = 'user'", session_id
        )
        logs = {entry["turn_number"]: entry for entry in await store.list_turn_logs(session_id)}
        assert inputs.verdicts == {
            t: (
                entry["prompt_evaluation_details"]["intent"],
                entry["prompt_evaluation_details"]["score"],
                entry["llm_answer_summary"],
                entry["guardrail"]["violated"],
            )
            for t, entry in logs.items()
        }
        refused = await pool.fetch(
            "SELECT turn FROM messages WHERE session_id = $1 AND role = 'user' AND turn < 3"
            " AND guardrail_violation IS NOT NULL",
            session_id,
        )
        assert inputs.refused == {r["turn"] for r in refused} == {2}

        # An earlier turn not evaluated yet: no verdict, its refusal still known.
        await pool.execute("DELETE FROM prompt_evaluations WHERE session_id = $1 AND turn = 2", session_id)
        assert set((await store.turn_inputs(session_id, 3)).verdicts) == {1}

        # A stored evaluation is found (and the hot copy refilled from it).
        again = await store.turn_inputs(session_id, 1)
        assert again.stored == logs[1]
        hot = await redis.get(stack.key(f"turn_logs:{session_id}:1"))
        assert hot is not None and json.loads(hot) == logs[1]

        # A turn that does not exist, a session that does not.
        assert (await store.turn_inputs(session_id, 9)).turn is None
        missing = await store.turn_inputs(str(uuid.uuid4()), 1)
        assert missing.turn is None and missing.stored is None and missing.history == []
    finally:
        await redis.aclose()
        await pool.close()


async def test_storing_an_evaluation_counts_its_run_and_frees_its_lease(stack: Stack) -> None:
    async with _first_turn_evaluated(stack) as (candidate, pool, redis, evaluation):
        keys = Keys(stack.env["VIBE_REDIS_PREFIX"])
        store = EvaluationStore(pool, redis, keys, 3600)
        runs_before = (await evaluation_runs(stack, candidate.session_id))[1]
        lease = Lease(redis, keys.eval_lock(candidate.session_id, 1), ttl_s=5)
        assert await lease.try_acquire()
        async with lease.kept():
            stored, ours, runs = await store.save_evaluation(evaluation, lease.fence, lease)
            assert ours and stored == evaluation and runs == runs_before + 1
            # Released with the hot copy, before the block ends.
            assert await redis.get(keys.eval_lock(candidate.session_id, 1)) is None
            assert await Lease(redis, keys.eval_lock(candidate.session_id, 1), ttl_s=5).try_acquire()
        # The block's end released nothing more: the lease another holder took stays.
        assert await redis.get(keys.eval_lock(candidate.session_id, 1)) is not None
        await redis.delete(keys.eval_lock(candidate.session_id, 1))

        # Refused by its fence (a newer holder stored first): no run counted, lease kept.
        stale = Lease(redis, keys.eval_lock(candidate.session_id, 1), ttl_s=5)
        assert await stale.try_acquire()
        _, ours, _ = await store.save_evaluation(evaluation, 1, stale)
        assert not ours
        assert await redis.get(keys.eval_lock(candidate.session_id, 1)) == stale.owner
        await stale.release()
        assert (await evaluation_runs(stack, candidate.session_id))[1] == runs_before + 1


async def test_an_evaluation_and_its_llm_requests_are_stored_in_one_statement(stack: Stack) -> None:
    async with _first_turn_evaluated(stack) as (candidate, pool, redis, evaluation):
        session_id = candidate.session_id
        store = EvaluationStore(pool, redis, Keys(stack.env["VIBE_REDIS_PREFIX"]), 3600)
        fence = await pool.fetchval(
            "SELECT fence FROM prompt_evaluations WHERE session_id = $1 AND turn = 1", session_id
        )
        calls = [
            CallUsage("turn_evaluation", "gemini", "m", 120, 30, 7, ok=False),
            CallUsage("turn_evaluation", "offline", "rules", 0, 0, 0, ok=True),
        ]

        async def usage() -> list[tuple[object, ...]]:
            rows = await pool.fetch(
                "SELECT turn, phase, purpose, provider, model, prompt_tokens, output_tokens, thinking_tokens, ok"
                " FROM llm_usage WHERE session_id = $1 AND phase = 'background' ORDER BY id",
                session_id,
            )
            return [tuple(r) for r in rows]

        before = await usage()
        as_stored = [
            (
                1,
                PHASE_BACKGROUND,
                c.purpose,
                c.provider,
                c.model,
                c.prompt_tokens,
                c.output_tokens,
                c.thinking_tokens,
                c.ok,
            )
            for c in calls
        ]
        _, ours, _ = await store.save_evaluation(evaluation, fence + 1, spent=Spent(PHASE_BACKGROUND, calls))
        assert ours and await usage() == before + as_stored
        # The same statement again (a retry after its reply was lost): nothing stored twice.
        _, ours, _ = await store.save_evaluation(evaluation, fence + 1, spent=Spent(PHASE_BACKGROUND, calls))
        assert ours and await usage() == before + as_stored
        # Refused by its fence: what was spent is stored all the same.
        _, ours, _ = await store.save_evaluation(evaluation, fence, spent=Spent(PHASE_BACKGROUND, calls[:1]))
        assert not ours and await usage() == before + as_stored + as_stored[:1]
        # No requests (an evaluation served from a memo): no rows.
        _, ours, _ = await store.save_evaluation(evaluation, fence + 2, spent=Spent(PHASE_BACKGROUND, []))
        assert ours and await usage() == before + as_stored + as_stored[:1]


async def test_storing_an_evaluation_acknowledges_its_job(stack: Stack) -> None:
    async with _first_turn_evaluated(stack) as (candidate, pool, redis, evaluation):
        # A queue of its own (the stack's workers read the stack's): one job delivered to us.
        keys = Keys(stack.key("ack-test:"))
        store = EvaluationStore(pool, redis, keys, 3600)
        await ensure_group(redis, keys)

        async def delivered() -> str:
            await enqueue(redis, keys, EvalJob(candidate.session_id, 1))
            # decode_responses=True: ids and fields are str (redis-py's annotation cannot say so).
            reply = cast(
                "list[tuple[str, list[tuple[str, dict[str, str]]]]]",
                await redis.xreadgroup(EVAL_GROUP, "test", {keys.eval_jobs(): ">"}, count=1),
            )
            [(_, [(message_id, _)])] = reply
            return message_id

        async def pending() -> int:
            return int((await redis.xpending(keys.eval_jobs(), EVAL_GROUP))["pending"])

        # Stored under the turn's lease: the job is acknowledged and deleted in the same transaction.
        message_id = await delivered()
        lease = Lease(redis, keys.eval_lock(candidate.session_id, 1), ttl_s=5)
        assert await lease.try_acquire()
        ack = JobAck(keys, message_id)
        async with lease.kept():
            _, ours, _ = await store.save_evaluation(evaluation, lease.fence, lease, ack)
        assert ours and ack.sent
        assert await pending() == 0 and await redis.xlen(keys.eval_jobs()) == 0

        # Refused by its fence (a newer holder stored first): the job stays pending for
        # its worker to acknowledge.
        message_id = await delivered()
        stale = Lease(redis, keys.eval_lock(candidate.session_id, 1), ttl_s=5)
        assert await stale.try_acquire()
        ack = JobAck(keys, message_id)
        _, ours, _ = await store.save_evaluation(evaluation, 1, stale, ack)
        assert not ours and not ack.sent
        assert await pending() == 1
        await stale.release()
        await ack.send(redis)  # as the worker does
        assert await pending() == 0 and await redis.xlen(keys.eval_jobs()) == 0


async def test_a_lease_released_on_a_pipeline(stack: Stack) -> None:
    redis = stack.redis()
    try:
        key = stack.key(f"lock:test:{uuid.uuid4()}")
        lease = Lease(redis, key, ttl_s=5)
        assert await lease.try_acquire()
        lease.start_heartbeat()
        async with redis.pipeline(transaction=False) as pipe:
            try:
                lease.release_on(pipe)
            except RuntimeError:
                pass  # the heartbeat must be stopped first
            else:
                raise AssertionError("released on a pipeline while its heartbeat runs")
        await lease.stop_heartbeat()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.set(key + ":other", "1")
            lease.release_on(pipe)
            await pipe.execute()
        lease.released()
        assert await redis.get(key) is None
        other = Lease(redis, key, ttl_s=5)
        assert await other.try_acquire()
        await lease.release()  # costs nothing, frees nothing
        assert await redis.get(key) == other.owner
        await other.release()
        await redis.delete(key + ":other", key + ":fence")
    finally:
        await redis.aclose()
