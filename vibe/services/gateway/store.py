"""The gateway's records in PostgreSQL (sessions, messages, submissions, reports) and
its hot state in Redis (the session cache)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from asyncpg.pool import PoolConnectionProxy

from vibe.llm.base import GuardrailVerdict
from vibe.platform.errors import Aborted, FailedPrecondition, NotFound
from vibe.platform.hot_state import Keys

SESSION_CACHE_TTL_S = 24 * 3600


class SessionStatus(StrEnum):
    ACTIVE = "active"  # chatting
    SUBMITTED = "submitted"  # frozen by a submit, not graded yet
    GRADED = "graded"  # the report is stored


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    candidate_id: str
    problem_id: str
    token_hash: bytes
    status: SessionStatus
    turn_count: int
    created_at: datetime
    submitted_at: datetime | None


@dataclass(frozen=True)
class MessageRow:
    session_id: str
    turn: int
    role: Role
    content: str
    created_at: datetime
    guardrail_violation: str | None = None
    interrupted: bool = False
    leak_cut: bool = False  # assistant messages: cut by the tutor's leak check (see vibe/services/tutor/leak.py)


_SESSION_COLUMNS = "session_id, candidate_id, problem_id, token_hash, status, turn_count, created_at, submitted_at"


def _session(row: asyncpg.Record | None) -> SessionRow:
    assert row is not None, "the statement returns the session's row"
    return SessionRow(**{**dict(row), "status": SessionStatus(row["status"])})


def _message(row: asyncpg.Record) -> MessageRow:
    return MessageRow(**{**dict(row), "role": Role(row["role"])})


# Called inside the transaction that stores a report (the graded-session webhook's outbox).
OnGraded = Callable[["PoolConnectionProxy[asyncpg.Record]", str, dict[str, Any]], Awaitable[None]]


class GatewayStore:
    def __init__(self, db: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, on_graded: OnGraded | None = None):
        self.db = db
        self.redis = redis
        self.keys = keys
        self.on_graded = on_graded

    async def create_session(
        self, candidate_id: str, problem_id: str, token_hash: bytes, api_key_id: str | None = None
    ) -> SessionRow:
        """`api_key_id`: the backend key that created it (its limits count the session)."""
        session_id = str(uuid.uuid4())
        try:
            row = await self.db.fetchrow(
                f"INSERT INTO sessions (session_id, candidate_id, problem_id, token_hash, api_key_id)"
                f" VALUES ($1, $2, $3, $4, $5) RETURNING {_SESSION_COLUMNS}",
                session_id,
                candidate_id,
                problem_id,
                token_hash,
                api_key_id,
            )
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"no problem {problem_id!r}; ListProblems shows the available ones") from None
        session = _session(row)
        await self._cache(session)
        return session

    async def _cache(self, s: SessionRow) -> None:
        await self.redis.set(
            self.keys.session(s.session_id),
            json.dumps({"candidate_id": s.candidate_id, "problem_id": s.problem_id, "token_hash": s.token_hash.hex()}),
            ex=SESSION_CACHE_TTL_S,
        )

    async def session_identity(self, session_id: str) -> tuple[str, str, bytes] | None:
        """(candidate_id, problem_id, token_hash), which never change: from the cache
        when it has them, so authorising a call costs no database round trip."""
        cached = await self.redis.get(self.keys.session(session_id))
        if cached is not None:
            data = json.loads(cached)
            return data["candidate_id"], data["problem_id"], bytes.fromhex(data["token_hash"])
        session = await self.get_session(session_id)
        if session is None:
            return None
        await self._cache(session)
        return session.candidate_id, session.problem_id, session.token_hash

    async def get_session(self, session_id: str) -> SessionRow | None:
        row = await self.db.fetchrow(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1", session_id)
        return None if row is None else _session(row)

    async def messages(self, session_id: str) -> list[MessageRow]:
        rows = await self.db.fetch(
            "SELECT session_id, turn, role, content, created_at, guardrail_violation, interrupted, leak_cut"
            " FROM messages WHERE session_id = $1 ORDER BY turn, role DESC",  # user before assistant
            session_id,
        )
        return [_message(r) for r in rows]

    async def store_turn(
        self,
        session_id: str,
        turn: int,
        user_text: str,
        assistant_text: str,
        guardrail: GuardrailVerdict,
        provider: str,
        interrupted: bool,
        leak_cut: bool = False,
        leak_share: float | None = None,
    ) -> tuple[MessageRow, MessageRow]:
        """Both messages of a turn and the session's turn count, in one transaction.
        `leak_cut`/`leak_share` are the tutor's leak check of the reply (None: not checked).

        The UPDATE only succeeds while the session is active and `turn` is the next
        turn, so two racing chats can never store the same turn number, and nothing
        is stored for a session that was submitted meanwhile.
        """
        async with self.db.acquire() as conn, conn.transaction():
            advanced = await conn.fetchval(
                "UPDATE sessions SET turn_count = turn_count + 1"
                " WHERE session_id = $1 AND status = 'active' AND turn_count = $2 - 1 RETURNING turn_count",
                session_id,
                turn,
            )
            if advanced is None:
                status = await conn.fetchval("SELECT status FROM sessions WHERE session_id = $1", session_id)
                if status != "active":
                    raise FailedPrecondition("the session was submitted; chat is closed")
                raise Aborted(f"turn {turn} was taken by another chat of this session; send the message again")
            rows = await conn.fetch(
                """
                INSERT INTO messages (session_id, turn, role, content, guardrail_violation, guardrail_reason,
                                      provider, interrupted, leak_cut, leak_share)
                VALUES ($1, $2, 'user', $3, $4, $5, NULL, false, false, NULL),
                       ($1, $2, 'assistant', $6, NULL, NULL, $7, $8, $9, $10)
                RETURNING session_id, turn, role, content, created_at, guardrail_violation, interrupted, leak_cut
                """,
                session_id,
                turn,
                user_text,
                str(guardrail.violation) if guardrail.violated and guardrail.violation else None,
                guardrail.reason if guardrail.violated else None,
                assistant_text,
                provider,
                interrupted,
                leak_cut,
                leak_share,
            )
        user, assistant = sorted((_message(r) for r in rows), key=lambda m: m.role is not Role.USER)
        return user, assistant

    async def freeze(self, session_id: str, language: str, code: str) -> SessionRow:
        """Closes the session to chat and records the submission, atomically. A second
        call (a retried submit) keeps the first submission's code."""
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE sessions SET status = 'submitted', submitted_at = now()"
                " WHERE session_id = $1 AND status = 'active'",
                session_id,
            )
            await conn.execute(
                "INSERT INTO submissions (session_id, language, code) VALUES ($1, $2, $3)"
                " ON CONFLICT (session_id) DO NOTHING",
                session_id,
                language,
                code,
            )
            row = await conn.fetchrow(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1", session_id)
        return _session(row)

    async def submission(self, session_id: str) -> tuple[str, str]:
        row = await self.db.fetchrow("SELECT language, code FROM submissions WHERE session_id = $1", session_id)
        if row is None:
            raise NotFound(f"session {session_id} has no submission")
        return row["language"], row["code"]

    async def save_report(self, session_id: str, report: dict[str, Any]) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE submissions SET report = $2::jsonb, graded_at = now() WHERE session_id = $1",
                session_id,
                json.dumps(report, ensure_ascii=False),
            )
            await conn.execute(
                "UPDATE sessions SET status = 'graded', graded_at = now() WHERE session_id = $1", session_id
            )
            if self.on_graded is not None:
                await self.on_graded(conn, session_id, report)

    async def report(self, session_id: str) -> dict[str, Any] | None:
        raw = await self.db.fetchval("SELECT report FROM submissions WHERE session_id = $1", session_id)
        return None if raw is None else json.loads(raw)
