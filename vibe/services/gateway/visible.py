"""The candidate's "run the visible tests": the code against the problem's visible tests (the
statement's examples) in the scoring sandbox, before a submit. Never graded, never stored; the
limits (runs per minute, the session's time) are checked by access.py before it runs."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from vibe.platform.errors import FailedPrecondition, InvalidArgument, NotFound, from_rpc_error
from vibe.platform.validation import check_body_text, check_language
from vibe.services.gateway.sessions import GatewayParts
from vibe.services.gateway.store import SessionRow, SessionStatus
from vibe.services.gateway.timing import SessionClock
from vibe_api.gateway.v1 import gateway_pb2
from vibe_api.scoring.v1 import scoring_pb2

# A run compiles (C++) and runs a handful of small tests under the sandbox's CPU limits; the
# bound is for a scoring service that hangs, not for a slow program (the sandbox ends those).
RUN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class VisibleTests(GatewayParts):
    async def run(
        self, session_id: str, token: str | None, language: str, code: str, clock: SessionClock
    ) -> gateway_pb2.RunVisibleTestsResponse:
        language = check_language(language, default="python")
        check_body_text("code", code, max_bytes=self.settings.max_code_bytes)
        _, problem_id = await self.sessions.authorize(session_id, token)
        session = await self._open(session_id)
        clock.check(session, "running the visible tests")
        languages = list((await self.sessions.problem(problem_id)).languages)
        if language not in languages:
            raise InvalidArgument(f"language {language!r} is not supported; use one of: {', '.join(languages)}")
        try:
            result = await self.up.scoring.RunVisibleTests(
                scoring_pb2.RunVisibleTestsRequest(problem_id=problem_id, language=language, code=code),
                timeout=RUN_TIMEOUT_S,
            )
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc, "scoring") from None
        return gateway_pb2.RunVisibleTestsResponse(
            problem_id=result.problem_id,
            language=result.language,
            verdict=result.verdict,
            tests=result.tests,
            compile_output=result.compile_output,
            time_limit_ms=result.time_limit_ms,
        )

    async def _open(self, session_id: str) -> SessionRow:
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        if session.status is not SessionStatus.ACTIVE:
            raise FailedPrecondition(
                f"session {session_id} is {session.status.value}: the visible tests run only before the submit"
            )
        return session
