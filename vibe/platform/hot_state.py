"""Redis: the key layout every service shares, and a small lock.

All keys start with the configured prefix (VIBE_REDIS_PREFIX), so one Redis can
serve several deployments, and every test its own namespace.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

# Stream of background evaluation jobs and the consumer group all evaluators share.
EVAL_GROUP = "evaluators"


def connect_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


@dataclass(frozen=True)
class Keys:
    prefix: str

    def turn_log(self, session_id: str, turn: int) -> str:
        """The turn log of docs/DESIGN.md §2 (JSON, with a TTL; PostgreSQL holds the durable copy)."""
        return f"{self.prefix}turn_logs:{session_id}:{turn}"

    def turn_scores(self, session_id: str) -> str:
        """Hash turn -> score (the design's `eval:scores:{session}`)."""
        return f"{self.prefix}eval:scores:{session_id}"

    def eval_runs(self, session_id: str) -> str:
        """Hash turn -> how many times an evaluation of that turn was performed."""
        return f"{self.prefix}eval:runs:{session_id}"

    def eval_jobs(self) -> str:
        """The background evaluation queue (a Redis Stream)."""
        return f"{self.prefix}eval:jobs"

    def eval_dead(self) -> str:
        """Dead-letter stream: jobs that failed EVALUATOR_JOB_MAX_ATTEMPTS deliveries or
        were malformed, with the reason, the attempts and the original fields."""
        return f"{self.prefix}eval:dead"

    def eval_dead_turns(self, session_id: str) -> str:
        """Hash turn -> dead-letter record (JSON) of the session's dead-lettered jobs,
        so a turn's status is found without reading the whole dead-letter stream."""
        return f"{self.prefix}eval:dead_turns:{session_id}"

    def session(self, session_id: str) -> str:
        """Cache of a session's immutable fields (problem, candidate, token hash)."""
        return f"{self.prefix}session:{session_id}"

    def memory_summary(self, session_id: str) -> str:
        """Hash {through_turn, summary}: the tutor's summary of turns 1..through_turn, the
        ones no longer sent as history. Rebuilt from PostgreSQL when lost."""
        return f"{self.prefix}memory:summary:{session_id}"

    def chat_lock(self, session_id: str) -> str:
        return f"{self.prefix}lock:chat:{session_id}"

    def submit_lock(self, session_id: str) -> str:
        return f"{self.prefix}lock:submit:{session_id}"

    def eval_lock(self, session_id: str, turn: int) -> str:
        """Held while a turn is being evaluated: the mark of an evaluation in flight."""
        return f"{self.prefix}lock:eval:{session_id}:{turn}"


# Delete the key only if it still holds our token: a lock that expired and was taken
# by someone else must not be released by its former owner.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class Lock:
    """A lease in Redis: SET NX with a TTL, released only by its owner."""

    def __init__(self, redis: aioredis.Redis, key: str, ttl_s: float):
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = secrets.token_hex(16)

    async def try_acquire(self) -> bool:
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.ttl_ms))

    async def acquire(self, timeout_s: float, poll_s: float = 0.05) -> bool:
        """Waits up to `timeout_s` for the lock; False if it stayed taken."""
        deadline = time.monotonic() + timeout_s
        while True:
            if await self.try_acquire():
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_s)

    async def release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, self.token)
