"""The product's metrics, in one place. Instruments come from the global meter (a
no-op until `setup_telemetry` installs the SDK), so recording costs nothing when
metrics are off."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from opentelemetry import metrics

meter = metrics.get_meter("vibe")

RPC_DURATION = meter.create_histogram("rpc.server.duration", unit="s", description="gRPC handler time per method")
LLM_CALLS = meter.create_counter("llm.calls", description="LLM calls by provider and operation")
EVALUATION_LAG = meter.create_histogram("evaluation.lag", unit="s", description="turn finished -> evaluation stored")
SANDBOX_RUNS = meter.create_counter("sandbox.runs", description="code runs by language and verdict")
SUBMIT_DURATION = meter.create_histogram("submit.duration", unit="s", description="submit guard, end to end")

# The evaluation queue's depth is read by the workers from Redis and observed here.
_queue_depth = {"pending": 0, "lag": 0}


def set_queue_depth(pending: int, lag: int) -> None:
    _queue_depth["pending"], _queue_depth["lag"] = pending, lag


def _observe_queue(options: metrics.CallbackOptions) -> list[metrics.Observation]:
    return [
        metrics.Observation(_queue_depth["pending"], {"state": "in_flight"}),
        metrics.Observation(_queue_depth["lag"], {"state": "waiting"}),
    ]


meter.create_observable_gauge("evaluation.queue.depth", callbacks=[_observe_queue], description="evaluation jobs")


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Records how long each RPC handler ran, per method and outcome."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(("/grpc.health", "/grpc.reflection")):
            return handler
        # grpc's handlers are named tuples (typeshed describes only their fields).
        timed: Any = handler
        if handler.unary_unary:
            return cast(
                "grpc.RpcMethodHandler[Any, Any]", timed._replace(unary_unary=_timed_unary(handler.unary_unary, method))
            )
        if handler.unary_stream:
            return cast(
                "grpc.RpcMethodHandler[Any, Any]",
                timed._replace(unary_stream=_timed_stream(handler.unary_stream, method)),
            )
        return handler


def _record(method: str, started: float, outcome: str) -> None:
    RPC_DURATION.record(time.perf_counter() - started, {"rpc.method": method, "outcome": outcome})


def _timed_unary(behavior: Any, method: str) -> Any:
    async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        started, outcome = time.perf_counter(), "error"
        try:
            response = await behavior(request, context)
            outcome = "ok"
            return response
        finally:
            _record(method, started, outcome)

    return timed


def _timed_stream(behavior: Any, method: str) -> Any:
    async def timed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        started, outcome = time.perf_counter(), "error"
        try:
            async for response in behavior(request, context):
                yield response
            outcome = "ok"
        finally:
            _record(method, started, outcome)

    return timed
