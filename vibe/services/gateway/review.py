"""The reviewer API's core: list sessions, read a transcript with each turn's evaluation,
guardrail verdict and leak check beside it, export a session as one document, release a
report to its candidate. Callers hold a backend key of scope `reports:read` (checked by
the edges through `access.py` before anything here runs)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import grpc
from google.protobuf import timestamp_pb2

from vibe.platform.errors import FailedPrecondition, InvalidArgument, NotFound, from_rpc_error
from vibe.platform.validation import check_candidate_id, check_id, check_text
from vibe.services.gateway.clients import Upstreams
from vibe.services.gateway.report import report_from_json
from vibe.services.gateway.store import Role, SessionStatus
from vibe.shared.convert import guardrail_from_columns, guardrail_to_pb
from vibe_api.evaluator.v1 import evaluator_pb2
from vibe_api.gateway.v1 import gateway_pb2, review_pb2
from vibe_api.tutor.v1 import tutor_pb2

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
EXPORT_FORMAT = "vibe.session-export/v1"
EVALUATIONS_TIMEOUT_S = 10.0
_OWNER_CACHE_SIZE = 10_000
_STATUS_TO_PB = {
    SessionStatus.ACTIVE: gateway_pb2.SESSION_STATUS_ACTIVE,
    SessionStatus.SUBMITTED: gateway_pb2.SESSION_STATUS_SUBMITTED,
    SessionStatus.GRADED: gateway_pb2.SESSION_STATUS_GRADED,
}
_PB_TO_STATUS = {v: k for k, v in _STATUS_TO_PB.items()}


@dataclass(frozen=True)
class ListFilter:
    candidate_id: str | None = None
    problem_id: str | None = None
    status: SessionStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str = ""

    @classmethod
    def from_pb(cls, request: review_pb2.ListSessionsRequest) -> ListFilter:
        if request.status and request.status not in _PB_TO_STATUS:
            raise InvalidArgument(f"unknown status {request.status}")
        return cls(
            candidate_id=request.candidate_id.strip() or None,
            problem_id=request.problem_id.strip() or None,
            status=_PB_TO_STATUS.get(request.status),
            created_after=_pb_time(request, "created_after"),
            created_before=_pb_time(request, "created_before"),
            page_size=request.page_size,
            page_token=request.page_token,
        )

    def checked(self) -> ListFilter:
        """InvalidArgument for what no session could match (text PostgreSQL cannot hold, a
        time outside years 1-9999)."""
        for name in ("candidate_id", "problem_id"):
            value = getattr(self, name)
            if value is not None:
                if name == "candidate_id":
                    check_candidate_id(value)
                else:
                    check_id(name, value)
        for name in ("created_after", "created_before"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidArgument(f"{name} needs a time zone")
        return self

    def checked_size(self) -> int:
        if self.page_size == 0:
            return DEFAULT_PAGE_SIZE
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument(
                f"page_size must be 1..{MAX_PAGE_SIZE} (0: {DEFAULT_PAGE_SIZE}), got {self.page_size}"
            )
        return self.page_size


def _pb_time(request: review_pb2.ListSessionsRequest, name: str) -> datetime | None:
    if not request.HasField(name):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(request, name)
    try:
        # ToDatetime, not seconds as a float: a float rounds the last instant of year 9999 past it.
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgument(
            f"{name} is not a time within the years 1-9999 (seconds {stamp.seconds}, nanos {stamp.nanos})"
        ) from None


def _encode_cursor(created_at: datetime, session_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        created, session_id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        at = datetime.fromisoformat(created)
        if at.tzinfo is None or not isinstance(session_id, str):
            raise ValueError("not a cursor of ours")
        # The token comes back from the caller: its time is in UTC (as we wrote it) only if
        # it was not forged. In UTC it must still be a date (years 1-9999) for PostgreSQL.
        return at.astimezone(UTC), check_text("page_token", session_id)
    except (binascii.Error, ValueError, TypeError, OverflowError, UnicodeDecodeError, InvalidArgument):
        raise InvalidArgument("page_token is not one this API returned; start again without it") from None


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


_SUMMARY = """
SELECT s.session_id, s.candidate_id, s.problem_id, s.status, s.turn_count, s.created_at, s.submitted_at,
       s.graded_at, s.api_key_id, sub.released_at,
       sub.report -> 'scores' ->> 'grade' AS grade, (sub.report -> 'scores' ->> 'total_score')::float8 AS total_score
