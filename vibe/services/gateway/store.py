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
from vibe.platform.storefaults import hot_copy_optional, idempotent
from vibe.shared.convert import guardrail_from_columns

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
_MESSAGE_COLUMNS = "session_id, turn, role, content, created_at, guardrail_violation, interrupted, leak_cut"


def _session(row: asyncpg.Record | None) -> SessionRow:
    assert row is not None, "the statement returns the session's row"
    return SessionRow(**{**dict(row), "status": SessionStatus(row["status"])})


def _message(row: asyncpg.Record) -> MessageRow:
    fields = {k: row[k] for k in _MESSAGE_COLUMNS.split(", ")}
    return MessageRow(**{**fields, "role": Role(row["role"])})


def _turn_rows(rows: list[asyncpg.Record]) -> tuple[MessageRow, MessageRow]:
    """(user, assistant) of one turn's two rows."""
    user, assistant = sorted((_message(r) for r in rows), key=lambda m: m.role is not Role.USER)
    return user, assistant


@dataclass(frozen=True)
class StoredTurn:
    """A stored turn as a retried chat replays it."""

    user: MessageRow
    assistant: MessageRow
    guardrail: GuardrailVerdict
    provider: str


# The turn whose user message has the idempotency key $2, in the session $1.
_KEYED_TURN = "(SELECT turn FROM messages WHERE session_id = $1 AND idempotency_key = $2 AND role = 'user')"


def _stored_turn(rows: list[asyncpg.Record]) -> StoredTurn | None:
    """A turn's two rows (message columns, guardrail_reason, provider) as a StoredTurn."""
    if len(rows) != 2:
        return None
    user, assistant = _turn_rows(rows)
    by_role = {r["role"]: r for r in rows}
    return StoredTurn(
        user=user,
        assistant=assistant,
        guardrail=guardrail_from_columns(
            by_role["user"]["guardrail_violation"], by_role["user"]["guardrail_reason"] or ""
        ),
        provider=by_role["assistant"]["provider"] or "",
    )


