"""Who may call what on the gateway, and the core behind those rules and the limits.

Two kinds of caller:
- a **backend**, with an API key (`vk_<id>_<secret>`; vibe/platform/api_keys.py) whose
  scopes say what it may do: `sessions:create` (CreateSession), `reports:read` (any
  session's full report and transcript, the reviewer API), `admin` (keys);
- a **candidate**, with the session token CreateSession returned: only that session's
  candidate operations (Chat, Submit, RunVisibleTests, GetSession, its own report view).

A credential arrives as `authorization: Bearer <key or token>` (gRPC metadata or the HTTP
header) or, for keys over HTTP, `X-API-Key`. Refusals: no credential, an invalid or a
revoked key -> UNAUTHENTICATED (401); a credential of the wrong kind, a key without the
scope, another session's token -> PERMISSION_DENIED (403); each message says what to send.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from vibe.platform.api_keys import (
    ApiKey,
    ApiKeyStore,
    KeyRing,
    Scope,
    check_key_id,
    check_name,
    looks_like_key,
    parse_scopes,
)
from vibe.platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from vibe.platform.telemetry import bind_session
from vibe.platform.validation import check_candidate_id, check_id, check_text
from vibe.services.gateway.chat import Chat, ChatEvent
from vibe.services.gateway.limits import Limits
from vibe.services.gateway.report import report_from_json
from vibe.services.gateway.review import ReviewStore
from vibe.services.gateway.sessions import Sessions
from vibe.services.gateway.store import GatewayStore, MessageRow, SessionRow
from vibe.services.gateway.submit import Progress, SubmitEvent, SubmitGuard
from vibe.services.gateway.timing import SessionClock
from vibe.services.gateway.views import CandidateReport, candidate_view, progress_shown, shown
from vibe.services.gateway.visible import VisibleTests
from vibe_api.gateway.v1 import gateway_pb2
from vibe_api.scoring.v1 import scoring_pb2


@dataclass(frozen=True)
class Credential:
    """What a call presented: a backend key, a session token, or nothing."""

    api_key: str | None = None
    session_token: str | None = None

    @classmethod
    def parse(cls, authorization: Sequence[str] = (), x_api_key: Sequence[str] = ()) -> Credential:
        """The one credential among every `authorization` and `x-api-key` value the call
        carries. Two different ones are refused: the gRPC edge kept the last authorization,
        the HTTP edge the first, and X-API-Key silently won over a bearer token, so which one
        a call acted as depended on the edge (and a proxy in front may read another)."""
        keys = {v.strip() for v in x_api_key if v.strip()}
        bearers = set()
        for header in authorization:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                bearers.add(value.strip())
        if len(presented := keys | bearers) > 1:
            raise Unauthenticated(
                f"the call carries {len(presented)} different credentials (authorization and x-api-key "
                "values): send exactly one, the API key or the session token"
            )
        if keys:  # whatever it holds, an X-API-Key is meant as a key (and refused as a malformed one)
            return cls(api_key=keys.pop())
        if bearers:
            value = bearers.pop()
            return cls(api_key=value) if looks_like_key(value) else cls(session_token=value)
        return cls()


def session_key(session_id: str) -> str:
    return check_id("session_id", session_id)


class Viewer(StrEnum):
    CANDIDATE = "candidate"
    REVIEWER = "reviewer"


_SEND_KEY = "send 'authorization: Bearer vk_...' (over HTTP also 'X-API-Key: vk_...')"


class Access:
    """The rules; every edge asks them before it calls the core."""

    def __init__(self, keyring: KeyRing, sessions: Sessions):
        self.keyring = keyring
        self.sessions = sessions

    async def backend(self, cred: Credential, scope: Scope, operation: str) -> ApiKey:
        """The caller's key, if it is live and has `scope`."""
        if cred.api_key is None:
            if cred.session_token is not None:
                raise PermissionDenied(
                    f"{operation} is for backends: it needs an API key with the scope {scope}, not a session "
                    "token (a session token reaches only its own session's chat, submit and report)"
                )
            raise Unauthenticated(f"{operation} needs a backend API key with the scope {scope}: {_SEND_KEY}")
        key = await self.keyring.authenticate(cred.api_key)
        if scope not in key.scopes:
            has = ", ".join(sorted(key.scopes)) or "none"
            raise PermissionDenied(
                f"API key {key.describe()} lacks the scope {scope} that {operation} needs (its scopes: {has}); "
                "use a key with that scope"
            )
        return key

    async def candidate(self, cred: Credential, session_id: str, operation: str) -> str:
        """The session token, if it is the session's (its candidate's operations only)."""
        if cred.api_key is not None:
            key = await self.keyring.authenticate(cred.api_key)  # an invalid key is refused as such first
            raise PermissionDenied(
                f"{operation} is the candidate's: call it with the session token CreateSession returned, "
                f"not an API key (API key {key.describe()})"
            )
        await self.sessions.authorize(session_id, cred.session_token)
        assert cred.session_token is not None  # authorize refuses a missing token
        return cred.session_token

    async def reader(self, cred: Credential, session_id: str, operation: str) -> Viewer:
        """Who reads the session: its candidate (token) or a reviewer (key with reports:read)."""
        if cred.api_key is not None:
            await self.backend(cred, Scope.REPORTS_READ, operation)
            return Viewer.REVIEWER
        await self.sessions.authorize(session_id, cred.session_token)
        return Viewer.CANDIDATE


