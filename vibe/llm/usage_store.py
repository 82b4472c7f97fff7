"""LLM usage in PostgreSQL (`llm_usage`, migration 002): written by the tutor and the
evaluator after each turn's calls, summed per session for the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from vibe.llm.usage import CallUsage
from vibe.platform.storefaults import idempotent

PHASE_CHAT = "chat"  # the tutor answering a turn (guardrail + reply)
PHASE_BACKGROUND = "background"  # a queue worker evaluating a turn
PHASE_SUBMIT = "submit"  # the submit guard evaluating a missing turn, the holistic evaluation

Tally = dict[str, int]  # calls, failed_calls, prompt_tokens, output_tokens, thinking_tokens
TALLY_FIELDS = ("calls", "failed_calls", "prompt_tokens", "output_tokens", "thinking_tokens")


def tally(calls: Sequence[CallUsage]) -> Tally:
    return {
        "calls": len(calls),
        "failed_calls": sum(1 for c in calls if not c.ok),
        "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "output_tokens": sum(c.output_tokens for c in calls),
        "thinking_tokens": sum(c.thinking_tokens for c in calls),
    }


def _empty() -> Tally:
    return dict.fromkeys(TALLY_FIELDS, 0)


def _add(into: Tally, row: asyncpg.Record) -> None:
    for name in TALLY_FIELDS:
        into[name] += int(row[name])


async def save_calls(
    db: asyncpg.Pool, session_id: str, turn: int | None, phase: str, calls: Sequence[CallUsage]
) -> None:
    if not calls:
        return
    await db.executemany(
        """
        INSERT INTO llm_usage (session_id, turn, phase, purpose, provider, model,
                               prompt_tokens, output_tokens, thinking_tokens, ok)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """,
        [
            (
                session_id,
                turn,
                phase,
                c.purpose,
                c.provider,
                c.model,
                c.prompt_tokens,
                c.output_tokens,
                c.thinking_tokens,
                c.ok,
            )
            for c in calls
        ],
    )


@idempotent
async def session_usage(db: asyncpg.Pool, session_id: str) -> dict[str, Any]:
    """The session's usage as the report shows it: per turn (answering the chat, and
    evaluating the turn), everything spent by the submit, and the total."""
    rows = await db.fetch(
        """
        SELECT turn, phase, purpose, model,
               count(*) AS calls, count(*) FILTER (WHERE NOT ok) AS failed_calls,
               sum(prompt_tokens) AS prompt_tokens, sum(output_tokens) AS output_tokens,
               sum(thinking_tokens) AS thinking_tokens
        FROM llm_usage WHERE session_id = $1
        GROUP BY turn, phase, purpose, model
        """,
        session_id,
    )
    turns: dict[int, dict[str, Tally]] = {}
    submit, total = _empty(), _empty()
    for row in rows:
        _add(total, row)
        if row["phase"] == PHASE_SUBMIT:
            _add(submit, row)
        if row["turn"] is not None:
            per_turn = turns.setdefault(row["turn"], {"chat": _empty(), "evaluation": _empty()})
            _add(per_turn["evaluation" if row["purpose"] == "turn_evaluation" else "chat"], row)
    return {
        "models": sorted({row["model"] for row in rows}),
        "turns": [{"turn": turn, **turns[turn]} for turn in sorted(turns)],
        "submit": submit,
        "total": total,
    }
