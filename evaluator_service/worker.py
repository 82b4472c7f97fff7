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

import redis.asyncio as aioredis

from evaluator_service.core import SOURCE_BACKGROUND, Evaluator
from vibe.errors import NotFound
from vibe.eval_queue import EvalJob, ensure_group
from vibe.hot_state import EVAL_GROUP, Keys

log = logging.getLogger(__name__)


class EvaluationWorker:
    def __init__(self, redis: aioredis.Redis, keys: Keys, evaluator: Evaluator, index: int, claim_idle_s: float):
        self.redis = redis
        self.keys = keys
        self.evaluator = evaluator
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{index}"
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.job_timeout_s = claim_idle_s

    async def run(self) -> None:
        await ensure_group(self.redis, self.keys)
        stream = self.keys.eval_jobs()
        while True:
            try:
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
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("evaluation worker loop failed; retrying", extra={"consumer": self.consumer})
                await asyncio.sleep(1.0)

    async def _handle(self, message_id: str, fields: dict[str, str] | None) -> None:
        if not fields:  # claimed an entry that was deleted meanwhile
            await self._ack(message_id)
            return
        job = EvalJob.from_fields(fields)
        try:
            await self.evaluator.ensure_turn(job.session_id, job.turn, SOURCE_BACKGROUND, self.job_timeout_s)
        except NotFound as exc:
            log.warning("dropping evaluation job for a missing turn", extra={"job": fields, "reason": exc.message})
        except Exception:
            # Left pending: it is claimed again after the idle time, and the submit
            # guard evaluates any turn still missing at submit.
            log.exception("evaluation job failed", extra={"job": fields})
            return
        await self._ack(message_id)

    async def _ack(self, message_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(self.keys.eval_jobs(), EVAL_GROUP, message_id)
            pipe.xdel(self.keys.eval_jobs(), message_id)
            await pipe.execute()
