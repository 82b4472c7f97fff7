"""gRPC edge of the tutor: validates and translates, the core decides."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import grpc

from vibe.platform.errors import InvalidArgument, grpc_errors
from vibe.platform.validation import check_body_text, check_id
from vibe.services.tutor.core import Tutor
from vibe.shared.convert import guardrail_to_pb
from vibe_api.tutor.v1 import tutor_pb2, tutor_pb2_grpc

_END = object()
# Reply text the producer may hold for the RPC's task beyond what it is writing: a client
# that stops reading stops the pulling once this much is waiting (a few chunks of a reply).
_OUTBOX_CHARS = 4096


class _Outbox:
    """What the producer hands the RPC's task: reply text, then the stream's end (the done
    response and `_END`, or an exception).

    Text that arrives while the RPC's task is still writing the previous message waits
    here and leaves with whatever else came meanwhile, as one message: under load (the
    loop behind, several upstream chunks read at once) the reply travels in fewer, larger
    deltas, and every hop's per-message cost (gRPC's write, the gateway's relay, the
    candidate's read) is paid once for them. By default nothing waits for company: the
    RPC's task takes whatever is here as soon as it is free. With `coalesce_s`
    (TUTOR_STREAM_COALESCE_MS) text after the first delta waits up to that long for more;
    the first delta never waits, and the stream's end sends what is left at once. Each
    piece is added only after it passed the leak check (the producer's chunks are the
    checked ones), and the text is concatenated unchanged, so the candidate receives the
    same bytes.
    """

    def __init__(self, coalesce_s: float = 0.0) -> None:
        self._coalesce_s = coalesce_s  # TUTOR_STREAM_COALESCE_MS
        self._taken = False  # some text left already (the first delta never waits)
        self._since = 0.0  # when the oldest text waiting came
        self._text: list[str] = []
        self._chars = 0
        self._end: collections.deque[object] = collections.deque()
        self._ready = asyncio.Event()  # there is something to take
        self._room = asyncio.Event()  # the text is below _OUTBOX_CHARS again

    async def put_text(self, text: str) -> None:
        while self._chars >= _OUTBOX_CHARS:
            self._room.clear()
            await self._room.wait()
        if not self._text:
            self._since = asyncio.get_running_loop().time()
        self._text.append(text)
        self._chars += len(text)
        self._ready.set()

    def finish(self, item: object) -> None:
        """Queues an item of the stream's end, taken after the text before it."""
        self._end.append(item)
        self._ready.set()

    async def take(self) -> object:
        """The text waiting, joined; once there is none, the next item of the end."""
        while not self._text and not self._end:
            self._ready.clear()
            await self._ready.wait()
        if not self._text:
            return self._end.popleft()
        if self._taken and self._coalesce_s:
            await self._more(self._since + self._coalesce_s)
        self._taken = True
        text = self._text[0] if len(self._text) == 1 else "".join(self._text)
        self._text.clear()
        self._chars = 0
        self._room.set()
        return text

    async def _more(self, until: float) -> None:
        """Lets more text join what is waiting, until `until` (loop time), the stream's
        end, or a full outbox."""
        loop = asyncio.get_running_loop()
        while not self._end and self._chars < _OUTBOX_CHARS and (left := until - loop.time()) > 0:
            self._ready.clear()
            try:
                async with asyncio.timeout(left):
                    await self._ready.wait()
            except TimeoutError:
                return


class TutorServicer(tutor_pb2_grpc.TutorServicer):
    def __init__(self, tutor: Tutor, *, coalesce_s: float = 0.0):
        self.tutor = tutor
        self.coalesce_s = coalesce_s  # TUTOR_STREAM_COALESCE_MS: see _Outbox

    async def StreamReply(
        self, request: tutor_pb2.StreamReplyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[tutor_pb2.StreamReplyResponse]:
        """The reply is produced in a task of its own, through an `_Outbox`.

        Why: when the caller cancels while a write waits on flow control, grpc cancels
        its own task but leaves this generator suspended at `yield`, to be closed when
        garbage-collected (in another context, too late to free the upstream request).
        The RPC's done-callback cancels the producer instead, so the provider's stream
        and its upstream request are closed at once, in the task that opened them.
        The outbox holds at most `_OUTBOX_CHARS` of text: a client that stops reading
        stops the pulling, flow control intact.
        """
        outbox = _Outbox(self.coalesce_s)
        producer = asyncio.create_task(self._produce(request, outbox))

        def cancel_producer(_: Any) -> None:
            producer.cancel()

        # typeshed wants its private _DoneCallback class; any callable taking the context works.
        context.add_done_callback(cancel_producer)  # type: ignore[arg-type]
        try:
            async with grpc_errors(context):
                while True:
                    event = await outbox.take()
                    if isinstance(event, str):
                        yield tutor_pb2.StreamReplyResponse(turn=request.turn, delta=event)
                    elif isinstance(event, Exception):
                        raise event
                    elif event is _END:
                        return
                    else:
                        yield event  # type: ignore[misc]
        finally:
            producer.cancel()

    async def _produce(self, request: tutor_pb2.StreamReplyRequest, outbox: _Outbox) -> None:
        try:
            check_id("session_id", request.session_id)
            check_id("problem_id", request.problem_id)
            check_body_text("message", request.message)
            if request.turn < 1:
                raise InvalidArgument(f"turn must be >= 1, got {request.turn}")
            async with self.tutor.reply(request.session_id, request.turn, request.problem_id, request.message) as reply:
                first = True
                async for delta in reply.chunks:  # each one leak-checked before it comes out
                    await outbox.put_text(delta)
                    if first:
                        # The first chunk leaves now, not once the chunks read with it are
                        # checked too: one loop step for the RPC's task to take it.
                        first = False
                        await asyncio.sleep(0)
            leak = reply.leak.outcome
            done = tutor_pb2.ReplyDone(
                guardrail=guardrail_to_pb(reply.verdict.result()),
                provider=self.tutor.llm.name,
                model=self.tutor.llm.model,
                leak=tutor_pb2.LeakCheck(
                    cut=leak.cut, share=leak.share, language=leak.language, material=leak.material
                ),
            )
            outbox.finish(tutor_pb2.StreamReplyResponse(turn=request.turn, done=done))
        except Exception as exc:  # handed to the RPC's task, which turns it into a status
            outbox.finish(exc)
            return
        outbox.finish(_END)
