"""The background evaluation queue: a Redis Stream read by a consumer group, so any
evaluator replica can take a job and a crashed worker's job is claimed by another.
The gateway adds one job per finished turn; evaluator workers consume them.

A job that cannot succeed (malformed, its turn does not exist, or failed on every one
of EVALUATOR_JOB_MAX_ATTEMPTS deliveries) is moved to the dead-letter stream
(`eval:dead`) with the reason, so nothing is dropped silently and the submit guard
can tell which turns it must evaluate itself."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from vibe.platform.hot_state import EVAL_GROUP, Keys

# The dead-letter stream is an audit trail, not a store: keep about this many entries.
DEAD_LETTER_MAXLEN = 100_000
_SCAN_PAGE = 500


class MalformedJob(ValueError):
    """A queued job whose fields are missing or invalid; retrying cannot fix it."""


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
    def from_fields(cls, fields: dict[str, str]) -> EvalJob:
        """The job, or MalformedJob saying which field is wrong."""
        session_id = (fields.get("session_id") or "").strip()
        if not session_id:
            raise MalformedJob("field 'session_id' is missing or empty")
        raw_turn = fields.get("turn")
        try:
            turn = int(raw_turn)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            turn = 0
        if turn < 1:
            raise MalformedJob(f"field 'turn' is {raw_turn!r}; expected a turn number >= 1")
        try:
            enqueued_at = float(fields.get("enqueued_at") or 0.0)
        except ValueError:
            raise MalformedJob(f"field 'enqueued_at' is {fields['enqueued_at']!r}; expected epoch seconds") from None
        return cls(
            session_id=session_id,
            turn=turn,
            trace_carrier={k: v for k, v in fields.items() if k in _CARRIER_KEYS},
            enqueued_at=enqueued_at,
        )


_CARRIER_KEYS = ("traceparent", "tracestate", "baggage")


async def enqueue(redis: aioredis.Redis, keys: Keys, job: EvalJob) -> str:
    fields: dict[Any, Any] = job.fields()  # redis-py's annotation wants a dict of its own key/value union
    return str(await redis.xadd(keys.eval_jobs(), fields))


def enqueue_on(pipe: Pipeline, keys: Keys, job: EvalJob) -> None:
    """`enqueue` queued on `pipe` (one round trip with other commands)."""
    fields: dict[Any, Any] = job.fields()  # redis-py's annotation wants a dict of its own key/value union
    pipe.xadd(keys.eval_jobs(), fields)


async def ensure_group(redis: aioredis.Redis, keys: Keys) -> None:
    """Create the consumer group (and the stream) once; a no-op when it exists."""
    try:
        await redis.xgroup_create(keys.eval_jobs(), EVAL_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def ack_on(pipe: Pipeline, keys: Keys, message_id: str) -> None:
    """A job's acknowledgement queued on `pipe`: acked and deleted (finished jobs leave
    the stream, so it holds only the backlog)."""
    pipe.xack(keys.eval_jobs(), EVAL_GROUP, message_id)
    pipe.xdel(keys.eval_jobs(), message_id)


@dataclass
class JobAck:
    """The acknowledgement of one delivered job. The transaction that stores the job's
    evaluation carries it (`queue_on`, then `sent`: a Redis round trip less per job);
    otherwise (an evaluation stored before, that transaction failed) `send` sends it
    on its own."""

    keys: Keys
    message_id: str
    sent: bool = False

    def queue_on(self, pipe: Pipeline) -> None:
        ack_on(pipe, self.keys, self.message_id)

    async def send(self, redis: aioredis.Redis) -> None:
        if self.sent:
            return
        async with redis.pipeline(transaction=True) as pipe:
            self.queue_on(pipe)
            await pipe.execute()
        self.sent = True


async def delivery_counts(redis: aioredis.Redis, keys: Keys, message_ids: list[str]) -> dict[str, int]:
    """How many times the stream has delivered each pending job (its own counter,
    incremented by XREADGROUP and XAUTOCLAIM)."""
    async with redis.pipeline(transaction=False) as pipe:
        for message_id in message_ids:
            pipe.xpending_range(keys.eval_jobs(), EVAL_GROUP, min=message_id, max=message_id, count=1)
        replies = await pipe.execute()
    return {
        message_id: int(reply[0]["times_delivered"]) if reply else 0
        for message_id, reply in zip(message_ids, replies, strict=True)
    }


async def dead_letter(
    redis: aioredis.Redis,
    keys: Keys,
    message_id: str,
    fields: dict[str, str],
    *,
    reason: str,
    attempts: int,
    consumer: str,
    record_ttl_s: int,
) -> None:
    """Moves a job to the dead-letter stream, in one transaction: the record (original
    fields plus `dead.*` fields), the session's index of dead turns, and the removal
    from the main stream (ack + delete)."""
    record: dict[Any, Any] = {  # redis-py's annotation wants a dict of its own key/value union
        **fields,
        "dead.reason": reason[:2000],
        "dead.attempts": str(attempts),
        "dead.original_id": message_id,
        "dead.consumer": consumer,
        "dead.at": f"{time.time():.6f}",
    }
    try:
        job: EvalJob | None = EvalJob.from_fields(fields)
    except MalformedJob:
        job = None
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.eval_dead(), record, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
        if job is not None:
            index = keys.eval_dead_turns(job.session_id)
            summary = {"reason": record["dead.reason"], "attempts": attempts, "at": record["dead.at"]}
            pipe.hset(index, str(job.turn), json.dumps(summary))
            pipe.expire(index, record_ttl_s)
        ack_on(pipe, keys, message_id)
        await pipe.execute()


@dataclass(frozen=True)
class DeadTurn:
    """Why a turn's job was dead-lettered (the session's index `eval:dead_turns:{session}`)."""

    reason: str
    attempts: int
    at: float  # epoch seconds


async def dead_turns(redis: aioredis.Redis, keys: Keys, session_id: str) -> dict[int, DeadTurn]:
    """turn -> why, for the session's dead-lettered jobs."""
    raw = cast("dict[str, str]", await redis.hgetall(keys.eval_dead_turns(session_id)))
    dead = {}
    for turn, summary in raw.items():
        data = json.loads(summary)
        dead[int(turn)] = DeadTurn(str(data.get("reason", "")), int(data.get("attempts", 0)), float(data.get("at", 0)))
    return dead


async def queued_turns(redis: aioredis.Redis, keys: Keys, session_id: str) -> set[int]:
    """Turns of the session with a job still in the stream (waiting or being handled).
    Finished jobs are deleted from the stream, so it holds only the backlog: reading it
    is proportional to the backlog, not to history."""
    turns: set[int] = set()
    start = "-"
    while True:
        # decode_responses=True: ids and fields are str (redis-py's annotation cannot say so).
        page = cast(
            "list[tuple[str, dict[str, str]]]",
            await redis.xrange(keys.eval_jobs(), min=start, max="+", count=_SCAN_PAGE),
        )
        for _message_id, fields in page:
            if fields.get("session_id") == session_id:
                with contextlib.suppress(MalformedJob):  # the workers dead-letter it
                    turns.add(EvalJob.from_fields(fields).turn)
        if len(page) < _SCAN_PAGE:
            return turns
        start = "(" + page[-1][0]
