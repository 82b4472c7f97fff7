"""What the candidate's page uses besides chat and submit, over gRPC and HTTP against the real
services: running the visible tests before a submit (RunVisibleTests, POST /run: sandboxed,
rate-limited, never graded or stored) and the session's time limit (VIBE_SESSION_TIME_LIMIT_S:
the deadline in the session, chat and runs refused after it, a submit still taken). The pages
that serve them are tested in a browser (tests/test_web_pages.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import grpc
import pytest

from tests.support.stack import REFERENCE, StartStack, new_candidate
from vibe.platform.config import ConfigError, GatewaySettings
from vibe.services.scoring.bank import DEFAULT_PROBLEMS_DIR
from vibe_api.gateway.v1 import gateway_pb2
from vibe_api.scoring.v1 import scoring_pb2

REFERENCE_CPP = (DEFAULT_PROBLEMS_DIR / "two-sum" / "reference.cpp").read_text()
WRONG = "print('0 0')\n"


def _run(session_id: str, code: str, language: str = "python") -> gateway_pb2.RunVisibleTestsRequest:
    return gateway_pb2.RunVisibleTestsRequest(session_id=session_id, language=language, code=code)


async def _refusal(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value


async def test_the_visible_tests_run_before_a_submit_and_are_limited(start_stack: StartStack) -> None:
    async with start_stack(VIBE_LIMIT_RUNS_PER_MINUTE="4") as stack:
        cand = await new_candidate(stack)
        examples = len(cand.session.problem.examples)
        assert examples >= 2

        ok = await stack.gateway.RunVisibleTests(_run(cand.session_id, REFERENCE), metadata=cand.auth)
        assert ok.verdict == scoring_pb2.VERDICT_ACCEPTED and ok.language == "python"
        assert len(ok.tests) == examples and not any(t.hidden for t in ok.tests), "the visible tests only"
        wrong = await stack.gateway.RunVisibleTests(_run(cand.session_id, WRONG), metadata=cand.auth)
        assert wrong.verdict == scoring_pb2.VERDICT_WRONG_ANSWER
        assert any(t.verdict == scoring_pb2.VERDICT_WRONG_ANSWER and t.detail for t in wrong.tests), "a diff to read"
        cpp = await stack.gateway.RunVisibleTests(_run(cand.session_id, REFERENCE_CPP, "cpp"), metadata=cand.auth)
        assert cpp.verdict == scoring_pb2.VERDICT_ACCEPTED and cpp.language == "cpp"

        base, auth = f"http://{stack.addrs.http}", {"Authorization": f"Bearer {cand.token}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/api/sessions/{cand.session_id}/run", json={"language": "python", "code": WRONG}, headers=auth
            ) as r:
                assert r.status == 200
                body = await r.json()
            assert body["verdict"] == "VERDICT_WRONG_ANSWER" and len(body["tests"]) == examples
            # The fifth run in a minute is refused, naming the limit, with a retry time.
            async with http.post(
                f"{base}/api/sessions/{cand.session_id}/run", json={"language": "python", "code": WRONG}, headers=auth
            ) as r:
                assert r.status == 429
                assert "VIBE_LIMIT_RUNS_PER_MINUTE" in (await r.json())["error"]["message"]
                assert 1 <= int(r.headers["Retry-After"]) <= 60
        err = await _refusal(stack.gateway.RunVisibleTests(_run(cand.session_id, REFERENCE), metadata=cand.auth))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "4 visible-test runs per minute per session" in (err.details() or "")

        # Never graded nor stored: the session is as it was, without a report or a turn.
        session = await stack.gateway.GetSession(
            gateway_pb2.GetSessionRequest(session_id=cand.session_id), metadata=cand.auth
        )
        assert session.status == gateway_pb2.SESSION_STATUS_ACTIVE and session.turn_count == 0
        no_report = await _refusal(cand.report())
        assert no_report.code() == grpc.StatusCode.FAILED_PRECONDITION
        conn = await stack.db()
        try:
            assert await conn.fetchval("SELECT count(*) FROM test_results") == 0
        finally:
            await conn.close()


async def test_who_may_run_the_visible_tests_and_with_what(start_stack: StartStack) -> None:
    async with start_stack() as stack:
        cand = await new_candidate(stack)
        other = await new_candidate(stack, candidate_id="other")
        call = stack.gateway.RunVisibleTests
        cases = [
            ((), grpc.StatusCode.UNAUTHENTICATED, "session token"),
            (stack.key_auth, grpc.StatusCode.PERMISSION_DENIED, "candidate's"),
            (other.auth, grpc.StatusCode.PERMISSION_DENIED, "does not belong"),
        ]
        for metadata, code, needle in cases:
            err = await _refusal(call(_run(cand.session_id, REFERENCE), metadata=metadata))
            assert err.code() == code and needle in (err.details() or ""), (code, err.details())
        bad = [
            (_run(cand.session_id, REFERENCE, "rust"), "use one of: python, cpp, javascript"),
            (_run(cand.session_id, "   "), "code is empty"),
            (_run(cand.session_id, REFERENCE, "py thon"), "language"),
        ]
        for request, needle in bad:
            err = await _refusal(call(request, metadata=cand.auth))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in (err.details() or ""), err.details()
        err = await _refusal(call(_run("no-such-session", REFERENCE), metadata=cand.auth))
        assert err.code() == grpc.StatusCode.NOT_FOUND
        # After the submit the session is closed: runs are refused, not graded again.
        await cand.submit(REFERENCE)
        err = await _refusal(call(_run(cand.session_id, REFERENCE), metadata=cand.auth))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "before the submit" in (err.details() or "")
        base = f"http://{stack.addrs.http}"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/api/sessions/{other.session_id}/run",
                data=b"{not json",
                headers={"Authorization": f"Bearer {other.token}", "Content-Type": "application/json"},
            ) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "INVALID_ARGUMENT"
            async with http.post(
                f"{base}/api/sessions/{other.session_id}/run",
                json={"language": "python", "code": 42},
                headers={"Authorization": f"Bearer {other.token}"},
            ) as r:
                assert r.status == 400 and "code must be a string" in (await r.json())["error"]["message"]


async def test_the_session_time_limit(start_stack: StartStack) -> None:
    limit_s = 4
    async with start_stack(VIBE_SESSION_TIME_LIMIT_S=str(limit_s)) as stack:
        before = datetime.now(UTC)
        cand = await new_candidate(stack)
        session = cand.session
        assert session.time_limit_s == limit_s and session.HasField("deadline")
        deadline = session.deadline.ToDatetime(tzinfo=UTC)
        assert deadline == session.created_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=limit_s)
        assert before - timedelta(seconds=2) < deadline - timedelta(seconds=limit_s) < datetime.now(UTC)
        base, auth = f"http://{stack.addrs.http}", {"Authorization": f"Bearer {cand.token}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/sessions/{cand.session_id}", headers=auth) as r:
                body = await r.json()
            assert body["time_limit_s"] == limit_s
            assert datetime.fromisoformat(body["deadline"].replace("Z", "+00:00")) == deadline

            await cand.chat("Before the end: which structure helps?")  # within the time
            await asyncio.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 0.3)

            err = await _refusal(cand.chat("After the end?"))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "VIBE_SESSION_TIME_LIMIT_S" in (err.details() or "") and "submit" in (err.details() or "")
            async with http.post(
                f"{base}/api/sessions/{cand.session_id}/chat", json={"message": "still there?"}, headers=auth
            ) as r:
                assert r.status == 409 and (await r.json())["error"]["code"] == "FAILED_PRECONDITION"
            err = await _refusal(stack.gateway.RunVisibleTests(_run(cand.session_id, REFERENCE), metadata=cand.auth))
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "time limit" in (err.details() or "")
        # The submit is taken after the deadline: that is how the session ends.
        events = await cand.submit(REFERENCE)
        report = events[-1].report
        assert report.scores.grade and len(report.turns) == 1
        late = (report.submitted_at.ToDatetime(tzinfo=UTC) - deadline).total_seconds()
        assert late > 0.3 and report.late_by_s == int(late), "graded, and shown as late"


async def test_without_a_time_limit_there_is_no_deadline(start_stack: StartStack) -> None:
    async with start_stack() as stack:
        cand = await new_candidate(stack)
        assert not cand.session.HasField("deadline") and cand.session.time_limit_s == 0
        await cand.chat("Any time: which structure helps?")


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("VIBE_SESSION_TIME_LIMIT_S", "-1", "VIBE_SESSION_TIME_LIMIT_S=-1 is out of range"),
        ("VIBE_SESSION_TIME_LIMIT_S", "an hour", "VIBE_SESSION_TIME_LIMIT_S='an hour' is not an integer"),
        ("VIBE_LIMIT_RUNS_PER_MINUTE", "0", "VIBE_LIMIT_RUNS_PER_MINUTE=0 is out of range"),
    ],
)
def test_bad_settings_name_the_variable(isolated_env: dict[str, str], name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        GatewaySettings.from_env({**isolated_env, name: value})
    assert needle in str(err.value)
