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
from vibe.llm.offline.classifier import load_model
from vibe.llm.offline.content import UNPAID_NOTE, problem_vocabulary, unpaid_readings
from vibe.llm.offline.encoder import off_loop
from vibe.llm.offline.holistic_judge import judge_holistic
from vibe.llm.offline.learned import check_guardrail_in_context
from vibe.llm.offline.memory import summarize_exchanges
from vibe.llm.offline.prompt_features import PromptFeatures
from vibe.llm.offline.turn_judge import judge_turn, score_criterion, shifted_to
from vibe.llm.offline.tutor import compose_reply, word_chunks
from vibe.llm.rubrics import rubric_for, weighted_score


def _read_unevaluated(problem: ProblemContext, conversation: Sequence[EvaluatedTurn]) -> list[EvaluatedTurn]:
    """The earlier turns, each one not evaluated yet judged here by the offline turn judge
    from its transcript (free and deterministic), so the holistic judge sees a score."""
    ordered = sorted(conversation, key=lambda t: t.turn)
    done: list[EvaluatedTurn] = []
    for i, t in enumerate(ordered):
        if t.intent is None or t.score is None:
            earlier = [Exchange(e.turn, e.user, e.assistant_summary) for e in ordered[:i]]
            verdict = GuardrailVerdict(violated=True) if t.violated else GuardrailVerdict.ok()
            judged = _judge_paid(problem, earlier, Exchange(t.turn, t.user, t.assistant_summary), verdict)
            t = replace(t, intent=t.intent or judged.intent, score=t.score if t.score is not None else judged.score)
        done.append(t)
    return done


