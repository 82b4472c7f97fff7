"""The gateway's decisions: who may touch a session, how a chat turn is numbered and
stored, and the submit guard of DESIGN §5.

The servicer (gRPC) and the HTTP API are both thin translations of this module.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis

from vibe.llm.base import GuardrailVerdict
from vibe.platform.config import GatewaySettings
from vibe.platform.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    from_rpc_error,
)
from vibe.platform.hot_state import Keys, Lock
from vibe.platform.metrics import SUBMIT_DURATION
from vibe.platform.telemetry import bind_session, inject_carrier
from vibe.services.gateway.clients import Upstreams
from vibe.services.gateway.report import build_report, report_from_json, report_to_json
from vibe.services.gateway.store import GatewayStore, MessageRow, SessionRow
from vibe.shared.convert import guardrail_from_pb
from vibe.shared.eval_queue import EvalJob, enqueue
from vibe_api.evaluator.v1 import evaluator_pb2
from vibe_api.gateway.v1 import gateway_pb2
from vibe_api.scoring.v1 import scoring_pb2
from vibe_api.tutor.v1 import tutor_pb2

log = logging.getLogger(__name__)

MAX_ID_CHARS = 200
TUTOR_REPLY_TIMEOUT_S = 120.0
CHAT_DRAIN_TIMEOUT_S = 30.0  # how long a submit waits for a reply still streaming


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


@dataclass(frozen=True)
class Progress:
    stage: str  # freeze, turns, holistic, tests, grade
    done: int
    total: int
    message: str


SubmitEvent = Progress | gateway_pb2.Report


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _require_id(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{name} is required")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(f"{name} is {len(value)} characters; the limit is {MAX_ID_CHARS}")
    return value


class Gateway:
    def __init__(
        self, settings: GatewaySettings, store: GatewayStore, redis: aioredis.Redis, keys: Keys, upstreams: Upstreams
    ):
        self.settings = settings
        self.store = store
        self.redis = redis
        self.keys = keys
        self.up = upstreams

    # ----- sessions ---------------------------------------------------------------

    async def create_session(self, candidate_id: str, problem_id: str) -> tuple[SessionRow, str]:
        """A new session and its token (returned once, stored only as a hash)."""
        candidate_id = _require_id("candidate_id", candidate_id)
        problem_id = _require_id("problem_id", problem_id)
        token = secrets.token_urlsafe(32)
        session = await self.store.create_session(candidate_id, problem_id, hash_token(token))
        log.info("session created", extra={"session_id": session.session_id, "problem_id": problem_id})
        return session, token

    async def authorize(self, session_id: str, token: str | None) -> tuple[str, str]:
        """(candidate_id, problem_id) of the session, if `token` is its token."""
        session_id = _require_id("session_id", session_id)
        identity = await self.store.session_identity(session_id)
        if identity is None:
            raise NotFound(f"no session {session_id!r}")
        if not token:
            raise Unauthenticated("missing session token: send 'authorization: Bearer <session_token>'")
        if not hmac.compare_digest(identity[2], hash_token(token)):
            raise PermissionDenied(f"this token does not belong to session {session_id}")
        return identity[0], identity[1]

    async def get_session(self, session_id: str, token: str | None) -> tuple[SessionRow, list[MessageRow]]:
        await self.authorize(session_id, token)
        session = await self.store.get_session(session_id)
        assert session is not None
        return session, await self.store.messages(session_id)

    async def problem(self, problem_id: str) -> scoring_pb2.Problem:
        try:
            return await self.up.scoring.GetProblem(scoring_pb2.GetProblemRequest(problem_id=problem_id), timeout=10)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "scoring") from None

    async def list_problems(self) -> list[scoring_pb2.Problem]:
        try:
            reply = await self.up.scoring.ListProblems(scoring_pb2.ListProblemsRequest(), timeout=10)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "scoring") from None
        return list(reply.problems)

    # ----- chat -------------------------------------------------------------------

    def _check_message(self, message: str) -> str:
        if not message.strip():
            raise InvalidArgument("message is empty; write a question or a request for the tutor")
        if len(message) > self.settings.max_message_chars:
            raise InvalidArgument(
                f"message is {len(message)} characters; the limit is {self.settings.max_message_chars}"
            )
        return message

    async def chat(self, session_id: str, token: str | None, message: str) -> AsyncGenerator[ChatEvent, None]:
        """One turn: fix its number, stream the tutor's reply, store both messages with
        the turn in one transaction, queue the turn's evaluation.

        One chat at a time per session (a Redis lease); the transaction re-checks the
        turn number and the session's status, so even an expired lease cannot make two
        messages share a turn. If the tutor fails before finishing, nothing is stored;
        if the candidate goes away mid-reply, the partial reply is stored, marked
        interrupted, and evaluated like any other turn.
        """
        self._check_message(message)
        bind_session(session_id)
        _, problem_id = await self.authorize(session_id, token)
        lock = Lock(self.redis, self.keys.chat_lock(session_id), self.settings.chat_lock_ttl_s)
        if not await lock.try_acquire():
            session = await self.store.get_session(session_id)
            if session is not None and session.status != "active":
                raise FailedPrecondition("the session was submitted; chat is closed")
            raise Aborted("the previous message of this session is still being answered; send again when it is done")
        try:
            session = await self.store.get_session(session_id)
            assert session is not None
            if session.status != "active":
                raise FailedPrecondition("the session was submitted; chat is closed")
            turn = session.turn_count + 1
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
                )
                stored = True
            except (asyncio.CancelledError, GeneratorExit):
                # The candidate went away mid-reply: keep what they saw, marked interrupted.
                if parts and not stored:
                    await asyncio.shield(self._store_interrupted(session_id, turn, message, "".join(parts)))
                raise
            await self._queue_evaluation(session_id, turn)
            yield TurnCompleted(turn, guardrail, done.provider, user, assistant)
        finally:
            await asyncio.shield(lock.release())

    async def _store_interrupted(self, session_id: str, turn: int, message: str, partial: str) -> None:
        try:
            await self.store.store_turn(
                session_id, turn, message, partial, GuardrailVerdict.ok(), provider="", interrupted=True
            )
            await self._queue_evaluation(session_id, turn)
        except Exception:
            log.exception("could not store an interrupted turn", extra={"session_id": session_id, "turn": turn})

    async def _queue_evaluation(self, session_id: str, turn: int) -> None:
        try:
            await enqueue(self.redis, self.keys, EvalJob(session_id, turn, trace_carrier=inject_carrier()))
        except Exception:
            # Not fatal: the submit guard evaluates every turn that has no evaluation.
            log.exception("could not queue a turn evaluation", extra={"session_id": session_id, "turn": turn})

    # ----- submit -----------------------------------------------------------------

    async def submit(
        self, session_id: str, token: str | None, language: str, code: str
    ) -> AsyncGenerator[SubmitEvent, None]:
        """The submit guard (DESIGN §5). Yields progress, then the stored report."""
        language = language.strip().lower() or "python"
        if not code.strip():
            raise InvalidArgument("code is empty; submit the program to grade")
        if len(code.encode()) > self.settings.max_code_bytes:
            raise InvalidArgument(f"code is {len(code.encode())} bytes; the limit is {self.settings.max_code_bytes}")
        bind_session(session_id)
        _, problem_id = await self.authorize(session_id, token)
        # Checked before the session is frozen: a typo must not end the candidate's chat.
        languages = list((await self.problem(problem_id)).languages)
        if language not in languages:
            raise InvalidArgument(f"language {language!r} is not supported; use one of: {', '.join(languages)}")
        started = time.monotonic()

        stored = await self.store.report(session_id)
        if stored is not None:  # idempotent: the same result, never a second grading
            yield report_from_json(stored)
            return
        guard_budget = self.settings.submit_guard_timeout_s
        submit_lock = Lock(self.redis, self.keys.submit_lock(session_id), guard_budget + 120)
        if not await submit_lock.acquire(timeout_s=guard_budget + 120):
            raise Aborted("another submit of this session is still grading; ask for the report in a moment")
        try:
            stored = await self.store.report(session_id)  # graded while we waited for the lock
            if stored is not None:
                yield report_from_json(stored)
                return
            session = await self._freeze(session_id, language, code)
            yield Progress("freeze", 1, 1, f"session frozen after {session.turn_count} turns")
            language, code = await self.store.submission(session_id)  # a retried submit keeps the first code

            deadline = time.monotonic() + guard_budget
            turn_logs: dict[int, evaluator_pb2.TurnEvaluation] = {}
            async for progress in self._evaluate_all_turns(session_id, session.turn_count, deadline, turn_logs):
                yield progress

            yield Progress("holistic", 0, 1, "judging the conversation as a whole")
            yield Progress("tests", 0, 1, "running the code against the tests")
            holistic, code_result = await asyncio.gather(
                self._call(
                    self.up.evaluator.EvaluateHolistic,
                    evaluator_pb2.EvaluateHolisticRequest(session_id=session_id),
                    "evaluator",
                    deadline,
                ),
                self._call(
                    self.up.scoring.CheckCode,
                    scoring_pb2.CheckCodeRequest(
                        problem_id=session.problem_id, language=language, code=code, session_id=session_id
                    ),
                    "scoring",
                    deadline,
                ),
            )
            yield Progress("holistic", 1, 1, f"holistic flow score {holistic.score:.2f}")
            yield Progress("tests", 1, 1, f"{code_result.passed}/{code_result.total} tests passed")

            turns = [turn_logs[t] for t in sorted(turn_logs)]
            aggregate = round(sum(t.score for t in turns) / len(turns), 2) if turns else 0.0
            scores = await self._call(
                self.up.scoring.GradeSession,
                scoring_pb2.GradeSessionRequest(
                    session_id=session_id,
                    holistic_flow_score=holistic.score,
                    aggregate_turn_score=aggregate,
                    performance_score=code_result.performance_score,
                    correctness_score=code_result.correctness_score,
                ),
                "scoring",
                deadline,
            )
            yield Progress("grade", 1, 1, f"grade {scores.grade} ({scores.total_score:.2f})")
            report = build_report(session, turns, holistic, code_result, scores, language, code)
            # Stored before it is shown (DESIGN §2, item 7).
            await self.store.save_report(session_id, report_to_json(report))
            SUBMIT_DURATION.record(time.monotonic() - started)
            log.info("session graded", extra={"session_id": session_id, "grade": scores.grade})
            yield report
        finally:
            await asyncio.shield(submit_lock.release())

    async def _freeze(self, session_id: str, language: str, code: str) -> SessionRow:
        """Close the session to chat. A reply still streaming is let finish first (its
        turn belongs to the conversation), bounded by CHAT_DRAIN_TIMEOUT_S."""
        chat_lock = Lock(self.redis, self.keys.chat_lock(session_id), CHAT_DRAIN_TIMEOUT_S)
        if not await chat_lock.acquire(timeout_s=CHAT_DRAIN_TIMEOUT_S):
            raise Aborted("a tutor reply is still streaming in this session; submit again when it has finished")
        try:
            return await self.store.freeze(session_id, language, code)
        finally:
            await chat_lock.release()

    async def _evaluate_all_turns(
        self, session_id: str, turn_count: int, deadline: float, into: dict[int, evaluator_pb2.TurnEvaluation]
    ) -> AsyncIterator[Progress]:
        """Every turn 1..N evaluated: stored ones are used, in-flight ones awaited, queued,
        dead-lettered and missing ones evaluated now, concurrently under a bound. The
        evaluator's per-turn lock makes sure no turn is evaluated twice at once."""
        if turn_count == 0:
            yield Progress("turns", 0, 0, "checking the evaluations of 0 turns")
            return
        statuses = await self._call(
            self.up.evaluator.GetTurnStatuses,
            evaluator_pb2.GetTurnStatusesRequest(session_id=session_id),
            "evaluator",
            deadline,
        )
        states = {s.turn: s.state for s in statuses.turns}
        yield Progress(
            "turns", 0, turn_count, f"checking the evaluations of {turn_count} turns: {_describe_states(states)}"
        )
        dead = {s.turn for s in statuses.turns if s.state == evaluator_pb2.TURN_EVALUATION_STATE_DEAD}
        bound = asyncio.Semaphore(self.settings.guard_concurrency)

        async def one(turn: int) -> evaluator_pb2.TurnEvaluation:
            async with bound:
                return await self._call(
                    self.up.evaluator.EvaluateTurn,
                    evaluator_pb2.EvaluateTurnRequest(
                        session_id=session_id, turn=turn, source=evaluator_pb2.EVALUATION_SOURCE_SUBMIT_GUARD
                    ),
                    "evaluator",
                    deadline,
                )

        tasks = [asyncio.create_task(one(turn)) for turn in range(1, turn_count + 1)]
        try:
            for finished in asyncio.as_completed(tasks):
                evaluation = await finished
                into[evaluation.turn] = evaluation
                note = (
                    " (its background job was dead-lettered; evaluated by the guard)" if evaluation.turn in dead else ""
                )
                yield Progress("turns", len(into), turn_count, f"turn {evaluation.turn} evaluated{note}")
        finally:
            for task in tasks:
                task.cancel()

    async def _call(self, method, request, upstream: str, deadline: float):  # type: ignore[no-untyped-def]
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the submit guard ran out of time; submit again to resume grading")
        try:
            return await method(request, timeout=remaining)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, upstream) from None

    async def report(self, session_id: str, token: str | None) -> gateway_pb2.Report:
        await self.authorize(session_id, token)
        stored = await self.store.report(session_id)
        if stored is None:
            raise FailedPrecondition(f"session {session_id} has no report yet: Submit it first")
        return report_from_json(stored)


_STATE_NAMES = (
    (evaluator_pb2.TURN_EVALUATION_STATE_DONE, "evaluated"),
    (evaluator_pb2.TURN_EVALUATION_STATE_IN_FLIGHT, "in flight"),
    (evaluator_pb2.TURN_EVALUATION_STATE_QUEUED, "queued"),
    (evaluator_pb2.TURN_EVALUATION_STATE_DEAD, "dead-lettered"),
    (evaluator_pb2.TURN_EVALUATION_STATE_MISSING, "missing"),
)


def _describe_states(states: dict[int, int]) -> str:
    """'2 evaluated, 1 in flight, 0 queued, 1 dead-lettered, 0 missing' for the progress."""
    return ", ".join(f"{sum(1 for s in states.values() if s == state)} {name}" for state, name in _STATE_NAMES)
