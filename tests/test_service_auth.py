"""The internal services answer only the gateway: every method of the tutor, evaluator and
scoring services called directly without a service token, with a token signed by the
wrong secret, for another service, expired, or from a caller the method does not
accept; health and reflection stay open; a service without the secret does not start."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from typing import Any

import aiohttp
import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.faults import service_process
from tests.support.stack import Stack, internal_channel, new_candidate
from vibe.platform.service_auth import METADATA_KEY, CallPolicy, ServiceAuthError, sign
from vibe_api.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc
from vibe_api.tutor.v1 import tutor_pb2
from vibe_dev.stack import free_port

SERVICES = {
    "tutor": tutor_pb2.DESCRIPTOR.services_by_name["Tutor"],
    "evaluator": evaluator_pb2.DESCRIPTOR.services_by_name["Evaluator"],
    "scoring": scoring_pb2.DESCRIPTOR.services_by_name["Scoring"],
}
METHODS = [(name, m) for name, service in SERVICES.items() for m in service.methods]


async def _call(channel: grpc.aio.Channel, method: MethodDescriptor, metadata: tuple[tuple[str, str], ...] = ()) -> Any:
    """Calls `method` with an empty request; returns the first response (or raises)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = GetMessageClass(method.input_type)()
    response_type = GetMessageClass(method.output_type)
    kwargs: Any = {
        "request_serializer": type(request).SerializeToString,
        "response_deserializer": response_type.FromString,
    }
    if method.server_streaming:
        call = channel.unary_stream(path, **kwargs)(request, metadata=metadata, timeout=30)
        return await call.read()
    return await channel.unary_unary(path, **kwargs)(request, metadata=metadata, timeout=30)


async def _refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


def _malformed_tokens(service: str) -> list[str]:
    """Tokens of the wrong shape, from anyone who reaches the port: refused as malformed
    before any part is used (an expiry of 5000 digits made int() raise: UNKNOWN)."""
    signature = "0" * 64
    return [
        "v2:gateway:bogus",
        f"v2:gateway:{service}:{'9' * 5000}:00ff:{signature}",
        f"v2:gateway:{service}:-1:00ff:{signature}",
        f"v2:gateway:{service}:1e9:00ff:{signature}",
        f"v1:gateway:{service}:{int(time.time())}:00ff:{signature}",  # the version that signed no request
        f"v2:gateway:{service}:{int(time.time())}:00ff:{signature}:extra",
        f"v2:gateway:{service}:{int(time.time())}:00ff:{signature[:-1]}",
    ]


async def test_every_internal_method_refuses_a_call_without_a_valid_service_token(stack: Stack) -> None:
    wrong_secret = {**stack.env, "VIBE_SERVICE_SECRET": secrets.token_hex(32)}
    for service, method in METHODS:
        addr = getattr(stack.addrs, service)
        async with grpc.aio.insecure_channel(addr) as plain:
            err = await _refused(_call(plain, method))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (service, method.name)
            assert f"the {service} service answers only" in (err.details() or "")
            for malformed in _malformed_tokens(service):
                err = await _refused(_call(plain, method, ((METADATA_KEY, malformed),)))
                assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (service, method.name, malformed[:60])
                assert "malformed" in (err.details() or ""), err.details()
        async with internal_channel(wrong_secret, addr, service) as forged:
            err = await _refused(_call(forged, method))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (service, method.name)
            assert "VIBE_SERVICE_SECRET" in (err.details() or "")
        # A good signature as another caller: only the gateway calls these services.
        async with stack.internal(service, caller="tutor" if service != "tutor" else "evaluator") as other:
            err = await _refused(_call(other, method))
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (service, method.name)
            assert "answers only: gateway" in (err.details() or "")
        # A token signed for another service is no good here.
        audience = "scoring" if service != "scoring" else "tutor"
        async with internal_channel(stack.env, addr, audience) as misdirected:
            err = await _refused(_call(misdirected, method))
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_forgeries_of_the_issue_are_refused_and_the_gateway_still_works(stack: Stack) -> None:
    """GradeSession with every score at 100, another candidate's evaluations, a reply
    streamed for any session: refused without the gateway's signature."""
    candidate = await new_candidate(stack)
    await candidate.chat("Which data structure helps to find the complement quickly?")
    async with grpc.aio.insecure_channel(stack.addrs.scoring) as plain:
        forged = scoring_pb2_grpc.ScoringStub(plain).GradeSession(
            scoring_pb2.GradeSessionRequest(
                session_id=candidate.session_id,
                holistic_flow_score=100,
                aggregate_turn_score=100,
                performance_score=100,
                correctness_score=100,
            )
        )
        assert (await _refused(forged)).code() == grpc.StatusCode.UNAUTHENTICATED
    conn = await stack.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM final_scores") == 0
    finally:
        await conn.close()
    async with stack.internal("evaluator") as channel:  # signed as the gateway: answered
        turns = await evaluator_pb2_grpc.EvaluatorStub(channel).GetTurnStatuses(
            evaluator_pb2.GetTurnStatusesRequest(session_id=candidate.session_id)
        )
        assert [t.turn for t in turns.turns] == [1]
    async with stack.internal("scoring") as channel:
        listed = await scoring_pb2_grpc.ScoringStub(channel).ListProblems(scoring_pb2.ListProblemsRequest())
        assert len(listed.problems) >= 6
    report = (await candidate.submit("print(1)"))[-1].report
    assert report.scores.grade, "the gateway's own calls are signed and answered"


