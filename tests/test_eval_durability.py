"""The background evaluation queue loses nothing: a worker killed mid-job, a job
delivered twice, a job that can never succeed (dead-letter stream), a malformed job,
Redis losing every key; and the per-turn status the submit guard reads.

Evaluator workers that must die or misbehave run as their own OS processes (real
`python -m vibe.services.evaluator`); the rest of the stack runs in process. Real
PostgreSQL, Redis and gRPC throughout."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from pathlib import Path
from typing import cast

import grpc
import pytest

from tests.support.faults import eventually, service_process
from tests.support.stack import REFERENCE, Stack, StartStack, evaluation_runs, new_candidate
from vibe.platform.hot_state import EVAL_GROUP, Keys
from vibe.shared.eval_queue import EvalJob, enqueue
from vibe_api.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "Which data structure helps me avoid checking every pair in two sum?",
    "If I store value -> index while scanning, how do I handle duplicates like [3, 3] with target 6?",
    "What edge cases should my tests cover for an empty list or no solution?",
]
STATE = evaluator_pb2.TurnEvaluationState


def evaluator_process(
    stack: Stack, **overrides: str
) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """`python -m vibe.services.evaluator` on the stack's database and Redis prefix, serving."""
    return service_process(stack, "vibe.services.evaluator", "EVALUATOR_ADDR", **overrides)


def consumer_of(proc: asyncio.subprocess.Process, worker: int = 0) -> str:
    """The consumer name a worker of that process uses in the group (see worker.py)."""
    return f"{socket.gethostname()}-{proc.pid}-{worker}"


async def turn_rows(stack: Stack, session_id: str) -> list[tuple[int, int]]:
    """(turn, number of TURN_EVAL rows) of the session."""
    db = await stack.db()
    try:
        rows = await db.fetch(
            "SELECT turn, count(*) AS n FROM prompt_evaluations"
            " WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL' GROUP BY turn ORDER BY turn",
            session_id,
        )
    finally:
        await db.close()
    return [(r["turn"], r["n"]) for r in rows]


async def queue_is_empty(stack: Stack) -> bool:
    """No job waiting and none pending: everything was acknowledged or dead-lettered."""
    redis = stack.redis()
    try:
        stream = stack.key("eval:jobs")
        if not await redis.exists(stream):
            return True
        pending = await redis.xpending(stream, EVAL_GROUP)
        return await redis.xlen(stream) == 0 and pending["pending"] == 0
    finally:
        await redis.aclose()


async def evaluator_call(stack: Stack, method: str, request):  # type: ignore[no-untyped-def]
    async with stack.internal("evaluator") as channel:
        return await getattr(evaluator_pb2_grpc.EvaluatorStub(channel), method)(request, timeout=30)


async def statuses(stack: Stack, session_id: str) -> list[tuple[int, int]]:
    reply = await evaluator_call(stack, "GetTurnStatuses", evaluator_pb2.GetTurnStatusesRequest(session_id=session_id))
    return [(t.turn, t.state) for t in reply.turns]


async def dead_records(stack: Stack) -> list[dict[str, str]]:
    redis = stack.redis()
    try:
        # decode_responses=True: fields are str (redis-py's annotation cannot say so)
        entries = cast("list[tuple[str, dict[str, str]]]", await redis.xrange(stack.key("eval:dead")))
        return [fields for _, fields in entries]
    finally:
        await redis.aclose()


async def kill_worker_mid_turn_one(stack: Stack, session_id: str, **overrides: str) -> None:
    """Runs one worker process whose LLM takes 3 s (within its 3.6 s job timeout: a window
    wide enough to be seen on a loaded machine) and SIGKILLs it while it holds turn 1's job
    and evaluation lock."""
    redis = stack.redis()
    try:
        async with evaluator_process(
            stack, EVALUATOR_WORKERS="1", VIBE_OFFLINE_LATENCY_MS="3000", VIBE_EVAL_LOCK_TTL_S="4", **overrides
        ) as victim:
            victim_consumer = consumer_of(victim)

            async def victim_holds_turn_one() -> bool:
                pending = await redis.xpending_range(stack.key("eval:jobs"), EVAL_GROUP, "-", "+", 10)
                holding = [p for p in pending if p["consumer"] == victim_consumer]
                return bool(holding) and bool(await redis.exists(stack.key(f"lock:eval:{session_id}:1")))

            await eventually(victim_holds_turn_one, 20, "the victim holds turn 1's job and lock")
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
        assert victim.returncode == -signal.SIGKILL
        pending = await redis.xpending_range(stack.key("eval:jobs"), EVAL_GROUP, "-", "+", 10)
        assert [p["consumer"] for p in pending] == [victim_consumer], "the dead worker's job is still pending"
        assert await turn_rows(stack, session_id) == [], "the victim stored nothing"
    finally:
        await redis.aclose()


