"""The background evaluation queue: a Redis Stream read by a consumer group, so any
evaluator replica can take a job and a crashed worker's job is claimed by another.
The gateway adds one job per finished turn; evaluator workers consume them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from vibe.hot_state import EVAL_GROUP, Keys


@dataclass(frozen=True)
class EvalJob:
    session_id: str
    turn: int
    # W3C trace context and baggage of the chat that finished the turn, so that the
    # evaluation's trace links back to it (keys: traceparent, tracestate, baggage).
    trace_carrier: dict[str, str] = field(default_factory=dict)
    enqueued_at: float = 0.0  # epoch seconds, for the evaluation-lag metric

    def fields(self) -> dict[str, str]:
        return {
            **self.trace_carrier,
            "session_id": self.session_id,
            "turn": str(self.turn),
            "enqueued_at": f"{self.enqueued_at or time.time():.6f}",
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> "EvalJob":
        return cls(
            session_id=fields["session_id"],
            turn=int(fields["turn"]),
            trace_carrier={k: v for k, v in fields.items() if k in _CARRIER_KEYS},
            enqueued_at=float(fields.get("enqueued_at", 0.0)),
        )


_CARRIER_KEYS = ("traceparent", "tracestate", "baggage")


async def enqueue(redis: aioredis.Redis, keys: Keys, job: EvalJob) -> str:
    return await redis.xadd(keys.eval_jobs(), job.fields())


async def ensure_group(redis: aioredis.Redis, keys: Keys) -> None:
    """Create the consumer group (and the stream) once; a no-op when it exists."""
    try:
        await redis.xgroup_create(keys.eval_jobs(), EVAL_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
