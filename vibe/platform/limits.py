"""Counters for limits, in Redis: atomic (one Lua script each), shared by every replica,
timed by the Redis server's clock, and self-expiring (nothing is left behind when a
caller or a replica goes away).

- `SlidingWindow`: at most N events per window per subject (a sorted set of the
  admitted events; an admission older than the window no longer counts).
- `Slots`: at most N holders at once per subject, each a lease renewed while it is held;
  a holder that dies without releasing frees its slot when the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

log = logging.getLogger(__name__)

# KEYS: the window (zset member -> admitted at, ms). ARGV: window_ms, limit, member.
# Returns 0 when admitted, else the ms until the oldest admission leaves the window.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# KEYS: the slots (zset holder -> lease end, ms). ARGV: lease_ms, limit, holder.
# Returns 0 when a slot is taken, else the ms until the first lease would run out.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[1], tonumber(last[2]))
  return 0
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(first[2]) - now)
"""

# Extends a held lease (only if still held: an expired one is not brought back).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease_end = now + tonumber(ARGV[1])
if redis.call('ZADD', KEYS[1], 'XX', 'CH', lease_end, ARGV[2]) == 1 then
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIREAT', KEYS[1], lease_end) end
  return 1
end
return 0
"""


@dataclass(frozen=True)
class Refused:
    retry_after_s: float


class SlidingWindow:
    def __init__(self, redis: aioredis.Redis, limit: int, window_s: float):
        self.redis = redis
        self.limit = limit
        self.window_ms = max(1, int(window_s * 1000))
        self._admit = redis.register_script(_ADMIT)

    async def admit(self, key: str) -> str | Refused:
        """Counts one event for `key`: its ticket (for `forget`), or Refused when the window is full."""
        ticket = secrets.token_hex(8)
        wait_ms = int(await self._admit(keys=[key], args=[self.window_ms, self.limit, ticket]))
        return ticket if wait_ms == 0 else Refused(wait_ms / 1000)

    def admit_on(self, pipe: Pipeline, key: str) -> str:
        """`admit` queued on `pipe` (one round trip with other commands): its ticket;
        `admitted` reads the pipeline's result."""
        ticket = secrets.token_hex(8)
        pipe.eval(_ADMIT, 1, key, self.window_ms, self.limit, ticket)
        return ticket

    @staticmethod
    def admitted(ticket: str, result: object) -> str | Refused:
        wait_ms = int(cast("int", result))
        return ticket if wait_ms == 0 else Refused(wait_ms / 1000)

    async def forget(self, key: str, ticket: str) -> None:
        """Takes back an admission whose event did not happen after all."""
        await self.redis.zrem(key, ticket)


class Slots:
    def __init__(self, redis: aioredis.Redis, limit: int, lease_s: float):
        self.redis = redis
        self.limit = limit
        self.lease_s = lease_s
        self._take = redis.register_script(_TAKE)
        self._renew = redis.register_script(_RENEW)
        self._lease_ms = max(1, int(lease_s * 1000))

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[Refused | None]:
        """Holds a slot of `key` for the block (None), or yields Refused when all are taken.
        The lease is renewed every third of its length while the block runs, and released
        however the block ends."""
        holder = secrets.token_hex(8)
        wait_ms = int(await self._take(keys=[key], args=[self._lease_ms, self.limit, holder]))
        async with self.kept(key, holder, wait_ms) as refused:
            yield refused

    def take_on(self, pipe: Pipeline, key: str) -> str:
        """Taking a slot of `key`, queued on `pipe` (one round trip with other commands):
        the holder's id, for `kept` with the pipeline's result."""
        holder = secrets.token_hex(8)
        pipe.eval(_TAKE, 1, key, self._lease_ms, self.limit, holder)
        return holder

    @contextlib.asynccontextmanager
    async def kept(self, key: str, holder: str, result: object) -> AsyncIterator[Refused | None]:
        """`hold`'s block for a slot taken by `take_on` (`result`: the pipeline's answer)."""
        wait_ms = int(cast("int", result))
        if wait_ms:
            yield Refused(wait_ms / 1000)
            return
        async with Slots.kept_all([(self, key, holder)]):
            yield None

    @staticmethod
    @contextlib.asynccontextmanager
    async def kept_all(held: Sequence[tuple[Slots, str, str]]) -> AsyncIterator[None]:
        """`kept`'s block for slots (of one Redis client) that `take_on` took, all of
        them: renewed by one task while the block runs, released in one round trip
        however it ends. Why: a chat turn holds two (the session's and the key's), and
        a renewer and a release each cost it a task and a Redis round trip per slot."""
        renewer = asyncio.create_task(Slots._keep(held))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await asyncio.shield(Slots._release(held))

    async def give_back(self, key: str, holder: str) -> None:
        """Frees a slot `take_on` took whose block will not run (its caller was refused
        by another limit)."""
        await self.redis.zrem(key, holder)

    @staticmethod
    async def _release(held: Sequence[tuple[Slots, str, str]]) -> None:
        redis = held[0][0].redis
        if len(held) == 1:
            await redis.zrem(held[0][1], held[0][2])
            return
        async with redis.pipeline(transaction=False) as pipe:
            for _, key, holder in held:
                pipe.zrem(key, holder)
            await pipe.execute()

    @staticmethod
    async def _keep(held: Sequence[tuple[Slots, str, str]]) -> None:
        # Every third of the shortest lease (a longer one renewed more often than it needs is still held).
        interval = min(slots.lease_s for slots, _, _ in held) / 3
        while True:
            await asyncio.sleep(interval)
            for slots, key, holder in held:
                try:
                    await slots._renew(keys=[key], args=[slots._lease_ms, holder])
                except aioredis.RedisError:  # Redis away for a moment: the next renewal may still make it
                    log.warning("could not renew a slot lease", extra={"key": key})
