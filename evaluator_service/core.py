"""The evaluator's decisions: make sure a turn is evaluated exactly once in effect,
build the turn log of DESIGN §2, and judge the conversation as a whole."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from evaluator_service.store import EvaluationStore, TurnLog
from vibe.convert import guardrail_from_columns
from vibe.errors import DeadlineExceeded, FailedPrecondition
from vibe.hot_state import Keys, Lock
from vibe.llm.base import CRITERIA, EvaluatedTurn, Intent, LLMProvider, ProblemContext, RubricScore
from vibe.llm.deadline import deadline_scope
from vibe.llm.usage import metered
from vibe.llm.usage_store import PHASE_BACKGROUND, PHASE_SUBMIT, save_calls, session_usage, tally
from vibe.records import load_exchanges, load_problem_context, load_turn, session_problem_id

log = logging.getLogger(__name__)

SOURCE_BACKGROUND = "background"
SOURCE_SUBMIT_GUARD = "submit_guard"
_WAIT_POLL_S = 0.05
# LLM calls end this long before the caller's deadline: time to fall back and store.
_LLM_DEADLINE_MARGIN_S = 0.5
_PHASES = {SOURCE_BACKGROUND: PHASE_BACKGROUND, SOURCE_SUBMIT_GUARD: PHASE_SUBMIT}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Evaluator:
    def __init__(
        self,
        db: asyncpg.Pool,
        redis: aioredis.Redis,
        keys: Keys,
        store: EvaluationStore,
        llm: LLMProvider,
        lock_ttl_s: float,
    ):
        self.db = db
        self.redis = redis
        self.keys = keys
        self.store = store
        self.llm = llm
        self.lock_ttl_s = lock_ttl_s
        self._problems: dict[str, ProblemContext] = {}

    async def _problem(self, problem_id: str) -> ProblemContext:
        if problem_id not in self._problems:
            self._problems[problem_id] = await load_problem_context(self.db, problem_id)
        return self._problems[problem_id]

    async def ensure_turn(self, session_id: str, turn: int, source: str, timeout_s: float) -> TurnLog:
        """The turn's evaluation: stored -> returned; being evaluated elsewhere -> waited
        for (up to `timeout_s`); otherwise evaluated here, under the turn's lock, so two
        callers never evaluate the same turn at once."""
        deadline = time.monotonic() + timeout_s
        while True:
            stored = await self.store.get_turn_log(session_id, turn)
            if stored is not None:
                return stored
            lock = Lock(self.redis, self.keys.eval_lock(session_id, turn), self.lock_ttl_s)
            if await lock.try_acquire():
                try:
                    # It may have been finished between our read and taking the lock.
                    stored = await self.store.get_turn_log(session_id, turn)
                    if stored is not None:
                        return stored
                    return await self._evaluate_turn(session_id, turn, source, deadline)
                finally:
                    await lock.release()
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(
                    f"turn {turn} of session {session_id} is still being evaluated elsewhere after {timeout_s:.1f}s"
                )
            await asyncio.sleep(_WAIT_POLL_S)

    async def _evaluate_turn(self, session_id: str, turn: int, source: str, deadline: float) -> TurnLog:
        stored_turn = await load_turn(self.db, session_id, turn)
        problem = await self._problem(stored_turn.problem_id)
        history = await load_exchanges(self.db, session_id, before_turn=turn)
        guardrail = guardrail_from_columns(stored_turn.guardrail_violation, stored_turn.guardrail_reason)
        with metered() as meter, deadline_scope(deadline - _LLM_DEADLINE_MARGIN_S):
            judgement = await self.llm.evaluate_turn(problem, history, stored_turn.exchange, guardrail)
        # What was spent is stored even if saving the evaluation below fails.
        await save_calls(self.db, session_id, turn, _PHASES[source], meter.calls)
        score, rubrics = judgement.score, list(judgement.rubrics)
        final_reasoning = judgement.final_reasoning
        if guardrail.violated:
            # DESIGN §2: a guardrail violation is scored 0, whatever the judge thought.
            score = 0.0
            rubrics = [RubricScore(c, 0.0, f"guardrail violation: {guardrail.violation}") for c in CRITERIA]
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
            },
            interrupted=stored_turn.interrupted,
            provider=judgement.provider or self.llm.name,
            model=judgement.model or self.llm.model,
            degraded=judgement.degraded,
            usage=tally(meter.calls),
            source=source,
        )
        await self.store.save_turn_log(turn_log)
        runs = await self.store.count_evaluation_run(session_id, turn)
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

    async def turn_logs(self, session_id: str) -> list[TurnLog]:
        await session_problem_id(self.db, session_id)  # NOT_FOUND for an unknown session
        return await self.store.list_turn_logs(session_id)

    async def evaluate_holistic(self, session_id: str) -> dict[str, Any]:
        """Judges the conversation over its stored turn logs and stores the result."""
        problem = await self._problem(await session_problem_id(self.db, session_id))
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
        details = {
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
        }
        await self.store.save_holistic(session_id, details)
        return details


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
    guardrail: dict[str, Any],
    interrupted: bool,
    provider: str,
    model: str,
    degraded: bool,
    usage: dict[str, int],
    source: str,
) -> TurnLog:
    """The turn log of DESIGN §2, plus who produced it and how."""
    return {
        "session_id": session_id,
        "turn_number": turn,
        "user_prompt_summary": user_prompt_summary,
        "prompt_evaluation_details": {
            "intent": str(intent),
            "score": round(max(0.0, min(100.0, score)), 2),
            "rubrics": [
                {"criterion": r.criterion, "score": round(max(0.0, min(100.0, r.score)), 2), "reason": r.reason}
                for r in rubrics
            ],
            "final_reasoning": final_reasoning,
        },
        "llm_answer_summary": llm_answer_summary,
        "llm_answer_reasoning": llm_answer_reasoning,
        "guardrail": guardrail,
        "interrupted": interrupted,
        "provider": provider,
        "model": model,
        "degraded": degraded,
        "usage": usage,  # the LLM requests this evaluation made (vibe.llm.usage_store.tally)
        "source": source,
        "timestamp": _now(),
    }