class OfflineProvider:
    """Deterministic stand-in for an LLM (see the module docstring)."""

    name = "offline"
    model = "offline-heuristics-v1"

    def __init__(self, latency_s: float = 0.0) -> None:
        if latency_s < 0:
            raise ValueError("latency_s must be >= 0")
        self.latency_s = float(latency_s)
        # The learned classifiers' artefact is read here, when a service builds its
        # provider at start-up, not on a candidate's first turn (~50 ms; once per process).
        load_model()

    async def _simulate_latency(self) -> None:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)

    async def check_guardrail(
        self, problem: ProblemContext, history: Sequence[Exchange], message: str, *, second_opinion: bool = False
    ) -> GuardrailVerdict:
        # No model to ask for a second opinion: the rules' verdict is all there is.
        return await off_loop(lambda: check_guardrail_in_context(problem, history, message))

    async def stream_tutor_reply(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guardrail: GuardrailVerdict,
        guidance: TutorGuidance | None = None,
    ) -> AsyncGenerator[str, None]:
        chunks = word_chunks(await off_loop(lambda: compose_reply(problem, history, message, guardrail, guidance)))
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
        conversation: Sequence[EvaluatedTurn] | None = None,
    ) -> TurnJudgement:
        await self._simulate_latency()
        judgement = await off_loop(lambda: _judged_turn(problem, history, exchange, guardrail))
        judgement = replace(judgement, provider=self.name, model=self.model)
        if conversation is None:
            return judgement
        this_turn = EvaluatedTurn(
            exchange.turn,
            exchange.user,
            judgement.llm_answer_summary,
            judgement.intent,
            0.0 if guardrail.violated else judgement.score,
            guardrail.violated,
        )
        # Text addressed to the grader is no evidence of a strategy (vibe/llm/injection.py).
        turns = await off_loop(lambda: sanitize_turns([*_read_unevaluated(problem, conversation), this_turn]))
        holistic = replace(await off_loop(lambda: judge_holistic(turns)), provider=self.name, model=self.model)
        return replace(judgement, holistic=holistic)

    async def evaluate_holistic(self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
        await self._simulate_latency()
        # Text addressed to the grader is no evidence of a strategy (vibe/llm/injection.py).
        clean = sanitize_turns(turns)
        return replace(await off_loop(lambda: judge_holistic(clean)), provider=self.name, model=self.model)

    async def summarize_conversation(
        self, problem: ProblemContext, exchanges: Sequence[Exchange], previous_summary: str
    ) -> str:
        return summarize_exchanges(exchanges, previous_summary)

    async def aclose(self) -> None:
        return None


def _judged_turn(
    problem: ProblemContext, history: Sequence[Exchange], exchange: Exchange, guardrail: GuardrailVerdict
) -> TurnJudgement:
    """One turn's judgement: as written and without its content-free units, and with the
    min rule over the text addressed to the grader (a pure function: `off_loop` may call it
    again once an embedding it needs is in)."""
    judgement = _judge_paid(problem, history, exchange, guardrail)
    split = split_grader_text(exchange.user)
    if split.found and not guardrail.violated:  # a violation scores 0 whatever the text
        # The min rule (vibe/llm/injection.py): text addressed to the grader never pays.
        # Both texts are also scored under every intent's rubric: the segment, or its
        # removal (which may take words of the candidate's with it), can move the
        # intent to a rubric that pays more, and no intent read from such a turn is
        # more trustworthy than another. A turn that wrote to the grader gets the lowest
        # any reading earns (up to 24 scorings: only such turns pay for them).
        kept = replace(exchange, user=split.kept)
        stripped = _judge_paid(problem, history, kept, guardrail)
        texts = [(exchange, judgement), (kept, stripped)]
        if split.tight and split.tight != split.kept:
            # Only the grader-addressed units removed, the candidate's words beside
            # them kept: the reading nearest to the turn without them.
            tight = replace(exchange, user=split.tight)
            texts.append((tight, judge_turn(problem, history, tight, guardrail)))
        if split.wide not in (split.kept, split.tight):
            # Without the code fence the segment came in too: a segment's own container
            # (`def f(): pass` around a grader docstring) is not the candidate's code.
            wide = replace(exchange, user=split.wide)
            texts.append((wide, judge_turn(problem, history, wide, guardrail)))
        readings = [_judged_as(problem, history, ex, intent, like) for ex, like in texts for intent in Intent]
        others = [judgement, *(like for _, like in texts[2:])]
        judgement = guarded_judgement(stripped, [*others, *readings], split)
    return judgement


def _judge_paid(
    problem: ProblemContext, history: Sequence[Exchange], exchange: Exchange, guardrail: GuardrailVerdict
) -> TurnJudgement:
    """The turn judged as written and without its content-free units (content.py: words the
    tutor cannot use never pay): the lowest reading's score, under the intent read from the
    whole text (what the candidate asked). Each reading is judged under its own intent too:
    the turn with an added unit then has every reading the turn without it has."""
    judged = judge_turn(problem, history, exchange, guardrail)
    readings = unpaid_readings(exchange.user, problem_vocabulary(problem), bool(history))
    if guardrail.violated or not readings:
        return judged
    lowest, lowest_here = judged, judged
    for text in readings:
        cut = replace(exchange, user=text)
        own = judge_turn(problem, history, cut, guardrail)
        here = own if own.intent is judged.intent else judge_turn(problem, history, cut, guardrail, judged.intent)
        for reading in (own, here):
            if reading.score < lowest.score:
                lowest, lowest_here = reading, here
    if lowest is judged:
        return judged
    rubrics = lowest_here.rubrics
    if lowest_here.score > lowest.score:  # the lowest reading was under another intent's rubric
        rubrics = shifted_to(tuple(rubrics), lowest.score - 0.02, within=0.02)
    score = weighted_score(rubrics)
    note = f" {UNPAID_NOTE} ({score:g} against {judged.score:g} as written)."
    return replace(
        lowest_here,
        score=score,
        rubrics=rubrics,
        user_prompt_summary=judged.user_prompt_summary,
        final_reasoning=lowest_here.final_reasoning + note,
    )


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
