"""Reads of the shared records that more than one service needs: the problem a
session is about and the conversation so far. PostgreSQL is the system of record;
these are read-only views of it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from vibe.llm.base import Exchange, ProblemContext
from vibe.platform.errors import Aborted, NotFound
from vibe.platform.storefaults import idempotent


@dataclass(frozen=True)
class StoredTurn:
    """Both messages of one turn, as stored by the gateway."""

    session_id: str
    problem_id: str
    turn: int
    user: str
    assistant: str
    guardrail_violation: str | None
    guardrail_reason: str
    interrupted: bool
    leak_cut: bool = False  # the tutor's reply was cut by the leak check (vibe/services/tutor/leak.py)

    @property
    def exchange(self) -> Exchange:
        return Exchange(turn=self.turn, user=self.user, assistant=self.assistant)

    @classmethod
    def from_row(cls, session_id: str, turn: int, row: asyncpg.Record) -> StoredTurn:
        """From a row with the turns table's columns and the session's problem_id."""
        return cls(
            session_id=session_id,
            problem_id=row["problem_id"],
            turn=turn,
            user=row["user_text"],
            assistant=row["assistant_text"],
            guardrail_violation=row["guardrail_violation"],
            guardrail_reason=row["guardrail_reason"] or "",
            interrupted=row["interrupted"],
            leak_cut=row["leak_cut"],
        )


@idempotent
async def load_problem_context(db: asyncpg.Pool, problem_id: str) -> ProblemContext:
    row = await db.fetchrow(
        "SELECT problem_id, title, spec, reference_solution, reference_solutions FROM problems WHERE problem_id = $1",
        problem_id,
    )
    if row is None:
        raise NotFound(f"no problem {problem_id!r}")
    spec = json.loads(row["spec"])
    return ProblemContext(
        problem_id=row["problem_id"],
        title=row["title"],
        statement=spec.get("statement", ""),
        hints=tuple(spec.get("hints", ())),
        reference_solution=row["reference_solution"],
        input_format=spec.get("input_format", ""),
        output_format=spec.get("output_format", ""),
        starter_code=spec.get("starter_code", ""),
        reference_solutions=json.loads(row["reference_solutions"]),
    )


@idempotent
async def load_hidden_tests(db: asyncpg.Pool, problem_id: str, max_chars: int = 2000) -> tuple[str, ...]:
    """The problem's hidden test data (each input, then each expected output, at most
    `max_chars` of each), which no reply may show: the tutor's outbound check protects it."""
    rows = await db.fetch(
        "SELECT substring(input FROM 1 FOR $2) AS input, substring(expected FROM 1 FOR $2) AS expected"
        " FROM problem_tests WHERE problem_id = $1 AND hidden ORDER BY test_id",
        problem_id,
        max_chars,
    )
    texts: list[str] = []
    for r in rows:
        texts += [bytes(r["input"]).decode("utf-8", "replace"), bytes(r["expected"]).decode("utf-8", "replace")]
    return tuple(texts)


@idempotent
async def load_exchanges(db: asyncpg.Pool, session_id: str, before_turn: int) -> list[Exchange]:
    """The completed turns of a session before `before_turn`, in order."""
    rows = await db.fetch(
        """
        SELECT u.turn, u.content AS user_text, a.content AS assistant_text
        FROM messages u JOIN messages a
          ON a.session_id = u.session_id AND a.turn = u.turn AND a.role = 'assistant'
        WHERE u.session_id = $1 AND u.role = 'user' AND u.turn < $2
        ORDER BY u.turn
        """,
        session_id,
        before_turn,
    )
    return [Exchange(turn=r["turn"], user=r["user_text"], assistant=r["assistant_text"]) for r in rows]


@idempotent
async def load_turn(db: asyncpg.Pool, session_id: str, turn: int) -> StoredTurn:
    row = await db.fetchrow(
        """
        SELECT s.problem_id, u.content AS user_text, a.content AS assistant_text,
               u.guardrail_violation, u.guardrail_reason, a.interrupted, a.leak_cut
        FROM sessions s
        JOIN messages u ON u.session_id = s.session_id AND u.turn = $2 AND u.role = 'user'
        JOIN messages a ON a.session_id = s.session_id AND a.turn = $2 AND a.role = 'assistant'
        WHERE s.session_id = $1
        """,
        session_id,
        turn,
    )
    if row is None:
        raise NotFound(f"session {session_id!r} has no completed turn {turn}")
    return StoredTurn.from_row(session_id, turn, row)


@idempotent
async def session_problem_id(db: asyncpg.Pool, session_id: str) -> str:
    problem_id = await db.fetchval("SELECT problem_id FROM sessions WHERE session_id = $1", session_id)
    if problem_id is None:
        raise NotFound(f"no session {session_id!r}")
    return str(problem_id)


async def hold_submit_fence(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, session_id: str, fence: int
) -> None:
    """Inside the transaction of a write a submit asked for (its results, its grade, its
    holistic evaluation): Aborted when a newer submit holds the session (the
    submission's fence is higher than `fence`, the asking submit's lease token), so a
    stale submit never overwrites the newer one's results. The submission's row stays
    locked (FOR SHARE) until the write commits, so a takeover's freeze comes after it.
    `fence` 0: a caller outside any submit, not fenced."""
    if fence <= 0:
        return
    current = await conn.fetchval("SELECT fence FROM submissions WHERE session_id = $1 FOR SHARE", session_id)
    if current is not None and current > fence:
        raise Aborted(f"a newer submit of session {session_id} took over; its results stand")
