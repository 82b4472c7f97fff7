"""Wiring of the scoring service: the problem bank synced into PostgreSQL at start,
the judge and its worker bound."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from vibe.platform.config import ScoringSettings
from vibe.platform.server import Registration, ServiceBundle, serving
from vibe.platform.storage import open_storage
from vibe.services.scoring.core import Scoring
from vibe.services.scoring.judge import Judge
from vibe.services.scoring.servicer import ScoringServicer
from vibe.services.scoring.store import load_problems, sync_problem_bank
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = scoring_pb2.DESCRIPTOR.services_by_name["Scoring"].full_name


@contextlib.asynccontextmanager
async def scoring_app(settings: ScoringSettings) -> AsyncIterator[ServiceBundle]:
    async with open_storage(settings.common) as storage:
        await sync_problem_bank(storage.db)
        judge = Judge(max_parallel_runs=settings.max_parallel_runs)
        log.info("code runs isolated by %s", await judge.sandbox.mode())
        scoring = Scoring(settings, storage.db, judge, await load_problems(storage.db))
        yield serving(
            "scoring",
            settings,
            Registration(SERVICE_NAME, scoring_pb2_grpc.add_ScoringServicer_to_server, ScoringServicer(scoring)),
        )
