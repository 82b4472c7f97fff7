"""Faults struck during real sessions, one class at a time: Redis killed mid-chat, Redis
restarted from its append-only file, an evaluator and a gateway SIGKILLed mid-work,
PostgreSQL backends terminated and PostgreSQL stopped for 10 s during submits, an LLM
429 storm. The stores struck are private instances started for the test
(vibe_dev/devinfra.py), never the machine's; services that must die run as their own
processes.

Each test plays a client that retries what the API calls retryable (UNAVAILABLE,
ABORTED, DEADLINE_EXCEEDED) and fails on anything else, and checks afterwards that no
turn was lost, none was stored twice, every submit completed and every report is
complete; and where the issue says so, how soon after the fault things work again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from tests.support.faults import (
    Ledger,
    assert_intact,
    chat_turn,
    completed_turn,
    eventually,
    reported,
    resend,
    service_process,
    submit,
)
from tests.support.stack import REFERENCE, Candidate, Stack, StartStack, evaluation_runs, gemini_stack, new_candidate
from vibe.services.scoring.cgroups import CgroupTree
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.devinfra import private_postgres, private_redis
from vibe_dev.fake_gemini import FakeGemini, Reply
from vibe_dev.stack import free_port

FIRST = "Which data structure helps me avoid checking every pair?"
SECOND = "If I store value -> index while scanning, how do I handle duplicates like [3, 3]?"
# A fault test may take this long at most, whatever happens.
BOUND_S = 120


async def _streaming(candidate: Candidate, message: str, key: str, streaming: asyncio.Event) -> str:
    """A chat that sets `streaming` at its first reply chunk; its outcome's status name."""
    call = candidate.gateway.Chat(
        gateway_pb2.ChatRequest(session_id=candidate.session_id, message=message, idempotency_key=key),
        metadata=candidate.auth,
    )
    try:
        async for event in call:
            if event.WhichOneof("event") == "delta":
                streaming.set()
    except grpc.aio.AioRpcError as exc:
        streaming.set()
        return exc.code().name
    return "OK"


async def _chats_in_flight(candidates: list[Candidate], keys: dict[str, str]) -> tuple[list[asyncio.Task[str]], float]:
    """FIRST sent in every session, returned once every reply is streaming."""
    events = {c.session_id: asyncio.Event() for c in candidates}
    tasks = [asyncio.create_task(_streaming(c, FIRST, keys[c.session_id], events[c.session_id])) for c in candidates]
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events.values())), 30)
    return tasks, time.monotonic()


async def two_turn_sessions(ledger: Ledger, stack: Stack, n: int) -> list[Candidate]:
    """`n` new sessions, each with FIRST and SECOND as turns 1 and 2."""
    candidates = [await new_candidate(stack) for _ in range(n)]
    await asyncio.gather(*(chat_turn(ledger, c, FIRST) for c in candidates))
    await asyncio.gather(*(chat_turn(ledger, c, SECOND) for c in candidates))
    return candidates


async def test_redis_killed_mid_chat_then_the_retried_chat_is_not_stored_twice(start_stack: StartStack) -> None:
    ledger = Ledger()
    async with asyncio.timeout(BOUND_S):
        with private_redis() as redis_server:
            settings = {"REDIS_URL": redis_server.url, "EVALUATOR_WORKERS": "0", "VIBE_OFFLINE_LATENCY_MS": "800"}
            async with start_stack(**settings) as stack:
                candidates = [await new_candidate(stack) for _ in range(3)]
                keys = {c.session_id: str(uuid.uuid4()) for c in candidates}
                tasks, _ = await _chats_in_flight(candidates, keys)
                redis_server.kill()
                outcomes = await asyncio.gather(*tasks)
                redis_server.start()  # same port, nothing kept: every lease, cache and queued job is gone
                assert set(outcomes) <= {"OK", "UNAVAILABLE"}, outcomes
                # The client did not see (or did not trust) the answer: it sends the same request again.
                for c in candidates:
                    events = await resend(ledger, c, FIRST, keys[c.session_id], 15)
                    assert completed_turn(events) == 1, "the retry is the first turn, stored once"
                    assert events[-1].completed.user_message.content == FIRST
                    assert await chat_turn(ledger, c, SECOND) == 2
                for c in candidates:
                    await submit(ledger, c)
                await assert_intact(stack, {c.session_id: [FIRST, SECOND] for c in candidates})
    ledger.only_retryable()


