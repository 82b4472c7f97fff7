"""The tutor's decisions: check the message against the guardrail, then stream a
Socratic reply (or an educational refusal) written with the conversation so far."""

from __future__ import annotations

from typing import AsyncIterator

import asyncpg

from vibe.errors import InvalidArgument
from vibe.llm.base import GuardrailVerdict, LLMProvider, ProblemContext
from vibe.records import load_exchanges, load_problem_context


class Tutor:
    def __init__(self, db: asyncpg.Pool, llm: LLMProvider):
        self.db = db
        self.llm = llm
        self._problems: dict[str, ProblemContext] = {}  # problems do not change while we run

    async def _problem(self, problem_id: str) -> ProblemContext:
        if problem_id not in self._problems:
            self._problems[problem_id] = await load_problem_context(self.db, problem_id)
        return self._problems[problem_id]

    async def start_reply(
        self, session_id: str, turn: int, problem_id: str, message: str
    ) -> tuple[GuardrailVerdict, AsyncIterator[str]]:
        """The guardrail verdict for `message`, and the reply stream to send."""
        if not session_id or not problem_id:
            raise InvalidArgument("session_id and problem_id are required")
        if turn < 1:
            raise InvalidArgument(f"turn must be >= 1, got {turn}")
        if not message.strip():
            raise InvalidArgument("message is empty")
        problem = await self._problem(problem_id)
        history = await load_exchanges(self.db, session_id, before_turn=turn)
        verdict = await self.llm.check_guardrail(problem, history, message)
        return verdict, self.llm.stream_tutor_reply(problem, history, message, verdict)
