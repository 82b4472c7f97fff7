"""Background evaluation workers: consume the queue, evaluate, acknowledge.

A job is acknowledged only after its evaluation is stored, so a worker that dies
mid-job leaves it pending; any worker claims such a job once it has been idle longer
than the evaluation lock's TTL (XAUTOCLAIM). Evaluations are idempotent (upsert
under the turn's lock), so a job delivered twice changes nothing.

Attempts are the stream's own delivery count. A job that fails on its last allowed
delivery (EVALUATOR_JOB_MAX_ATTEMPTS), or is claimed once more after that (its
worker died mid-attempt), goes to the dead-letter stream with the reason; so does a
malformed job or one whose turn does not exist, at once. The submit guard evaluates
dead-lettered turns itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import cast

import redis.asyncio as aioredis
from opentelemetry import trace
from redis.exceptions import ResponseError

from vibe.platform.errors import NotFound
from vibe.platform.hot_state import EVAL_GROUP, Keys
from vibe.platform.metrics import EVALUATION_LAG, set_queue_depth
from vibe.platform.telemetry import attached, baggage_only, extract_carrier, tracer
from vibe.services.evaluator.core import EvaluationSource, Evaluator
from vibe.shared.eval_queue import EvalJob, JobAck, MalformedJob, dead_letter, delivery_counts, ensure_group

log = logging.getLogger(__name__)
QUEUE_OBSERVE_INTERVAL_S = 5.0
JOB_TIMEOUT_SHARE = 0.9  # of the claim idle time (VIBE_EVAL_LOCK_TTL_S)
CLAIM_INTERVAL_MAX_S = 5.0
# How long the process's one blocking read for new jobs waits before it looks again: a job
# ends the wait at once, so only an idle process notices it. On the VMs this runs on a wake
# costs ~0.6 ms of CPU (a blocking XREADGROUP that times out, against ~0.15 ms for one that
# does not block), which at one wake a second was half of the idle evaluator's CPU. Never
# longer than the claim interval, so reclaims are looked for as often as before, and under
# redis-py's socket timeout (5 s by default), which would end a longer wait as an error.
READ_BLOCK_MAX_S = 4.0


class WorkerPool:
    """What the workers of one process share: whose turn it is to wait on Redis for a
    job, and when the process next looks for jobs to reclaim."""

    def __init__(self) -> None:
        self.reading = asyncio.Lock()
        self.next_claim = 0.0


class EvaluationWorker:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        evaluator: Evaluator,
        index: int,
        claim_idle_s: float,
        max_attempts: int,
        dead_record_ttl_s: int,
        pool: WorkerPool | None = None,
    ):
        self.redis = redis
        self.keys = keys
        self.evaluator = evaluator
        self.index = index
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{index}"
        self._next_observation = 0.0
        self.stopping = False
        self.claim_idle_ms = int(claim_idle_s * 1000)
        # A job gives up a little before the idle time after which another worker may
        # claim it: past that, two workers could hold the same job.
        self.job_timeout_s = claim_idle_s * JOB_TIMEOUT_SHARE
        self.max_attempts = max_attempts
        self.dead_record_ttl_s = dead_record_ttl_s
        # How often the process looks for jobs to reclaim (XAUTOCLAIM): a quarter of the idle
        # time after which a job may be claimed, at most every CLAIM_INTERVAL_MAX_S.
        self.claim_interval_s = min(CLAIM_INTERVAL_MAX_S, claim_idle_s / 4)
        self.read_block_ms = max(1, int(min(READ_BLOCK_MAX_S, self.claim_interval_s) * 1000))
        self.pool = pool or WorkerPool()

    async def run(self) -> None:
        await ensure_group(self.redis, self.keys)
        stream = self.keys.eval_jobs()
        while not self.stopping:
            try:
                await self._observe_queue(stream)
                # decode_responses=True: ids and fields are str (redis-py's annotation cannot say so).
                claimed: list[tuple[str, dict[str, str] | None]] = []
                batches: list[tuple[str, list[tuple[str, dict[str, str] | None]]]] | None = None
                # One worker of the process at a time asks Redis for work; the others wait
                # here, at no cost, until it has a job (or its blocking read timed out) and
                # goes to handle it. Idle, the process sends one read a second instead of
                # one per worker (EVALUATOR_WORKERS of them, each waking its event loop).
                async with self.pool.reading:
                    # Jobs of crashed workers (or failed attempts) first, then new ones.
                    if time.monotonic() >= self.pool.next_claim:
                        # Only jobs idle for claim_idle can be claimed: looking more often than
                        # a fraction of that finds nothing more; one worker looks for the process.
                        self.pool.next_claim = time.monotonic() + self.claim_interval_s
                        _, claimed, _ = cast(
                            "tuple[str, list[tuple[str, dict[str, str] | None]], list[str]]",
                            await self.redis.xautoclaim(
                                stream, EVAL_GROUP, self.consumer, min_idle_time=self.claim_idle_ms, count=10
                            ),
                        )
                    if not claimed:
                        batches = cast(
                            "list[tuple[str, list[tuple[str, dict[str, str] | None]]]] | None",
                            await self.redis.xreadgroup(
                                EVAL_GROUP, self.consumer, {stream: ">"}, count=1, block=self.read_block_ms
                            ),
                        )
                if claimed:
                    deliveries = await delivery_counts(self.redis, self.keys, [mid for mid, _ in claimed])
                    for message_id, fields in claimed:
                        await self._handle(message_id, fields, deliveries[message_id])
                for _, messages in batches or []:
                    for message_id, new_fields in messages:
                        await self._handle(message_id, new_fields, 1)
            except Exception as exc:
                # A cancellation that lands as a blocking read times out can surface as a
                # TimeoutError from the Redis client: never retry through a stop.
                task = asyncio.current_task()
                if self.stopping or (task is not None and task.cancelling()):
                    raise asyncio.CancelledError from None
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # Redis lost the stream (flushed, or restarted without persistence):
                    # recreate it and go on; the submit guard covers the jobs that were lost.
                    log.warning("evaluation queue was missing; recreating it", extra={"consumer": self.consumer})
                    await ensure_group(self.redis, self.keys)
                    continue
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

    async def _handle(self, message_id: str, fields: dict[str, str] | None, delivery: int) -> None:
        """One delivery of a job; `delivery` is the stream's count, this one included."""
        ack = JobAck(self.keys, message_id)
        if not fields:  # claimed an entry that was deleted meanwhile
            await ack.send(self.redis)
            return
        try:
            job = EvalJob.from_fields(fields)
        except MalformedJob as exc:
            await self._dead_letter(message_id, fields, f"malformed job: {exc}", delivery)
            return
        if delivery > self.max_attempts:
            # Each earlier delivery ended without an answer: the worker holding it died.
            tried = delivery - 1
            await self._dead_letter(
                message_id,
                fields,
                f"no answer after {tried} deliver{'y' if tried == 1 else 'ies'}: the workers handling it stopped mid-job",
                tried,
            )
            return
        chat_context = extract_carrier(job.trace_carrier)
        chat_span = trace.get_current_span(chat_context).get_span_context()
        # A trace of its own, linked to the chat that caused it; the chat's baggage
        # (session.id, turn) comes along so every span below carries it.
        with (
            attached(baggage_only(chat_context)),
            tracer.start_as_current_span(
                "evaluation job",
                kind=trace.SpanKind.CONSUMER,
                links=[trace.Link(chat_span)] if chat_span.is_valid else [],
                attributes={
                    "session.id": job.session_id,
                    "turn": job.turn,
                    "messaging.consumer": self.consumer,
                    "messaging.delivery": delivery,
                },
            ),
        ):
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for runs the job in a
                # task of its own, one more task per job for the same cancellation.
                async with asyncio.timeout(self.job_timeout_s):
                    # The transaction that stores the evaluation acknowledges the job too.
                    await self.evaluator.ensure_turn(
                        job.session_id, job.turn, EvaluationSource.BACKGROUND, self.job_timeout_s, ack
                    )
            except NotFound as exc:
                await self._dead_letter(message_id, fields, f"turn not found: {exc.message}", delivery)
                return
            except Exception as exc:
                error = _describe(exc, self.job_timeout_s)
                if delivery >= self.max_attempts:
                    await self._dead_letter(message_id, fields, error, delivery)
                    return
                # Left pending: claimed again once idle for the claim time.
                log.warning(
                    "evaluation job failed; it will be retried",
                    extra={"session_id": job.session_id, "turn": job.turn, "attempt": delivery, "error": error},
                )
                return
            if job.enqueued_at:
                EVALUATION_LAG.record(max(0.0, time.time() - job.enqueued_at))
        await ack.send(self.redis)  # unless the evaluation's transaction carried it

    async def _dead_letter(self, message_id: str, fields: dict[str, str], reason: str, attempts: int) -> None:
        log.error(
            "evaluation job dead-lettered",
            extra={"job": fields, "reason": reason, "attempts": attempts, "consumer": self.consumer},
        )
        await dead_letter(
            self.redis,
            self.keys,
            message_id,
            fields,
            reason=reason,
            attempts=attempts,
            consumer=self.consumer,
            record_ttl_s=self.dead_record_ttl_s,
        )


def _describe(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"evaluation took longer than the job timeout ({timeout_s:.3g}s, 90% of VIBE_EVAL_LOCK_TTL_S)"
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}"
