"""Wiring of the scoring service: the problem bank synced into PostgreSQL at start,
the judge and its worker bound."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from vibe.platform.config import ScoringSettings
from vibe.platform.db import connect_pool
from vibe.platform.server import Registration, ServiceBundle
from vibe.services.scoring.core import Scoring
from vibe.services.scoring.judge import Judge
from vibe.services.scoring.servicer import ScoringServicer
from vibe.services.scoring.store import load_problems, sync_problem_bank
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = scoring_pb2.DESCRIPTOR.services_by_name["Scoring"].full_name


@contextlib.asynccontextmanager
async def scoring_app(settings: ScoringSettings) -> AsyncIterator[ServiceBundle]:
    common = settings.common
    db = await connect_pool(common.database_url, common.db_schema)
    try:
        await sync_problem_bank(db)
        judge = Judge(max_parallel_runs=settings.max_parallel_runs)
        log.info("code runs isolated by %s", await judge.sandbox.mode())
        scoring = Scoring(settings, db, judge, await load_problems(db))
        yield ServiceBundle(
            name="scoring",
            addr=settings.addr,
            registrations=[
                Registration(SERVICE_NAME, scoring_pb2_grpc.add_ScoringServicer_to_server, ScoringServicer(scoring))
            ],
            grace_s=common.shutdown_grace_s,
        )
    finally:
        await db.close()
