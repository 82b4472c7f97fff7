"""Leases in Redis: short, renewed while their holder lives, and fenced.

A lease is a key set with NX and a TTL of a few seconds (VIBE_LEASE_TTL_S). While the
holder runs, a heartbeat renews it every third of the TTL; a holder that dies (SIGKILL,
a lost machine) stops renewing, and the lease is free again within one TTL. A Redis
restarted from its append-only file brings the lease back with what was left of its TTL,
so it cannot lock anyone out for longer either.

Each acquisition also draws a fencing token: a number larger than every token drawn
before for the same lease. The holder passes it to the write that publishes its result,
and that write (one PostgreSQL statement or transaction) refuses a token lower than the
highest it has seen: a holder that stalled past its lease (a long GC pause, a partition)
and woke up after someone else took over can never overwrite the newer result.

Tokens must stay monotonic even if Redis loses its data (restarted without persistence):
the counter never goes below Redis's clock in microseconds, so a fresh counter starts
above every token handed out before (a token runs ahead of the clock only by one per
acquisition within the same microsecond, and one acquisition, a script run by a
single-threaded server, takes longer than that). It assumes Redis's clock does not go
back (a restore on a host whose clock is behind would need the counters restored too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from vibe.platform.storefaults import is_store_fault

log = logging.getLogger(__name__)

# How long a fencing counter lives unused; its floor (Redis's clock) keeps tokens
# monotonic after it expires, so this only bounds how many counters Redis keeps.
FENCE_COUNTER_TTL_MS = 24 * 3600 * 1000
HEARTBEATS_PER_TTL = 3

# Take the lease (SET NX PX) and draw its token: max(counter + 1, Redis time in µs).
_ACQUIRE = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local token = redis.call('incr', KEYS[2])
local now = redis.call('time')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
if token < floor then
  token = floor
  redis.call('set', KEYS[2], token)
end
redis.call('pexpire', KEYS[2], ARGV[3])
return token
"""
# Renew or release only while the key still holds our owner id: a lease that expired
# and was taken by someone else must not be extended or freed by its former holder.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class Lease:
    """One holder's lease on `key`. `fence` is its token once acquired (0 before)."""

    def __init__(self, redis: aioredis.Redis, key: str, ttl_s: float):
        self.redis = redis
        self.key = key
        self.fence_key = f"{key}:fence"
        self.ttl_s = ttl_s
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.owner = secrets.token_hex(16)
        self.fence = 0
        self.lost = False  # a renewal found the lease taken by someone else, or gone
        # Taken by this object and not released since (it may have expired meanwhile): a
        # lease never taken, or released already, needs no round trip to be released.
        self.held = False
        self._heartbeat_task: asyncio.Task[None] | None = None

    async def try_acquire(self) -> bool:
        return self.took(
            await self.redis.eval(_ACQUIRE, 2, self.key, self.fence_key, self.owner, self.ttl_ms, FENCE_COUNTER_TTL_MS)
        )

    def try_acquire_on(self, pipe: Pipeline) -> None:
        """`try_acquire` queued on `pipe` (one round trip with other commands); `took`
        reads the pipeline's result."""
        pipe.eval(_ACQUIRE, 2, self.key, self.fence_key, self.owner, self.ttl_ms, FENCE_COUNTER_TTL_MS)

    def took(self, result: object) -> bool:
        """Whether the acquisition that answered `result` took the lease (its token is then `fence`)."""
        token = int(cast("int", result))
        if token:
            self.fence, self.lost, self.held = token, False, True
        return bool(token)

    async def acquire(self, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Waits up to `timeout_s` for the lease; False if it stayed taken."""
        deadline = time.monotonic() + timeout_s
        while True:
            if await self.try_acquire():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)

    async def renew(self) -> bool:
        renewed = bool(await self.redis.eval(_RENEW, 1, self.key, self.owner, self.ttl_ms))
        if not renewed:
            self.lost = True
        return renewed

    def start_heartbeat(self) -> None:
        """Renews the (acquired) lease in the background until `release`."""
        if self._heartbeat_task is None:
            self._heartbeat_task = asyncio.create_task(self._heartbeat())

    async def stop_heartbeat(self) -> None:
        """Stops renewing the lease (it stays held until released or expired)."""
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat_task
            self._heartbeat_task = None

    def release_on(self, pipe: Pipeline) -> None:
        """`release` queued on `pipe` (one round trip with other commands), once its
        heartbeat is stopped (`stop_heartbeat`); `released` says the pipeline ran. If it
        did not (Redis unreachable), `release` tries again, and the lease frees itself
        within its TTL anyway."""
        if self._heartbeat_task is not None:
            raise RuntimeError("stop the lease's heartbeat before releasing it on a pipeline")
        if self.held:
            pipe.eval(_RELEASE, 1, self.key, self.owner)

    def released(self) -> None:
        """The pipeline carrying `release_on` ran: releasing again costs nothing."""
        self.held = False

    async def release(self) -> None:
        """Stops the heartbeat and frees the lease if it is still ours (once: releasing
        again, or a lease never taken, costs nothing). Best effort: when Redis cannot be
        reached, the lease frees itself within its TTL."""
        await self.stop_heartbeat()
        if not self.held:
            return
        self.held = False
        try:
            await self.redis.eval(_RELEASE, 1, self.key, self.owner)
        except Exception as exc:
            if not is_store_fault(exc):
                raise
            log.warning("could not release a lease; it expires by itself", extra={"lease": self.key})

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[Lease]:
        """Renews the (acquired) lease in the background while the block runs, and
        releases it afterwards, also when the block is cancelled."""
        self.start_heartbeat()
        try:
            yield self
        finally:
            # Released already (on a pipeline, with the holder's result): nothing left to
            # do, and shielding a coroutine costs a task of its own.
            if self.held or self._heartbeat_task is not None:
                await asyncio.shield(self.release())

    async def _heartbeat(self) -> None:
        interval = self.ttl_s / HEARTBEATS_PER_TTL
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.renew():
                    # Someone else has it now; our write will be refused by its fence.
                    log.warning("lease lost before its holder finished", extra={"lease": self.key})
                    return
            except Exception as exc:
                if not is_store_fault(exc):
                    raise
                # Redis is unreachable: keep trying; the fence guards the write meanwhile.
                log.warning("could not renew a lease", extra={"lease": self.key, "error": type(exc).__name__})
