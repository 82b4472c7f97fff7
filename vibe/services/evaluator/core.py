"""The evaluator's decisions: make sure a turn is evaluated exactly once in effect,
build the turn log of docs/DESIGN.md §2, say where each turn's evaluation stands, and judge
the conversation as a whole."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from vibe.llm.base import EvaluatedTurn, Exchange, HolisticJudgement, Intent, LLMProvider, ProblemContext, RubricScore
from vibe.llm.deadline import deadline_scope
from vibe.llm.usage import metered
from vibe.llm.usage_store import PHASE_BACKGROUND, PHASE_SUBMIT, save_calls, session_usage, tally
from vibe.platform.errors import DeadlineExceeded, FailedPrecondition, NotFound
from vibe.platform.hot_state import Keys
from vibe.platform.leases import Lease
from vibe.services.evaluator.store import (
    ConversationRecord,
    EvaluationStore,
    GuardrailRecord,
    HolisticRecord,
    Spent,
    TurnInputs,
    TurnLog,
)
from vibe.shared.convert import guardrail_from_columns
from vibe.shared.eval_queue import JobAck, dead_turns, queued_turns
from vibe.shared.records import load_exchanges, load_problem_context, session_problem_id

log = logging.getLogger(__name__)


class EvaluationSource(StrEnum):
    """Who asked for a turn's evaluation (kept in the turn log as its value)."""

    BACKGROUND = "background"  # a worker, from the queue
    SUBMIT_GUARD = "submit_guard"  # the gateway's submit guard


_WAIT_POLL_S = 0.05
# LLM calls end this long before the caller's deadline: time to fall back and store.
_LLM_DEADLINE_MARGIN_S = 0.5
_PHASES = {EvaluationSource.BACKGROUND: PHASE_BACKGROUND, EvaluationSource.SUBMIT_GUARD: PHASE_SUBMIT}


class TurnState(StrEnum):
    """Where a turn's evaluation stands, most advanced first: a turn in several (a
    stored evaluation and a duplicate job still queued) is reported in the first."""

    DONE = "done"  # stored in PostgreSQL
    IN_FLIGHT = "in_flight"  # someone holds the turn's evaluation lock
    QUEUED = "queued"  # a job for it is in the stream
    DEAD = "dead"  # its job is in the dead-letter stream
    MISSING = "missing"  # none of the above: only the submit guard will evaluate it


@dataclass(frozen=True)
class TurnStatus:
    turn: int
    state: TurnState
    # Set whenever a job of the turn was dead-lettered, even if it was evaluated since.
    dead_reason: str = ""
    dead_attempts: int = 0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _conversation(
    history: list[Exchange], verdicts: dict[int, tuple[str, float, str, bool]], refused: set[int]
) -> list[EvaluatedTurn]:
    """The turns before the evaluated one as the holistic judge sees them: with their
    stored evaluation (`verdicts`), or (not evaluated yet: being evaluated beside this one)
    their transcript alone, intent and score unknown (`refused`: the guardrail's refusals)."""
    conversation = []
    for ex in history:
        known = verdicts.get(ex.turn)
        if known is None:
            conversation.append(EvaluatedTurn(ex.turn, ex.user, ex.assistant, None, None, ex.turn in refused))
        else:
            intent, score, summary, violated = known
            conversation.append(EvaluatedTurn(ex.turn, ex.user, summary, Intent(intent), score, violated))
    return conversation


