"""Where evaluations live: PostgreSQL `prompt_evaluations` is the durable copy, written
first; Redis `turn_logs:{session}:{turn}` is the hot copy with a TTL, refilled from
PostgreSQL when it has expired."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

import asyncpg
import redis.asyncio as aioredis

from vibe.llm.base import Exchange
from vibe.llm.usage import CallUsage
from vibe.platform.errors import NotFound
from vibe.platform.hot_state import Keys
from vibe.platform.leases import Lease
from vibe.platform.storefaults import hot_copy_optional, idempotent
from vibe.shared.eval_queue import JobAck
from vibe.shared.records import StoredTurn, hold_submit_fence


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


@dataclass(frozen=True)
class TurnInputs:
    """What evaluating one turn reads, in one PostgreSQL round trip (`turn_inputs`)."""

    stored: TurnLog | None  # the turn's stored evaluation, if there is one already
    turn: StoredTurn | None  # both messages of the turn (None: not stored, or no session)
    history: list[Exchange]  # the completed turns before it, in order
    # turn -> (intent, score, answer summary, guardrail violated) of the earlier turns'
    # stored evaluations (see `earlier_verdicts`)
    verdicts: dict[int, tuple[str, float, str, bool]]
    refused: set[int]  # earlier turns whose message the guardrail refused (`violated_turns`)
    turn_at: datetime | None  # when the candidate sent the turn's message (`turn_time`)


# One statement for what a turn's evaluation reads (each column as the separate reads
# had it: records.load_turn, records.load_exchanges, earlier_verdicts, violated_turns,
# turn_time, and the turn's stored evaluation): one row per user message up to the turn.
_TURN_INPUTS = """
SELECT s.problem_id,
       (SELECT details FROM prompt_evaluations
         WHERE session_id = $1 AND turn = $2 AND evaluation_type = 'TURN_EVAL') AS stored,
       u.turn, u.content AS user_text, a.content AS assistant_text, a.turn IS NOT NULL AS answered,
       u.guardrail_violation, u.guardrail_reason, u.created_at, a.interrupted, a.leak_cut,
       e.details->'prompt_evaluation_details'->>'intent' AS intent,
       (e.details->'prompt_evaluation_details'->>'score')::float8 AS score,
       e.details->>'llm_answer_summary' AS summary,
       COALESCE((e.details->'guardrail'->>'violated')::boolean, false) AS violated,
       e.session_id IS NOT NULL AS evaluated
FROM sessions s
LEFT JOIN messages u ON u.session_id = s.session_id AND u.role = 'user' AND u.turn <= $2
LEFT JOIN messages a ON a.session_id = s.session_id AND a.turn = u.turn AND a.role = 'assistant'
LEFT JOIN prompt_evaluations e
  ON e.session_id = s.session_id AND e.turn = u.turn AND e.turn < $2 AND e.evaluation_type = 'TURN_EVAL'
WHERE s.session_id = $1
ORDER BY u.turn
"""


# The turn's evaluation, upserted on the design's UNIQUE rule unless the stored row was
# written under a newer lease (a higher fence); true when written.
_SAVE_TURN_EVAL = """
INSERT INTO prompt_evaluations (session_id, turn, evaluation_type, details, fence)
VALUES ($1, $2, 'TURN_EVAL', $3::jsonb, $4)
ON CONFLICT (session_id, turn, evaluation_type) WHERE evaluation_type = 'TURN_EVAL'
DO UPDATE SET details = EXCLUDED.details, fence = EXCLUDED.fence, updated_at = now()
WHERE prompt_evaluations.fence <= EXCLUDED.fence
RETURNING true
"""
# The same, with the LLM requests that produced it stored beside it ($5 the phase, then
# one array per llm_usage column). A fence is drawn once per lease taken, so a row that
# already holds this statement's fence means the statement ran before (committed, its
# reply lost, and retried): its requests are stored already and are not stored twice.
_SAVE_TURN_EVAL_AND_USAGE = (
    """
