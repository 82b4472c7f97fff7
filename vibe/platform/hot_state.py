"""Redis: the key layout every service shares (the leases on its lock keys are in
leases.py).

All keys start with the configured prefix (VIBE_REDIS_PREFIX), so one Redis can
serve several deployments, and every test its own namespace.
"""

from __future__ import annotations

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
