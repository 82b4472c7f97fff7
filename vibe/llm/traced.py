"""Tracing of LLM calls: one span per call, whichever provider answers."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from opentelemetry import trace

from vibe.llm.base import DelegatingProvider, GuardrailVerdict, HolisticJudgement, TurnJudgement
from vibe.platform.metrics import LLM_CALLS
from vibe.platform.telemetry import tracer


class TracedLLM(DelegatingProvider):
    """An `LLMProvider` that wraps every call of another in a span (provider, model,
    outcome). Providers add their own details (tokens, retries, degraded) to the
    current span, which is this one."""

    def _span(self, operation: str) -> Any:
        LLM_CALLS.add(1, {"llm.provider": self.inner.name, "llm.operation": operation})
        return tracer.start_as_current_span(
            f"llm.{operation}",
            kind=trace.SpanKind.CLIENT,
            attributes={"llm.provider": self.inner.name, "llm.model": self.inner.model, "llm.operation": operation},
        )

    # Arguments pass through untouched, so the wrapper follows the protocol as it grows.
    async def check_guardrail(self, *args: Any, **kwargs: Any) -> GuardrailVerdict:
        with self._span("check_guardrail") as span:
            verdict = await self.inner.check_guardrail(*args, **kwargs)
            span.set_attribute("llm.guardrail.violated", verdict.violated)
            return verdict

    async def stream_tutor_reply(self, *args: Any, **kwargs: Any) -> AsyncGenerator[str, None]:
        # The span is made current only while the provider computes the next chunk:
        # a context attached across a `yield` would leak into the consumer.
        span = tracer.start_span(
            "llm.stream_tutor_reply",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "llm.provider": self.inner.name,
                "llm.model": self.inner.model,
                "llm.operation": "stream_tutor_reply",
            },
        )
        LLM_CALLS.add(1, {"llm.provider": self.inner.name, "llm.operation": "stream_tutor_reply"})
        stream = self.inner.stream_tutor_reply(*args, **kwargs)
        chunks = 0
        try:
            while True:
                with trace.use_span(span, end_on_exit=False):
                    try:
                        chunk = await anext(stream)
                    except StopAsyncIteration:
                        break
                chunks += 1
                yield chunk
        finally:
            span.set_attribute("llm.chunks", chunks)
            await stream.aclose()
            span.end()

    async def evaluate_turn(self, *args: Any, **kwargs: Any) -> TurnJudgement:
        with self._span("evaluate_turn") as span:
            judgement = await self.inner.evaluate_turn(*args, **kwargs)
            span.set_attribute("llm.intent", str(judgement.intent))
            # The holistic judgement folded into this call (no call of its own).
            span.set_attribute("llm.holistic", judgement.holistic is not None)
            return judgement

    async def evaluate_holistic(self, *args: Any, **kwargs: Any) -> HolisticJudgement:
        with self._span("evaluate_holistic"):
            return await self.inner.evaluate_holistic(*args, **kwargs)

    async def summarize_conversation(self, *args: Any, **kwargs: Any) -> str:
        with self._span("summarize_conversation") as span:
            summary = await self.inner.summarize_conversation(*args, **kwargs)
            span.set_attribute("llm.summary.chars", len(summary))
            return summary
