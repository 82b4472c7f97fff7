"""The configured LLM behind a circuit breaker, with the offline provider standing in.

What each operation does when the primary cannot answer (LLMUnavailable, or the
breaker is open):
- guardrail: the offline rules' verdict (they ran first anyway);
- tutor reply: LLMUnavailable goes up, and the tutor tells the candidate plainly that
  the assistant is unavailable and to retry, instead of inventing a reply;
- turn and holistic evaluation: the offline judge's result, marked `degraded`, so a
  submit always completes and the report says which parts were produced how.

Text a candidate addressed to the grader never raises a score (`injection.py`): the
earlier turns and the holistic judge's turns are passed without it; the turn being
judged is passed whole, and each provider applies the min rule to it (the offline
judge scores it with and without that text; Gemini is sent it without, once).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from vibe.llm.base import (
    EvaluatedTurn,
    Exchange,
    GuardrailVerdict,
    HolisticJudgement,
    LLMProvider,
    LLMUnavailable,
    ProblemContext,
    TurnJudgement,
    TutorGuidance,
)
from vibe.llm.breaker import CircuitBreaker
from vibe.llm.injection import sanitize_history, sanitize_turns

log = logging.getLogger(__name__)
J = TypeVar("J", TurnJudgement, HolisticJudgement)
R = TypeVar("R")

UNAVAILABLE = "the AI assistant is unavailable right now (too many failed requests); please try again in a minute"


class ResilientProvider:
    def __init__(self, primary: LLMProvider, fallback: LLMProvider, breaker: CircuitBreaker):
        self.primary = primary
        self.fallback = fallback
        self.breaker = breaker
        self.name = primary.name
        self.model = primary.model

    async def check_guardrail(
        self, problem: ProblemContext, history: Sequence[Exchange], message: str, *, second_opinion: bool = False
    ) -> GuardrailVerdict:
        # Never the breaker's trial: it runs beside the tutor's reply, which has no
        # fallback; were the guardrail the trial, the reply would be refused, the check
        # cancelled with it, and the breaker would stay half-open for every later turn.
        return await self._with_fallback(
            "guardrail",
            lambda: self.primary.check_guardrail(problem, history, message, second_opinion=second_opinion),
            lambda: self.fallback.check_guardrail(problem, history, message),
            trial=False,
        )

    async def stream_tutor_reply(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guardrail: GuardrailVerdict,
        guidance: TutorGuidance | None = None,
    ) -> AsyncGenerator[str, None]:
        if not self.breaker.allow():
            raise LLMUnavailable(UNAVAILABLE)
        finished = False
        try:
            async with contextlib.aclosing(
                self.primary.stream_tutor_reply(problem, history, message, guardrail, guidance)
            ) as chunks:
                async for chunk in chunks:
                    yield chunk
            finished = True
            self.breaker.success()
        except LLMUnavailable as exc:
            finished = True
            self._failed(exc)
            raise
        finally:
            if not finished:
                self.breaker.release()  # the candidate left: says nothing about Gemini

    async def evaluate_turn(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        exchange: Exchange,
        guardrail: GuardrailVerdict,
        conversation: Sequence[EvaluatedTurn] | None = None,
    ) -> TurnJudgement:
        history = sanitize_history(history)
        turns = sanitize_turns(conversation) if conversation is not None else None
        return await self._with_fallback(
            "turn evaluation",
            lambda: self.primary.evaluate_turn(problem, history, exchange, guardrail, turns),
            lambda: self._degraded_turn(self.fallback.evaluate_turn(problem, history, exchange, guardrail, turns)),
        )

    async def evaluate_holistic(self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
        turns = sanitize_turns(turns)
        return await self._with_fallback(
            "holistic evaluation",
            lambda: self.primary.evaluate_holistic(problem, turns),
            lambda: self._degraded(self.fallback.evaluate_holistic(problem, turns)),
        )

    async def summarize_conversation(
        self, problem: ProblemContext, exchanges: Sequence[Exchange], previous_summary: str
    ) -> str:
        exchanges = sanitize_history(exchanges)
        return await self._with_fallback(
            "conversation summary",
            lambda: self.primary.summarize_conversation(problem, exchanges, previous_summary),
            lambda: self.fallback.summarize_conversation(problem, exchanges, previous_summary),
        )

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        finally:
            await self.fallback.aclose()

    # -----------------------------------------------------------------------------

    async def _with_fallback(
        self, what: str, primary: Callable[[], Awaitable[R]], fallback: Callable[[], Awaitable[R]], trial: bool = True
    ) -> R:
        if not self.breaker.allow(trial):
            log.warning("%s: circuit open, using the %s provider", what, self.fallback.name)
            return await fallback()
        try:
            result = await primary()
        except LLMUnavailable as exc:
            self._failed(exc)
            log.warning("%s: %s; using the %s provider", what, exc, self.fallback.name)
            return await fallback()
        except Exception:
            # Our own bug or Redis trouble, not Gemini's health; still, the candidate's
            # submit must complete, so log it loudly and fall back.
            self.breaker.release()
            log.exception("%s failed unexpectedly; using the %s provider", what, self.fallback.name)
            return await fallback()
        except BaseException:
            self.breaker.release()  # cancelled
            raise
        self.breaker.success()
        return result

    def _failed(self, exc: LLMUnavailable) -> None:
        if exc.upstream_failed:
            self.breaker.failure()
        else:
            self.breaker.release()

    @staticmethod
    async def _degraded(judgement: Awaitable[J]) -> J:
        return replace(await judgement, degraded=True)

    @staticmethod
    async def _degraded_turn(judgement: Awaitable[TurnJudgement]) -> TurnJudgement:
        """The fallback's turn judgement, and the holistic one it carries, both marked."""
        turn = await judgement
        holistic = replace(turn.holistic, degraded=True) if turn.holistic is not None else None
        return replace(turn, degraded=True, holistic=holistic)
