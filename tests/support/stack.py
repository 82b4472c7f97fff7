"""What the tests share besides their fixtures (tests/conftest.py): the four real gRPC
services on port 0 in this process, a backend's view of one session, and the
environment that gives a test its own PostgreSQL schema and Redis key prefix."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import asyncpg
import grpc
import redis.asyncio as aioredis

from vibe.llm.resilient import ResilientProvider
from vibe.platform.service_auth import service_channel
from vibe.services.scoring.bank import DEFAULT_PROBLEMS_DIR
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.fake_gemini import FakeGemini
from vibe_dev.scratch import DATABASE_URL, REDIS_URL, scratch_env
from vibe_dev.stack import StackAddrs, in_process_stack

# The reference solution of two-sum: a submission that passes every test.
REFERENCE = (DEFAULT_PROBLEMS_DIR / "two-sum" / "reference.py").read_text()


def isolated_env(tag: str) -> dict[str, str]:
    """Environment for services that only touches the schema `t_<tag>` and the keys
    `t:<tag>:*` (dropped with `vibe_dev.scratch.drop_scratch`)."""
    return scratch_env(f"t_{tag}", f"t:{tag}:")


def key_auth(api_key: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata that presents a backend API key."""
    return (("authorization", f"Bearer {api_key}"),)


def internal_channel(env: Mapping[str, str], addr: str, service: str, caller: str = "gateway") -> grpc.aio.Channel:
    """A channel to the internal `service` at `addr` whose calls are signed as `caller`
    with the environment's VIBE_SERVICE_SECRET (as the gateway signs its own)."""
    return service_channel(addr, env["VIBE_SERVICE_SECRET"], caller, service)


@dataclass
class Stack:
    addrs: StackAddrs
    env: dict[str, str]
    channel: grpc.aio.Channel
    gateway: gateway_pb2_grpc.GatewayAsyncStub

    async def db(self) -> asyncpg.Connection:
        url = self.env.get("DATABASE_URL", DATABASE_URL)  # a fault test's private server, if it has one
        return await asyncpg.connect(url, server_settings={"search_path": self.env["VIBE_DB_SCHEMA"]})

    def redis(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.env.get("REDIS_URL", REDIS_URL), decode_responses=True)

    def key(self, suffix: str) -> str:
        return self.env["VIBE_REDIS_PREFIX"] + suffix

    @property
    def api_key(self) -> str:
        """The stack's backend key (every scope), as VIBE_API_KEY holds it."""
        return self.env["VIBE_API_KEY"]

    @property
    def key_auth(self) -> tuple[tuple[str, str], ...]:
        return key_auth(self.api_key)

    def internal(self, service: str, caller: str = "gateway") -> grpc.aio.Channel:
        """A channel to the stack's tutor, evaluator or scoring service, signed as `caller`."""
        return internal_channel(self.env, getattr(self.addrs, service), service, caller)


StartStack = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@contextlib.asynccontextmanager
async def running_stack(env: dict[str, str]) -> AsyncIterator[Stack]:
    """The four services in this event loop with `env`, and a channel to the gateway."""
    async with in_process_stack(env) as addrs, grpc.aio.insecure_channel(addrs.gateway) as channel:
        yield Stack(addrs, env, channel, gateway_pb2_grpc.GatewayStub(channel))


class Candidate:
    """A backend's view of one session: the gateway stub plus the session token."""

    def __init__(self, gateway: gateway_pb2_grpc.GatewayAsyncStub, session: gateway_pb2.Session, token: str):
        self.gateway = gateway
        self.session = session
        self.token = token

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    async def chat(self, message: str, key: str = "") -> list[gateway_pb2.ChatEvent]:
        call = self.gateway.Chat(
            gateway_pb2.ChatRequest(session_id=self.session_id, message=message, idempotency_key=key),
            metadata=self.auth,
        )
        return [event async for event in call]

    async def submit(self, code: str, language: str = "python", key: str = "") -> list[gateway_pb2.SubmitEvent]:
        call = self.gateway.Submit(
            gateway_pb2.SubmitRequest(session_id=self.session_id, language=language, code=code, idempotency_key=key),
            metadata=self.auth,
        )
        return [event async for event in call]

    async def report(self) -> gateway_pb2.Report:
        return await self.gateway.GetReport(
            gateway_pb2.GetReportRequest(session_id=self.session_id), metadata=self.auth
        )


async def new_candidate(stack: Stack, problem_id: str = "two-sum", candidate_id: str = "cand-1") -> Candidate:
    reply = await stack.gateway.CreateSession(
        gateway_pb2.CreateSessionRequest(candidate_id=candidate_id, problem_id=problem_id), metadata=stack.key_auth
    )
    return Candidate(stack.gateway, reply.session, reply.session_token)


def reply_text(events: list[gateway_pb2.ChatEvent]) -> str:
    return "".join(e.delta for e in events if e.WhichOneof("event") == "delta")


async def evaluation_runs(stack: Stack, session_id: str) -> dict[int, int]:
    """How many times each turn of the session was evaluated (the evaluator counts them)."""
    redis = stack.redis()
    try:
        runs = await redis.hgetall(stack.key(f"eval:runs:{session_id}"))
    finally:
        await redis.aclose()
    return {int(turn): int(n) for turn, n in runs.items()}


def gemini_stack(
    start_stack: StartStack, fake: FakeGemini, **overrides: str
) -> contextlib.AbstractAsyncContextManager[Stack]:
    """The four services on the Gemini provider, talking to `fake`."""
    return start_stack(VIBE_LLM_PROVIDER="gemini", GEMINI_API_KEY="test-key", GEMINI_BASE_URL=fake.url, **overrides)


# A Gemini provider like a service's, against the fake server (the `gemini` fixture):
# `async with gemini(VIBE_LLM_RPM="15") as llm:`.
MakeLLM = Callable[..., contextlib.AbstractAsyncContextManager[ResilientProvider]]