WITH spent AS (
    INSERT INTO llm_usage (session_id, turn, phase, purpose, provider, model,
                           prompt_tokens, output_tokens, thinking_tokens, ok)
    SELECT $1, $2, $5, u.purpose, u.provider, u.model, u.prompt_tokens, u.output_tokens, u.thinking_tokens, u.ok
    FROM unnest($6::text[], $7::text[], $8::text[], $9::int4[], $10::int4[], $11::int4[], $12::bool[])
         AS u (purpose, provider, model, prompt_tokens, output_tokens, thinking_tokens, ok)
    WHERE NOT EXISTS (SELECT 1 FROM prompt_evaluations
                       WHERE session_id = $1 AND turn = $2 AND evaluation_type = 'TURN_EVAL' AND fence = $4)
)
"""
    + _SAVE_TURN_EVAL
)


@dataclass(frozen=True)
class Spent:
    """The LLM requests an evaluation made, stored with it (`save_evaluation`)."""

    phase: str  # usage_store.PHASE_*
    calls: Sequence[CallUsage]


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
    async def turn_inputs(self, session_id: str, turn: int) -> TurnInputs:
        """Everything evaluating `turn` reads, from the system of record in one round trip:
        its stored evaluation (if any), both its messages, the turns before it, their
        stored verdicts and guardrail refusals, and when the turn's message came."""
        rows = await self.db.fetch(_TURN_INPUTS, session_id, turn)
        stored = rows[0]["stored"] if rows else None
        current: StoredTurn | None = None
        turn_at: datetime | None = None
        history: list[Exchange] = []
        verdicts: dict[int, tuple[str, float, str, bool]] = {}
        refused: set[int] = set()
        for r in rows:
            if r["turn"] is None or not r["answered"]:
                continue
            if r["turn"] == turn:
                turn_at = r["created_at"]
                current = StoredTurn.from_row(session_id, turn, r)
                continue
            history.append(Exchange(turn=r["turn"], user=r["user_text"], assistant=r["assistant_text"]))
            if r["evaluated"]:
                verdicts[r["turn"]] = (r["intent"], r["score"], r["summary"] or "", r["violated"])
            if r["guardrail_violation"] is not None:
                refused.add(r["turn"])
        if stored is not None:
            with hot_copy_optional("refill a turn log"):
                await self.redis.set(self.keys.turn_log(session_id, turn), stored, ex=self.ttl_s)
        return TurnInputs(
            stored=_turn_log(stored) if stored is not None else None,
            turn=current,
            history=history,
            verdicts=verdicts,
            refused=refused,
            turn_at=turn_at,
        )

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
    async def session_turn_count(self, session_id: str) -> int:
        """Completed turns of the session; NotFound for an unknown session."""
        count = await self.db.fetchval("SELECT turn_count FROM sessions WHERE session_id = $1", session_id)
        if count is None:
            raise NotFound(f"no session {session_id!r}")
        return int(count)

    async def save_turn_log(self, log: TurnLog, fence: int) -> tuple[TurnLog, bool]:
        """Durable first (upsert on the design's UNIQUE rule), then the hot copy; returns
        what is stored and whether it is `log` (see `save_evaluation`)."""
        stored, ours, _ = await self.save_evaluation(log, fence)
        return stored, ours

    @idempotent
    async def save_evaluation(
        self,
        log: TurnLog,
        fence: int,
        lease: Lease | None = None,
        ack: JobAck | None = None,
        spent: Spent | None = None,
    ) -> tuple[TurnLog, bool, int]:
        """Durable first (upsert on the design's UNIQUE rule), then the hot copy; returns
        what is stored, whether it is `log`, and (with `lease`) the evaluation runs of the
        turn counted so far.

        Fenced: the upsert does nothing when the row was written under a newer lease
        (a higher `fence`), so a holder whose lease expired mid-evaluation never
        overwrites the evaluation of the one that took over; it gets theirs back. A
        repeat with the same fence rewrites the same row, so a retry is harmless.

        With `lease` (the turn's, held by the evaluation that produced `log`), once the
        row is ours the same Redis round trip as the hot copy also counts the run (the
        guard must never cause a second one; kept as long as the turn logs) and releases
        the lease: the evaluation is done once it is stored. When Redis fails there, the
        lease frees itself within its TTL and the count is skipped, as each was alone.
        With `ack` (the queued job that asked for the evaluation), the same transaction
        acknowledges the job once the row is ours (`ack.sent`); otherwise the caller sends it.

        With `spent` (the LLM requests that produced `log`), the same statement stores
        them in `llm_usage` (`usage_store.save_calls`' rows), also when the fence refuses
        the evaluation: one PostgreSQL round trip instead of two."""
        session_id, turn = log["session_id"], log["turn_number"]
        payload = json.dumps(log, ensure_ascii=False)
        if spent is None or not spent.calls:
            written = await self.db.fetchval(_SAVE_TURN_EVAL, session_id, turn, payload, fence)
        else:
            calls = spent.calls
            written = await self.db.fetchval(
                _SAVE_TURN_EVAL_AND_USAGE,
                session_id,
                turn,
                payload,
                fence,
                spent.phase,
                [c.purpose for c in calls],
                [c.provider for c in calls],
                [c.model for c in calls],
                [c.prompt_tokens for c in calls],
                [c.output_tokens for c in calls],
                [c.thinking_tokens for c in calls],
                [c.ok for c in calls],
            )
        if not written:
            details = await self.db.fetchval(
                "SELECT details FROM prompt_evaluations"
                " WHERE session_id = $1 AND turn = $2 AND evaluation_type = 'TURN_EVAL'",
                session_id,
                turn,
            )
            return _turn_log(details), False, 0
        runs = 0
        if lease is not None:
            await lease.stop_heartbeat()  # no renewal may race the release below
        with hot_copy_optional("write a turn log"):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(self.keys.turn_log(session_id, turn), payload, ex=self.ttl_s)
                pipe.hset(self.keys.turn_scores(session_id), str(turn), log["prompt_evaluation_details"]["score"])
                pipe.expire(self.keys.turn_scores(session_id), self.ttl_s)
                if lease is not None:
                    pipe.hincrby(self.keys.eval_runs(session_id), str(turn), 1)
                    pipe.expire(self.keys.eval_runs(session_id), self.ttl_s)
                    lease.release_on(pipe)
                if ack is not None:
                    ack.queue_on(pipe)  # last: the replies above keep their places
                replies = await pipe.execute()
            if ack is not None:
                ack.sent = True
            if lease is not None:
                lease.released()
                runs = int(replies[3])
        return log, True, runs

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
