"""Median-of-k turn judging (EVALUATOR_JUDGE_SAMPLES): a model judge can grade the
same turn differently from one call to the next; scoring it k times and keeping the
judgement whose score is the median makes one outlier harmless, and the spread
(max - min) recorded on the judgement shows how sure the grade is.

It wraps any provider; everything but `evaluate_turn` passes straight through.
Sampling only pays off when the judge samples (VIBE_LLM_JUDGE_TEMPERATURE > 0);
at temperature 0 with a fixed seed the k answers are (nearly) the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from vibe.llm.base import (
    DelegatingProvider,
    EvaluatedTurn,
    Exchange,
    GuardrailVerdict,
    LLMProvider,
    ProblemContext,
    TurnJudgement,
)


def median_judgement(samples: Sequence[TurnJudgement]) -> TurnJudgement:
    """The sample whose score is the median (the lower one of the two middle scores
    for an even k), carrying how many samples there were and their spread. Samples the
    configured provider produced win over degraded (fallback) ones: mixing the two
    would make the spread say nothing."""
    if not samples:
        raise ValueError("no samples to take the median of")
    usable = [s for s in samples if not s.degraded] or list(samples)
    ordered = sorted(usable, key=lambda s: s.score)
    chosen = ordered[(len(ordered) - 1) // 2]
    spread = round(ordered[-1].score - ordered[0].score, 2)
    return replace(chosen, samples=len(usable), score_spread=spread)


class MedianOfK(DelegatingProvider):
    """An LLMProvider that scores each turn `k` times (concurrently; the shared rate
    limiter paces them) and keeps the median judgement."""

    def __init__(self, inner: LLMProvider, k: int):
        if k < 1:
            raise ValueError(f"judge samples must be >= 1, got {k}")
        super().__init__(inner)
        self.k = k

    async def evaluate_turn(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        exchange: Exchange,
        guardrail: GuardrailVerdict,
        conversation: Sequence[EvaluatedTurn] | None = None,
    ) -> TurnJudgement:
        if guardrail.violated:
            # Scored 0 whatever the judge says: one call is enough.
            return await self.inner.evaluate_turn(problem, history, exchange, guardrail, conversation)
        # Each sample judges the conversation too; the median sample's holistic judgement
        # goes with it (one sample, one coherent answer).
        samples = await asyncio.gather(
            *(self.inner.evaluate_turn(problem, history, exchange, guardrail, conversation) for _ in range(self.k))
        )
        return median_judgement(samples)


def median_of(provider: LLMProvider, k: int) -> LLMProvider:
    """`provider` judging each turn k times (median), or itself when k == 1."""
    return provider if k == 1 else MedianOfK(provider, k)