# store_turn in one statement: the turn its idempotency key ($11) already stored (a
# repeat: those rows, nothing written), else the session's turn count advanced to $2 (only
# while the session is active, $2 is the next turn and the fence $13 is not older than the
# last chat's) and both messages inserted; no row when neither. All parts see one snapshot
# and commit together; an INSERT that fails (the key's unique index) undoes the UPDATE.
_STORE_TURN = f"""
WITH done AS (
    SELECT {_MESSAGE_COLUMNS} FROM messages
    WHERE session_id = $1
      AND turn = (SELECT turn FROM messages WHERE session_id = $1 AND idempotency_key = $11 AND role = 'user')
), advanced AS (
    UPDATE sessions SET turn_count = turn_count + 1, chat_fence = $13
    WHERE session_id = $1 AND status = 'active' AND turn_count = $2 - 1 AND chat_fence <= $13
      AND NOT EXISTS (SELECT 1 FROM done)
    RETURNING turn_count
), stored AS (
    INSERT INTO messages (session_id, turn, role, content, guardrail_violation, guardrail_reason,
                          provider, interrupted, leak_cut, leak_share, idempotency_key, leak_material)
    SELECT v.* FROM (
        VALUES ($1::text, $2::integer, 'user', $3::text, $4::text, $5::text, NULL::text, false, false,
                NULL::real, $11::text, NULL::text),
               ($1, $2, 'assistant', $6, NULL, NULL, $7, $8::boolean, $9::boolean, $10::real, NULL, $12::text)
    ) AS v
    WHERE EXISTS (SELECT 1 FROM advanced)
    RETURNING {_MESSAGE_COLUMNS}
)
SELECT * FROM done
UNION ALL
SELECT * FROM stored
"""


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
        # A copy: a Redis fault here must not fail a create whose session is stored (its
        # token would be lost with the answer); the identity is read from PostgreSQL then.
        with hot_copy_optional("fill the session cache"):
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
        when it has them, so authorising a call costs no database round trip (and from
        PostgreSQL when Redis is unreachable)."""
        with hot_copy_optional("read the session cache"):
            cached = await self.redis.get(self.keys.session(session_id))
            if cached is not None:
                data = json.loads(cached)
                return data["candidate_id"], data["problem_id"], bytes.fromhex(data["token_hash"])
        session = await self.get_session(session_id)
        if session is None:
            return None
        with hot_copy_optional("fill the session cache"):
            await self._cache(session)
        return session.candidate_id, session.problem_id, session.token_hash

    @idempotent
    async def get_session(self, session_id: str) -> SessionRow | None:
        row = await self.db.fetchrow(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1", session_id)
        return None if row is None else _session(row)

    @idempotent
    async def messages(self, session_id: str) -> list[MessageRow]:
        rows = await self.db.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = $1 ORDER BY turn, role DESC",  # user first
            session_id,
        )
        return [_message(r) for r in rows]

    @idempotent
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
        leak_material: str | None = None,
        *,
        idempotency_key: str,
        fence: int,
    ) -> tuple[MessageRow, MessageRow]:
        """Both messages of a turn and the session's turn count, in one transaction.
        `leak_cut`/`leak_share` are the tutor's leak check of the reply (None: not checked);
        `leak_material` what a cut reply was turning into (vibe/services/tutor/leak.py).

        The UPDATE only succeeds while the session is active, `turn` is the next turn
        and `fence` (the chat lease's token) is not older than the last chat's, so two
        racing chats can never store the same turn number, a chat whose lease was taken
        over cannot store after its successor, and nothing is stored for a session that
        was submitted meanwhile. The user message keeps `idempotency_key` (unique per
        session): a repeat of this call, or a retry of the request, finds the turn it
        stored instead of storing another, so the call is safe to retry.
        """
        # One statement, so one round trip instead of five (BEGIN, the repeat's look-up, the
        # turn count's UPDATE, the INSERT, COMMIT), and as atomic as the transaction was.
        rows = await self.db.fetch(
            _STORE_TURN,
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
            idempotency_key,
            leak_material if leak_cut else None,
            fence,
        )
        if not rows:
            # Neither stored nor a repeat: say why (read after the statement, as the
            # transaction read it after its UPDATE).
            row = await self.db.fetchrow("SELECT status, chat_fence FROM sessions WHERE session_id = $1", session_id)
            if row is None or row["status"] != "active":
                raise FailedPrecondition("the session was submitted; chat is closed")
            if row["chat_fence"] > fence:
                raise Aborted("this chat's lease was taken over by a newer chat of the session; send the message again")
            raise Aborted(f"turn {turn} was taken by another chat of this session; send the message again")
        user, assistant = _turn_rows(rows)
        return user, assistant

    @idempotent
    async def stored_turn(self, session_id: str, *, idempotency_key: str = "", last: bool = False) -> StoredTurn | None:
        """The turn whose user message has `idempotency_key`, or (`last`) the session's
        last turn: both messages, the guardrail verdict and the provider, to replay it."""
        if idempotency_key:
            where = f"turn = {_KEYED_TURN}"
            args: tuple[str, ...] = (session_id, idempotency_key)
        elif last:
            where = "turn = (SELECT turn_count FROM sessions WHERE session_id = $1)"
            args = (session_id,)
        else:
            raise ValueError("stored_turn needs an idempotency key or last=True")
        rows = await self.db.fetch(
            f"SELECT {_MESSAGE_COLUMNS}, guardrail_reason, provider FROM messages WHERE session_id = $1 AND {where}",
            *args,
        )
        return _stored_turn(rows)

    @idempotent
    async def session_and_turn(
        self, session_id: str, *, idempotency_key: str = "", last: bool = False
    ) -> tuple[SessionRow | None, StoredTurn | None]:
        """`get_session` and `stored_turn` in one round trip: what a chat needs once it
        holds the session's chat lease, before it asks the tutor (neither alone: None
        for the turn)."""
        args: tuple[str, ...]
        if idempotency_key:
            turn, args = _KEYED_TURN, (session_id, idempotency_key)
        else:
            turn, args = ("s.turn_count" if last else "NULL"), (session_id,)
        rows = await self.db.fetch(
            "SELECT s.session_id, s.candidate_id, s.problem_id, s.token_hash, s.status, s.turn_count,"
            " s.created_at AS session_created_at, s.submitted_at, m.turn, m.role, m.content, m.created_at,"
            " m.guardrail_violation, m.interrupted, m.leak_cut, m.guardrail_reason, m.provider"
            f" FROM sessions s LEFT JOIN messages m ON m.session_id = s.session_id AND m.turn = {turn}"
            " WHERE s.session_id = $1",
            *args,
        )
        if not rows:
            return None, None
        first = rows[0]
        session = SessionRow(
            session_id=first["session_id"],
            candidate_id=first["candidate_id"],
            problem_id=first["problem_id"],
            token_hash=first["token_hash"],
            status=SessionStatus(first["status"]),
            turn_count=first["turn_count"],
            created_at=first["session_created_at"],
            submitted_at=first["submitted_at"],
        )
        return session, _stored_turn([r for r in rows if r["turn"] is not None])

    @idempotent
    async def freeze(
        self, session_id: str, language: str, code: str, *, chat_fence: int, submit_fence: int, idempotency_key: str
    ) -> SessionRow:
        """Closes the session to chat and records the submission, atomically. A second
        call (a retried submit) keeps the first submission's code. The fences are the
        tokens of the chat lease (taken to freeze: no older chat may store a turn after
        this) and of the submit lease (no older submit may store a report after this)."""
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE sessions SET status = 'submitted', submitted_at = now()"
                " WHERE session_id = $1 AND status = 'active'",
                session_id,
            )
            await conn.execute(
                "UPDATE sessions SET chat_fence = $2 WHERE session_id = $1 AND chat_fence < $2", session_id, chat_fence
            )
            await conn.execute(
                "INSERT INTO submissions (session_id, language, code, fence, idempotency_key)"
                " VALUES ($1, $2, $3, $4, NULLIF($5, ''))"
                " ON CONFLICT (session_id) DO UPDATE SET fence = EXCLUDED.fence WHERE submissions.fence < EXCLUDED.fence",
                session_id,
                language,
                code,
                submit_fence,
                idempotency_key,
            )
            row = await conn.fetchrow(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1", session_id)
        return _session(row)

    @idempotent
    async def submission(self, session_id: str) -> tuple[str, str]:
        row = await self.db.fetchrow("SELECT language, code FROM submissions WHERE session_id = $1", session_id)
        if row is None:
            raise NotFound(f"session {session_id} has no submission")
        return row["language"], row["code"]

    @idempotent
    async def save_report(self, session_id: str, report: dict[str, Any], fence: int) -> bool:
        """Stores the report unless one is stored already or a newer submit holds the
        session (its lease's token `fence` is older than the submission's): True if
        this one was stored. Safe to retry: a repeat finds its report stored."""
        async with self.db.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                "UPDATE submissions SET report = $2::jsonb, graded_at = now()"
                " WHERE session_id = $1 AND report IS NULL AND fence <= $3 RETURNING true",
                session_id,
                json.dumps(report, ensure_ascii=False),
                fence,
            )
            if not stored:
                return False
            await conn.execute(
                "UPDATE sessions SET status = 'graded', graded_at = now() WHERE session_id = $1", session_id
            )
            if self.on_graded is not None:
                await self.on_graded(conn, session_id, report)
        return True

    @idempotent
    async def report(self, session_id: str) -> dict[str, Any] | None:
        raw = await self.db.fetchval("SELECT report FROM submissions WHERE session_id = $1", session_id)
        return None if raw is None else json.loads(raw)