class Evaluator:
    def __init__(
        self,
        db: asyncpg.Pool,
        redis: aioredis.Redis,
        keys: Keys,
        store: EvaluationStore,
        llm: LLMProvider,
        lease_ttl_s: float,
    ):
        self.db = db
        self.redis = redis
        self.keys = keys
        self.store = store
        self.llm = llm
        self.lease_ttl_s = lease_ttl_s
        self._problems: dict[str, ProblemContext] = {}

    async def _problem(self, problem_id: str) -> ProblemContext:
        if problem_id not in self._problems:
            self._problems[problem_id] = await load_problem_context(self.db, problem_id)
        return self._problems[problem_id]

    async def ensure_turn(
        self, session_id: str, turn: int, source: EvaluationSource, timeout_s: float, ack: JobAck | None = None
    ) -> TurnLog:
        """The turn's evaluation: stored -> returned; being evaluated elsewhere -> waited
        for (up to `timeout_s`); otherwise evaluated here, under the turn's lock, so two
        callers never evaluate the same turn at once. `ack` (a queued job's) goes with the
        evaluation's Redis writes when it is stored here (then `ack.sent`).

        The lock is a lease renewed while this evaluation runs: if its holder dies, the
        next caller takes over within VIBE_LEASE_TTL_S; and its fencing token goes with
        the result, so a holder that stalled past its lease cannot overwrite the result
        of the one that took over."""
        deadline = time.monotonic() + timeout_s
        # A background job's turn was stored a moment ago and is hardly ever evaluated yet:
        # its first look is the one under the lease below (a duplicate job finds the stored
        # evaluation there), which saves a Redis and a PostgreSQL read per turn.
        look = source is not EvaluationSource.BACKGROUND
        while True:
            if look:
                stored = await self.store.get_turn_log(session_id, turn)
                if stored is not None:
                    return stored
            look = True
            lease = Lease(self.redis, self.keys.eval_lock(session_id, turn), self.lease_ttl_s)
            if await lease.try_acquire():
                async with lease.kept():
                    # It may have been finished between our read and taking the lease: the
                    # one read below says so, beside everything the evaluation needs.
                    inputs = await self.store.turn_inputs(session_id, turn)
                    if inputs.stored is not None:
                        return inputs.stored
                    return await self._evaluate_turn(inputs, session_id, turn, source, deadline, lease, ack)
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(
                    f"turn {turn} of session {session_id} is still being evaluated elsewhere after {timeout_s:.1f}s"
                )
            await asyncio.sleep(_WAIT_POLL_S)

    async def _evaluate_turn(
        self,
        inputs: TurnInputs,
        session_id: str,
        turn: int,
        source: EvaluationSource,
        deadline: float,
        lease: Lease,
        ack: JobAck | None,
    ) -> TurnLog:
        stored_turn = inputs.turn
        if stored_turn is None:
            raise NotFound(f"session {session_id!r} has no completed turn {turn}")
        fence = lease.fence
        problem = await self._problem(stored_turn.problem_id)
        history = inputs.history
        guardrail = guardrail_from_columns(stored_turn.guardrail_violation, stored_turn.guardrail_reason)
        conversation = _conversation(history, inputs.verdicts, inputs.refused)
        with metered() as meter, deadline_scope(deadline - _LLM_DEADLINE_MARGIN_S):
            # The same call judges the conversation through this turn (no call of its own):
            # the holistic judgement stays fresh while the candidate works.
            judgement = await self.llm.evaluate_turn(problem, history, stored_turn.exchange, guardrail, conversation)
        score, rubrics = judgement.score, list(judgement.rubrics)
        final_reasoning = judgement.final_reasoning
        if guardrail.violated:
            # docs/DESIGN.md §2: a guardrail violation is scored 0, whatever the judge thought.
            score = 0.0
            # The intent's own criteria and weights stay, so the report still shows what was judged.
            rubrics = [
                dataclasses.replace(r, score=0.0, reason=f"guardrail violation: {guardrail.violation}") for r in rubrics
            ]
            if "guardrail" not in final_reasoning.lower():
                final_reasoning = f"Guardrail violation ({guardrail.violation}); scored 0. {final_reasoning}"
        turn_log = build_turn_log(
            session_id=session_id,
            turn=turn,
            intent=judgement.intent,
            score=score,
            rubrics=rubrics,
            final_reasoning=final_reasoning,
            user_prompt_summary=judgement.user_prompt_summary,
            llm_answer_summary=judgement.llm_answer_summary,
            llm_answer_reasoning=judgement.llm_answer_reasoning,
            guardrail={
                "violated": guardrail.violated,
                "violation_type": str(guardrail.violation) if guardrail.violation else "",
                "reason": guardrail.reason,
                # The tutor's reply started reproducing a reference solution and was cut.
                "leak_cut": stored_turn.leak_cut,
            },
            interrupted=stored_turn.interrupted,
            turn_at=inputs.turn_at,
            provider=judgement.provider or self.llm.name,
            model=judgement.model or self.llm.model,
            degraded=judgement.degraded,
            judge_samples=judgement.samples,
            score_spread=judgement.score_spread,
            usage=tally(meter.calls),
            source=source,
        )
        if judgement.holistic is not None:
            turn_log["holistic"] = conversation_record(judgement.holistic, turn, conversation, self.llm)
        # Stored, the hot copy and the run count written, the lease released and the job
        # acknowledged in one Redis round trip: the evaluation is done once it is in PostgreSQL.
        # What was spent is stored in the same statement, also when the fence refuses the evaluation.
        stored, ours, runs = await self.store.save_evaluation(
            turn_log, fence, lease, ack, Spent(_PHASES[source], meter.calls)
        )
        if not ours:
            log.warning(
                "a newer lease holder stored this turn's evaluation first; returning theirs",
                extra={"session_id": session_id, "turn": turn, "fence": fence},
            )
            return stored
        log.info(
            "turn evaluated",
            extra={
                "session_id": session_id,
                "turn": turn,
                "source": source,
                "score": score,
                "runs": runs,
                "provider": turn_log["provider"],
                "degraded": judgement.degraded,
                "llm_calls": len(meter.calls),
            },
        )
        return turn_log

    async def turn_statuses(self, session_id: str) -> list[TurnStatus]:
        """The state of every completed turn 1..N of the session (NOT_FOUND if unknown)."""
        turn_count = await self.store.session_turn_count(session_id)
        turns = range(1, turn_count + 1)
        done = await self.store.evaluated_turns(session_id)
        open_turns = [t for t in turns if t not in done]
        async with self.redis.pipeline(transaction=False) as pipe:
            for turn in open_turns:
                pipe.exists(self.keys.eval_lock(session_id, turn))
            in_flight = {t for t, held in zip(open_turns, await pipe.execute(), strict=True) if held}
        queued = await queued_turns(self.redis, self.keys, session_id) if open_turns else set()
        dead = await dead_turns(self.redis, self.keys, session_id)
        statuses = []
        for turn in turns:
            if turn in done:
                state = TurnState.DONE
            elif turn in in_flight:
                state = TurnState.IN_FLIGHT
            elif turn in queued:
                state = TurnState.QUEUED
            elif turn in dead:
                state = TurnState.DEAD
            else:
                state = TurnState.MISSING
            record = dead.get(turn)
            statuses.append(TurnStatus(turn, state, record.reason if record else "", record.attempts if record else 0))
        return statuses

    async def turn_logs(self, session_id: str) -> list[TurnLog]:
        await session_problem_id(self.db, session_id)  # NOT_FOUND for an unknown session
        return await self.store.list_turn_logs(session_id)

    async def evaluate_holistic(self, session_id: str, fence: int = 0) -> HolisticRecord:
        """Judges the conversation over its stored turn logs and stores the result (not
        when a newer submit than the one holding `fence` holds the session)."""
        problem_id = await session_problem_id(self.db, session_id)  # NOT_FOUND for an unknown session
        # Cheap reads first: at submit this runs beside the code checks, on the same CPUs.
        turn_count = await self.store.session_turn_count(session_id)
        missing = sorted(set(range(1, turn_count + 1)) - await self.store.evaluated_turns(session_id))
        if missing:
            raise FailedPrecondition(f"turns {missing} of session {session_id} are not evaluated yet")
        last = await self.store.get_turn_log(session_id, turn_count) if turn_count else None
        precomputed = usable_precomputed([last] if last is not None else [], turn_count)
        if precomputed is not None:
            # Judged with the last turn's evaluation, and no turn came after it: used as
            # is, no LLM call at submit. A degraded one (the fallback judged it) is not:
            # the configured provider gets another chance now.
            ready = holistic_record(session_id, precomputed)
            ready["session_usage"] = await session_usage(self.db, session_id)
            await self.store.save_holistic(session_id, ready, fence)
            return ready
        problem = await self._problem(problem_id)
        logs = await self.store.list_turn_logs(session_id)
        exchanges = {e.turn: e for e in await load_exchanges(self.db, session_id, before_turn=2**31 - 1)}
        missing = sorted(set(exchanges) - {entry["turn_number"] for entry in logs})
        if missing:
            raise FailedPrecondition(f"turns {missing} of session {session_id} are not evaluated yet")
        turns = [
            EvaluatedTurn(
                turn=entry["turn_number"],
                user=exchanges[entry["turn_number"]].user,
                assistant_summary=entry["llm_answer_summary"],
                intent=Intent(entry["prompt_evaluation_details"]["intent"]),
                score=entry["prompt_evaluation_details"]["score"],
                violated=entry["guardrail"]["violated"],
            )
            for entry in logs
        ]
        with metered() as meter:
            judgement = await self.llm.evaluate_holistic(problem, turns)
        await save_calls(self.db, session_id, None, PHASE_SUBMIT, meter.calls)
        details: HolisticRecord = {
            "session_id": session_id,
            "score": round(judgement.score, 2),
            "criteria": [
                {"criterion": c.criterion, "score": round(c.score, 2), "evidence": c.evidence}
                for c in judgement.criteria
            ],
            "summary": judgement.summary,
            "provider": judgement.provider or self.llm.name,
            "model": judgement.model or self.llm.model,
            "degraded": judgement.degraded,
            "usage": tally(meter.calls),
            # The whole session's LLM usage (chat, evaluations, this call): the report's.
            "session_usage": await session_usage(self.db, session_id),
            "timestamp": _now(),
            "precomputed": False,
            "through_turn": max(exchanges, default=0),
        }
        await self.store.save_holistic(session_id, details, fence)
        return details


