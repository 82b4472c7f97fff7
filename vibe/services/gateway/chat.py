"""One chat turn: fix its number, stream the tutor's reply, store both messages with
the turn, queue the turn's evaluation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import grpc

from vibe.llm.base import GuardrailVerdict
from vibe.platform.errors import Aborted, FailedPrecondition, Unavailable, from_rpc_error
from vibe.platform.leases import Lease
from vibe.platform.telemetry import bind_session, inject_carrier
from vibe.platform.validation import check_body_text, check_idempotency_key
from vibe.services.gateway.idempotency import CHAT_RETRY_WAIT_S, ChatRetries, request_key
from vibe.services.gateway.limits import check_turn_limit
from vibe.services.gateway.sessions import GatewayParts
from vibe.services.gateway.store import MessageRow, SessionRow, SessionStatus, StoredTurn
from vibe.shared.convert import guardrail_from_pb
from vibe.shared.eval_queue import EvalJob, enqueue, enqueue_on
from vibe_api.tutor.v1 import tutor_pb2

log = logging.getLogger(__name__)

TUTOR_REPLY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class TurnStarted:
    turn: int


@dataclass(frozen=True)
class ReplyDelta:
    turn: int
    text: str


@dataclass(frozen=True)
class TurnCompleted:
    turn: int
    guardrail: GuardrailVerdict
    provider: str
    user: MessageRow
    assistant: MessageRow


ChatEvent = TurnStarted | ReplyDelta | TurnCompleted


def _replay(stored: StoredTurn) -> list[ChatEvent]:
    """The events of a stored turn, as its first attempt sent them: the reply whole."""
    turn = stored.user.turn
    deltas: list[ChatEvent] = [ReplyDelta(turn, stored.assistant.content)] if stored.assistant.content else []
    completed = TurnCompleted(turn, stored.guardrail, stored.provider, stored.user, stored.assistant)
    return [TurnStarted(turn), *deltas, completed]


@dataclass(frozen=True)
class Chat(GatewayParts):
    """Chat turns of any session: `turn` streams one, the rest is its bookkeeping."""

    def _check_message(self, message: str) -> str:
        return check_body_text("message", message, max_chars=self.settings.max_message_chars)

    def check_request(self, message: str, idempotency_key: str) -> None:
        """What `turn` checks of the request first: callers that count a chat against a
        limit call it before, so that an invalid request is not counted."""
        self._check_message(message)
        check_idempotency_key(idempotency_key)

    def lease(self, session_id: str) -> Lease:
        """The session's chat lease (one chat at a time per session), not taken yet."""
        return Lease(self.redis, self.keys.chat_lock(session_id), self.settings.common.lease_ttl_s)

    async def turn(
        self,
        session_id: str,
        token: str | None,
        message: str,
        idempotency_key: str = "",
        *,
        lease: Lease | None = None,
        held: bool = False,
    ) -> AsyncGenerator[ChatEvent, None]:
        """One turn: fix its number, stream the tutor's reply, store both messages with
        the turn in one transaction, queue the turn's evaluation.

        One chat at a time per session (a Redis lease, renewed while the reply streams,
        fenced); the transaction re-checks the turn number, the session's status and the
        lease's fencing token, so even an expired lease cannot make two messages share a
        turn. If the tutor fails before finishing, nothing is stored; if the candidate
        goes away mid-reply, the partial reply is stored, marked interrupted, and
        evaluated like any other turn. A retried request (same idempotency key, or the
        same message as the last turn within the dedup window) replays the stored turn
        (idempotency.py).

        `lease`: the session's chat lease, already tried by the caller (`held`: taken),
        released here however the turn ends; without it the turn takes its own.
        """
        lock = lease if lease is not None else self.lease(session_id)
        try:
            self._check_message(message)
            client_key = check_idempotency_key(idempotency_key)
            bind_session(session_id)
            _, problem_id = await self.sessions.authorize(session_id, token)
            retries = ChatRetries(self.store, self.settings.chat_dedup_window_s)
            session: SessionRow | None = None
            if lease is None:
                held = await lock.try_acquire()
            if not held:
                stored_turn = await retries.find(session_id, message, client_key)
                if stored_turn is not None:
                    for replayed in _replay(stored_turn):
                        yield replayed
                    return
                # A retry of an attempt still answering waits for it, then gets its turn.
                if not (client_key and await lock.acquire(timeout_s=CHAT_RETRY_WAIT_S)):
                    session = await self.store.get_session(session_id)
                    if session is not None and session.status is not SessionStatus.ACTIVE:
                        raise FailedPrecondition("the session was submitted; chat is closed")
                    raise Aborted(
                        "the previous message of this session is still being answered; send again when it is done"
                    )
            # With the lease held, one round trip reads the session and the turn this request
            # may repeat (nobody can store a turn of the session meanwhile).
            session, stored_turn = await retries.find_with_session(session_id, message, client_key)
            if stored_turn is not None:
                await asyncio.shield(lock.release())
                for replayed in _replay(stored_turn):
                    yield replayed
                return
            lock.start_heartbeat()
            key = request_key(client_key)
            assert session is not None
            if session.status is not SessionStatus.ACTIVE:
                raise FailedPrecondition("the session was submitted; chat is closed")
            turn = session.turn_count + 1
            check_turn_limit(turn, self.settings.access.turns_per_session)
            bind_session(session_id, turn)
            yield TurnStarted(turn)
            parts: list[str] = []
            done: tutor_pb2.ReplyDone | None = None
            stored = False
            try:
                call = self.up.tutor.StreamReply(
                    tutor_pb2.StreamReplyRequest(
                        session_id=session_id, turn=turn, problem_id=problem_id, message=message
                    ),
                    timeout=TUTOR_REPLY_TIMEOUT_S,
                )
                try:
                    async for event in call:
                        if event.WhichOneof("event") == "delta":
                            parts.append(event.delta)
                            yield ReplyDelta(turn, event.delta)
                        else:
                            done = event.done
                except grpc.aio.AioRpcError as exc:
                    if parts and exc.code() == grpc.StatusCode.UNAVAILABLE:
                        # The candidate saw part of a reply: say that none of it was kept.
                        raise Unavailable(
                            "the tutor's reply broke off midway and nothing of this turn was saved; "
                            "please send your message again"
                        ) from None
                    raise from_rpc_error(exc, "tutor") from None
                if done is None:
                    raise Unavailable("the tutor's reply ended early; please send the message again")
                guardrail = guardrail_from_pb(done.guardrail)
                user, assistant = await self.store.store_turn(
                    session_id,
                    turn,
                    message,
                    "".join(parts),
                    guardrail,
                    done.provider,
                    interrupted=False,
                    leak_cut=done.leak.cut,
                    leak_share=done.leak.share if done.HasField("leak") else None,
                    leak_material=done.leak.material or None,
                    idempotency_key=key,
                    fence=lock.fence,
                )
                stored = True
            except (asyncio.CancelledError, GeneratorExit):
                # The candidate went away mid-reply: keep what they saw, marked interrupted.
                if parts and not stored:
                    await asyncio.shield(
                        self._store_interrupted(session_id, turn, message, "".join(parts), key, lock.fence)
                    )
                raise
            # The turn is stored: its evaluation queued and the lease released in one round trip.
            await self._queue_evaluation(session_id, turn, lock)
            yield TurnCompleted(turn, guardrail, done.provider, user, assistant)
        finally:
            await asyncio.shield(lock.release())  # a no-op when it is not held (or released already)

    async def _store_interrupted(
        self, session_id: str, turn: int, message: str, partial: str, key: str, fence: int
    ) -> None:
        try:
            await self.store.store_turn(
                session_id,
                turn,
                message,
                partial,
                GuardrailVerdict.ok(),
                provider="",
                interrupted=True,
                idempotency_key=key,
                fence=fence,
            )
            await self._queue_evaluation(session_id, turn)
        except Exception:
            log.exception("could not store an interrupted turn", extra={"session_id": session_id, "turn": turn})

    async def _queue_evaluation(self, session_id: str, turn: int, lease: Lease | None = None) -> None:
        """Queues the stored turn's evaluation; with `lease` (the session's chat lease, no
        longer needed once the turn is stored), releases it in the same round trip."""
        job = EvalJob(session_id, turn, trace_carrier=inject_carrier())
        try:
            if lease is None:
                await enqueue(self.redis, self.keys, job)
                return
            await lease.stop_heartbeat()
            async with self.redis.pipeline(transaction=False) as pipe:
                enqueue_on(pipe, self.keys, job)
                lease.release_on(pipe)  # best effort, as `release`: the turn's end tries again
                queued = (await pipe.execute(raise_on_error=False))[0]
            lease.released()
            if isinstance(queued, Exception):
                raise queued
        except Exception:
            # Not fatal: the submit guard evaluates every turn that has no evaluation.
            log.exception("could not queue a turn evaluation", extra={"session_id": session_id, "turn": turn})
