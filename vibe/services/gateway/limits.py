"""The gateway's limits (settings VIBE_LIMIT_*): each refusal is RESOURCE_EXHAUSTED
(HTTP 429) with a message naming the limit and, when waiting helps, when to retry.

- chats per minute, per session (a sliding window in Redis);
- visible-test runs per minute, per session (likewise: each is a sandbox job);
- turns per session (the session's own turn count, checked under its chat lease);
- sessions per key per hour (a sliding window in Redis);
- concurrent streams per key: chats and submits streaming at once over the sessions the
  key created (leased slots in Redis, freed when the stream ends however it ends, and
  by expiry within STREAM_LEASE_S when the gateway holding them dies);
- and, refused ABORTED like a second chat while one streams, more than
  STREAMS_PER_SESSION chats and submits of one session at once (leased the same way): the
  key's slots are shared by all its candidates, so without this one candidate could hold
  them all (a submit waits for the session's submit still grading, a keyed chat for its
  first attempt) and refuse every other candidate of the key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import NoReturn, cast

import redis.asyncio as aioredis

from vibe.platform.config import AccessSettings
from vibe.platform.errors import Aborted, ResourceExhausted
from vibe.platform.hot_state import Keys
from vibe.platform.leases import Lease
from vibe.platform.limits import Refused, SlidingWindow, Slots

STREAM_LEASE_S = 30.0
# What one session streams at once in honest use: a chat, a retry of it waiting for its
# first attempt, and a submit (which waits for the chat). More is one candidate taking the
# key's shared slots from the others.
STREAMS_PER_SESSION = 3


def _seconds(refused: Refused) -> str:
    return f"{max(1, round(refused.retry_after_s))} s"


def check_turn_limit(turn: int, turns_per_session: int) -> None:
    """Called under the session's chat lease with the number the next turn would get:
    past the limit, no more turns (waiting does not help, so no retry time)."""
    if turn > turns_per_session:
        raise ResourceExhausted(
            f"limit reached: {turns_per_session} turns per session (VIBE_LIMIT_TURNS_PER_SESSION); "
            "this session takes no more messages, submit your code"
        )


class Limits:
    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: AccessSettings):
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self._chats = SlidingWindow(redis, settings.chats_per_minute, 60.0)
        self._runs = SlidingWindow(redis, settings.runs_per_minute, 60.0)
        self._sessions = SlidingWindow(redis, settings.sessions_per_key_per_hour, 3600.0)
        self._streams = Slots(redis, settings.streams_per_key, STREAM_LEASE_S)
        self._session_streams = Slots(redis, STREAMS_PER_SESSION, STREAM_LEASE_S)

    def _chat_admitted(self, admitted: str | Refused) -> None:
        if isinstance(admitted, Refused):
            raise ResourceExhausted(
                f"limit reached: {self.settings.chats_per_minute} chats per minute per session "
                f"(VIBE_LIMIT_CHATS_PER_MINUTE); send again in {_seconds(admitted)}",
                admitted.retry_after_s,
            )

    @contextlib.asynccontextmanager
    async def chat_turn(self, session_id: str, key_id: str | None, lease: Lease) -> AsyncIterator[bool]:
        """`chat`, then `stream`, then `lease.try_acquire()` (the session's chat lease), in
        one Redis round trip instead of four: they come before the tutor is asked, on
        every turn. The block holds the session's and the key's stream slots and is given
        whether the lease was taken (the caller releases it). A refusal is as when they
        were asked one after another: a refused chat takes nothing (what the pipeline took
        is given back), a refused slot leaves the chat counted and no lease or other slot."""
        chats = f"{self.keys.prefix}limit:chats:{session_id}"
        own_streams = self._session_streams_key(session_id)
        streams = f"{self.keys.prefix}limit:streams:{key_id}"
        # When Redis fails midway, what the scripts took expires by itself (the lease
        # within VIBE_LEASE_TTL_S, the slots within STREAM_LEASE_S), as before.
        async with self.redis.pipeline(transaction=False) as pipe:
            ticket = self._chats.admit_on(pipe, chats)
            own_holder = self._session_streams.take_on(pipe, own_streams)
            holder = self._streams.take_on(pipe, streams) if key_id is not None else ""
            lease.try_acquire_on(pipe)
            results = await pipe.execute()
        taken = lease.took(results[-1])
        own_slot = results[1]
        slot = results[2] if key_id is not None else None

        async def give_back(own: bool) -> None:
            await asyncio.shield(lease.release())
            if own and own_slot == 0:
                await asyncio.shield(self._session_streams.give_back(own_streams, own_holder))
            if slot == 0:
                await asyncio.shield(self._streams.give_back(streams, holder))

        try:
            self._chat_admitted(SlidingWindow.admitted(ticket, results[0]))
        except ResourceExhausted:
            await give_back(own=True)
            raise
        if int(cast("int", own_slot)):
            await give_back(own=False)
            self._session_streams_refused()
        held = [(self._session_streams, own_streams, own_holder)]
        if key_id is not None:
            if wait_ms := int(cast("int", slot)):
                await asyncio.shield(lease.release())
                await asyncio.shield(self._session_streams.give_back(own_streams, own_holder))
                self._stream_refused(key_id, Refused(wait_ms / 1000))
            held.append((self._streams, streams, holder))
        # Both slots renewed by one task and released in one round trip.
        async with Slots.kept_all(held):
            yield taken

    async def run(self, session_id: str) -> None:
        admitted = await self._runs.admit(f"{self.keys.prefix}limit:runs:{session_id}")
        if isinstance(admitted, Refused):
            raise ResourceExhausted(
                f"limit reached: {self.settings.runs_per_minute} visible-test runs per minute per session "
                f"(VIBE_LIMIT_RUNS_PER_MINUTE); run again in {_seconds(admitted)}",
                admitted.retry_after_s,
            )

    @contextlib.asynccontextmanager
    async def new_session(self, key_id: str) -> AsyncIterator[None]:
        """Counts a session for the key for the block; a block that fails takes it back."""
        window = f"{self.keys.prefix}limit:sessions:{key_id}"
        admitted = await self._sessions.admit(window)
        if isinstance(admitted, Refused):
            raise ResourceExhausted(
                f"limit reached: {self.settings.sessions_per_key_per_hour} sessions per API key per hour "
                f"(VIBE_LIMIT_SESSIONS_PER_KEY_PER_HOUR) for key {key_id}; retry in {_seconds(admitted)}",
                admitted.retry_after_s,
            )
        try:
            yield
        except BaseException:
            await self._sessions.forget(window, admitted)
            raise

    @contextlib.asynccontextmanager
    async def stream(self, session_id: str, key_id: str | None) -> AsyncIterator[None]:
        """Holds one of the session's and one of the key's stream slots for the block
        (sessions created without a key, before keys existed, count for the session only)."""
        async with self._session_streams.hold(self._session_streams_key(session_id)) as refused:
            if refused is not None:
                self._session_streams_refused()
            if key_id is None:
                yield
                return
            async with self._streams.hold(f"{self.keys.prefix}limit:streams:{key_id}") as refused:
                if refused is not None:
                    self._stream_refused(key_id, refused)
                yield

    def _session_streams_key(self, session_id: str) -> str:
        return f"{self.keys.prefix}limit:session_streams:{session_id}"

    def _session_streams_refused(self) -> NoReturn:
        # A conflict within the session, like a second chat while one streams (ABORTED,
        # retry when it is done), not a limit of the key's.
        raise Aborted(
            f"{STREAMS_PER_SESSION} chats and submits of this session are streaming already; "
            "send again when one of them is done"
        )

    def _stream_refused(self, key_id: str, refused: Refused) -> NoReturn:
        raise ResourceExhausted(
            f"limit reached: {self.settings.streams_per_key} concurrent streams per API key "
            f"(VIBE_LIMIT_STREAMS_PER_KEY) over the sessions of key {key_id}; "
            f"retry when a chat or submit of them ends",
            min(refused.retry_after_s, 5.0),
        )
