"""Wiring of the tutor service: resources opened at start, closed at stop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vibe.llm import make_provider
from vibe.llm.traced import TracedLLM
from vibe.platform.config import TutorSettings
from vibe.platform.server import Registration, ServiceBundle, serving
from vibe.platform.service_auth import CallPolicy
from vibe.platform.storage import open_storage
from vibe.services.tutor.core import Tutor
from vibe.services.tutor.leak import LeakGuard
from vibe.services.tutor.memory import ConversationMemory
from vibe.services.tutor.servicer import TutorServicer
from vibe_api.tutor.v1 import tutor_pb2, tutor_pb2_grpc

SERVICE = tutor_pb2.DESCRIPTOR.services_by_name["Tutor"]
SERVICE_NAME = SERVICE.full_name
# Only the gateway streams replies (a chat turn); no other service calls the tutor.
CALLERS = {"StreamReply": ["gateway"]}


@contextlib.asynccontextmanager
async def tutor_app(settings: TutorSettings) -> AsyncIterator[ServiceBundle]:
    llm = TracedLLM(make_provider(settings.common))
    try:
        async with open_storage(settings.common) as storage:
            memory = ConversationMemory(storage.redis, storage.keys, llm, settings.history_token_budget)
            tutor = Tutor(
                storage.db,
                llm,
                low_effort_limit=settings.low_effort_limit,
                leak_guard=LeakGuard(settings.leak_threshold),
                memory=memory,
            )
            servicer = TutorServicer(tutor, coalesce_s=settings.stream_coalesce_s)
            yield serving(
                "tutor",
                settings,
                Registration(SERVICE_NAME, tutor_pb2_grpc.add_TutorServicer_to_server, servicer),
                call_policy=CallPolicy.declare("tutor", settings.service_secret, SERVICE, CALLERS),
            )
    finally:
        await llm.aclose()
