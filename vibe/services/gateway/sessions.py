"""Who may touch a session: a new session's token is returned once and stored only as
a hash; every later call shows it. Also the problems a session can be about, which the
scoring service owns."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict
from dataclasses import dataclass

import grpc
import redis.asyncio as aioredis

from vibe.platform.api_keys import looks_like_key
from vibe.platform.config import GatewaySettings
from vibe.platform.errors import NotFound, PermissionDenied, Unauthenticated, from_rpc_error
from vibe.platform.hot_state import Keys
from vibe.platform.validation import check_candidate_id, check_id
from vibe.services.gateway.clients import Upstreams
from vibe.services.gateway.store import GatewayStore, MessageRow, SessionRow
from vibe_api.scoring.v1 import scoring_pb2

log = logging.getLogger(__name__)

PROBLEM_LOOKUP_TIMEOUT_S = 10.0


def hash_token(token: str) -> bytes:
    # surrogatepass: a token is only compared, so any text must hash (and not match) rather than raise.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def new_session_token() -> str:
    """A session token, never one that reads as an API key: a credential that starts with
    `vk_` is taken for a key (access.py), and token_urlsafe starts one that way once in
    64^3 draws, which locked that session's candidate out (401 'malformed API key')."""
    while looks_like_key(token := secrets.token_urlsafe(32)):
        pass
    return token


# Session identities kept in this process (the most recently used): a chat turn authorises
# twice (the access check, then the turn), and each lookup was a Redis round trip.
_IDENTITY_CACHE_SIZE = 20_000


class Sessions:
    def __init__(self, store: GatewayStore, upstreams: Upstreams):
        self.store = store
        self.up = upstreams
        # (candidate_id, problem_id, token_hash) never change and sessions are never deleted,
        # so a found identity stays true; a missing one is looked up again every time.
        self._identities: OrderedDict[str, tuple[str, str, bytes]] = OrderedDict()

    async def _identity(self, session_id: str) -> tuple[str, str, bytes] | None:
        identity = self._identities.get(session_id)
        if identity is not None:
            self._identities.move_to_end(session_id)
            return identity
        identity = await self.store.session_identity(session_id)
        if identity is not None:
            self._remember(session_id, identity)
        return identity

    def _remember(self, session_id: str, identity: tuple[str, str, bytes]) -> None:
        self._identities[session_id] = identity
        if len(self._identities) > _IDENTITY_CACHE_SIZE:
            self._identities.popitem(last=False)

    async def create(self, candidate_id: str, problem_id: str, api_key_id: str | None = None) -> tuple[SessionRow, str]:
        """A new session and its token (returned once, stored only as a hash), created by
        the backend key `api_key_id`."""
        candidate_id = check_candidate_id(candidate_id)
        problem_id = check_id("problem_id", problem_id)
        token = new_session_token()
        session = await self.store.create_session(candidate_id, problem_id, hash_token(token), api_key_id)
        # Known now: the session's first chat through this process looks nothing up.
        self._remember(session.session_id, (session.candidate_id, session.problem_id, session.token_hash))
        log.info("session created", extra={"session_id": session.session_id, "problem_id": problem_id})
        return session, token

    async def authorize(self, session_id: str, token: str | None) -> tuple[str, str]:
        """(candidate_id, problem_id) of the session, if `token` is its token."""
        session_id = check_id("session_id", session_id)
        identity = await self._identity(session_id)
        if identity is None:
            raise NotFound(f"no session {session_id!r}")
        if not token:
            raise Unauthenticated("missing session token: send 'authorization: Bearer <session_token>'")
        if not hmac.compare_digest(identity[2], hash_token(token)):
            raise PermissionDenied(f"this token does not belong to session {session_id}")
        return identity[0], identity[1]

    async def get(self, session_id: str, token: str | None) -> tuple[SessionRow, list[MessageRow]]:
        await self.authorize(session_id, token)
        session = await self.store.get_session(session_id)
        assert session is not None
        return session, await self.store.messages(session_id)

    async def problem(self, problem_id: str) -> scoring_pb2.Problem:
        try:
            return await self.up.scoring.GetProblem(
                scoring_pb2.GetProblemRequest(problem_id=problem_id), timeout=PROBLEM_LOOKUP_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "scoring") from None

    async def list_problems(self) -> list[scoring_pb2.Problem]:
        try:
            reply = await self.up.scoring.ListProblems(
                scoring_pb2.ListProblemsRequest(), timeout=PROBLEM_LOOKUP_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "scoring") from None
        return list(reply.problems)


@dataclass(frozen=True)
class GatewayParts:
    """What the chat and the submit guard both work with."""

    settings: GatewaySettings
    store: GatewayStore
    redis: aioredis.Redis
    keys: Keys
    up: Upstreams
    sessions: Sessions
