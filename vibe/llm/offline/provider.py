"""The offline provider object: the LLMProvider interface over the pure functions of
this package, with an optional simulated latency for tests and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace

from vibe.llm.base import (
    EvaluatedTurn,
    Exchange,
    GuardrailVerdict,
    HolisticJudgement,
    ProblemContext,
    TurnJudgement,
    TutorGuidance,
)
from vibe.llm.offline.guardrail import check_guardrail_in_context
from vibe.llm.offline.holistic_judge import judge_holistic
from vibe.llm.offline.memory import summarize_exchanges
from vibe.llm.offline.turn_judge import judge_turn
from vibe.llm.offline.tutor import compose_reply, word_chunks


class OfflineProvider:
    """Deterministic stand-in for an LLM (see the module docstring)."""

    name = "offline"
    model = "offline-heuristics-v1"

    def __init__(self, latency_s: float = 0.0) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        self.latency_s = float(latency_s)

    async def _simulate_latency(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    async def check_guardrail(
        self, problem: ProblemContext, history: Sequence[Exchange], message: str, *, second_opinion: bool = False
    ) -> GuardrailVerdict:
        # No model to ask for a second opinion: the rules' verdict is all there is.
        return check_guardrail_in_context(problem, history, message)

    async def stream_tutor_reply(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guardrail: GuardrailVerdict,
        guidance: TutorGuidance | None = None,
    ) -> AsyncGenerator[str, None]:
        chunks = word_chunks(compose_reply(problem, history, message, guardrail, guidance))
        delay = self.latency_s / len(chunks) if chunks and self.latency_s > 0 else 0.0
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            yield chunk

    async def evaluate_turn(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        exchange: Exchange,
        guardrail: GuardrailVerdict,
    ) -> TurnJudgement:
        await self._simulate_latency()
        return replace(judge_turn(problem, history, exchange, guardrail), provider=self.name, model=self.model)

    async def evaluate_holistic(self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
        await self._simulate_latency()
        return replace(judge_holistic(turns), provider=self.name, model=self.model)

    async def summarize_conversation(
        self, problem: ProblemContext, exchanges: Sequence[Exchange], previous_summary: str
    ) -> str:
        return summarize_exchanges(exchanges, previous_summary)

    async def aclose(self) -> None:
        return None
