"""Retried chats: a request that already produced a turn gets that turn back, replayed,
instead of a second turn (docs/DESIGN.md §5: "retried requests with the same
idempotency key never store anything twice").

A chat's request key is the client's idempotency key (gRPC `idempotency_key`, HTTP
`Idempotency-Key`) or, when it sent none, one drawn here for this attempt; it is stored
with the turn's user message, unique per session (migration 005). So:

- a retry with the same key finds its turn and replays it (turn_started, the stored
  reply, completed), also after the session was submitted; while the first attempt is
  still answering, the retry waits for it (`CHAT_RETRY_WAIT_S`) and then replays it, or
  runs the turn itself if the first attempt stored nothing;
- without a key, a message identical to the session's last stored turn, sent within
  VIBE_CHAT_DEDUP_WINDOW_S of it, is that turn retried (a client that resent after a
  lost answer, a double click), and is replayed too;
- the store itself refuses a second turn with the same key, whatever the leases did.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from vibe.platform.errors import InvalidArgument
from vibe.services.gateway.store import GatewayStore, SessionRow, StoredTurn

# How long a retry waits for the first attempt of the same key to finish answering.
CHAT_RETRY_WAIT_S = 60.0


def request_key(client_key: str) -> str:
    """The key stored with the turn: the client's, or one for this attempt alone."""
    return client_key or f"gateway-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class ChatRetries:
    store: GatewayStore
    dedup_window_s: float

    async def find(self, session_id: str, message: str, client_key: str) -> StoredTurn | None:
        """The stored turn this request repeats, if any."""
        if client_key:
            return self._repeated(
                await self.store.stored_turn(session_id, idempotency_key=client_key), message, client_key
            )
        if self.dedup_window_s <= 0:
            return None
        return self._repeated(await self.store.stored_turn(session_id, last=True), message, client_key)

    async def find_with_session(
        self, session_id: str, message: str, client_key: str
    ) -> tuple[SessionRow | None, StoredTurn | None]:
        """The session and, in the same round trip, what `find` finds (called with the
        session's chat lease held, when both are needed)."""
        session, stored = await self.store.session_and_turn(
            session_id, idempotency_key=client_key, last=not client_key and self.dedup_window_s > 0
        )
        return session, self._repeated(stored, message, client_key)

    def _repeated(self, stored: StoredTurn | None, message: str, client_key: str) -> StoredTurn | None:
        """`stored` (the client key's turn, or the session's last) if this request repeats it."""
        if stored is None:
            return None
        if client_key:
            if stored.user.content != message:
                raise InvalidArgument(
                    f"idempotency key {client_key!r} was used for turn {stored.user.turn} with another message; "
                    "use a new key for a new message"
                )
            return stored
        if stored.user.content != message:
            return None
        age_s = (datetime.now(UTC) - stored.user.created_at).total_seconds()
        return stored if age_s <= self.dedup_window_s else None
