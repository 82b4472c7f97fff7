"""gRPC edge of the gateway: reads the session token from metadata, translates
requests to the core and its events to protobuf."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from vibe.platform.errors import grpc_errors
from vibe.services.gateway.access import Credential
from vibe.services.gateway.chat import ReplyDelta, TurnCompleted, TurnStarted
from vibe.services.gateway.core import Gateway
from vibe.services.gateway.store import MessageRow, Role, SessionRow, SessionStatus
from vibe.services.gateway.submit import Progress
from vibe.services.gateway.timing import SessionClock
from vibe.shared.convert import guardrail_to_pb
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_api.scoring.v1 import scoring_pb2
from vibe_api.tutor.v1 import tutor_pb2

_STATUS = {
    SessionStatus.ACTIVE: gateway_pb2.SESSION_STATUS_ACTIVE,
    SessionStatus.SUBMITTED: gateway_pb2.SESSION_STATUS_SUBMITTED,
    SessionStatus.GRADED: gateway_pb2.SESSION_STATUS_GRADED,
}
_ROLE = {Role.USER: tutor_pb2.ROLE_USER, Role.ASSISTANT: tutor_pb2.ROLE_ASSISTANT}


def credential(context: grpc.aio.ServicerContext[Any, Any]) -> Credential:
    """The call's API key or session token (`authorization: Bearer ...`, or `x-api-key`)."""
    metadata = [(k, v) for k, v in context.invocation_metadata() or () if isinstance(v, str)]
    return Credential.parse(
        [v for k, v in metadata if k == "authorization"], [v for k, v in metadata if k == "x-api-key"]
    )


def message_to_pb(m: MessageRow) -> tutor_pb2.ChatMessage:
    pb = tutor_pb2.ChatMessage(session_id=m.session_id, turn=m.turn, role=_ROLE[m.role], content=m.content)
    pb.created_at.FromDatetime(m.created_at)
    return pb


def session_to_pb(
    s: SessionRow,
    messages: list[MessageRow] | None = None,
    problem: scoring_pb2.Problem | None = None,
    clock: SessionClock | None = None,
) -> gateway_pb2.Session:
    pb = gateway_pb2.Session(
        session_id=s.session_id,
        candidate_id=s.candidate_id,
        problem_id=s.problem_id,
        status=_STATUS[s.status],
        turn_count=s.turn_count,
        messages=[message_to_pb(m) for m in messages or ()],
    )
    pb.created_at.FromDatetime(s.created_at)
    if s.submitted_at is not None:
        pb.submitted_at.FromDatetime(s.submitted_at)
    if problem is not None:
        pb.problem.CopyFrom(problem)
    if clock is not None and (deadline := clock.deadline(s)) is not None:
        pb.deadline.FromDatetime(deadline)
        pb.time_limit_s = clock.time_limit_s
    return pb


class GatewayServicer(gateway_pb2_grpc.GatewayServicer):
    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def CreateSession(
        self, request: gateway_pb2.CreateSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.CreateSessionResponse:
        async with grpc_errors(context):
            session, token, problem = await self.gateway.guarded.create_session(
                credential(context), request.candidate_id, request.problem_id
            )
            return gateway_pb2.CreateSessionResponse(
                session=session_to_pb(session, problem=problem, clock=self.gateway.clock), session_token=token
            )

    async def GetSession(
        self, request: gateway_pb2.GetSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.Session:
        async with grpc_errors(context):
            session, messages = await self.gateway.guarded.get_session(credential(context), request.session_id)
            problem = await self.gateway.sessions.problem(session.problem_id)
            return session_to_pb(session, messages, problem, self.gateway.clock)

    async def Chat(
        self, request: gateway_pb2.ChatRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[gateway_pb2.ChatEvent]:
        async with grpc_errors(context):
            events = self.gateway.guarded.chat(
                credential(context), request.session_id, request.message, request.idempotency_key
            )
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, TurnStarted):
                        yield gateway_pb2.ChatEvent(turn=event.turn, turn_started=True)
                    elif isinstance(event, ReplyDelta):
                        yield gateway_pb2.ChatEvent(turn=event.turn, delta=event.text)
                    elif isinstance(event, TurnCompleted):
                        yield gateway_pb2.ChatEvent(
                            turn=event.turn,
                            completed=gateway_pb2.ChatCompleted(
                                turn=event.turn,
                                guardrail=guardrail_to_pb(event.guardrail),
                                provider=event.provider,
                                user_message=message_to_pb(event.user),
                                assistant_message=message_to_pb(event.assistant),
                                leak_cut=event.assistant.leak_cut,
                            ),
                        )

    async def Submit(
        self, request: gateway_pb2.SubmitRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[gateway_pb2.SubmitEvent]:
        async with grpc_errors(context):
            events = self.gateway.guarded.submit(
                credential(context), request.session_id, request.language, request.code, request.idempotency_key
            )
            async with contextlib.aclosing(events):
                async for event in events:
                    if isinstance(event, Progress):
                        yield gateway_pb2.SubmitEvent(
                            progress=gateway_pb2.SubmitProgress(
                                stage=event.stage, done=event.done, total=event.total, message=event.message
                            )
                        )
                    else:
                        yield gateway_pb2.SubmitEvent(report=event)

    async def RunVisibleTests(
        self, request: gateway_pb2.RunVisibleTestsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.RunVisibleTestsResponse:
        async with grpc_errors(context):
            return await self.gateway.guarded.run_visible_tests(
                credential(context), request.session_id, request.language, request.code
            )

    async def GetReport(
        self, request: gateway_pb2.GetReportRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> gateway_pb2.Report:
        async with grpc_errors(context):
            return await self.gateway.guarded.report(credential(context), request.session_id)