@dataclass(frozen=True)
class GuardedGateway:
    """What the edges (gRPC servicer, HTTP API) call: the core behind the access rules,
    the limits and the report views."""

    access: Access
    limits: Limits
    sessions: Sessions
    store: GatewayStore
    chat_core: Chat
    submit_core: SubmitGuard
    review_store: ReviewStore
    candidate_report: CandidateReport
    visible: VisibleTests
    clock: SessionClock  # the session's time limit

    async def create_session(
        self, cred: Credential, candidate_id: str, problem_id: str
    ) -> tuple[SessionRow, str, scoring_pb2.Problem]:
        """The new session, its token and its problem. Everything that can fail is asked
        before the session is written: its token is shown only in this answer, so a session
        stored for an answer that then failed (the scoring service down for the problem's
        statement) would be one nobody can use, and the retry would store another."""
        key = await self.access.backend(cred, Scope.SESSIONS_CREATE, "CreateSession")
        check_candidate_id(check_text("candidate_id", candidate_id))
        problem = await self.sessions.problem(check_id("problem_id", check_text("problem_id", problem_id)))
        async with self.limits.new_session(key.key_id):
            session, token = await self.sessions.create(candidate_id, problem_id, key.key_id)
        self.review_store.remember_owner(session.session_id, key.key_id)
        return session, token, problem

    async def get_session(self, cred: Credential, session_id: str) -> tuple[SessionRow, list[MessageRow]]:
        session_id = session_key(session_id)
        await self._existing(session_id)
        await self.access.reader(cred, session_id, "GetSession")
        session = await self.store.get_session(session_id)
        assert session is not None
        return session, await self.store.messages(session_id)

    async def chat(
        self, cred: Credential, session_id: str, message: str, idempotency_key: str = ""
    ) -> AsyncGenerator[ChatEvent, None]:
        session_id = session_key(session_id)
        bind_session(session_id)  # every span of the call carries the session, the access checks' too
        token = await self.access.candidate(cred, session_id, "Chat")
        check_text("message", message, multiline=True)
        self.chat_core.check_request(message, idempotency_key)
        await self.clock.check_open(session_id, "Chat")
        # Counted only once the caller is known to be the candidate: nobody else can use
        # up a candidate's chats. The limits and the session's chat lease are one round trip.
        lease = self.chat_core.lease(session_id)
        try:
            async with self.limits.chat_turn(session_id, await self.review_store.owner(session_id), lease) as held:
                events = self.chat_core.turn(session_id, token, message, idempotency_key, lease=lease, held=held)
                async with contextlib.aclosing(events):
                    async for event in events:
                        yield event
        finally:
            await asyncio.shield(lease.release())  # the turn releases it; this, if the turn never ran

    async def submit(
        self, cred: Credential, session_id: str, language: str, code: str, idempotency_key: str = ""
    ) -> AsyncGenerator[SubmitEvent, None]:
        session_id = session_key(session_id)
        bind_session(session_id)
        token = await self.access.candidate(cred, session_id, "Submit")
        check_text("language", language)
        check_text("code", code, multiline=True)
        async with self.limits.stream(session_id, await self.review_store.owner(session_id)):
            events = self.submit_core.submit(session_id, token, language, code, idempotency_key)
            # Only a graded session can have been released, and a graded session's submit
            # yields its stored report at once: the view is fixed before the first event.
            released = await self.review_store.released_at(session_id)
            view = candidate_view(self.candidate_report, released)
            async with contextlib.aclosing(events):
                async for event in events:
                    yield progress_shown(event, view) if isinstance(event, Progress) else shown(event, view, released)

    async def run_visible_tests(
        self, cred: Credential, session_id: str, language: str, code: str
    ) -> gateway_pb2.RunVisibleTestsResponse:
        session_id = session_key(session_id)
        bind_session(session_id)
        token = await self.access.candidate(cred, session_id, "RunVisibleTests")
        check_text("language", language)
        check_text("code", code, multiline=True)
        await self.limits.run(session_id)  # counted for the candidate only, like chats
        return await self.visible.run(session_id, token, language, code, self.clock)

    async def report(self, cred: Credential, session_id: str) -> gateway_pb2.Report:
        session_id = session_key(session_id)
        await self._existing(session_id)
        viewer = await self.access.reader(cred, session_id, "GetReport")
        stored = await self.store.report(session_id)
        if stored is None:
            raise FailedPrecondition(f"session {session_id} has no report yet: Submit it first")
        report = report_from_json(stored)
        released = await self.review_store.released_at(session_id)
        if viewer is Viewer.REVIEWER:
            return shown(report, gateway_pb2.REPORT_VIEW_FULL, released)
        return shown(report, candidate_view(self.candidate_report, released), released)

    async def _existing(self, session_id: str) -> None:
        """NOT_FOUND for an unknown session whoever asks (as the candidate's calls always said)."""
        if await self.store.session_identity(session_id) is None:
            raise NotFound(f"no session {session_id!r}")


class KeyAdmin:
    """The admin API's core: keys of the table, for callers with the `admin` scope."""

    def __init__(self, access: Access, store: ApiKeyStore, keyring: KeyRing):
        self.access = access
        self.store = store
        self.keyring = keyring

    async def create(self, cred: Credential, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
        await self.access.backend(cred, Scope.ADMIN, "CreateApiKey")
        return await self.store.create(check_name(check_text("name", name)), parse_scopes(scopes))

    async def list(self, cred: Credential) -> list[ApiKey]:
        await self.access.backend(cred, Scope.ADMIN, "ListApiKeys")
        return [k.key for k in self.keyring.settings_keys.values()] + await self.store.list_keys()

    async def revoke(self, cred: Credential, key_id: str) -> ApiKey:
        await self.access.backend(cred, Scope.ADMIN, "RevokeApiKey")
        key_id = check_key_id(check_text("key_id", key_id))
        if key_id in self.keyring.settings_keys:
            raise InvalidArgument(f"key {key_id} is named in VIBE_API_KEYS: remove it from the settings to revoke it")
        return await self.store.revoke(key_id)