FROM sessions s LEFT JOIN submissions sub USING (session_id)
"""


def summary_to_pb(row: asyncpg.Record) -> review_pb2.SessionSummary:
    pb = review_pb2.SessionSummary(
        session_id=row["session_id"],
        candidate_id=row["candidate_id"],
        problem_id=row["problem_id"],
        status=_STATUS_TO_PB[SessionStatus(row["status"])],
        turn_count=row["turn_count"],
        grade=row["grade"] or "",
        total_score=row["total_score"] or 0.0,
        api_key_id=row["api_key_id"] or "",
    )
    for name in ("created_at", "submitted_at", "graded_at", "released_at"):
        stamp = _ts(row[name])
        if stamp is not None:
            getattr(pb, name).CopyFrom(stamp)
    return pb


class ReviewStore:
    """Reads of the gateway's own tables for reviewers, and the release of a report."""

    def __init__(self, db: asyncpg.Pool):
        self.db = db
        self._owners: OrderedDict[str, str | None] = OrderedDict()

    async def owner(self, session_id: str) -> str | None:
        """The key that created the session (never changes, so cached in this process)."""
        if session_id in self._owners:
            self._owners.move_to_end(session_id)
            return self._owners[session_id]
        owner: str | None = await self.db.fetchval("SELECT api_key_id FROM sessions WHERE session_id = $1", session_id)
        self.remember_owner(session_id, owner)
        return owner

    def remember_owner(self, session_id: str, owner: str | None) -> None:
        """The key that created the session, known when this process created it (its
        first chat then reads nothing)."""
        self._owners[session_id] = owner
        if len(self._owners) > _OWNER_CACHE_SIZE:
            self._owners.popitem(last=False)

    async def released_at(self, session_id: str) -> datetime | None:
        value: datetime | None = await self.db.fetchval(
            "SELECT released_at FROM submissions WHERE session_id = $1", session_id
        )
        return value

    async def release(self, session_id: str) -> datetime:
        """Releases the graded report; releasing again keeps the first time."""
        released: datetime | None = await self.db.fetchval(
            "UPDATE submissions SET released_at = coalesce(released_at, now())"
            " WHERE session_id = $1 AND report IS NOT NULL RETURNING released_at",
            session_id,
        )
        if released is None:
            status = await self.db.fetchval("SELECT status FROM sessions WHERE session_id = $1", session_id)
            if status is None:
                raise NotFound(f"no session {session_id!r}")
            raise FailedPrecondition(f"session {session_id} is {status}, not graded: there is no report to release yet")
        return released

    async def summary(self, session_id: str) -> review_pb2.SessionSummary:
        row = await self.db.fetchrow(_SUMMARY + " WHERE s.session_id = $1", session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return summary_to_pb(row)

    async def page(self, f: ListFilter) -> tuple[list[review_pb2.SessionSummary], str]:
        size = f.checked().checked_size()
        after_at, after_id = _decode_cursor(f.page_token) if f.page_token else (None, None)
        rows = await self.db.fetch(
            _SUMMARY
            + """ WHERE ($1::text IS NULL OR s.candidate_id = $1) AND ($2::text IS NULL OR s.problem_id = $2)
              AND ($3::text IS NULL OR s.status = $3)
              AND ($4::timestamptz IS NULL OR s.created_at >= $4) AND ($5::timestamptz IS NULL OR s.created_at < $5)
              AND ($6::timestamptz IS NULL OR (s.created_at, s.session_id) < ($6, $7::text))
            ORDER BY s.created_at DESC, s.session_id DESC LIMIT $8""",
            f.candidate_id,
            f.problem_id,
            f.status.value if f.status else None,
            f.created_after,
            f.created_before,
            after_at,
            after_id,
            size + 1,
        )
        more = len(rows) > size
        rows = rows[:size]
        token = _encode_cursor(rows[-1]["created_at"], rows[-1]["session_id"]) if more else ""
        return [summary_to_pb(r) for r in rows], token

    async def turns(self, session_id: str) -> list[review_pb2.TranscriptTurn]:
        rows = await self.db.fetch(
            "SELECT session_id, turn, role, content, created_at, guardrail_violation, guardrail_reason, provider,"
            " interrupted, leak_cut, leak_share, leak_material FROM messages WHERE session_id = $1"
            " ORDER BY turn, role DESC",
            session_id,
        )
        turns: dict[int, review_pb2.TranscriptTurn] = {}
        for r in rows:
            turn = turns.setdefault(r["turn"], review_pb2.TranscriptTurn(turn=r["turn"]))
            role = tutor_pb2.ROLE_USER if r["role"] == Role.USER else tutor_pb2.ROLE_ASSISTANT
            message = tutor_pb2.ChatMessage(session_id=r["session_id"], turn=r["turn"], role=role, content=r["content"])
            message.created_at.FromDatetime(r["created_at"])
            if r["role"] == Role.USER:
                turn.user_message.CopyFrom(message)
                turn.guardrail.CopyFrom(
                    guardrail_to_pb(guardrail_from_columns(r["guardrail_violation"], r["guardrail_reason"] or ""))
                )
            else:
                turn.assistant_message.CopyFrom(message)
                turn.interrupted = r["interrupted"]
                turn.provider = r["provider"] or ""
                turn.leak_check.CopyFrom(
                    review_pb2.LeakCheckOutcome(
                        checked=r["leak_share"] is not None,
                        cut=r["leak_cut"],
                        share=r["leak_share"] or 0.0,
                        material=r["leak_material"] or "",
                    )
                )
        return [turns[t] for t in sorted(turns)]

    async def submission(self, session_id: str) -> tuple[str, str, gateway_pb2.Report | None]:
        row = await self.db.fetchrow("SELECT language, code, report FROM submissions WHERE session_id = $1", session_id)
        if row is None:
            return "", "", None
        report = report_from_json(json.loads(row["report"])) if row["report"] is not None else None
        return row["language"], row["code"], report


class Review:
    def __init__(self, store: ReviewStore, upstreams: Upstreams):
        self.store = store
        self.up = upstreams

    async def list_sessions(self, f: ListFilter) -> review_pb2.ListSessionsResponse:
        sessions, token = await self.store.page(f)
        return review_pb2.ListSessionsResponse(sessions=sessions, next_page_token=token)

    async def transcript(self, session_id: str) -> review_pb2.GetTranscriptResponse:
        session_id = check_id("session_id", session_id)
        summary = await self.store.summary(session_id)
        turns = await self.store.turns(session_id)
        evaluations = await self._evaluations(session_id)
        for turn in turns:
            evaluation = evaluations.get(turn.turn)
            if evaluation is not None:
                turn.evaluated = True
                turn.evaluation.CopyFrom(evaluation)
        return review_pb2.GetTranscriptResponse(session=summary, turns=turns)

    async def export(self, session_id: str) -> review_pb2.ExportSessionResponse:
        transcript = await self.transcript(session_id)
        language, code, report = await self.store.submission(transcript.session.session_id)
        out = review_pb2.ExportSessionResponse(
            format=EXPORT_FORMAT,
            session=transcript.session,
            turns=transcript.turns,
            submitted_language=language,
            submitted_code=code,
        )
        out.exported_at.GetCurrentTime()
        if report is not None:
            report.view = gateway_pb2.REPORT_VIEW_FULL
            if transcript.session.HasField("released_at"):
                report.released_at.CopyFrom(transcript.session.released_at)
            out.report.CopyFrom(report)
        return out

    async def release(self, session_id: str) -> review_pb2.ReleaseReportResponse:
        session_id = check_id("session_id", session_id)
        released = await self.store.release(session_id)
        log.info("report released", extra={"session_id": session_id})
        out = review_pb2.ReleaseReportResponse(session_id=session_id)
        out.released_at.FromDatetime(released)
        return out

    async def _evaluations(self, session_id: str) -> dict[int, evaluator_pb2.TurnEvaluation]:
        try:
            reply = await self.up.evaluator.GetTurnEvaluations(
                evaluator_pb2.GetTurnEvaluationsRequest(session_id=session_id), timeout=EVALUATIONS_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "evaluator") from None
        return {e.turn: e for e in reply.evaluations}