async def test_redis_restarted_from_its_append_only_file_locks_no_session_out(start_stack: StartStack) -> None:
    ledger = Ledger()
    async with asyncio.timeout(BOUND_S):
        with private_redis(appendonly=True) as redis_server:
            # The default lease TTL (5 s): a lease restored from the file lives at most that long.
            settings = {"REDIS_URL": redis_server.url, "EVALUATOR_WORKERS": "0", "VIBE_OFFLINE_LATENCY_MS": "3000"}
            async with start_stack(**settings) as stack:
                candidates = [await new_candidate(stack) for _ in range(3)]
                keys = {c.session_id: str(uuid.uuid4()) for c in candidates}
                tasks, _ = await _chats_in_flight(candidates, keys)
                redis_server.kill()
                redis_server.start()
                restarted = time.monotonic()
                async with stack.redis() as redis:
                    restored = [await redis.pttl(stack.key(f"lock:chat:{c.session_id}")) for c in candidates]
                assert all(0 < ttl <= 5000 for ttl in restored), f"the chat leases came back with {restored} ms"
                await asyncio.gather(*(resend(ledger, c, FIRST, keys[c.session_id], 10, 0.1) for c in candidates))
                # Chats work again once the next turn of every session has started (its lease taken).
                started = await asyncio.gather(*(_next_turn_started(ledger, c, SECOND) for c in candidates))
                took = max(started) - restarted
                outcomes = await asyncio.gather(*tasks)
                assert set(outcomes) <= {"OK", "UNAVAILABLE"}, outcomes
                await assert_intact(stack, {c.session_id: [FIRST, SECOND] for c in candidates}, graded=False)
    assert took < 10, f"chats worked again {took:.1f}s after the restart"
    ledger.only_retryable()


async def _next_turn_started(ledger: Ledger, candidate: Candidate, message: str) -> float:
    """Sends `message` as the next turn (retrying while refused); when its turn started."""
    key = str(uuid.uuid4())
    started: list[float] = []

    async def attempt() -> None:
        call = candidate.gateway.Chat(
            gateway_pb2.ChatRequest(session_id=candidate.session_id, message=message, idempotency_key=key),
            metadata=candidate.auth,
        )
        async for event in call:
            if event.WhichOneof("event") == "turn_started" and not started:
                started.append(time.monotonic())

    await ledger.until_done(attempt, 10, pause_s=0.1)
    return started[0]


async def test_evaluator_killed_holding_turn_leases_delays_submits_by_about_one_lease(
    start_stack: StartStack,
) -> None:
    ledger = Ledger()
    lease_ttl_s = 2.0
    async with asyncio.timeout(BOUND_S), start_stack(EVALUATOR_WORKERS="0", VIBE_LEASE_TTL_S=str(lease_ttl_s)) as stack:
        candidates = await two_turn_sessions(ledger, stack, 2)
        # Its evaluations take a minute: its two workers sit on two turn leases, renewing them.
        async with service_process(
            stack, "vibe.services.evaluator", "EVALUATOR_ADDR", EVALUATOR_WORKERS="2", VIBE_OFFLINE_LATENCY_MS="60000"
        ) as victim:
            async with stack.redis() as redis:

                async def two_leases_held() -> bool:
                    return len([k async for k in redis.scan_iter(match=stack.key("lock:eval:*"))]) >= 2

                await eventually(two_leases_held, 30, "the evaluator holds two turn leases")
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
        killed = time.monotonic()
        reports = await asyncio.gather(*(submit(ledger, c) for c in candidates))
        took = time.monotonic() - killed
        for c, report in zip(candidates, reports, strict=True):
            assert [t.turn for t in report.turns] == [1, 2]
            assert await evaluation_runs(stack, c.session_id) == {1: 1, 2: 1}, "the victim stored nothing twice"
        await assert_intact(stack, {c.session_id: [FIRST, SECOND] for c in candidates})
    assert took < lease_ttl_s + 8, f"submits took {took:.1f}s after the evaluator died"
    assert "DEADLINE_EXCEEDED" not in ledger.codes
    ledger.only_retryable()


