"""Wiring of the evaluator service: pools, the LLM, the background workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from vibe.llm import make_provider
from vibe.llm.median import median_of
from vibe.llm.traced import TracedLLM
from vibe.platform.config import EvaluatorSettings
from vibe.platform.db import connect_pool
from vibe.platform.hot_state import Keys, connect_redis
from vibe.platform.server import Registration, ServiceBundle
from vibe.services.evaluator.core import Evaluator
from vibe.services.evaluator.servicer import EvaluatorServicer
from vibe.services.evaluator.store import EvaluationStore
from vibe.services.evaluator.worker import EvaluationWorker
from vibe_api.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc

SERVICE_NAME = evaluator_pb2.DESCRIPTOR.services_by_name["Evaluator"].full_name


@contextlib.asynccontextmanager
async def evaluator_app(settings: EvaluatorSettings) -> AsyncIterator[ServiceBundle]:
    common = settings.common
    llm = TracedLLM(median_of(make_provider(common), settings.judge_samples))
    db = await connect_pool(common.database_url, common.db_schema)
    redis = connect_redis(common.redis_url)
    keys = Keys(common.redis_prefix)
    evaluator = Evaluator(
        db, redis, keys, EvaluationStore(db, redis, keys, settings.turn_log_ttl_s), llm, settings.eval_lock_ttl_s
    )
    workers = [
        EvaluationWorker(
            redis,
            keys,
            evaluator,
            i,
            claim_idle_s=settings.eval_lock_ttl_s,
            max_attempts=settings.job_max_attempts,
            dead_record_ttl_s=settings.turn_log_ttl_s,
        )
        for i in range(settings.workers)
    ]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]

    async def stop_workers() -> None:
        for worker, task in zip(workers, tasks, strict=True):
            worker.stop()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        yield ServiceBundle(
            name="evaluator",
            addr=settings.addr,
            registrations=[
                Registration(
                    SERVICE_NAME, evaluator_pb2_grpc.add_EvaluatorServicer_to_server, EvaluatorServicer(evaluator)
                )
            ],
            grace_s=common.shutdown_grace_s,
            on_stopping=[stop_workers],
        )
    finally:
        await stop_workers()
        await redis.aclose()
        await db.close()
        await llm.aclose()
