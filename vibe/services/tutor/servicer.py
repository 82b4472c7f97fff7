"""gRPC edge of the tutor: validates and translates, the core decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc

from vibe.platform.errors import InvalidArgument, grpc_errors
from vibe.platform.validation import check_body_text, check_id
from vibe.services.tutor.core import Tutor
from vibe.shared.convert import guardrail_to_pb
from vibe_api.tutor.v1 import tutor_pb2, tutor_pb2_grpc

_END = object()


class TutorServicer(tutor_pb2_grpc.TutorServicer):
    def __init__(self, tutor: Tutor):
        self.tutor = tutor

    async def StreamReply(
        self, request: tutor_pb2.StreamReplyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[tutor_pb2.StreamReplyResponse]:
        """The reply is produced in a task of its own, through a one-slot queue.

        Why: when the caller cancels while a write waits on flow control, grpc cancels
        its own task but leaves this generator suspended at `yield`, to be closed when
        garbage-collected (in another context, too late to free the upstream request).
        The RPC's done-callback cancels the producer instead, so the provider's stream
        and its upstream request are closed at once, in the task that opened them.
        The single slot keeps flow control intact: a client that stops reading stops
        the pulling, one chunk later.
        """
        events: asyncio.Queue[object] = asyncio.Queue(maxsize=1)
        producer = asyncio.create_task(self._produce(request, events))

        def cancel_producer(_: Any) -> None:
            producer.cancel()

        # typeshed wants its private _DoneCallback class; any callable taking the context works.
        context.add_done_callback(cancel_producer)  # type: ignore[arg-type]
        try:
            async with grpc_errors(context):
                while (event := await events.get()) is not _END:
                    if isinstance(event, Exception):
                        raise event
                    yield event  # type: ignore[misc]
        finally:
            producer.cancel()

    async def _produce(self, request: tutor_pb2.StreamReplyRequest, events: asyncio.Queue[object]) -> None:
        try:
            check_id("session_id", request.session_id)
            check_id("problem_id", request.problem_id)
            check_body_text("message", request.message)
            if request.turn < 1:
                raise InvalidArgument(f"turn must be >= 1, got {request.turn}")
            async with self.tutor.reply(request.session_id, request.turn, request.problem_id, request.message) as reply:
                async for delta in reply.chunks:
                    await events.put(tutor_pb2.StreamReplyResponse(turn=request.turn, delta=delta))
            leak = reply.leak.outcome
            done = tutor_pb2.ReplyDone(
                guardrail=guardrail_to_pb(reply.verdict.result()),
                provider=self.tutor.llm.name,
                model=self.tutor.llm.model,
                leak=tutor_pb2.LeakCheck(
                    cut=leak.cut, share=leak.share, language=leak.language, material=leak.material
                ),
            )
            await events.put(tutor_pb2.StreamReplyResponse(turn=request.turn, done=done))
        except Exception as exc:  # handed to the RPC's task, which turns it into a status
            await events.put(exc)
            return
        await events.put(_END)