async def test_gateway_killed_during_submits_then_retried_submits_complete_promptly(start_stack: StartStack) -> None:
    ledger = Ledger()
    lease_ttl_s = 2.0
    settings = {"EVALUATOR_WORKERS": "0", "VIBE_LEASE_TTL_S": str(lease_ttl_s), "VIBE_OFFLINE_LATENCY_MS": "1500"}
    async with asyncio.timeout(BOUND_S), start_stack(**settings) as stack:
        addr = f"127.0.0.1:{free_port()}"

        def gateway() -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
            return gateway_process(stack, addr)

        async with grpc.aio.insecure_channel(addr) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            async with gateway() as victim:
                candidates = [await new_candidate_on(stub, stack.env["VIBE_API_KEY"]) for _ in range(3)]
                await asyncio.gather(*(chat_turn(ledger, c, FIRST) for c in candidates))
                await asyncio.gather(*(chat_turn(ledger, c, SECOND) for c in candidates))
                frozen = [asyncio.Event() for _ in candidates]
                tasks = [
                    asyncio.create_task(_submit_until_frozen(c, e)) for c, e in zip(candidates, frozen, strict=True)
                ]
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in frozen)), 30)
                victim.send_signal(signal.SIGKILL)
                await victim.wait()
            outcomes = await asyncio.gather(*tasks)
            assert set(outcomes) == {"UNAVAILABLE"}, outcomes
            async with gateway():
                restarted = time.monotonic()
                reports = await asyncio.gather(*(submit(ledger, c) for c in candidates))
                took = time.monotonic() - restarted
            for report in reports:
                assert [t.turn for t in report.turns] == [1, 2]
        await assert_intact(stack, {c.session_id: [FIRST, SECOND] for c in candidates})
    # Before leases, each retry waited 188 s for the dead gateway's submit lock.
    assert took < lease_ttl_s + 15, f"the retried submits took {took:.1f}s"
    ledger.only_retryable()


def gateway_process(stack: Stack, addr: str) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """A gateway of its own (a process on `addr`) in front of the stack's other services."""
    upstreams = {
        "TUTOR_ADDR": stack.addrs.tutor,
        "EVALUATOR_ADDR": stack.addrs.evaluator,
        "SCORING_ADDR": stack.addrs.scoring,
        "GATEWAY_HTTP_ADDR": "",
    }
    return service_process(stack, "vibe.services.gateway", "GATEWAY_ADDR", addr, **upstreams)


