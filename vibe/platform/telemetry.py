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
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from vibe.platform.config import CommonSettings, ConfigError

log = logging.getLogger(__name__)
SESSION_KEYS = ("session.id", "turn")
tracer = trace.get_tracer("vibe")


class SessionAttributes(SpanProcessor):
    """Stamps the session and turn from baggage onto every span when it starts."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for key in SESSION_KEYS:
            value = baggage.get_baggage(key, parent_context)
            if value is not None:
                span.set_attribute(key, int(str(value)) if key == "turn" else str(value))

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_installed = False


def setup_telemetry(service: str, settings: CommonSettings) -> None:
    """Install the SDK and the instrumentors for this process (idempotent)."""
    global _installed
    if _installed:
        return
    if not settings.otlp_endpoint and not settings.metrics_addr:
        return  # the no-op API: no spans recorded, nothing exported
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": settings.otel_service_name or service})
    if settings.otlp_endpoint:
        _install_tracing(resource)
    _install_metrics(resource, bool(settings.otlp_endpoint), settings.metrics_addr)
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
        try:
            start_http_server(int(port), addr=host or "0.0.0.0")
        except OSError as exc:
            raise ConfigError(f"VIBE_METRICS_ADDR={metrics_addr!r}: cannot listen there ({exc.strerror})") from None
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
