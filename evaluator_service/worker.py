"""Background evaluation workers: consume the queue, evaluate, acknowledge.

A job is acknowledged only after its evaluation is stored, so a worker that dies
mid-job leaves it pending; any worker claims such a job once it has been idle longer
than the evaluation lock's TTL (XAUTOCLAIM). Evaluations are idempotent (upsert
under the turn's lock), so a job delivered twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time

import redis.asyncio as aioredis
from opentelemetry import trace

from evaluator_service.core import SOURCE_BACKGROUND, Evaluator
from vibe.errors import NotFound
from vibe.eval_queue import EvalJob, ensure_group
from vibe.hot_state import EVAL_GROUP, Keys
from vibe.metrics import EVALUATION_LAG, set_queue_depth
from vibe.telemetry import attached, baggage_only, extract_carrier, tracer

log = logging.getLogger(__name__)
QUEUE_OBSERVE_INTERVAL_S = 5.0


class EvaluationWorker:
    def __init__(self, redis: aioredis.Redis, keys: Keys, evaluator: Evaluator, index: int, claim_idle_s: float):
        self.redis = redis
        self.keys = keys
        self.evaluator = evaluator
        self.index = index
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{index}"
        self._next_observation = 0.0
        self.stopping = False
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.job_timeout_s = claim_idle_s

    async def run(self) -> None:
        await ensure_group(self.redis, self.keys)
        stream = self.keys.eval_jobs()
        while not self.stopping:
            try:
                await self._observe_queue(stream)
                # Jobs of crashed workers first, then new ones.
                _, claimed, _ = await self.redis.xautoclaim(
                    stream, EVAL_GROUP, self.consumer, min_idle_time=self.claim_idle_ms, count=10
                )
                for message_id, fields in claimed:
                    await self._handle(message_id, fields)
                batches = await self.redis.xreadgroup(EVAL_GROUP, self.consumer, {stream: ">"}, count=1, block=1000)
                for _, messages in batches or []:
                    for message_id, fields in messages:
                        await self._handle(message_id, fields)
            except Exception:
                # A cancellation that lands as a blocking read times out can surface as a
                # TimeoutError from the Redis client: never retry through a stop.
                task = asyncio.current_task()
                if self.stopping or (task is not None and task.cancelling()):
                    raise asyncio.CancelledError from None
                log.exception("evaluation worker loop failed; retrying", extra={"consumer": self.consumer})
                await asyncio.sleep(1.0)

    def stop(self) -> None:
        """Finish after the current job (the caller also cancels the task)."""
        self.stopping = True

    async def _observe_queue(self, stream: str) -> None:
        """Publishes the queue depth for the metrics, every few seconds, from one worker."""
        now = time.monotonic()
        if self.index != 0 or now < self._next_observation:
            return
        self._next_observation = now + QUEUE_OBSERVE_INTERVAL_S
        for group in await self.redis.xinfo_groups(stream):
            if group["name"] == EVAL_GROUP:
                set_queue_depth(pending=int(group["pending"]), lag=int(group.get("lag") or 0))

    async def _handle(self, message_id: str, fields: dict[str, str] | None) -> None:
        if not fields:  # claimed an entry that was deleted meanwhile
            await self._ack(message_id)
            return
        job = EvalJob.from_fields(fields)
        chat_context = extract_carrier(job.trace_carrier)
        chat_span = trace.get_current_span(chat_context).get_span_context()
        # A trace of its own, linked to the chat that caused it; the chat's baggage
        # (session.id, turn) comes along so every span below carries it.
        with attached(baggage_only(chat_context)), tracer.start_as_current_span(
            "evaluation job",
            kind=trace.SpanKind.CONSUMER,
            links=[trace.Link(chat_span)] if chat_span.is_valid else [],
            attributes={"session.id": job.session_id, "turn": job.turn, "messaging.consumer": self.consumer},
        ):
            try:
                await self.evaluator.ensure_turn(job.session_id, job.turn, SOURCE_BACKGROUND, self.job_timeout_s)
            except NotFound as exc:
                log.warning("dropping evaluation job for a missing turn", extra={"job": fields, "reason": exc.message})
            except Exception:
                # Left pending: it is claimed again after the idle time, and the submit
                # guard evaluates any turn still missing at submit.
                log.exception("evaluation job failed", extra={"session_id": job.session_id, "turn": job.turn})
                return
            if job.enqueued_at:
                EVALUATION_LAG.record(max(0.0, time.time() - job.enqueued_at))
        await self._ack(message_id)

    async def _ack(self, message_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.eval_jobs(), EVAL_GROUP, message_id)
            pipe.xdel(self.keys.eval_jobs(), message_id)
            await pipe.execute()