async def test_a_gateway_paused_past_its_lease_never_overwrites_the_report_of_the_one_that_took_over(
    start_stack: StartStack,
) -> None:
    ledger = Ledger()
    settings = {"EVALUATOR_WORKERS": "0", "VIBE_LEASE_TTL_S": "1", "VIBE_OFFLINE_LATENCY_MS": "1500"}
    async with asyncio.timeout(BOUND_S), start_stack(**settings) as stack:
        addr_a, addr_b = (f"127.0.0.1:{free_port()}" for _ in range(2))
        async with (
            gateway_process(stack, addr_a) as gateway_a,
            gateway_process(stack, addr_b),
            grpc.aio.insecure_channel(addr_a) as channel_a,
            grpc.aio.insecure_channel(addr_b) as channel_b,
        ):
            on_a = await new_candidate_on(gateway_pb2_grpc.GatewayStub(channel_a), stack.env["VIBE_API_KEY"])
            await chat_turn(ledger, on_a, FIRST)
            await chat_turn(ledger, on_a, SECOND)
            on_b = Candidate(gateway_pb2_grpc.GatewayStub(channel_b), on_a.session, on_a.token)
            frozen = asyncio.Event()
            stale = asyncio.create_task(_submit_report(on_a, frozen))
            await asyncio.wait_for(frozen.wait(), 30)
            gateway_a.send_signal(signal.SIGSTOP)  # a long pause: its submit lease lapses
            try:
                await asyncio.sleep(2.5)
                report_b = await submit(ledger, on_b)  # takes over: a newer lease, a higher fence
            finally:
                gateway_a.send_signal(signal.SIGCONT)
            report_a = await stale
        assert report_a == report_b, "the paused submit shows the newer report, not one of its own"
        db = await stack.db()
        try:
            [stored] = await db.fetch(
                "SELECT report, graded_at FROM submissions WHERE session_id = $1", on_a.session_id
            )
            # Nothing the paused submit did after waking (its code run, holistic judgement,
            # grade) overwrote what the newer one stored: every row predates the report.
            written = await db.fetchrow(
                "SELECT (SELECT created_at FROM final_scores WHERE session_id = $1) AS scores,"
                " (SELECT created_at FROM code_checks WHERE session_id = $1) AS code,"
                " (SELECT updated_at FROM prompt_evaluations"
                "   WHERE session_id = $1 AND evaluation_type = 'HOLISTIC_FLOW') AS holistic",
                on_a.session_id,
            )
        finally:
            await db.close()
        assert json.loads(stored["report"])["graded_at"] == json_format.MessageToDict(report_b)["gradedAt"]
        assert written is not None
        assert all(at is not None and at <= stored["graded_at"] for at in written.values()), dict(written)
        await assert_intact(stack, {on_a.session_id: [FIRST, SECOND]})
    ledger.only_retryable()


async def _submit_report(candidate: Candidate, frozen: asyncio.Event) -> gateway_pb2.Report:
    from tests.support.stack import REFERENCE

    call = candidate.gateway.Submit(
        gateway_pb2.SubmitRequest(session_id=candidate.session_id, language="python", code=REFERENCE),
        metadata=candidate.auth,
    )
    events = []
    async for event in call:
        events.append(event)
        if event.WhichOneof("event") == "progress" and event.progress.stage == "freeze":
            frozen.set()
    assert events[-1].WhichOneof("event") == "report"
    return events[-1].report


async def new_candidate_on(stub: gateway_pb2_grpc.GatewayAsyncStub, api_key: str) -> Candidate:
    reply = await stub.CreateSession(
        gateway_pb2.CreateSessionRequest(candidate_id="cand", problem_id="two-sum"),
        metadata=(("authorization", f"Bearer {api_key}"),),
    )
    return Candidate(stub, reply.session, reply.session_token)


async def _submit_until_frozen(candidate: Candidate, frozen: asyncio.Event) -> str:
    from tests.support.stack import REFERENCE

    call = candidate.gateway.Submit(
        gateway_pb2.SubmitRequest(session_id=candidate.session_id, language="python", code=REFERENCE),
        metadata=candidate.auth,
    )
    try:
        async for event in call:
            if event.WhichOneof("event") == "progress" and event.progress.stage == "freeze":
                frozen.set()
    except grpc.aio.AioRpcError as exc:
        return exc.code().name
    finally:
        frozen.set()
    return "OK"