async def test_a_signed_call_with_another_request_is_refused(stack: Stack) -> None:
    """Someone who saw the gateway's signed GradeSession on the wire and sends its token
    with other scores, or its CheckCode's token with other code: refused, the signature
    covers the request's bytes. The call sent again unchanged is answered (the documented
    limit: a token is good for its one request for a minute), and changes nothing: the
    internal calls are idempotent or fenced."""
    candidate = await new_candidate(stack)
    secret = stack.env["VIBE_SERVICE_SECRET"].encode()
    grade = "/vibe.scoring.v1.Scoring/GradeSession"
    honest = scoring_pb2.GradeSessionRequest(session_id=candidate.session_id, correctness_score=10, fence=1)
    token = sign(secret, "gateway", "scoring", grade, honest.SerializeToString())
    forged = scoring_pb2.GradeSessionRequest(
        session_id=candidate.session_id,
        holistic_flow_score=100,
        aggregate_turn_score=100,
        performance_score=100,
        correctness_score=100,
        fence=1,
    )
    async with grpc.aio.insecure_channel(stack.addrs.scoring) as plain:
        scoring = scoring_pb2_grpc.ScoringStub(plain)
        err = await _refused(scoring.GradeSession(forged, metadata=((METADATA_KEY, token),)))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "signature does not match" in (err.details() or "")
        check = "/vibe.scoring.v1.Scoring/CheckCode"
        seen = scoring_pb2.CheckCodeRequest(problem_id="two-sum", language="python", code="print(1)")
        token_of_check = sign(secret, "gateway", "scoring", check, seen.SerializeToString())
        swapped = scoring_pb2.CheckCodeRequest(problem_id="two-sum", language="python", code="print(2)")
        err = await _refused(scoring.CheckCode(swapped, metadata=((METADATA_KEY, token_of_check),)))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        # A streamed reply's token for one session does not stream another's.
        tutor_token = sign(
            secret,
            "gateway",
            "tutor",
            "/vibe.tutor.v1.Tutor/StreamReply",
            tutor_pb2.StreamReplyRequest(
                session_id="other", turn=1, problem_id="two-sum", message="hi"
            ).SerializeToString(),
        )
    async with grpc.aio.insecure_channel(stack.addrs.tutor) as plain:
        reply = plain.unary_stream(
            "/vibe.tutor.v1.Tutor/StreamReply",
            request_serializer=tutor_pb2.StreamReplyRequest.SerializeToString,
            response_deserializer=tutor_pb2.StreamReplyResponse.FromString,
        )(
            tutor_pb2.StreamReplyRequest(session_id=candidate.session_id, turn=1, problem_id="two-sum", message="hi"),
            metadata=((METADATA_KEY, tutor_token),),
        )
        err = await _refused(reply.read())
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(stack.addrs.scoring) as plain:
        replayed = await scoring_pb2_grpc.ScoringStub(plain).GradeSession(honest, metadata=((METADATA_KEY, token),))
        assert replayed.grade, "the unchanged call is the one that was signed"
    conn = await stack.db()
    try:
        scores = await conn.fetch("SELECT correctness_score FROM final_scores")
        assert [r["correctness_score"] for r in scores] == [10], "no forged score was stored"
    finally:
        await conn.close()


