"""The limits (VIBE_LIMIT_*), over gRPC and HTTP: each refusal is RESOURCE_EXHAUSTED /
HTTP 429 naming the limit, with a retry time (gRPC trailer and Retry-After) when waiting
helps; the counters live in Redis, expire by themselves, and a stream's slot is freed
however the stream ends (and by its lease when its holder dies)."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import pytest

from tests.support.stack import REFERENCE, Stack, StartStack, new_candidate
from vibe.platform.config import AccessSettings
from vibe.platform.errors import ResourceExhausted
from vibe.platform.hot_state import Keys
from vibe.platform.leases import Lease
from vibe.platform.limits import Refused, Slots
from vibe.services.gateway.limits import STREAMS_PER_SESSION, Limits
from vibe_api.gateway.v1 import gateway_pb2

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _retry_after(err: grpc.aio.AioRpcError) -> int | None:
    for key, value in err.trailing_metadata() or ():
        if key == "retry-after":
            return int(value)
    return None


async def _refused(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


async def test_chats_per_minute_per_session(start_stack: StartStack) -> None:
    async with start_stack(VIBE_LIMIT_CHATS_PER_MINUTE="3") as stack:
        candidate = await new_candidate(stack)
        other = await new_candidate(stack, candidate_id="other")
        # Calls that are not the candidate's do not use up the candidate's chats.
        for _ in range(5):
            call = stack.gateway.Chat(
                gateway_pb2.ChatRequest(session_id=candidate.session_id, message="hi"),
                metadata=(("authorization", f"Bearer {other.token}"),),
            )
            assert (await _refused(call.read())).code() == grpc.StatusCode.PERMISSION_DENIED
        for i in range(3):
            await candidate.chat(f"Question {i}: which structure helps?")
        err = await _refused(candidate.chat("One more?"))
        assert err.code() == EXHAUSTED
        assert "3 chats per minute per session (VIBE_LIMIT_CHATS_PER_MINUTE)" in (err.details() or "")
        retry = _retry_after(err)
        assert retry is not None and 1 <= retry <= 60
        # Another session of the same key is not affected.
        await other.chat("My own first question?")
        base = f"http://{stack.addrs.http}"
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{base}/api/sessions/{candidate.session_id}/chat",
                json={"message": "again"},
                headers={"Authorization": f"Bearer {candidate.token}"},
            ) as r,
        ):
            assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
            assert (await r.json())["error"]["code"] == "RESOURCE_EXHAUSTED"
        redis = stack.redis()
        try:
            ttl = await redis.pttl(stack.key(f"limit:chats:{candidate.session_id}"))
        finally:
            await redis.aclose()
        assert 0 < ttl <= 60_000, "the window expires by itself"


async def test_turns_per_session(start_stack: StartStack) -> None:
    async with start_stack(VIBE_LIMIT_TURNS_PER_SESSION="2") as stack:
        candidate = await new_candidate(stack)
        await candidate.chat("First question?")
        await candidate.chat("Second question?")
        err = await _refused(candidate.chat("Third?"))
        assert err.code() == EXHAUSTED and "2 turns per session (VIBE_LIMIT_TURNS_PER_SESSION)" in (err.details() or "")
        assert "submit your code" in (err.details() or "") and _retry_after(err) is None, "waiting does not help"
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://{stack.addrs.http}/api/sessions/{candidate.session_id}/chat",
                json={"message": "Third?"},
                headers={"Authorization": f"Bearer {candidate.token}"},
            ) as r,
        ):
            assert r.status == 429 and "Retry-After" not in r.headers
        report = (await candidate.submit(REFERENCE))[-1].report
        assert [t.turn for t in report.turns] == [1, 2], "nothing was stored for the refused turn"


async def test_sessions_per_key_per_hour(start_stack: StartStack) -> None:
    async with start_stack(VIBE_LIMIT_SESSIONS_PER_KEY_PER_HOUR="2") as stack:
        # A create that fails does not count.
        bad = await _refused(
            stack.gateway.CreateSession(
                gateway_pb2.CreateSessionRequest(candidate_id="c", problem_id="no-such-problem"),
                metadata=stack.key_auth,
            )
        )
        assert bad.code() == grpc.StatusCode.NOT_FOUND
        await new_candidate(stack)
        await new_candidate(stack)
        err = await _refused(new_candidate(stack))
        assert err.code() == EXHAUSTED
        assert "2 sessions per API key per hour (VIBE_LIMIT_SESSIONS_PER_KEY_PER_HOUR)" in (err.details() or "")
        retry = _retry_after(err)
        assert retry is not None and 3000 <= retry <= 3600
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://{stack.addrs.http}/api/sessions",
                json={"candidate_id": "c", "problem_id": "two-sum"},
                headers={"X-API-Key": stack.api_key},
            ) as r,
        ):
            assert r.status == 429 and 3000 <= int(r.headers["Retry-After"]) <= 3600


async def _streaming_chat(stack: Stack, candidate_token: str, session_id: str) -> grpc.aio.UnaryStreamCall:  # type: ignore[type-arg]
    call = stack.gateway.Chat(
        gateway_pb2.ChatRequest(session_id=session_id, message="Which data structure helps here?"),
        metadata=(("authorization", f"Bearer {candidate_token}"),),
    )
    first = await call.read()
    assert isinstance(first, gateway_pb2.ChatEvent) and first.turn_started
    return call


async def test_concurrent_streams_per_key(start_stack: StartStack) -> None:
    # A slow tutor keeps the first chat streaming while the second one asks.
    async with start_stack(VIBE_LIMIT_STREAMS_PER_KEY="1", VIBE_OFFLINE_LATENCY_MS="1500") as stack:
        a = await new_candidate(stack, candidate_id="a")
        b = await new_candidate(stack, candidate_id="b")
        first = await _streaming_chat(stack, a.token, a.session_id)
        err = await _refused(b.chat("Me too?"))
        assert err.code() == EXHAUSTED
        assert "1 concurrent streams per API key (VIBE_LIMIT_STREAMS_PER_KEY)" in (err.details() or "")
        assert _retry_after(err) is not None
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://{stack.addrs.http}/api/sessions/{b.session_id}/submit",
                json={"language": "python", "code": REFERENCE},
                headers={"Authorization": f"Bearer {b.token}"},
            ) as r,
        ):
            assert r.status == 429 and "Retry-After" in r.headers
        # The slot is freed when the stream ends, here by the caller going away mid-reply.
        first.cancel()
        for _ in range(100):
            redis = stack.redis()
            try:
                held = await redis.zcard(stack.key(f"limit:streams:{stack.api_key.split('_')[1]}"))
            finally:
                await redis.aclose()
            if held == 0:
                break
            await asyncio.sleep(0.05)
        assert held == 0
        events = await b.chat("Now?")
        assert events[-1].WhichOneof("event") == "completed"
        # And when it ends normally.
        assert (await a.chat("And me again?"))[-1].WhichOneof("event") == "completed"


async def test_one_candidate_cannot_take_the_keys_stream_slots_from_the_others(start_stack: StartStack) -> None:
    """The key's stream slots are shared by all its candidates, and a submit waits for
    the session's submit still grading, holding a slot: five submits of one session held
    all five slots and the key's other candidates were refused. A session now streams at
    most STREAMS_PER_SESSION at once; its extra submits are ABORTED (retryable, as a
    second chat while one streams), the other candidates chat."""
    settings = {"VIBE_LIMIT_STREAMS_PER_KEY": "5", "VIBE_OFFLINE_LATENCY_MS": "1500", "EVALUATOR_WORKERS": "0"}
    async with start_stack(**settings) as stack:
        a = await new_candidate(stack, candidate_id="a")
        b = await new_candidate(stack, candidate_id="b")
        await a.chat("Which data structure finds the complement in O(1)?")

        async def submitted(key: str) -> str | grpc.aio.AioRpcError:
            try:
                events = await a.submit(REFERENCE, key=key)
            except grpc.aio.AioRpcError as exc:
                return exc
            return str(events[-1].WhichOneof("event"))

        submits = [asyncio.create_task(submitted(f"retry-{i}")) for i in range(5)]
        redis = stack.redis()
        try:
            slots = stack.key(f"limit:streams:{stack.api_key.split('_')[1]}")
            for _ in range(250):  # every submit holds a slot of the key or was refused
                if await redis.zcard(slots) + sum(t.done() for t in submits) == len(submits):
                    break
                await asyncio.sleep(0.02)
            # A's grading (the turn's evaluation) is still running: B's chat gets a slot.
            assert (await b.chat("How do I start?"))[-1].WhichOneof("event") == "completed"
        finally:
            await redis.aclose()
        outcomes = await asyncio.gather(*submits)
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert outcomes.count("report") >= 1 and len(refused) >= len(submits) - STREAMS_PER_SESSION, outcomes
        for err in refused:
            assert err.code() == grpc.StatusCode.ABORTED, err.details()
            assert "3 chats and submits of this session are streaming already" in (err.details() or "")


async def test_a_dead_holders_slot_expires(stack: Stack) -> None:
    """A gateway that dies holding a stream slot stops renewing it; the lease runs out."""
    redis = stack.redis()
    try:
        slots = Slots(redis, limit=1, lease_s=0.5)
        key = stack.key("limit:streams:dead-holder-test")
        holder = slots.hold(key)
        assert await holder.__aenter__() is None
        # The holder dies: its renewer stops, nothing releases the slot.
        for task in asyncio.all_tasks():
            if task.get_coro().__qualname__.startswith("Slots._keep"):  # type: ignore[union-attr]
                task.cancel()
        async with slots.hold(key) as refused:
            assert isinstance(refused, Refused), "held while the lease lasts"
        assert 0 < await redis.pttl(key) <= 500, "the key itself expires with the last lease"
        await asyncio.sleep(0.7)
        async with slots.hold(key) as refused:
            assert refused is None, "free once the lease ran out"
    finally:
        await redis.aclose()


async def test_slots_kept_together_are_renewed_and_freed_together(stack: Stack) -> None:
    """Slots.kept_all (a chat turn's session and key slots): one renewer keeps every slot
    past its lease while the block runs, the block's end frees them all, and a holder
    that dies frees them all when the lease runs out."""
    redis = stack.redis()
    try:
        own, shared = Slots(redis, limit=1, lease_s=0.3), Slots(redis, limit=1, lease_s=0.3)
        keys = stack.key("limit:kept-all:own"), stack.key("limit:kept-all:shared")

        def take() -> list[tuple[Slots, str, str]]:
            return [(own, keys[0], "h1"), (shared, keys[1], "h2")]

        for slots, key, holder in take():
            assert await slots._take(keys=[key], args=[slots._lease_ms, slots.limit, holder]) == 0
        async with Slots.kept_all(take()):
            await asyncio.sleep(0.6)  # twice the lease: only the renewals keep them
            assert [await redis.zcard(k) for k in keys] == [1, 1]
        assert [await redis.zcard(k) for k in keys] == [0, 0], "freed together when the block ends"

        for slots, key, holder in take():
            assert await slots._take(keys=[key], args=[slots._lease_ms, slots.limit, holder]) == 0
        dying = Slots.kept_all(take())
        await dying.__aenter__()
        renewers = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.startswith("Slots._keep")]  # type: ignore[union-attr]
        assert len(renewers) == 1, "one renewer for both slots"
        renewers[0].cancel()  # the holder dies: nothing renews or releases them
        await asyncio.sleep(0.5)
        assert [await redis.zcard(k) for k in keys] == [0, 0], "both expire with their lease"
    finally:
        await redis.aclose()


async def test_a_chats_limits_and_lease_in_one_round_trip(stack: Stack) -> None:
    """Limits.chat_turn asks the chat limit, the stream slot and the session's chat lease
    in one pipeline; refused as when they were asked one after another: a refused chat
    keeps neither the lease nor the slot, a refused slot keeps the chat counted and no lease."""
    redis = stack.redis()
    try:
        limits = Limits(redis, Keys(stack.key("")), AccessSettings(chats_per_minute=2, streams_per_key=1))
        slots = stack.key("limit:streams:k1")
        own = stack.key("limit:session_streams:s1")

        def lease() -> Lease:
            return Lease(redis, stack.key("lock:chat:s1"), ttl_s=5)

        first = lease()
        async with limits.chat_turn("s1", "k1", first) as held:
            assert held and first.held and await redis.zcard(slots) == 1
            # The key's only slot is taken: refused, and the session's lease was not taken.
            second = lease()
            with pytest.raises(ResourceExhausted, match="VIBE_LIMIT_STREAMS_PER_KEY"):
                async with limits.chat_turn("s1", "k1", second):
                    pass
            assert not second.held and await redis.zcard(own) == 1, "the refused chat gave its session slot back"
            await first.release()
        assert await redis.zcard(slots) == 0 and await redis.zcard(own) == 0, "the slots are freed when the block ends"
        # Two chats counted (the refused slot's too): the third is refused and keeps nothing.
        third = lease()
        with pytest.raises(ResourceExhausted, match="VIBE_LIMIT_CHATS_PER_MINUTE"):
            async with limits.chat_turn("s1", "k1", third):
                pass
        assert not third.held and await redis.zcard(slots) == 0
        assert await lease().try_acquire(), "the lease the refused chat's pipeline took was given back"
    finally:
        await redis.aclose()