def usable_precomputed(logs: list[TurnLog], last_turn: int) -> ConversationRecord | None:
    """The holistic judgement made with the last turn's evaluation, if there is one that
    covers the whole conversation and the configured provider made it."""
    entry = next((e for e in logs if e["turn_number"] == last_turn), None)
    record = entry.get("holistic") if entry is not None else None
    if record is None or record["through_turn"] != last_turn or record["degraded"]:
        return None
    return record


def conversation_record(
    judgement: HolisticJudgement, turn: int, conversation: list[EvaluatedTurn], llm: LLMProvider
) -> ConversationRecord:
    return {
        "through_turn": turn,
        "score": round(judgement.score, 2),
        "criteria": [
            {"criterion": c.criterion, "score": round(c.score, 2), "evidence": c.evidence} for c in judgement.criteria
        ],
        "summary": judgement.summary,
        "provider": judgement.provider or llm.name,
        "model": judgement.model or llm.model,
        "degraded": judgement.degraded,
        "unevaluated_turns": [t.turn for t in conversation if t.intent is None],
    }


def holistic_record(session_id: str, record: ConversationRecord) -> HolisticRecord:
    """The session's holistic evaluation from the one judged with its last turn. Its LLM
    call is the turn's (counted there), so this evaluation's own usage is nothing."""
    return {
        "session_id": session_id,
        "score": record["score"],
        "criteria": record["criteria"],
        "summary": record["summary"],
        "provider": record["provider"],
        "model": record["model"],
        "degraded": record["degraded"],
        "usage": tally([]),
        "timestamp": _now(),
        "precomputed": True,
        "through_turn": record["through_turn"],
    }


