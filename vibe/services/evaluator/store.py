"""Where evaluations live: PostgreSQL `prompt_evaluations` is the durable copy, written
first; Redis `turn_logs:{session}:{turn}` is the hot copy with a TTL, refilled from
PostgreSQL when it has expired."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

import asyncpg
import redis.asyncio as aioredis

from vibe.platform.errors import NotFound
from vibe.platform.hot_state import Keys
from vibe.platform.storefaults import hot_copy_optional, idempotent
from vibe.shared.records import hold_submit_fence


class PromptEvaluationDetails(TypedDict):
    intent: str  # an Intent value
    score: float
    # criterion, score, reason, weight, and whatever the judge adds later (kept, not sent)
    rubrics: list[dict[str, Any]]
    final_reasoning: str


class GuardrailRecord(TypedDict):
    violated: bool
    violation_type: str  # a Violation value, "" when none
    reason: str
    leak_cut: bool  # the tutor's reply started reproducing a reference solution and was cut


class HolisticCriterionRecord(TypedDict):
    criterion: str
    score: float
    evidence: str


class ConversationRecord(TypedDict):
    """The holistic judgement of the conversation through one turn, made in that turn's
    evaluation call and kept in its turn log: the submit uses it as is when no turn came
    after (docs/DESIGN.md §5, step 4)."""

    through_turn: int
    score: float
    criteria: list[HolisticCriterionRecord]
    summary: str
    provider: str
    model: str
    degraded: bool
    # Earlier turns that had no stored evaluation yet: read from their transcript alone.
    unevaluated_turns: list[int]


class TurnLog(TypedDict):
    """The turn log of docs/DESIGN.md §2 plus who produced it and how: a JSON
    document in Redis and PostgreSQL (see core.build_turn_log). Keys that logs written by
    earlier versions lack are NotRequired."""

    session_id: str
    turn_number: int
    user_prompt_summary: str
    prompt_evaluation_details: PromptEvaluationDetails
    llm_answer_summary: str
    llm_answer_reasoning: str
    guardrail: GuardrailRecord
    interrupted: bool
    provider: str
    model: NotRequired[str]
    degraded: bool
    judge_samples: NotRequired[int]  # times the turn was scored (median of k)
    score_spread: NotRequired[float]  # max - min of those scores
    usage: NotRequired[dict[str, int]]  # the LLM requests this evaluation made (vibe.llm.usage_store.tally)
    source: str  # an EvaluationSource value
    turn_at: NotRequired[str]  # when the candidate sent the turn's message (ISO 8601)
    evaluated_at: NotRequired[str]
    timestamp: str  # the name docs/DESIGN.md §2 uses; kept for readers of older logs
    holistic: NotRequired[ConversationRecord]  # the conversation through this turn, judged in the same call


class HolisticRecord(TypedDict):
    """The holistic evaluation of a session (the `HOLISTIC_FLOW` row's details)."""

    session_id: str
    score: float
    criteria: list[HolisticCriterionRecord]
    summary: str
    provider: str
    model: NotRequired[str]
    degraded: bool
    usage: NotRequired[dict[str, int]]  # this call's LLM requests
    session_usage: NotRequired[dict[str, Any]]  # the whole session's, as the report shows it
    timestamp: str
    # Judged with the last turn's evaluation (its ConversationRecord), not at submit.
    precomputed: NotRequired[bool]
    through_turn: NotRequired[int]  # the last turn the judgement saw


def _turn_log(raw: str | bytes) -> TurnLog:
    return cast("TurnLog", json.loads(raw))


class EvaluationStore:
    def __init__(self, db: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, turn_log_ttl_s: int):
        self.db = db
        self.redis = redis
        self.keys = keys
        self.ttl_s = turn_log_ttl_s

    @idempotent
    async def get_turn_log(self, session_id: str, turn: int) -> TurnLog | None:
        """From the hot copy, else from PostgreSQL (the system of record, also when Redis
        is unreachable), refilling the hot copy when it can."""
        with hot_copy_optional("read a turn log"):
            cached = await self.redis.get(self.keys.turn_log(session_id, turn))
            if cached is not None:
                return _turn_log(cached)
        details = await self.db.fetchval(
            "SELECT details FROM prompt_evaluations"
            " WHERE session_id = $1 AND turn = $2 AND evaluation_type = 'TURN_EVAL'",
            session_id,
            turn,
        )
        if details is None:
            return None
        with hot_copy_optional("refill a turn log"):
            await self.redis.set(self.keys.turn_log(session_id, turn), details, ex=self.ttl_s)
        return _turn_log(details)

    @idempotent
    async def list_turn_logs(self, session_id: str) -> list[TurnLog]:
        """Every stored turn log of the session, by turn, from the system of record."""
        rows = await self.db.fetch(
            "SELECT details FROM prompt_evaluations"
            " WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL' ORDER BY turn",
            session_id,
        )
        return [json.loads(r["details"]) for r in rows]

    @idempotent
    async def evaluated_turns(self, session_id: str) -> set[int]:
        """Turns of the session with a stored evaluation (the system of record)."""
        rows = await self.db.fetch(
            "SELECT turn FROM prompt_evaluations WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL'",
            session_id,
        )
        return {r["turn"] for r in rows}

    @idempotent
    async def earlier_verdicts(self, session_id: str, before_turn: int) -> dict[int, tuple[str, float, str, bool]]:
        """turn -> (intent, score, answer summary, guardrail violated) of the stored
        evaluations before `before_turn`: what the holistic judge needs of them, without
        reading whole turn logs."""
        rows = await self.db.fetch(
            """
            SELECT turn, details->'prompt_evaluation_details'->>'intent' AS intent,
                   (details->'prompt_evaluation_details'->>'score')::float8 AS score,
                   details->>'llm_answer_summary' AS summary,
                   COALESCE((details->'guardrail'->>'violated')::boolean, false) AS violated
            FROM prompt_evaluations
            WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL' AND turn < $2
            """,
            session_id,
            before_turn,
        )
        return {r["turn"]: (r["intent"], r["score"], r["summary"] or "", r["violated"]) for r in rows}

    @idempotent
    async def violated_turns(self, session_id: str, before_turn: int) -> set[int]:
        """Turns before `before_turn` whose message the guardrail refused."""
        rows = await self.db.fetch(
            "SELECT turn FROM messages WHERE session_id = $1 AND role = 'user' AND turn < $2"
            " AND guardrail_violation IS NOT NULL",
            session_id,
            before_turn,
        )
        return {r["turn"] for r in rows}

    @idempotent
    async def session_turn_count(self, session_id: str) -> int:
        """Completed turns of the session; NotFound for an unknown session."""
        count = await self.db.fetchval("SELECT turn_count FROM sessions WHERE session_id = $1", session_id)
        if count is None:
            raise NotFound(f"no session {session_id!r}")
        return int(count)

    @idempotent
    async def turn_time(self, session_id: str, turn: int) -> datetime | None:
        """When the candidate sent the turn's message."""
        return await self.db.fetchval(  # type: ignore[no-any-return]  # asyncpg's fetchval is Any
            "SELECT created_at FROM messages WHERE session_id = $1 AND turn = $2 AND role = 'user'",
            session_id,
            turn,
        )

    @idempotent
    async def save_turn_log(self, log: TurnLog, fence: int) -> tuple[TurnLog, bool]:
        """Durable first (upsert on the design's UNIQUE rule), then the hot copy; returns
        what is stored and whether it is `log`.

        Fenced: the upsert does nothing when the row was written under a newer lease
        (a higher `fence`), so a holder whose lease expired mid-evaluation never
        overwrites the evaluation of the one that took over; it gets theirs back. A
        repeat with the same fence rewrites the same row, so a retry is harmless."""
        session_id, turn = log["session_id"], log["turn_number"]
        payload = json.dumps(log, ensure_ascii=False)
        written = await self.db.fetchval(
            """
            INSERT INTO prompt_evaluations (session_id, turn, evaluation_type, details, fence)
            VALUES ($1, $2, 'TURN_EVAL', $3::jsonb, $4)
            ON CONFLICT (session_id, turn, evaluation_type) WHERE evaluation_type = 'TURN_EVAL'
            DO UPDATE SET details = EXCLUDED.details, fence = EXCLUDED.fence, updated_at = now()
            WHERE prompt_evaluations.fence <= EXCLUDED.fence
            RETURNING true
            """,
            session_id,
            turn,
            payload,
            fence,
        )
        if not written:
            details = await self.db.fetchval(
                "SELECT details FROM prompt_evaluations"
                " WHERE session_id = $1 AND turn = $2 AND evaluation_type = 'TURN_EVAL'",
                session_id,
                turn,
            )
            return _turn_log(details), False
        with hot_copy_optional("write a turn log"):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.turn_log(session_id, turn), payload, ex=self.ttl_s)
                pipe.hset(self.keys.turn_scores(session_id), str(turn), log["prompt_evaluation_details"]["score"])
                pipe.expire(self.keys.turn_scores(session_id), self.ttl_s)
                await pipe.execute()
        return log, True

    @idempotent
    async def save_holistic(self, session_id: str, details: HolisticRecord, fence: int = 0) -> None:
        """Upserts the session's holistic evaluation, unless a newer submit than the one
        holding `fence` holds the session (Aborted)."""
        async with self.db.acquire() as conn, conn.transaction():
            await hold_submit_fence(conn, session_id, fence)
            await conn.execute(
                """
                INSERT INTO prompt_evaluations (session_id, turn, evaluation_type, details)
                VALUES ($1, NULL, 'HOLISTIC_FLOW', $2::jsonb)
                ON CONFLICT (session_id, evaluation_type) WHERE evaluation_type = 'HOLISTIC_FLOW'
                DO UPDATE SET details = EXCLUDED.details, updated_at = now()
                """,
                session_id,
                json.dumps(details, ensure_ascii=False),
            )

    async def count_evaluation_run(self, session_id: str, turn: int) -> int:
        """Counts evaluations actually performed per turn (the guard must never cause a
        second one); kept as long as the turn logs."""
        key = self.keys.eval_runs(session_id)
        runs = 0
        with hot_copy_optional("count an evaluation run"):  # the evaluation is stored: a count is no reason to fail
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(key, str(turn), 1)
                pipe.expire(key, self.ttl_s)
                runs, _ = await pipe.execute()
        return int(runs)
