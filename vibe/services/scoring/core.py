"""The scoring service's decisions: which problem, whether the code may run, the
verdicts (delegated to the judge), the integrity check, and the final grade."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

from vibe.platform.config import ScoringSettings
from vibe.platform.errors import InvalidArgument, NotFound, Unavailable
from vibe.services.scoring import store
from vibe.services.scoring.bank import ProblemSpec
from vibe.services.scoring.grading import FinalScores, final_scores
from vibe.services.scoring.integrity import code_blocks, compare
from vibe.services.scoring.judge import CheckResult, Judge, VisibleResult, with_integrity
from vibe.services.scoring.languages import UnsupportedLanguage
from vibe.services.scoring.programs import MAX_SOURCE_BYTES
from vibe.services.scoring.sandbox import SandboxError


class Scoring:
    def __init__(self, settings: ScoringSettings, db: asyncpg.Pool, judge: Judge, problems: dict[str, ProblemSpec]):
        self.settings = settings
        self.db = db
        self.judge = judge
        self.problems = problems

    def problem(self, problem_id: str) -> ProblemSpec:
        if not problem_id.strip():
            raise InvalidArgument("problem_id is required")
        try:
            return self.problems[problem_id]
        except KeyError:
            known = ", ".join(sorted(self.problems))
            raise NotFound(f"no problem {problem_id!r}; known problems: {known}") from None

    async def check_code(
        self, problem_id: str, language: str, code: str, session_id: str = "", fence: int = 0
    ) -> CheckResult:
        """The verdicts; with `session_id`, stored against its submission unless a newer
        submit than the one holding `fence` (its lease's token) holds the session."""
        problem = self._checkable(problem_id, code)
        async with _judging():
            result = await self.judge.check(problem, language.strip().lower() or "python", code)
        if session_id:
            replies = await store.tutor_replies(self.db, session_id)
            shown = [block for turn, text in replies for block in code_blocks(turn, text)]
            result = with_integrity(result, compare(code, shown, problem.starter_code))
            await store.save_test_results(self.db, session_id, result, fence)
        return result

    async def run_visible(self, problem_id: str, language: str, code: str) -> VisibleResult:
        """The visible tests only, for the candidate to try the code before submitting."""
        problem = self._checkable(problem_id, code)
        async with _judging():
            return await self.judge.check_visible(problem, language.strip().lower() or "python", code)

    def _checkable(self, problem_id: str, code: str) -> ProblemSpec:
        problem = self.problem(problem_id)
        if not code.strip():
            raise InvalidArgument("code is empty")
        if len(code.encode()) > MAX_SOURCE_BYTES:
            raise InvalidArgument(f"code is {len(code.encode())} bytes; the limit is {MAX_SOURCE_BYTES}")
        return problem

    async def grade(
        self,
        session_id: str,
        holistic: float,
        aggregate_turns: float,
        performance: float,
        correctness: float,
        fence: int = 0,
    ) -> FinalScores:
        if not session_id.strip():
            raise InvalidArgument("session_id is required")
        scores = final_scores(self.settings, holistic, aggregate_turns, performance, correctness)
        await store.save_final_scores(self.db, session_id, scores, fence)
        return scores


@contextlib.asynccontextmanager
async def _judging() -> AsyncIterator[None]:
    """The judge's failures restated for the caller: an unknown language is the caller's
    mistake; a sandbox failure is ours (retryable, and nothing was graded or stored)."""
    try:
        yield
    except UnsupportedLanguage as exc:
        raise InvalidArgument(str(exc)) from None
    except SandboxError as exc:
        raise Unavailable(f"the code sandbox failed ({exc}); nothing was graded, please retry") from None
