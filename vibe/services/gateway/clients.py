"""Channels to the services the gateway calls, created inside the running event loop."""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc

from vibe.platform.service_auth import service_channel
from vibe_api.evaluator.v1 import evaluator_pb2_grpc
from vibe_api.scoring.v1 import scoring_pb2_grpc
from vibe_api.tutor.v1 import tutor_pb2_grpc

# Client-side load balancing and transparent retries of unary calls when a backend is briefly unavailable (a restart,
# a rolling deploy). Streams are not listed: a reply already shown must not restart.
_RETRY_CONFIG = json.dumps(
    {
        # Spread calls over every address the name resolves to (scaled replicas).
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [
                    {"service": "vibe.evaluator.v1.Evaluator"},
                    {"service": "vibe.scoring.v1.Scoring"},
                ],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


@dataclass
class Upstreams:
    tutor: tutor_pb2_grpc.TutorAsyncStub
    evaluator: evaluator_pb2_grpc.EvaluatorAsyncStub
    scoring: scoring_pb2_grpc.ScoringAsyncStub
    channels: list[grpc.aio.Channel]

    @classmethod
    def connect(cls, tutor_addr: str, evaluator_addr: str, scoring_addr: str, service_secret: str) -> Upstreams:
        """Channels whose every call is signed as the gateway's (vibe/platform/service_auth.py)."""
        options = [("grpc.service_config", _RETRY_CONFIG), ("grpc.enable_retries", 1)]
        channels = [
            service_channel(addr, service_secret, "gateway", audience, options=options)
            for audience, addr in (("tutor", tutor_addr), ("evaluator", evaluator_addr), ("scoring", scoring_addr))
        ]
        return cls(
            tutor=tutor_pb2_grpc.TutorStub(channels[0]),
            evaluator=evaluator_pb2_grpc.EvaluatorStub(channels[1]),
            scoring=scoring_pb2_grpc.ScoringStub(channels[2]),
            channels=channels,
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
