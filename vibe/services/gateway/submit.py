"""The submit guard (docs/DESIGN.md §5): freeze the session, make sure every turn is
evaluated, judge the conversation and run the code concurrently, grade, store the
report, and only then show it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import grpc

from vibe.platform.errors import (
    Aborted,
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ServiceError,
    from_rpc_error,
)
from vibe.platform.leases import Lease
from vibe.platform.metrics import SUBMIT_DURATION
from vibe.platform.telemetry import bind_session
from vibe.platform.validation import check_body_text, check_idempotency_key, check_language
from vibe.services.gateway.report import (
    build_report,
    holistic_line,
    report_from_json,
    report_to_json,
    turns_to_json,
)
from vibe.services.gateway.sessions import GatewayParts
from vibe.services.gateway.store import SessionRow
from vibe.services.gateway.timing import SessionClock
from vibe_api.evaluator.v1 import evaluator_pb2
from vibe_api.gateway.v1 import gateway_pb2
from vibe_api.scoring.v1 import scoring_pb2

log = logging.getLogger(__name__)

CHAT_DRAIN_TIMEOUT_S = 30.0  # how long a submit waits for a reply still streaming
R = TypeVar("R")


class Stage(StrEnum):
    """The steps a submit reports progress on, in order (SubmitProgress.stage)."""

    FREEZE = "freeze"
    TURNS = "turns"
    HOLISTIC = "holistic"
    TESTS = "tests"
    GRADE = "grade"


@dataclass(frozen=True)
class Progress:
    stage: Stage
    done: int
    total: int
    message: str


SubmitEvent = Progress | gateway_pb2.Report


@dataclass(frozen=True)
class SubmitGuard(GatewayParts):
    """`submit` grades a session once (a second submit returns the stored report);
    `report` shows it again."""

    async def submit(
        self, session_id: str, token: str | None, language: str, code: str, idempotency_key: str = ""
    ) -> AsyncGenerator[SubmitEvent, None]:
        """The submit guard (docs/DESIGN.md §5). Yields progress, then the stored report.

        Idempotent per session: a retry (with or without `idempotency_key`, which is kept
        with the submission) gets the stored report, or waits for the submit still
        grading (its lease), or resumes the grading of one whose holder died (the lease
        frees itself within VIBE_LEASE_TTL_S)."""
        language = check_language(language, default="python")
        check_body_text("code", code, max_bytes=self.settings.max_code_bytes)
        key = check_idempotency_key(idempotency_key)
        bind_session(session_id)
        _, problem_id = await self.sessions.authorize(session_id, token)
        # Checked before the session is frozen: a typo must not end the candidate's chat.
        languages = list((await self.sessions.problem(problem_id)).languages)
        if language not in languages:
            raise InvalidArgument(f"language {language!r} is not supported; use one of: {', '.join(languages)}")
        started = time.monotonic()

        stored = await self.store.report(session_id)
        if stored is not None:  # idempotent: the same result, never a second grading
            yield report_from_json(stored)
            return
        guard_budget = self.settings.submit_guard_timeout_s
        submit_lock = Lease(self.redis, self.keys.submit_lock(session_id), self.settings.common.lease_ttl_s)
        if not await submit_lock.acquire(timeout_s=guard_budget):
            raise Aborted("another submit of this session is still grading; ask for the report in a moment")
        submit_lock.start_heartbeat()
        try:
            stored = await self.store.report(session_id)  # graded while we waited for the lock
            if stored is not None:
                yield report_from_json(stored)
                return
            session = await self._freeze(session_id, language, code, submit_lock.fence, key)
            yield Progress(Stage.FREEZE, 1, 1, f"session frozen after {session.turn_count} turns")
            language, code = await self.store.submission(session_id)  # a retried submit keeps the first code

            deadline = time.monotonic() + guard_budget
            # The code checks need nothing the guard produces: they start at the freeze,
            # beside the turn evaluations (docs/DESIGN.md §5, step 2).
            code_task = asyncio.create_task(
                self._call(
                    self.up.scoring.CheckCode,
                    scoring_pb2.CheckCodeRequest(
                        problem_id=session.problem_id,
                        language=language,
                        code=code,
                        session_id=session_id,
                        fence=submit_lock.fence,
                    ),
                    "scoring",
                    deadline,
                )
            )
            try:
                yield Progress(Stage.TESTS, 0, 1, "running the code against the tests")
                turn_logs: dict[int, evaluator_pb2.TurnEvaluation] = {}
                async for progress in self._evaluate_all_turns(session_id, session.turn_count, deadline, turn_logs):
                    yield progress

                # Usually no LLM call: the last turn's evaluation judged the conversation
                # through it in the same call (precomputed); otherwise judged now.
                yield Progress(Stage.HOLISTIC, 0, 1, "judging the conversation as a whole")
                holistic = await self._call(
                    self.up.evaluator.EvaluateHolistic,
                    evaluator_pb2.EvaluateHolisticRequest(session_id=session_id, fence=submit_lock.fence),
                    "evaluator",
                    deadline,
                )
                yield Progress(
                    Stage.HOLISTIC, 1, 1, f"holistic flow score {holistic.score:.2f}, {holistic_line(holistic)}"
                )
                turns = [turn_logs[t] for t in sorted(turn_logs)]
                aggregate = round(sum(t.score for t in turns) / len(turns), 2) if turns else 0.0
                # Most of the stored report, made while the code checks still run: after
                # them, only the grade and the store stand between the candidate and it.
                turns_json = turns_to_json(turns)
                code_result = await code_task
            finally:
                _settle(code_task)
            yield Progress(Stage.TESTS, 1, 1, f"{code_result.passed}/{code_result.total} tests passed")

            scores = await self._call(
                self.up.scoring.GradeSession,
                scoring_pb2.GradeSessionRequest(
                    session_id=session_id,
                    holistic_flow_score=holistic.score,
                    aggregate_turn_score=aggregate,
                    performance_score=code_result.performance_score,
                    correctness_score=code_result.correctness_score,
                    fence=submit_lock.fence,
                ),
                "scoring",
                deadline,
            )
            yield Progress(Stage.GRADE, 1, 1, f"grade {scores.grade} ({scores.total_score:.2f})")
            report = build_report(
                session, turns, holistic, code_result, scores, language, code, self._late_by_s(session)
            )
            # Stored before it is shown (docs/DESIGN.md §2, item 7).
            if not await self.store.save_report(session_id, report_to_json(report, turns_json), submit_lock.fence):
                # A newer submit took over (this one outlived its lease): its report stands.
                stored = await self.store.report(session_id)
                if stored is None:
                    raise Aborted("another submit of this session took over the grading; ask for the report")
                yield report_from_json(stored)
                return
            SUBMIT_DURATION.record(time.monotonic() - started)
            log.info("session graded", extra={"session_id": session_id, "grade": scores.grade})
            yield report
        except ServiceError as exc:
            # An upstream refused this submit's writes: a newer submit took the session
            # over (this one outlived its lease). Its report, once stored, is the answer.
            if exc.code != grpc.StatusCode.ABORTED or (stored := await self.store.report(session_id)) is None:
                raise
            yield report_from_json(stored)
        finally:
            await asyncio.shield(submit_lock.release())

    async def _freeze(self, session_id: str, language: str, code: str, submit_fence: int, key: str) -> SessionRow:
        """Close the session to chat. A reply still streaming is let finish first (its
        turn belongs to the conversation), bounded by CHAT_DRAIN_TIMEOUT_S."""
        chat_lock = Lease(self.redis, self.keys.chat_lock(session_id), self.settings.common.lease_ttl_s)
        if not await chat_lock.acquire(timeout_s=CHAT_DRAIN_TIMEOUT_S):
            raise Aborted("a tutor reply is still streaming in this session; submit again when it has finished")
        try:
            return await self.store.freeze(
                session_id, language, code, chat_fence=chat_lock.fence, submit_fence=submit_fence, idempotency_key=key
            )
        finally:
            await chat_lock.release()

    async def _evaluate_all_turns(
        self, session_id: str, turn_count: int, deadline: float, into: dict[int, evaluator_pb2.TurnEvaluation]
    ) -> AsyncGenerator[Progress, None]:
        """Every turn 1..N evaluated: stored ones are read (one call), in-flight ones
        awaited, queued, dead-lettered and missing ones evaluated now, the last turn first,
        concurrently under a bound. The evaluator's per-turn lock makes sure no turn is
        evaluated twice at once."""
        if turn_count == 0:
            yield Progress(Stage.TURNS, 0, 0, "checking the evaluations of 0 turns")
            return
        statuses = await self._call(
            self.up.evaluator.GetTurnStatuses,
            evaluator_pb2.GetTurnStatusesRequest(session_id=session_id),
            "evaluator",
            deadline,
        )
        states = {s.turn: s.state for s in statuses.turns}
        yield Progress(
            Stage.TURNS, 0, turn_count, f"checking the evaluations of {turn_count} turns: {_describe_states(states)}"
        )
        dead = {s.turn for s in statuses.turns if s.state == evaluator_pb2.TURN_EVALUATION_STATE_DEAD}
        if any(s.state == evaluator_pb2.TURN_EVALUATION_STATE_DONE for s in statuses.turns):
            # The stored ones in one read, not one call each: the code checks run beside
            # this on the same machine, and every call spent here is CPU taken from them.
            stored = await self._call(
                self.up.evaluator.GetTurnEvaluations,
                evaluator_pb2.GetTurnEvaluationsRequest(session_id=session_id),
                "evaluator",
                deadline,
            )
            into.update((e.turn, e) for e in stored.evaluations if 1 <= e.turn <= turn_count)
            yield Progress(Stage.TURNS, len(into), turn_count, f"{len(into)} stored evaluation(s) read")
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

        # The last turn first: its evaluation also judges the whole conversation, so the
        # holistic judgement is ready when the other missing turns are (no call after them).
        # Tasks start in creation order, and the bound's waiters are served first come.
        order = [t for t in (turn_count, *range(1, turn_count)) if t not in into]
        tasks = [asyncio.create_task(one(turn)) for turn in order]
        try:
            for finished in asyncio.as_completed(tasks):
                evaluation = await finished
                into[evaluation.turn] = evaluation
                note = (
                    " (its background job was dead-lettered; evaluated by the guard)" if evaluation.turn in dead else ""
                )
                yield Progress(Stage.TURNS, len(into), turn_count, f"turn {evaluation.turn} evaluated{note}")
        finally:
            for task in tasks:
                task.cancel()

    def _late_by_s(self, session: SessionRow) -> int:
        return SessionClock(self.store, self.settings.access.session_time_limit_s).late_by_s(session)

    async def _call(self, method: Callable[..., Awaitable[R]], request: Any, upstream: str, deadline: float) -> R:
        """One call to an upstream within what is left of the guard's time."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded("the submit guard ran out of time; submit again to resume grading")
        try:
            return await method(request, timeout=remaining)
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, upstream) from None

    async def report(self, session_id: str, token: str | None) -> gateway_pb2.Report:
        await self.sessions.authorize(session_id, token)
        stored = await self.store.report(session_id)
        if stored is None:
            raise FailedPrecondition(f"session {session_id} has no report yet: Submit it first")
        return report_from_json(stored)


def _settle(task: asyncio.Task[Any]) -> None:
    """A side task the submit no longer waits for: cancelled if still running, its
    failure read if it failed (the submit's own error is the one that counts)."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


_STATE_NAMES = (
    (evaluator_pb2.TURN_EVALUATION_STATE_DONE, "evaluated"),
    (evaluator_pb2.TURN_EVALUATION_STATE_IN_FLIGHT, "in flight"),
    (evaluator_pb2.TURN_EVALUATION_STATE_QUEUED, "queued"),
    (evaluator_pb2.TURN_EVALUATION_STATE_DEAD, "dead-lettered"),
    (evaluator_pb2.TURN_EVALUATION_STATE_MISSING, "missing"),
)


def _describe_states(states: dict[int, evaluator_pb2.TurnEvaluationState]) -> str:
    """'2 evaluated, 1 in flight, 0 queued, 1 dead-lettered, 0 missing' for the progress."""
    return ", ".join(f"{sum(1 for s in states.values() if s == state)} {name}" for state, name in _STATE_NAMES)