def build_turn_log(
    *,
    session_id: str,
    turn: int,
    intent: Intent,
    score: float,
    rubrics: list[RubricScore],
    final_reasoning: str,
    user_prompt_summary: str,
    llm_answer_summary: str,
    llm_answer_reasoning: str,
    guardrail: GuardrailRecord,
    interrupted: bool,
    turn_at: datetime | None,
    provider: str,
    model: str,
    degraded: bool,
    judge_samples: int,
    score_spread: float,
    usage: dict[str, int],
    source: EvaluationSource,
) -> TurnLog:
    """The turn log of docs/DESIGN.md §2, plus who produced it and how.

    Rubric entries keep every field the judge gives (criterion, score, reason, and any
    the judge adds later, e.g. a weight); only the score is clamped and rounded."""
    evaluated_at = _now()
    return {
        "session_id": session_id,
        "turn_number": turn,
        "user_prompt_summary": user_prompt_summary,
        "prompt_evaluation_details": {
            "intent": str(intent),
            "score": round(max(0.0, min(100.0, score)), 2),
            "rubrics": [_rubric_entry(r) for r in rubrics],
            "final_reasoning": final_reasoning,
        },
        "llm_answer_summary": llm_answer_summary,
        "llm_answer_reasoning": llm_answer_reasoning,
        "guardrail": guardrail,
        "interrupted": interrupted,
        "provider": provider,
        "model": model,
        "degraded": degraded,
        "judge_samples": judge_samples,  # times the turn was scored (median of k)
        "score_spread": round(score_spread, 2),  # max - min of those scores
        "usage": usage,  # the LLM requests this evaluation made (vibe.llm.usage_store.tally)
        "source": source,
        "turn_at": turn_at.isoformat() if turn_at else "",  # when the candidate sent the turn's message
        "evaluated_at": evaluated_at,
        "timestamp": evaluated_at,  # the name docs/DESIGN.md §2 uses; kept for readers of older logs
    }


def _rubric_entry(rubric: RubricScore) -> dict[str, Any]:
    entry = dataclasses.asdict(rubric)
    entry["score"] = round(max(0.0, min(100.0, float(entry["score"]))), 2)
    return entry
