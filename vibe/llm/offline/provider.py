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
    Intent,
    ProblemContext,
    RubricScore,
    TurnJudgement,
    TutorGuidance,
)
from vibe.llm.injection import guarded_judgement, sanitize_turns, split_grader_text
from vibe.llm.offline.guardrail import check_guardrail_in_context
from vibe.llm.offline.holistic_judge import judge_holistic
from vibe.llm.offline.memory import summarize_exchanges
from vibe.llm.offline.turn_judge import PromptFeatures, judge_turn, score_criterion
from vibe.llm.offline.tutor import compose_reply, word_chunks
from vibe.llm.rubrics import rubric_for, weighted_score


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
        self, problem: ProblemContext, history: Sequence[Exchange], message: str
    ) -> GuardrailVerdict:
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
        judgement = judge_turn(problem, history, exchange, guardrail)
        split = split_grader_text(exchange.user)
        if split.found and not guardrail.violated:  # a violation scores 0 whatever the text
            # The min rule (vibe/llm/injection.py): text addressed to the grader never pays.
            # Both texts are also scored under every intent's rubric: the segment, or its
            # removal (which may take words of the candidate's with it), can move the
            # intent to a rubric that pays more, and no intent read from such a turn is
            # more trustworthy than another. Fourteen offline scorings cost well under a
            # millisecond; a turn that wrote to the grader gets the lowest any reading earns.
            kept = replace(exchange, user=split.kept)
            stripped = judge_turn(problem, history, kept, guardrail)
            readings = [
                _judged_as(problem, history, ex, intent, like)
                for ex, like in ((exchange, judgement), (kept, stripped))
                for intent in Intent
            ]
            judgement = guarded_judgement(stripped, [judgement, *readings], split)
        return replace(judgement, provider=self.name, model=self.model)

    async def evaluate_holistic(self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
        await self._simulate_latency()
        # Text addressed to the grader is no evidence of a strategy (vibe/llm/injection.py).
        return replace(judge_holistic(sanitize_turns(turns)), provider=self.name, model=self.model)

    async def summarize_conversation(
        self, problem: ProblemContext, exchanges: Sequence[Exchange], previous_summary: str
    ) -> str:
        return summarize_exchanges(exchanges, previous_summary)

    async def aclose(self) -> None:
        return None


def _judged_as(
    problem: ProblemContext, history: Sequence[Exchange], exchange: Exchange, intent: Intent, like: TurnJudgement
) -> TurnJudgement:
    """`exchange` scored under `intent`'s rubric (the summaries taken from `like`)."""
    features = PromptFeatures.of(problem, history, exchange.user)
    rubrics = tuple(
        RubricScore(c.name, *score_criterion(c.name, features, intent, bool(history)), c.weight)
        for c in rubric_for(intent).criteria
    )
    score = weighted_score(rubrics)
    return replace(
        like,
        intent=intent,
        score=score,
        rubrics=rubrics,
        final_reasoning=f"Intent {intent.value}, score {score:g} (weighted), scored under this intent's rubric.",
    )
