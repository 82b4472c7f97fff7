"""gRPC edge of the tutor: validates and translates, the core decides."""

from __future__ import annotations

from typing import AsyncIterator

import grpc

from tutor_service.core import Tutor
from vibe.convert import guardrail_to_pb
from vibe.errors import grpc_errors
from vibe.tutor.v1 import tutor_pb2, tutor_pb2_grpc


class TutorServicer(tutor_pb2_grpc.TutorServicer):
    def __init__(self, tutor: Tutor):
        self.tutor = tutor

    async def StreamReply(
        self, request: tutor_pb2.StreamReplyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tutor_pb2.StreamReplyResponse]:
        async with grpc_errors(context):
            # When the caller goes away, leaving this block closes the provider's stream
            # (and its upstream request) at once, not whenever it is garbage-collected.
            async with self.tutor.reply(request.session_id, request.turn, request.problem_id, request.message) as reply:
                async for delta in reply.chunks:
                    yield tutor_pb2.StreamReplyResponse(turn=request.turn, delta=delta)
            done = tutor_pb2.ReplyDone(
                guardrail=guardrail_to_pb(reply.verdict.result()), provider=self.tutor.llm.name, model=self.tutor.llm.model
            )
            yield tutor_pb2.StreamReplyResponse(turn=request.turn, done=done)