async def test_job_of_a_killed_worker_is_finished_by_another(start_stack: StartStack) -> None:
    # The in-process stack has no workers: the only consumers are the two processes.
    async with start_stack(EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        for question in QUESTIONS[:2]:
            await candidate.chat(question)
        await kill_worker_mid_turn_one(stack, candidate.session_id)
        async with evaluator_process(stack, EVALUATOR_WORKERS="1", VIBE_EVAL_LOCK_TTL_S="2"):
            await eventually(lambda: queue_is_empty(stack), 30, "the other worker finished both jobs")

        assert await turn_rows(stack, candidate.session_id) == [(1, 1), (2, 1)]
        assert await evaluation_runs(stack, candidate.session_id) == {1: 1, 2: 1}, "each turn evaluated once"
        report = (await candidate.submit(REFERENCE))[-1].report
        assert [t.turn for t in report.turns] == [1, 2]
        assert {t.source for t in report.turns} == {evaluator_pb2.EVALUATION_SOURCE_BACKGROUND}
        assert await evaluation_runs(stack, candidate.session_id) == {1: 1, 2: 1}, "the guard re-evaluated nothing"
        assert await dead_records(stack) == []


async def test_job_whose_workers_keep_dying_is_dead_lettered(start_stack: StartStack) -> None:
    # One attempt allowed: the worker killed on it used it up; the next claim dead-letters.
    # The dead worker's turn lease (1 s) has expired by the time its job is claimed (2 s).
    async with start_stack(EVALUATOR_WORKERS="0", VIBE_LEASE_TTL_S="1") as stack:
        candidate = await new_candidate(stack)
        await candidate.chat(QUESTIONS[0])
        await kill_worker_mid_turn_one(stack, candidate.session_id, EVALUATOR_JOB_MAX_ATTEMPTS="1")
        async with evaluator_process(
            stack, EVALUATOR_WORKERS="1", VIBE_EVAL_LOCK_TTL_S="2", EVALUATOR_JOB_MAX_ATTEMPTS="1"
        ):
            await eventually(lambda: queue_is_empty(stack), 30, "the job left the queue")
        [record] = await dead_records(stack)
        assert record["dead.reason"] == "no answer after 1 delivery: the workers handling it stopped mid-job"
        assert (record["session_id"], record["turn"], record["dead.attempts"]) == (candidate.session_id, "1", "1")
        # Until the killed worker's evaluation lock (4 s) runs out, the turn is honestly
        # reported in flight: nobody can tell a dead holder from a slow one before then.
        seen: set[int] = set()

        async def turn_one_is_dead() -> bool:
            [(turn, state)] = await statuses(stack, candidate.session_id)
            seen.add(state)
            return (turn, state) == (1, STATE.TURN_EVALUATION_STATE_DEAD)

        await eventually(turn_one_is_dead, 10, "turn 1 is reported dead-lettered")
        assert seen <= {STATE.TURN_EVALUATION_STATE_IN_FLIGHT, STATE.TURN_EVALUATION_STATE_DEAD}
        report = (await candidate.submit(REFERENCE))[-1].report
        assert [(t.turn, t.source) for t in report.turns] == [(1, evaluator_pb2.EVALUATION_SOURCE_SUBMIT_GUARD)]


async def test_a_job_delivered_twice_is_evaluated_once(start_stack: StartStack) -> None:
    # Two workers and a 300 ms LLM: the two copies are taken at the same time.
    async with start_stack(EVALUATOR_WORKERS="2", VIBE_OFFLINE_LATENCY_MS="300") as stack:
        candidate = await new_candidate(stack)
        redis = stack.redis()
        try:
            await candidate.chat(QUESTIONS[0])  # the gateway queues turn 1
            await enqueue(redis, Keys(stack.env["VIBE_REDIS_PREFIX"]), EvalJob(candidate.session_id, 1))
            await eventually(lambda: queue_is_empty(stack), 20, "both copies were handled")
        finally:
            await redis.aclose()
        assert await turn_rows(stack, candidate.session_id) == [(1, 1)]
        assert await evaluation_runs(stack, candidate.session_id) == {1: 1}
        stored = await evaluator_call(
            stack, "GetTurnEvaluations", evaluator_pb2.GetTurnEvaluationsRequest(session_id=candidate.session_id)
        )
        report = (await candidate.submit(REFERENCE))[-1].report
        assert list(report.turns) == list(stored.evaluations), "the submit uses the one stored result"
        assert await dead_records(stack) == []


async def test_a_job_that_always_fails_is_dead_lettered_and_the_guard_evaluates_its_turn(
    start_stack: StartStack,
) -> None:
    async with start_stack(EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        await candidate.chat(QUESTIONS[0])
        # A worker whose LLM (3 s) always outlasts its job timeout (0.9 s): every attempt fails.
        async with evaluator_process(
            stack,
            EVALUATOR_WORKERS="1",
            VIBE_OFFLINE_LATENCY_MS="3000",
            VIBE_EVAL_LOCK_TTL_S="1",
            EVALUATOR_JOB_MAX_ATTEMPTS="2",
        ) as poisoned:

            async def dead_lettered() -> bool:
                return len(await dead_records(stack)) == 1

            await eventually(dead_lettered, 30, "the job reached the dead-letter stream")
            assert await queue_is_empty(stack), "acknowledged and removed from the main stream"
            [record] = await dead_records(stack)
            assert record["session_id"] == candidate.session_id and record["turn"] == "1", "the original fields"
            assert record["dead.attempts"] == "2"
            assert "evaluation took longer than the job timeout (0.9s" in record["dead.reason"]
            assert record["dead.consumer"] == consumer_of(poisoned)
        assert await turn_rows(stack, candidate.session_id) == []

        reply = await evaluator_call(
            stack, "GetTurnStatuses", evaluator_pb2.GetTurnStatusesRequest(session_id=candidate.session_id)
        )
        [status] = reply.turns
        assert (status.turn, status.state, status.dead_attempts) == (1, STATE.TURN_EVALUATION_STATE_DEAD, 2)
        assert "job timeout" in status.dead_reason

        events = await candidate.submit(REFERENCE)
        progress = [e.progress.message for e in events if e.WhichOneof("event") == "progress"]
        assert any("0 evaluated, 0 in flight, 0 queued, 1 dead-lettered, 0 missing" in m for m in progress), progress
        assert any("turn 1 evaluated (its background job was dead-lettered" in m for m in progress), progress
        report = events[-1].report
        assert [(t.turn, t.source) for t in report.turns] == [(1, evaluator_pb2.EVALUATION_SOURCE_SUBMIT_GUARD)]
        assert await turn_rows(stack, candidate.session_id) == [(1, 1)]
        after = await statuses(stack, candidate.session_id)
        assert after == [(1, STATE.TURN_EVALUATION_STATE_DONE)]


async def test_malformed_jobs_and_jobs_for_missing_turns_are_dead_lettered_at_once(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    redis = stack.redis()
    try:
        jobs = stack.key("eval:jobs")
        await redis.xadd(jobs, {"turn": "1"})
        await redis.xadd(jobs, {"session_id": candidate.session_id, "turn": "zero"})
        await redis.xadd(jobs, {"session_id": candidate.session_id, "turn": "7"})  # no such turn

        async def all_dead() -> bool:
            return len(await dead_records(stack)) == 3

        await eventually(all_dead, 20, "the three jobs were dead-lettered")
        assert await queue_is_empty(stack)
    finally:
        await redis.aclose()
    reasons = {r.get("turn", ""): r for r in await dead_records(stack)}
    assert reasons["1"]["dead.reason"] == "malformed job: field 'session_id' is missing or empty"
    assert reasons["zero"]["dead.reason"] == "malformed job: field 'turn' is 'zero'; expected a turn number >= 1"
    assert reasons["7"]["dead.reason"].startswith("turn not found: session")
    assert {r["dead.attempts"] for r in reasons.values()} == {"1"}, "never retried"


async def test_report_has_every_turn_after_redis_lost_all_keys(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    for question in QUESTIONS[:2]:
        await candidate.chat(question)
    await eventually(lambda: _has_rows(stack, candidate.session_id, 2), 20, "both turns were evaluated")
    before = await evaluator_call(
        stack, "GetTurnEvaluations", evaluator_pb2.GetTurnEvaluationsRequest(session_id=candidate.session_id)
    )
    redis = stack.redis()
    try:
        keys = [k async for k in redis.scan_iter(match=stack.key("*"))]
        assert stack.key(f"turn_logs:{candidate.session_id}:1") in keys and stack.key("eval:jobs") in keys
        await redis.delete(*keys)
        # The workers recreate the lost queue: a later turn is still evaluated in the background.
        await candidate.chat(QUESTIONS[2])
        await eventually(lambda: _has_rows(stack, candidate.session_id, 3), 20, "turn 3 was evaluated")
    finally:
        await redis.aclose()
    report = (await candidate.submit(REFERENCE))[-1].report
    assert list(report.turns)[:2] == list(before.evaluations), "turns 1 and 2 come back from PostgreSQL"
    assert [(t.turn, t.source) for t in report.turns][2] == (3, evaluator_pb2.EVALUATION_SOURCE_BACKGROUND)
    assert await evaluation_runs(stack, candidate.session_id) == {3: 1}, (
        "the lost counters restart; 1 and 2 were not redone"
    )

    db = await stack.db()
    try:
        details = json.loads(
            await db.fetchval(
                "SELECT details FROM prompt_evaluations WHERE session_id = $1 AND turn = 1 AND evaluation_type = 'TURN_EVAL'",
                candidate.session_id,
            )
        )
    finally:
        await db.close()
    # Every field of the docs/DESIGN.md §2 turn log, in the durable copy.
    assert {
        "turn_number",
        "user_prompt_summary",
        "prompt_evaluation_details",
        "llm_answer_summary",
        "llm_answer_reasoning",
        "guardrail",
        "provider",
        "model",
        "degraded",
        "evaluated_at",
        "turn_at",
        "timestamp",
    } <= details.keys()
    assert details["turn_number"] == 1 and details["turn_at"] < details["evaluated_at"]
    assert set(details["prompt_evaluation_details"]) == {"intent", "score", "rubrics", "final_reasoning"}
    assert all({"criterion", "score", "reason"} <= r.keys() for r in details["prompt_evaluation_details"]["rubrics"])
    assert set(details["guardrail"]) == {"violated", "violation_type", "reason", "leak_cut"}


async def _has_rows(stack: Stack, session_id: str, count: int) -> bool:
    return len(await turn_rows(stack, session_id)) == count


async def test_turn_statuses_report_queued_in_flight_done_and_missing(start_stack: StartStack) -> None:
    # No workers, so jobs stay queued; a 1.5 s LLM so that an evaluation is seen in flight.
    async with start_stack(EVALUATOR_WORKERS="0", VIBE_OFFLINE_LATENCY_MS="1500") as stack:
        candidate = await new_candidate(stack)
        sid = candidate.session_id
        for question in QUESTIONS:
            await candidate.chat(question)
        queued, in_flight, done, missing = (
            STATE.TURN_EVALUATION_STATE_QUEUED,
            STATE.TURN_EVALUATION_STATE_IN_FLIGHT,
            STATE.TURN_EVALUATION_STATE_DONE,
            STATE.TURN_EVALUATION_STATE_MISSING,
        )
        assert await statuses(stack, sid) == [(1, queued), (2, queued), (3, queued)]

        # Turn 3's job is lost (as when queueing fails after the turn is stored).
        redis = stack.redis()
        try:
            entries = cast("list[tuple[str, dict[str, str]]]", await redis.xrange(stack.key("eval:jobs")))
            await redis.xdel(stack.key("eval:jobs"), *[mid for mid, f in entries if f["turn"] == "3"])
            evaluating = asyncio.create_task(
                evaluator_call(stack, "EvaluateTurn", evaluator_pb2.EvaluateTurnRequest(session_id=sid, turn=1))
            )
            lock = stack.key(f"lock:eval:{sid}:1")

            async def locked() -> bool:
                return bool(await redis.exists(lock))

            await eventually(locked, 10, "turn 1 is being evaluated")
            assert await statuses(stack, sid) == [(1, in_flight), (2, queued), (3, missing)]
            await evaluating
        finally:
            await redis.aclose()
        assert await statuses(stack, sid) == [(1, done), (2, queued), (3, missing)]

        empty = await statuses(stack, (await new_candidate(stack)).session_id)
        assert empty == [], "a session with no turns has nothing to report"
        for session_id, code in (
            ("", grpc.StatusCode.INVALID_ARGUMENT),
            ("no-such-session", grpc.StatusCode.NOT_FOUND),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await statuses(stack, session_id)
            assert err.value.code() == code