async def test_health_and_reflection_need_no_token(stack: Stack) -> None:
    for service in SERVICES:
        async with grpc.aio.insecure_channel(getattr(stack.addrs, service)) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lists no methods
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICES[service].full_name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_a_token_is_bound_to_its_method_audience_and_time() -> None:
    secret = secrets.token_hex(32)
    policy = CallPolicy.declare(
        "scoring", secret, SERVICES["scoring"], {m.name: ["gateway"] for m in SERVICES["scoring"].methods}
    )
    method = "/vibe.scoring.v1.Scoring/GradeSession"
    now = time.time()
    body = scoring_pb2.GradeSessionRequest(session_id="s", correctness_score=40).SerializeToString()
    token = sign(secret.encode(), "gateway", "scoring", method, body, now=now)
    assert policy.check(method, token, body, now=now) == "gateway"
    with pytest.raises(ServiceAuthError, match="signature does not match"):
        policy.check("/vibe.scoring.v1.Scoring/CheckCode", token, body, now=now)  # signed for another method
    other = scoring_pb2.GradeSessionRequest(session_id="s", correctness_score=100).SerializeToString()
    with pytest.raises(ServiceAuthError, match="signature does not match"):
        policy.check(method, token, other, now=now)  # signed for another request
    with pytest.raises(ServiceAuthError, match="expired service token"):
        policy.check(method, token, body, now=now + 120)
    with pytest.raises(ServiceAuthError, match="too far ahead"):
        policy.check(method, sign(secret.encode(), "gateway", "scoring", method, body, now=now + 600), body, now=now)
    tampered = token.replace(":gateway:", ":evaluator:")
    with pytest.raises(ServiceAuthError, match="signature does not match"):
        policy.check(method, tampered, body, now=now)
    for malformed in _malformed_tokens("scoring"):
        with pytest.raises(ServiceAuthError, match="malformed"):
            policy.check(method, malformed, body, now=now)
    with pytest.raises(ValueError, match="no method"):
        CallPolicy.declare("scoring", secret, SERVICES["scoring"], {"Grade": ["gateway"]})


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "module", ["vibe.services.gateway", "vibe.services.tutor", "vibe.services.evaluator", "vibe.services.scoring"]
)
def test_a_service_without_the_secret_refuses_to_start(isolated_env: dict[str, str], module: str) -> None:
    import os

    base = {k: v for k, v in {**os.environ, **isolated_env}.items() if not k.startswith("VIBE_SERVICE_SECRET")}
    missing = _start(module, {**base, "GATEWAY_HTTP_ADDR": ""})
    assert missing.returncode == 2 and "VIBE_SERVICE_SECRET is not set" in missing.stderr
    assert "Traceback" not in missing.stderr
    short = _start(module, {**base, "GATEWAY_HTTP_ADDR": "", "VIBE_SERVICE_SECRET": "too-short"})
    assert short.returncode == 2 and "VIBE_SERVICE_SECRET is 9 bytes; it must be at least 32" in short.stderr
    unreadable = _start(module, {**base, "GATEWAY_HTTP_ADDR": "", "VIBE_SERVICE_SECRET_FILE": "/nonexistent/secret"})
    assert (
        unreadable.returncode == 2
        and "VIBE_SERVICE_SECRET_FILE='/nonexistent/secret' cannot be read" in unreadable.stderr
    )


async def test_a_gateway_refused_by_the_internal_services_answers_unavailable_and_stores_nothing(
    stack: Stack,
) -> None:
    """A gateway with another VIBE_SERVICE_SECRET (a rotation half done): every internal
    service refuses its calls. That is our fault, not the backend's or the candidate's:
    UNAVAILABLE (retryable) without our internals, never a 401/403 about the caller's own
    credential; and no session is stored for a CreateSession whose answer failed (its
    token would be lost, and the retry would store another)."""
    grpc_addr, http_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    upstreams = {
        "TUTOR_ADDR": stack.addrs.tutor,
        "EVALUATOR_ADDR": stack.addrs.evaluator,
        "SCORING_ADDR": stack.addrs.scoring,
        "GATEWAY_HTTP_ADDR": http_addr,
        "VIBE_SERVICE_SECRET": secrets.token_hex(32),
    }
    async with (
        service_process(stack, "vibe.services.gateway", "GATEWAY_ADDR", grpc_addr, **upstreams),
        grpc.aio.insecure_channel(grpc_addr) as channel,
    ):
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        err = await _refused(
            gateway.CreateSession(
                gateway_pb2.CreateSessionRequest(candidate_id="c", problem_id="two-sum"), metadata=stack.key_auth
            )
        )
        assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
        assert "VIBE_SERVICE_SECRET" not in (err.details() or "") and "token" not in (err.details() or "")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{http_addr}/api/problems") as r:
                assert r.status == 503, await r.text()
            async with http.post(
                f"http://{http_addr}/api/sessions",
                json={"candidate_id": "c", "problem_id": "two-sum"},
                headers={"X-API-Key": stack.api_key},
            ) as r:
                assert r.status == 503, await r.text()
                assert (await r.json())["error"]["code"] == "UNAVAILABLE"
        # A session of the stack's own gateway: its candidate's chat and visible-test run
        # through the refused gateway are UNAVAILABLE too, and store nothing.
        candidate = await new_candidate(stack)
        chat = gateway.Chat(
            gateway_pb2.ChatRequest(session_id=candidate.session_id, message="Which structure helps?"),
            metadata=candidate.auth,
        )
        err = await _refused(_drain(chat))
        assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
        run = gateway.RunVisibleTests(
            gateway_pb2.RunVisibleTestsRequest(session_id=candidate.session_id, language="python", code="print(1)"),
            metadata=candidate.auth,
        )
        err = await _refused(run)
        assert err.code() == grpc.StatusCode.UNAVAILABLE, (err.code(), err.details())
    conn = await stack.db()
    try:
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 1, "only the stack's own session"
        assert await conn.fetchval("SELECT count(*) FROM messages") == 0
    finally:
        await conn.close()


async def _drain(call: Any) -> list[Any]:
    return [event async for event in call]
