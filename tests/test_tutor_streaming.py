"""Streaming behaviour of the tutor service (Gemini provider against the fake server):
every chunk leaves as soon as it is generated (leak check included), a client that stops
reading holds the upstream back through gRPC flow control, a cancelled call frees its
upstream request at once, and a reply breaking off mid-stream ends the gateway's Chat
with UNAVAILABLE and stores nothing.

test_gemini_stack.py already shows the first chunk reaching the gateway's client before
the upstream finished and a candidate leaving closing the upstream; these go further.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from tests.support.stack import Stack, StartStack, gemini_stack, new_candidate
from vibe_api.gateway.v1 import gateway_pb2
from vibe_api.tutor.v1 import tutor_pb2, tutor_pb2_grpc
from vibe_dev.fake_gemini import FakeGemini, Reply

QUESTION = "Which data structure would let me avoid checking every pair in two sum?"


def _request(session_id: str) -> tutor_pb2.StreamReplyRequest:
    return tutor_pb2.StreamReplyRequest(session_id=session_id, turn=1, problem_id="two-sum", message=QUESTION)


async def test_every_chunk_leaves_the_tutor_as_soon_as_it_is_generated(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    fake.chunk_delay_s = 0.1
    fake.reply_chunks = tuple(f"Step {i}: which value completes the pair? " for i in range(10))
    async with gemini_stack(start_stack, fake) as stack:
        candidate = await new_candidate(stack)
        async with stack.internal("tutor") as channel:
            call = tutor_pb2_grpc.TutorStub(channel).StreamReply(_request(candidate.session_id), timeout=30)
            arrivals = [time.monotonic() async for e in call if e.WhichOneof("event") == "delta"]
    written = fake.chunk_written_at
    assert len(arrivals) == len(written) == 10
    delays = [a - w for a, w in zip(arrivals, written, strict=True)]
    print(f"chunk delay upstream write -> tutor client: max {max(delays) * 1000:.1f} ms")
    assert max(delays) < 0.08, f"a chunk was held back until the next one (0.1 s later): {delays}"


async def test_chunks_that_arrive_together_leave_as_one_delta_with_the_same_text(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    # No gap upstream: the chunks reach the tutor faster than it writes them to its client,
    # so those waiting when a write ends go out together (fewer messages on every hop).
    fake.reply_chunks = tuple(f"piece {i}, " for i in range(300))
    async with gemini_stack(start_stack, fake) as stack:
        candidate = await new_candidate(stack)
        async with stack.internal("tutor") as channel:
            call = tutor_pb2_grpc.TutorStub(channel).StreamReply(_request(candidate.session_id), timeout=30)
            events = [e async for e in call]
    deltas = [e.delta for e in events if e.WhichOneof("event") == "delta"]
    print(f"{len(fake.reply_chunks)} upstream chunks -> {len(deltas)} deltas")
    assert "".join(deltas) == "".join(fake.reply_chunks), "the same bytes, in order"
    assert len(deltas) < len(fake.reply_chunks) // 2
    assert events[-1].WhichOneof("event") == "done"


async def test_with_a_coalescing_window_the_first_delta_leaves_at_once_and_the_rest_in_fewer_messages(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    fake.chunk_delay_s = 0.02
    fake.reply_chunks = tuple(f"Step {i}: which value completes the pair? " for i in range(12))
    async with gemini_stack(start_stack, fake, TUTOR_STREAM_COALESCE_MS="100") as stack:
        candidate = await new_candidate(stack)
        async with stack.internal("tutor") as channel:
            call = tutor_pb2_grpc.TutorStub(channel).StreamReply(_request(candidate.session_id), timeout=30)
            events = [(time.monotonic(), e) async for e in call]
    deltas = [(at, e.delta) for at, e in events if e.WhichOneof("event") == "delta"]
    first_written = fake.chunk_written_at[0]
    print(f"12 chunks 20 ms apart, 100 ms window -> {len(deltas)} deltas")
    assert "".join(text for _, text in deltas) == "".join(fake.reply_chunks)
    assert deltas[0][1] == fake.reply_chunks[0] and deltas[0][0] - first_written < 0.08, "the first chunk, at once"
    assert 2 <= len(deltas) <= 6, "the 11 later chunks (220 ms) left in a few messages"


async def test_a_client_that_stops_reading_holds_the_upstream_back(start_stack: StartStack, fake: FakeGemini) -> None:
    chunk = ("Think about which value completes the pair at each position. " * 64)[:4000]
    # 80 MB of reply: several times what the buffers between the fake server and the
    # client hold (socket buffers, HTTP/2 windows: ~20 MB here, measured), so only flow
    # control can stop the upstream before the end.
    total = 20_000
    fake.reply_chunks = tuple(chunk for _ in range(total))
    async with gemini_stack(start_stack, fake) as stack:
        candidate = await new_candidate(stack)
        async with stack.internal("tutor") as channel:
            call = tutor_pb2_grpc.TutorStub(channel).StreamReply(_request(candidate.session_id), timeout=60)
            first = await call.read()
            assert isinstance(first, tutor_pb2.StreamReplyResponse) and first.WhichOneof("event") == "delta"
            await asyncio.sleep(1.0)  # the client stalls
            pulled_1s = len(fake.chunk_written_at)
            await asyncio.sleep(1.0)
            pulled_2s = len(fake.chunk_written_at)
            call.cancel()
    print(
        f"stalled client: upstream wrote {pulled_1s} then {pulled_2s} of {total} chunks "
        f"({pulled_2s * len(chunk) / 1e6:.1f} MB buffered along the way)"
    )
    assert pulled_2s == pulled_1s, "nothing more was pulled while the client stalled"
    assert pulled_2s < total // 2, "the tutor did not buffer the reply without bound"
    assert not fake.stream_ends


async def _stored(stack: Stack, session_id: str) -> tuple[int, int]:
    db = await stack.db()
    try:
        turns = await db.fetchval("SELECT turn_count FROM sessions WHERE session_id = $1", session_id)
        messages = await db.fetchval("SELECT count(*) FROM messages WHERE session_id = $1", session_id)
        return turns, messages
    finally:
        await db.close()


async def test_a_reply_breaking_off_mid_stream_ends_the_chat_with_unavailable_and_stores_nothing(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    fake.chunk_delay_s = 0.02
    fake.script("tutor_reply", Reply(chunks=tuple(f"part {i} " for i in range(10)), break_after=4))
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        seen: list[str] = []
        call = stack.gateway.Chat(
            gateway_pb2.ChatRequest(session_id=candidate.session_id, message=QUESTION), metadata=candidate.auth
        )

        async def read_all() -> None:
            async for event in call:
                if event.WhichOneof("event") == "delta":
                    seen.append(event.delta)  # noqa: PERF401 (what arrived before the failure is the point)

        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await read_all()
        after_failure = await _stored(stack, candidate.session_id)
        retried = await candidate.chat(QUESTION)
    # The text, not its pieces: chunks that reach the tutor together may travel as one delta.
    assert "".join(seen) == "".join(f"part {i} " for i in range(4)), "the candidate saw the first chunks"
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    details = failure.value.details() or ""
    assert (
        "broke off" in details and "nothing of this turn was saved" in details and "send your message again" in details
    )
    assert after_failure == (0, 0), "no half-written turn"
    assert retried[-1].completed.turn == 1