async def test_postgres_backends_terminated_during_submits_are_retried_or_unavailable(
    start_stack: StartStack,
) -> None:
    ledger = Ledger()
    async with asyncio.timeout(BOUND_S):
        with private_postgres() as pg:
            settings = {"DATABASE_URL": pg.url, "EVALUATOR_WORKERS": "0", "VIBE_OFFLINE_LATENCY_MS": "300"}
            async with start_stack(**settings) as stack:
                candidates = await two_turn_sessions(ledger, stack, 4)
                submits = asyncio.gather(*(submit(ledger, c) for c in candidates))
                terminated = 0
                for _ in range(5):
                    await asyncio.sleep(0.3)
                    terminated += await pg.terminate_backends()
                await submits
                assert terminated > 0, "the strikes hit live connections"
                # The pools' broken connections are gone: the next requests just work.
                fresh = await new_candidate(stack)
                assert completed_turn(await fresh.chat(FIRST)) == 1
                await assert_intact(stack, {c.session_id: [FIRST, SECOND] for c in candidates})
    ledger.only_retryable()


async def test_postgres_stopped_for_ten_seconds_during_submits(start_stack: StartStack) -> None:
    ledger = Ledger()
    async with asyncio.timeout(BOUND_S):
        with private_postgres() as pg:
            settings = {"DATABASE_URL": pg.url, "EVALUATOR_WORKERS": "0", "VIBE_OFFLINE_LATENCY_MS": "500"}
            async with start_stack(**settings) as stack:
                candidates = [*await two_turn_sessions(ledger, stack, 2), await new_candidate(stack)]
                submits = asyncio.gather(*(submit(ledger, c, budget_s=90) for c in candidates[:2]))
                await asyncio.sleep(0.5)
                await asyncio.to_thread(pg.stop)
                await asyncio.sleep(10)
                await asyncio.to_thread(pg.start)
                restarted = time.monotonic()
                # After the fault, a chat in a session untouched by it works within 10 s.
                assert await chat_turn(ledger, candidates[2], FIRST, budget_s=10) == 1
                took = time.monotonic() - restarted
                await submits
                await assert_intact(stack, {c.session_id: [FIRST, SECOND] for c in candidates[:2]})
    assert took < 10
    ledger.only_retryable()


async def test_an_llm_429_storm_is_ridden_out(start_stack: StartStack, fake: FakeGemini) -> None:
    ledger = Ledger()
    settings = {
        "EVALUATOR_WORKERS": "0",
        "VIBE_LLM_CALL_BUDGET_S": "1",
        "VIBE_LLM_BACKOFF_BASE_S": "0.05",
        "VIBE_LLM_BREAKER_FAILURES": "2",
        "VIBE_LLM_BREAKER_RESET_S": "1",
        # A paid tier's quota: with the free tier's (15 requests a minute), the storm's
        # failed requests, which count, would use up the window and keep the tutor away
        # for a minute past the storm.
        "VIBE_LLM_RPM": "100000",
        "VIBE_LLM_TPM": "100000000",
    }
    async with asyncio.timeout(BOUND_S), gemini_stack(start_stack, fake, **settings) as stack:
        candidates = [await new_candidate(stack) for _ in range(3)]
        fake.storm = Reply(status=429, retry_delay_s=0.2)
        calm = asyncio.get_running_loop().call_later(4, setattr, fake, "storm", None)
        try:
            # Chats during the storm fail UNAVAILABLE with nothing stored; their retries land.
            await asyncio.gather(*(chat_turn(ledger, c, FIRST) for c in candidates))
            await asyncio.gather(*(chat_turn(ledger, c, SECOND) for c in candidates))
            fake.storm = Reply(status=429, retry_delay_s=0.2)  # and again, during the submits
            calm = asyncio.get_running_loop().call_later(3, setattr, fake, "storm", None)
            reports = await asyncio.gather(*(submit(ledger, c) for c in candidates))
        finally:
            calm.cancel()
            fake.storm = None
        for report in reports:
            assert [t.turn for t in report.turns] == [1, 2]
        await assert_intact(stack, {c.session_id: [FIRST, SECOND] for c in candidates})
    assert ledger.codes["UNAVAILABLE"] > 0, "the storm was felt"
    ledger.only_retryable()


SLOW_REFERENCE = "import time\ntime.sleep(0.7)\n" + REFERENCE  # each test run takes a while: killed mid-job


