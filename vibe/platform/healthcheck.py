"""`python -m vibe.platform.healthcheck HOST:PORT`: exit 0 when the gRPC server there reports
SERVING on grpc.health.v1, 1 otherwise. Used by the compose file's health checks."""

from __future__ import annotations

import asyncio
import sys

from vibe_dev.stack import wait_serving


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
