"""Wiring of the evaluator service: pools, the LLM, the background workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from vibe.llm import make_provider
from vibe.llm.base import LLMProvider
from vibe.llm.median import median_of
from vibe.llm.traced import TracedLLM
from vibe.platform.config import EvaluatorSettings
from vibe.platform.server import Registration, ServiceBundle, serving
from vibe.platform.service_auth import CallPolicy
from vibe.platform.storage import Storage, open_storage
from vibe.services.evaluator.core import Evaluator
from vibe.services.evaluator.servicer import EvaluatorServicer
from vibe.services.evaluator.store import EvaluationStore
from vibe.services.evaluator.worker import EvaluationWorker, WorkerPool
from vibe_api.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc

SERVICE = evaluator_pb2.DESCRIPTOR.services_by_name["Evaluator"]
SERVICE_NAME = SERVICE.full_name
# The gateway's submit guard and reviewer API; the background workers call the core in
# their own process, never this service over gRPC.
CALLERS = {
    "EvaluateTurn": ["gateway"],
    "EvaluateHolistic": ["gateway"],
    "GetTurnEvaluations": ["gateway"],
    "GetTurnStatuses": ["gateway"],
}


@contextlib.asynccontextmanager
async def evaluator_app(settings: EvaluatorSettings) -> AsyncIterator[ServiceBundle]:
    llm = TracedLLM(median_of(make_provider(settings.common), settings.judge_samples))
    try:
        async with open_storage(settings.common) as storage, _workers(settings, storage, llm) as (evaluator, stop):
            yield serving(
                "evaluator",
                settings,
                Registration(
                    SERVICE_NAME, evaluator_pb2_grpc.add_EvaluatorServicer_to_server, EvaluatorServicer(evaluator)
                ),
                on_stopping=[stop],
                call_policy=CallPolicy.declare("evaluator", settings.service_secret, SERVICE, CALLERS),
            )
    finally:
        await llm.aclose()


@contextlib.asynccontextmanager
async def _workers(
    settings: EvaluatorSettings, storage: Storage, llm: LLMProvider
) -> AsyncIterator[tuple[Evaluator, Callable[[], Awaitable[None]]]]:
    """The evaluator and its background workers, running until `stop` (called when the
    server starts stopping, so no job is taken during the drain) or the block ends."""
    db, redis, keys = storage.db, storage.redis, storage.keys
    evaluator = Evaluator(
        db, redis, keys, EvaluationStore(db, redis, keys, settings.turn_log_ttl_s), llm, settings.common.lease_ttl_s
    )
    pool = WorkerPool()
    workers = [
        EvaluationWorker(
            redis,
            keys,
            evaluator,
            i,
            claim_idle_s=settings.eval_lock_ttl_s,
            max_attempts=settings.job_max_attempts,
            dead_record_ttl_s=settings.turn_log_ttl_s,
            pool=pool,
        )
        for i in range(settings.workers)
    ]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]

    async def stop() -> None:
        for worker, task in zip(workers, tasks, strict=True):
            worker.stop()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        yield evaluator, stop
    finally:
        await stop()