def _descendants(pid: int) -> set[int]:
    """The processes under `pid` (its sandbox servers, their runs), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


async def test_scoring_killed_mid_submit_grades_nothing_until_it_is_back_and_leaves_nothing_behind(
    start_stack: StartStack,
) -> None:
    """The scoring service SIGKILLed while it runs a submission's tests: the submit is
    UNAVAILABLE (retryable) and nothing is graded from the failure; while it is down a
    CreateSession is UNAVAILABLE and stores no session (its token would be lost with the
    answer); its sandbox runs die with it and the next scoring service sweeps their
    cgroups; once it is back the retried submit is graded once."""
    ledger = Ledger()
    async with asyncio.timeout(BOUND_S), start_stack(EVALUATOR_WORKERS="0") as stack:
        scoring_addr, gateway_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        upstreams = {
            "TUTOR_ADDR": stack.addrs.tutor,
            "EVALUATOR_ADDR": stack.addrs.evaluator,
            "SCORING_ADDR": scoring_addr,
            "GATEWAY_HTTP_ADDR": "",
        }

        def scoring() -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
            return service_process(stack, "vibe.services.scoring", "SCORING_ADDR", scoring_addr)

        async with (
            service_process(stack, "vibe.services.gateway", "GATEWAY_ADDR", gateway_addr, **upstreams),
            grpc.aio.insecure_channel(gateway_addr) as channel,
        ):
            stub = gateway_pb2_grpc.GatewayStub(channel)
            async with scoring() as victim:
                candidate = await new_candidate_on(stub, stack.env["VIBE_API_KEY"])
                assert await chat_turn(ledger, candidate, FIRST) == 1
                call = stub.Submit(
                    gateway_pb2.SubmitRequest(
                        session_id=candidate.session_id, language="python", code=SLOW_REFERENCE, idempotency_key="s1"
                    ),
                    metadata=candidate.auth,
                )
                runs: set[int] = set()
                with contextlib.suppress(grpc.aio.AioRpcError):
                    async for event in call:
                        if event.WhichOneof("event") == "progress" and event.progress.stage == "tests" and not runs:

                            async def running() -> bool:
                                runs.update(_descendants(victim.pid))
                                return any("solution" in _cmdline(p) for p in runs)

                            await eventually(running, 30, "the submission's tests run in the sandbox")
                            victim.send_signal(signal.SIGKILL)
                            await victim.wait()
                assert await call.code() == grpc.StatusCode.UNAVAILABLE, await call.details()

                async def runs_gone() -> bool:
                    return not any(_cmdline(p) for p in runs)  # "" once a process is gone

                await eventually(runs_gone, 5, "the dead service's sandbox runs are gone")

            # Down: a new session is refused and not stored; the submit is retryable, not graded.
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await new_candidate_on(stub, stack.env["VIBE_API_KEY"])
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
            db = await stack.db()
            try:
                assert await db.fetchval("SELECT count(*) FROM sessions") == 1, "no session for a failed create"
                assert await db.fetchval("SELECT count(*) FROM final_scores") == 0
                assert await db.fetchval("SELECT count(*) FROM submissions WHERE report IS NOT NULL") == 0
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await candidate.submit(SLOW_REFERENCE, key="s1")
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

                async with scoring():
                    swept = [
                        entry
                        for base in CgroupTree.detect().bases.values()
                        for entry in os.listdir(base)
                        if entry.startswith(f"vibe-sandbox-{victim.pid}-")
                    ]
                    assert swept == [], "the restarted service swept the dead one's cgroups"
                    report = reported(await ledger.until_done(lambda: candidate.submit(SLOW_REFERENCE, key="s1"), 60))
                assert report.code.passed == report.code.total > 0 and report.scores.grade
                assert await db.fetchval("SELECT count(*) FROM final_scores") == 1
                total = await db.fetchval("SELECT count(*) FROM test_results")
                assert total == report.code.total, "the test results are stored once"
            finally:
                await db.close()
    ledger.only_retryable()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
