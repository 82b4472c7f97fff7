"""OpenTelemetry for every service: traces over OTLP, metrics over OTLP and on a
Prometheus scrape endpoint, with `session.id` and `turn` on every span of a session.

`setup_telemetry()` runs first thing in a service process, before any gRPC server or
channel exists (the instrumentors patch grpc.aio at creation time). With no
`OTEL_EXPORTER_OTLP_ENDPOINT` and no `VIBE_METRICS_ADDR`, no SDK is installed: the API
stays a no-op, nothing is exported and nothing slows down.

How a session's identity reaches every span: the gateway puts `session.id` and `turn`
into OpenTelemetry baggage, which travels with the trace context in gRPC metadata to
the other services and inside evaluation jobs; `SessionAttributes` copies it onto every
span as it starts, including the Redis, PostgreSQL and LLM spans below it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any, AsyncIterator, Iterator, Mapping

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from vibe.platform.metrics import LLM_CALLS
from vibe.llm.base import GuardrailVerdict, HolisticJudgement, LLMProvider, TurnJudgement

log = logging.getLogger(__name__)
SESSION_KEYS = ("session.id", "turn")
tracer = trace.get_tracer("vibe")


class SessionAttributes(SpanProcessor):
    """Stamps the session and turn from baggage onto every span when it starts."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for key in SESSION_KEYS:
            value = baggage.get_baggage(key, parent_context)
            if value is not None:
                span.set_attribute(key, int(value) if key == "turn" else str(value))

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_installed = False


def setup_telemetry(service: str, env: Mapping[str, str] | None = None) -> None:
    """Install the SDK and the instrumentors for this process (idempotent)."""
    global _installed
    if _installed:
        return
    env = os.environ if env is None else env
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    metrics_addr = env.get("VIBE_METRICS_ADDR", "")
    if not endpoint and not metrics_addr:
        return  # the no-op API: no spans recorded, nothing exported
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service})
    if endpoint:
        _install_tracing(resource)
    _install_metrics(resource, bool(endpoint), metrics_addr)
    _installed = True


def _install_tracing(resource: Any) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient, GrpcAioInstrumentorServer, filters
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SessionAttributes())
    # The exporter reads OTEL_EXPORTER_OTLP_* (endpoint, headers, insecure) itself.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # Health checks are polled every few seconds by orchestrators: keep them out.
    no_health = filters.negate(filters.health_check())
    GrpcAioInstrumentorServer(filter_=no_health).instrument()
    GrpcAioInstrumentorClient(filter_=no_health).instrument()
    RedisInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()


def _install_metrics(resource: Any, otlp: bool, metrics_addr: str) -> None:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    readers: list[Any] = []
    if otlp:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    if metrics_addr:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        host, _, port = metrics_addr.rpartition(":")
        start_http_server(int(port), addr=host or "0.0.0.0")
        readers.append(PrometheusMetricReader())
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def shutdown_telemetry() -> None:
    """Flush what is buffered (called once the servers have stopped)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()
    from opentelemetry import metrics

    meter_provider = metrics.get_meter_provider()
    if hasattr(meter_provider, "shutdown"):
        meter_provider.shutdown()


def bind_session(session_id: str, turn: int | None = None) -> None:
    """Mark the rest of this request (this task) as belonging to a session and turn:
    the current span gets the attributes, and baggage carries them downstream."""
    span = trace.get_current_span()
    span.set_attribute("session.id", session_id)
    ctx = baggage.set_baggage("session.id", session_id)
    if turn is not None:
        span.set_attribute("turn", turn)
        ctx = baggage.set_baggage("turn", str(turn), ctx)
    # Not detached on purpose: each request runs in its own task, whose context ends with it.
    context.attach(ctx)


def inject_carrier() -> dict[str, str]:
    """The current trace context and baggage, as strings to put into a queued job."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_carrier(carrier: Mapping[str, str]) -> Context:
    return propagate.extract(carrier)


@contextlib.contextmanager
def attached(ctx: Context) -> Iterator[None]:
    """Makes `ctx` current for the block (for code that is not an async generator)."""
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


def baggage_only(ctx: Context) -> Context:
    """The baggage of `ctx` without its span: to start a new trace that keeps the
    session's identity."""
    fresh = context.Context()
    for key, value in baggage.get_all(ctx).items():
        fresh = baggage.set_baggage(key, value, fresh)
    return fresh


class TracedLLM:
    """An `LLMProvider` that wraps every call of another in a span (provider, model,
    outcome). Providers add their own details (tokens, retries, degraded) to the
    current span, which is this one."""

    def __init__(self, inner: LLMProvider):
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def model(self) -> str:
        return self.inner.model

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

    async def stream_tutor_reply(self, *args: Any, **kwargs: Any) -> AsyncIterator[str]:
        # The span is made current only while the provider computes the next chunk:
        # a context attached across a `yield` would leak into the consumer.
        span = tracer.start_span(
            "llm.stream_tutor_reply",
            kind=trace.SpanKind.CLIENT,
            attributes={"llm.provider": self.inner.name, "llm.model": self.inner.model, "llm.operation": "stream_tutor_reply"},
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
            await stream.aclose()  # type: ignore[attr-defined]
            span.end()

    async def evaluate_turn(self, *args: Any, **kwargs: Any) -> TurnJudgement:
        with self._span("evaluate_turn") as span:
            judgement = await self.inner.evaluate_turn(*args, **kwargs)
            span.set_attribute("llm.intent", str(judgement.intent))
            return judgement

    async def evaluate_holistic(self, *args: Any, **kwargs: Any) -> HolisticJudgement:
        with self._span("evaluate_holistic"):
            return await self.inner.evaluate_holistic(*args, **kwargs)

    async def summarize_conversation(self, *args: Any, **kwargs: Any) -> str:
        with self._span("summarize_conversation") as span:
            summary = await self.inner.summarize_conversation(*args, **kwargs)
            span.set_attribute("llm.summary.chars", len(summary))
            return summary

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:  # provider-specific extras pass through
        return getattr(self.inner, name)
