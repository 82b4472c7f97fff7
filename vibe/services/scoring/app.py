"""Wiring of the scoring service: the code sandbox started first (the service refuses to start
when the configured isolation cannot run), the problem bank synced into PostgreSQL, the judge
bound, and the sandbox's health mirrored into the service's readiness."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from vibe.platform.config import ScoringSettings
from vibe.platform.server import Readiness, Registration, ServiceBundle, serving
from vibe.platform.service_auth import CallPolicy
from vibe.platform.storage import open_storage
from vibe.services.scoring.bank import bank_files
from vibe.services.scoring.core import Scoring
from vibe.services.scoring.isolation import IsolationMode
from vibe.services.scoring.judge import Judge
from vibe.services.scoring.sandbox import Sandbox, SandboxError
from vibe.services.scoring.servicer import ScoringServicer
from vibe.services.scoring.store import load_problems, sync_problem_bank
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc

log = logging.getLogger(__name__)

SERVICE = scoring_pb2.DESCRIPTOR.services_by_name["Scoring"]
SERVICE_NAME = SERVICE.full_name
# Only the gateway: problems for its sessions, the code checks (and the candidate's runs of the
# visible tests) and the grade of a submit.
CALLERS = {
    "CheckCode": ["gateway"],
    "RunVisibleTests": ["gateway"],
    "GradeSession": ["gateway"],
    "GetProblem": ["gateway"],
    "ListProblems": ["gateway"],
}
#: After a sandbox failure, how often the sandbox is probed until it works again.
RECOVERY_PROBE_S = 2.0


class SandboxWatch:
    """The sandbox's health as the service's readiness: a failed run flips it to NOT_SERVING
    (orchestrators stop routing here), a background probe flips it back once runs work again."""

    def __init__(self, readiness: Readiness) -> None:
        self.readiness = readiness
        self.sandbox: Sandbox | None = None
        self._recovery: asyncio.Task[None] | None = None

    def failed(self, reason: str) -> None:
        self.readiness.set(False, f"code sandbox: {reason}")
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.ensure_future(self._recover())

    async def _recover(self) -> None:
        assert self.sandbox is not None
        while True:
            await asyncio.sleep(RECOVERY_PROBE_S)
            try:
                await self.sandbox.probe()
            except SandboxError as exc:
                log.warning("the code sandbox still fails: %s", exc)
                continue
            self.readiness.set(True)
            return

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery


@contextlib.asynccontextmanager
async def scoring_app(settings: ScoringSettings) -> AsyncIterator[ServiceBundle]:
    readiness = Readiness()
    watch = SandboxWatch(readiness)
    # Fail closed: the configured isolation works here, or the service does not start (exit 2).
    sandbox = Sandbox(
        settings.max_parallel_runs,
        IsolationMode(settings.isolation),
        helper=settings.sandbox_helper,
        uid_base=settings.sandbox_uid_base,
        on_failure=watch.failed,
        # The bank is on disk beside the code: a run must not be able to read it.
        secrets=bank_files(),
    )
    watch.sandbox = sandbox
    await sandbox.start()
    log.info("code runs isolated by %s", sandbox.mode, extra={"slots": sandbox.slots})
    try:
        async with open_storage(settings.common) as storage:
            await sync_problem_bank(storage.db)
            judge = Judge(sandbox, stop_after_timeout=settings.stop_after_timeout)
            scoring = Scoring(settings, storage.db, judge, await load_problems(storage.db))
            yield serving(
                "scoring",
                settings,
                Registration(SERVICE_NAME, scoring_pb2_grpc.add_ScoringServicer_to_server, ScoringServicer(scoring)),
                readiness=readiness,
                call_policy=CallPolicy.declare("scoring", settings.service_secret, SERVICE, CALLERS),
            )
    finally:
        await watch.close()
        await sandbox.close()
