"""The four services with VIBE_LLM_PROVIDER=gemini against the fake Gemini server:
streaming through the gateway, cancellation, the storm fallback, usage in the report."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import grpc
import pytest

from tests.support.stack import REFERENCE, Stack, StartStack, gemini_stack, new_candidate, reply_text
from vibe_api.gateway.v1 import gateway_pb2
from vibe_dev.fake_gemini import FakeGemini, Reply

QUESTION = "Which data structure would let me avoid checking every pair in two sum?"


async def stored_turn_logs(stack: Stack, session_id: str) -> list[dict[str, Any]]:
    db = await stack.db()
    try:
        rows = await db.fetch(
            "SELECT details FROM prompt_evaluations WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL' ORDER BY turn",
            session_id,
        )
        return [json.loads(r["details"]) for r in rows]
    finally:
        await db.close()


async def usage_rows(stack: Stack, session_id: str) -> list[tuple[Any, ...]]:
    db = await stack.db()
    try:
        rows = await db.fetch(
            "SELECT turn, phase, purpose, prompt_tokens, output_tokens, thinking_tokens, ok FROM llm_usage"
            " WHERE session_id = $1 ORDER BY id",
            session_id,
        )
        return [tuple(r) for r in rows]
    finally:
        await db.close()


async def test_a_session_end_to_end_on_gemini(start_stack: StartStack, fake: FakeGemini) -> None:
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        events = await candidate.chat(QUESTION)
        assert reply_text(events) == "".join(fake.reply_chunks)
        assert events[-1].completed.provider == "gemini"
        report = (await candidate.submit(REFERENCE))[-1].report
        logs = await stored_turn_logs(stack, candidate.session_id)
        usage = await usage_rows(stack, candidate.session_id)

    assert report.llm_provider == "gemini" and not report.degraded_parts
    assert report.turns[0].score == 72, "the score Gemini gave"
    [log] = logs
    assert (log["provider"], log["model"], log["degraded"]) == ("gemini", "gemini-2.5-flash", False)
    assert log["usage"]["calls"] == 1 and log["usage"]["thinking_tokens"] == 7
    # Turn 1: the reply while chatting (the offline guardrail is sure of the question: no
    # model call for it), its evaluation during the submit (no background workers), which
    # also judged the conversation through turn 1: no holistic call of its own.
    assert sorted((turn or 0, phase, purpose) for turn, phase, purpose, *_ in usage) == [
        (1, "chat", "tutor_reply"),
        (1, "submit", "turn_evaluation"),
    ]
    assert all(ok and prompt > 0 and output > 0 and thinking == 7 for *_, prompt, output, thinking, ok in usage)
    assert [r.purpose for r in fake.requests].count("turn_evaluation") == 1, "one call per evaluated turn"
    assert not fake.of("holistic_evaluation")
    assert (report.holistic.precomputed, report.holistic.through_turn) == (True, 1)
    assert report.holistic.score == 70, "the holistic judgement Gemini gave in the turn's call"


async def test_the_report_shows_model_and_token_usage(start_stack: StartStack, fake: FakeGemini) -> None:
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        await candidate.chat(QUESTION)
        report = (await candidate.submit(REFERENCE))[-1].report
    assert report.llm_model == "gemini-2.5-flash"
    assert report.turns[0].model == "gemini-2.5-flash" and report.turns[0].usage.calls == 1
    [turn] = report.llm_usage.turns
    assert (turn.turn, turn.chat.calls, turn.evaluation.calls) == (1, 1, 1), "the reply; the guardrail was offline"
    assert turn.chat.prompt_tokens > 0 and turn.evaluation.thinking_tokens == 7
    assert report.llm_usage.submit.calls == 1, "the guard's evaluation, which judged the conversation too"
    assert report.holistic.precomputed and report.holistic.usage.calls == 0
    assert report.llm_usage.total.calls == 2 and report.llm_usage.models == ["gemini-2.5-flash"]


async def test_chunks_reach_the_grpc_client_before_the_upstream_reply_has_finished(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    fake.chunk_delay_s = 0.2  # 5 chunks: the upstream reply takes 0.8 s after its first chunk
    async with gemini_stack(start_stack, fake) as stack:
        candidate = await new_candidate(stack)
        call = stack.gateway.Chat(
            gateway_pb2.ChatRequest(session_id=candidate.session_id, message=QUESTION), metadata=candidate.auth
        )
        arrivals = [time.monotonic() async for e in call if e.WhichOneof("event") == "delta"]
    [upstream_done] = fake.stream_ends
    gap = upstream_done - arrivals[0]
    assert len(arrivals) == len(fake.reply_chunks)
    assert gap >= 0.7, f"the first chunk arrived only {gap:.3f}s before the upstream reply finished"


async def test_leaving_mid_reply_closes_the_upstream_request_and_stores_the_turn_interrupted(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    fake.reply_chunks = tuple(f"word{i} " for i in range(50))
    fake.chunk_delay_s = 0.1  # 5 s of reply if nobody left
    async with gemini_stack(start_stack, fake) as stack:
        candidate = await new_candidate(stack)
        call = stack.gateway.Chat(
            gateway_pb2.ChatRequest(session_id=candidate.session_id, message=QUESTION), metadata=candidate.auth
        )
        deltas = 0
        async for event in call:
            deltas += event.WhichOneof("event") == "delta"
            if deltas == 2:
                break
        call.cancel()
        left = time.monotonic()
        while not fake.closed_by_client:
            assert time.monotonic() - left < 1.0, "the upstream stream was not closed"
            await asyncio.sleep(0.01)
        closed_after = fake.closed_by_client[0] - left
        db = await stack.db()
        try:
            for _ in range(200):
                interrupted = await db.fetchval(
                    "SELECT interrupted FROM messages WHERE session_id = $1 AND role = 'assistant'",
                    candidate.session_id,
                )
                if interrupted is not None:
                    break
                await asyncio.sleep(0.02)
        finally:
            await db.close()
    assert closed_after < 0.3, f"upstream closed {closed_after:.3f}s after the candidate left"
    assert interrupted is True
    assert not fake.stream_ends, "the 50-chunk reply was never sent to the end"


async def test_leaving_right_after_turn_started_closes_the_upstream_request_and_stores_nothing(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    # The gateway asks the tutor before it writes TurnStarted: a candidate gone at that
    # moment must not leave the reply's request running upstream or a turn behind.
    fake.latency_s = 0.5
    fake.reply_chunks = tuple(f"word{i} " for i in range(20))
    fake.chunk_delay_s = 0.05
    async with gemini_stack(start_stack, fake) as stack:
        candidate = await new_candidate(stack)
        call = stack.gateway.Chat(
            gateway_pb2.ChatRequest(session_id=candidate.session_id, message=QUESTION), metadata=candidate.auth
        )
        first = await anext(aiter(call))
        assert first.turn_started
        asked = time.monotonic()
        while not fake.of("tutor_reply"):  # the reply's request is upstream, its answer not begun
            assert time.monotonic() - asked < 0.4, "the tutor's request did not reach the LLM server"
            await asyncio.sleep(0.005)
        call.cancel()
        assert await fake.closed_by_client_within(3.0), "the upstream request was not closed"
        await asyncio.sleep(0.3)
        db = await stack.db()
        try:
            messages = await db.fetchval("SELECT count(*) FROM messages WHERE session_id = $1", candidate.session_id)
            turns = await db.fetchval("SELECT turn_count FROM sessions WHERE session_id = $1", candidate.session_id)
        finally:
            await db.close()
        ended = list(fake.stream_ends)
        # The next message gets turn 1: the session's chat lease was freed.
        again = [
            e
            async for e in stack.gateway.Chat(
                gateway_pb2.ChatRequest(session_id=candidate.session_id, message=QUESTION), metadata=candidate.auth
            )
        ]
    assert not ended, "the reply was sent to the end after the candidate left"
    assert (messages, turns) == (0, 0)
    assert again[0].turn == 1 and again[-1].HasField("completed")


async def test_a_429_storm_ends_in_the_offline_fallback_and_the_submit_completes(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    settings = {
        "EVALUATOR_WORKERS": "0",
        "VIBE_LLM_CALL_BUDGET_S": "1",
        "VIBE_LLM_BACKOFF_BASE_S": "0.05",
        "VIBE_LLM_BREAKER_FAILURES": "2",
    }
    async with gemini_stack(start_stack, fake, **settings) as stack:
        candidate = await new_candidate(stack)
        for question in (
            QUESTION,
            "You said a dictionary: how do I handle duplicates like [3, 3]?",
            "What edge cases should I test?",
        ):
            await candidate.chat(question)
        fake.storm = Reply(status=429, retry_delay_s=0.2)
        started = time.monotonic()
        events = await candidate.submit(REFERENCE)
        took = time.monotonic() - started
        logs = await stored_turn_logs(stack, candidate.session_id)
    report = events[-1].report
    assert events[-1].WhichOneof("event") == "report" and report.scores.grade
    assert took < 10
    assert [(t.provider, t.degraded) for t in report.turns] == [("offline", True)] * 3
    assert all(t.score > 0 for t in report.turns)
    assert (report.holistic.provider, report.holistic.degraded) == ("offline", True)
    assert report.degraded_parts == [
        "turn 1 evaluation",
        "turn 2 evaluation",
        "turn 3 evaluation",
        "holistic evaluation",
    ]
    assert all(log["degraded"] and log["provider"] == "offline" for log in logs)
    # The three turns were evaluated concurrently and each spent its budget on retries;
    # by the holistic evaluation the breaker was open: it fell back without a request.
    assert fake.of("turn_evaluation") and not fake.of("holistic_evaluation")


async def test_the_tutor_says_plainly_when_gemini_is_down_and_nothing_is_stored(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    fake.storm = Reply(status=503)
    async with gemini_stack(start_stack, fake, VIBE_LLM_CALL_BUDGET_S="1", VIBE_LLM_BACKOFF_BASE_S="0.05") as stack:
        candidate = await new_candidate(stack)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await candidate.chat(QUESTION)
        took = time.monotonic() - started
        session = await stack.gateway.GetSession(
            gateway_pb2.GetSessionRequest(session_id=candidate.session_id), metadata=candidate.auth
        )
        fake.storm = None
        retried = await candidate.chat(QUESTION)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "unavailable" in (failure.value.details() or "") and "retry" in (failure.value.details() or "")
    assert took < 3, "no hanging"
    assert session.turn_count == 0, "the failed turn was not stored; sending again is the retry"
    assert retried[-1].completed.turn == 1


async def test_the_reply_does_not_wait_for_the_model_guardrail_but_obeys_its_verdict(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    # The model's verdict comes 1.2 s after the reply has started streaming: the first
    # chunks are not held back, and the reply is cut off with a plain note when it lands.
    # (The bound is relative to the verdict, not a latency target: this machine is shared.)
    verdict_after_s = 1.2
    flagged = json.dumps({"violation": "solution_request", "reason": "asks for everything to submit"})
    fake.script("guardrail", Reply(text=flagged, latency_s=verdict_after_s))
    fake.chunk_delay_s = 0.1
    fake.reply_chunks = tuple(f"step {i}. " for i in range(40))
    # The model is asked about every message (as when the offline classifier is unsure of one).
    async with gemini_stack(start_stack, fake, VIBE_GUARDRAIL_ASK_MODEL="always") as stack:
        candidate = await new_candidate(stack)
        started = time.monotonic()
        events = []
        first_delta_after = None
        call = stack.gateway.Chat(
            gateway_pb2.ChatRequest(
                session_id=candidate.session_id, message="Where would an experienced dev go from here?"
            ),
            metadata=candidate.auth,
        )
        async for event in call:
            if first_delta_after is None and event.WhichOneof("event") == "delta":
                first_delta_after = time.monotonic() - started
            events.append(event)
    completed = events[-1].completed
    assert first_delta_after is not None and first_delta_after < verdict_after_s - 0.3
    assert completed.guardrail.violated
    text = reply_text(events)
    assert "outside the test rules" in text and "turn scores 0" in text
    assert "step 39." not in text, "the rest of the reply was not sent"
    assert completed.assistant_message.content == text
