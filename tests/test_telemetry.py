"""One trace per candidate request across every service, exported over OTLP to a real
receiver by the four services running as separate processes."""

from __future__ import annotations

import json
import logging
import os

import grpc

from tests.support.stack import REFERENCE, Candidate, StartStack, key_auth
from vibe.platform.logs import JsonFormatter
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.otlp_receiver import otlp_receiver
from vibe_dev.stack import process_stack


async def test_chat_and_submit_each_make_one_trace_across_services(isolated_env: dict[str, str]) -> None:
    async with otlp_receiver() as (receiver, endpoint):
        env = {
            **os.environ,
            **isolated_env,
            "GATEWAY_HTTP_ADDR": "",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        }
        async with process_stack(env, quiet=True) as addrs, grpc.aio.insecure_channel(addrs.gateway) as channel:
            gateway = gateway_pb2_grpc.GatewayStub(channel)
            created = await gateway.CreateSession(
                gateway_pb2.CreateSessionRequest(candidate_id="c", problem_id="two-sum"),
                metadata=key_auth(addrs.api_key),
            )
            candidate = Candidate(gateway, created.session, created.session_token)
            sid = candidate.session_id
            await candidate.chat("Can you give me a hint about which data structure to use?")

            chats = await receiver.wait_for(lambda s: s.name == "/vibe.gateway.v1.Gateway/Chat")
            assert len(chats) == 1
            chat_trace = [s for s in receiver.spans if s.trace_id == chats[0].trace_id]
            services = {s.service for s in chat_trace}
            assert {"gateway", "tutor"} <= services
            llm = [s for s in chat_trace if s.name == "llm.stream_tutor_reply"]
            assert llm and llm[0].service == "tutor" and llm[0].attributes["llm.provider"] == "offline"
            assert any(s.name.startswith("/vibe.tutor.v1.Tutor/StreamReply") for s in chat_trace)
            for span in chat_trace:
                assert span.attributes.get("session.id") == sid, span.name
            assert llm[0].attributes.get("turn") == 1

            jobs = await receiver.wait_for(lambda s: s.name == "evaluation job")
            assert len(jobs) == 1 and jobs[0].service == "evaluator"
            assert jobs[0].trace_id != chats[0].trace_id, "the evaluation is a trace of its own"
            assert any(link[0] == chats[0].trace_id for link in jobs[0].links), "linked to the chat"
            job_trace = [s for s in receiver.spans if s.trace_id == jobs[0].trace_id]
            assert any(s.name == "llm.evaluate_turn" for s in job_trace)
            assert all(s.attributes.get("session.id") == sid for s in job_trace)

            await candidate.submit(REFERENCE)
            submits = await receiver.wait_for(lambda s: s.name == "/vibe.gateway.v1.Gateway/Submit")
            assert len(submits) == 1
            submit_trace = await receiver.wait_for(
                lambda s: s.trace_id == submits[0].trace_id and s.service == "scoring"
            )
            services = {s.service for s in receiver.spans if s.trace_id == submits[0].trace_id}
            assert {"gateway", "evaluator", "scoring"} <= services, services
            assert submit_trace
            assert not any("grpc.health" in s.name for s in receiver.spans), "health checks stay out of traces"
            await receiver.wait_for(lambda s: "rpc.server.duration" in receiver.metric_names, timeout_s=10)
            assert {"rpc.server.duration", "llm.calls"} <= receiver.metric_names


async def test_logs_are_json_with_trace_ids_and_no_candidate_code(start_stack: StartStack, caplog) -> None:  # type: ignore[no-untyped-def]
    secret_code = "print('CANDIDATE-CODE-MARKER-93b1')"
    caplog.set_level(logging.INFO)
    async with start_stack() as stack:
        created = await stack.gateway.CreateSession(
            gateway_pb2.CreateSessionRequest(candidate_id="c", problem_id="two-sum"), metadata=stack.key_auth
        )
        candidate = Candidate(stack.gateway, created.session, created.session_token)
        await candidate.chat("A hint please, my message text MESSAGE-MARKER-77")
        await candidate.submit(secret_code)
    formatter = JsonFormatter("test")
    lines = [formatter.format(r) for r in caplog.records if r.levelno >= logging.INFO]
    assert lines, "the services log their events"
    for line in lines:
        event = json.loads(line)
        assert {"ts", "level", "service", "msg"} <= set(event)
        assert "CANDIDATE-CODE-MARKER" not in line and "MESSAGE-MARKER" not in line
