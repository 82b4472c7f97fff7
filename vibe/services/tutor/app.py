"""Wiring of the tutor service: resources opened at start, closed at stop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vibe.llm import make_provider
from vibe.llm.traced import TracedLLM
from vibe.platform.config import TutorSettings
from vibe.platform.db import connect_pool
from vibe.platform.hot_state import Keys, connect_redis
from vibe.platform.server import Registration, ServiceBundle
from vibe.services.tutor.core import Tutor
from vibe.services.tutor.leak import LeakGuard
from vibe.services.tutor.memory import ConversationMemory
from vibe.services.tutor.servicer import TutorServicer
from vibe_api.tutor.v1 import tutor_pb2, tutor_pb2_grpc

SERVICE_NAME = tutor_pb2.DESCRIPTOR.services_by_name["Tutor"].full_name


@contextlib.asynccontextmanager
async def tutor_app(settings: TutorSettings) -> AsyncIterator[ServiceBundle]:
    common = settings.common
    llm = TracedLLM(make_provider(common))
    db = await connect_pool(common.database_url, common.db_schema)
    redis = connect_redis(common.redis_url)
    try:
        memory = ConversationMemory(redis, Keys(common.redis_prefix), llm, settings.history_token_budget)
        tutor = Tutor(
            db,
            llm,
            low_effort_limit=settings.low_effort_limit,
            leak_guard=LeakGuard(settings.leak_threshold),
            memory=memory,
        )
        servicer = TutorServicer(tutor)
        yield ServiceBundle(
            name="tutor",
            addr=settings.addr,
            registrations=[Registration(SERVICE_NAME, tutor_pb2_grpc.add_TutorServicer_to_server, servicer)],
            grace_s=common.shutdown_grace_s,
        )
    finally:
        await redis.aclose()
        await db.close()
        await llm.aclose()
