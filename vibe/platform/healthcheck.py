"""`python -m vibe.platform.healthcheck HOST:PORT`: exit 0 when the gRPC server there reports
SERVING on grpc.health.v1, 1 otherwise. Used by the compose file's health checks."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def wait_serving(addr: str, timeout_s: float) -> None:
    """Waits until the server at `addr` reports SERVING on grpc.health.v1."""
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(addr) as channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lists no methods
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no SERVING health status from {addr} after {timeout_s:.0f}s")
            await asyncio.sleep(0.1)


def main() -> None:
    if len(sys.argv) != 2:
        print("usage: python -m vibe.platform.healthcheck HOST:PORT", file=sys.stderr)
        raise SystemExit(2)
    try:
        asyncio.run(wait_serving(sys.argv[1], timeout_s=2.0))
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
