"""A session's time limit (VIBE_SESSION_TIME_LIMIT_S): its deadline is `created_at` plus the
limit in force, so a changed setting applies to the sessions still open too. After it, the
candidate's chat and visible-test runs are refused (FAILED_PRECONDITION, naming the setting);
a submit is still taken, since that is how a session ends (the page submits by itself when its
timer runs out); one that comes after the deadline is graded and its report says by how much
(`late_by_s`), for the reviewer to weigh."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vibe.platform.errors import FailedPrecondition, NotFound
from vibe.services.gateway.store import GatewayStore, SessionRow


@dataclass(frozen=True)
class SessionClock:
    store: GatewayStore
    time_limit_s: int  # 0: no limit

    def deadline(self, session: SessionRow) -> datetime | None:
        if self.time_limit_s <= 0:
            return None
        return session.created_at + timedelta(seconds=self.time_limit_s)

    async def check_open(self, session_id: str, operation: str) -> None:
        """Refuses `operation` once the session's time is up (free without a limit: no read)."""
        if self.time_limit_s <= 0:
            return
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        self.check(session, operation)

    def late_by_s(self, session: SessionRow) -> int:
        """Whole seconds the frozen session's submit came after its deadline (0: in time,
        no limit, or not submitted)."""
        deadline = self.deadline(session)
        if deadline is None or session.submitted_at is None:
            return 0
        return max(0, int((session.submitted_at - deadline).total_seconds()))

    def check(self, session: SessionRow, operation: str) -> None:
        deadline = self.deadline(session)
        if deadline is not None and datetime.now(UTC) >= deadline:
            raise FailedPrecondition(
                f"{operation} refused: the session's time limit ({self.time_limit_s} s, VIBE_SESSION_TIME_LIMIT_S) "
                f"ended at {deadline.isoformat(timespec='seconds')}; submit your code"
            )
