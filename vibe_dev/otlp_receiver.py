"""A real OTLP/gRPC receiver for tests: the collector's trace and metrics services
(from the OpenTelemetry proto package), keeping what the services export."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    links: list[tuple[str, str]]  # (trace_id, span_id)


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@dataclass
class Receiver(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    spans: list[ReceivedSpan] = field(default_factory=list)
    metric_names: set[str] = field(default_factory=set)

    async def Export(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
            for resource_spans in request.resource_spans:
                attrs = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for s in scope.spans:
                        self.spans.append(
                            ReceivedSpan(
                                service=attrs.get("service.name", ""),
                                name=s.name,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_span_id=s.parent_span_id.hex(),
                                attributes={a.key: _value(a.value) for a in s.attributes},
                                links=[(link.trace_id.hex(), link.span_id.hex()) for link in s.links],
                            )
                        )
            return trace_service_pb2.ExportTraceServiceResponse()
        for resource_metrics in request.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                self.metric_names.update(m.name for m in scope.metrics)
        return metrics_service_pb2.ExportMetricsServiceResponse()

    async def wait_for(self, predicate: Any, timeout_s: float = 20.0) -> list[ReceivedSpan]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = [s for s in self.spans if predicate(s)]
            if found or loop.time() > deadline:
                return found
            await asyncio.sleep(0.1)


class _MetricsAdapter(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: Receiver):
        self.receiver = receiver

    async def Export(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await self.receiver.Export(request, context)


@contextlib.asynccontextmanager
async def otlp_receiver() -> AsyncIterator[tuple[Receiver, str]]:
    """Yields the receiver and its endpoint URL (for OTEL_EXPORTER_OTLP_ENDPOINT)."""
    receiver = Receiver()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_MetricsAdapter(receiver), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield receiver, f"http://127.0.0.1:{port}"
    finally:
        await server.stop(0)
