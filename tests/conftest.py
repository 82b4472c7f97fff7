"""Test harness: every test gets its own PostgreSQL schema and Redis key prefix on the
real servers, and (when it asks for one) the four real gRPC services on port 0."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis

from vibe_dev.fake_gemini import FakeGemini, running
from vibe_dev.scratch import DATABASE_URL, REDIS_URL, drop_scratch
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.stack import StackAddrs, in_process_stack



@pytest.fixture
async def isolated_env() -> AsyncIterator[dict[str, str]]:
    """Environment for services that only touches this test's schema and keys."""
    tag = uuid.uuid4().hex[:12]
    env = {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "VIBE_DB_SCHEMA": f"t_{tag}",
        "VIBE_REDIS_PREFIX": f"t:{tag}:",
        "VIBE_LLM_PROVIDER": "offline",
        "GATEWAY_ADDR": "127.0.0.1:0",
        "TUTOR_ADDR": "127.0.0.1:0",
        "EVALUATOR_ADDR": "127.0.0.1:0",
        "SCORING_ADDR": "127.0.0.1:0",
        "GATEWAY_HTTP_ADDR": "127.0.0.1:0",
        "VIBE_SHUTDOWN_GRACE_S": "0.5",
    }
    yield env
    await drop_scratch((f"t_{tag}",), f"t:{tag}:")


@dataclass
class Stack:
    addrs: StackAddrs
    env: dict[str, str]
    channel: grpc.aio.Channel
    gateway: gateway_pb2_grpc.GatewayStub

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(DATABASE_URL, server_settings={"search_path": self.env["VIBE_DB_SCHEMA"]})

    def redis(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(REDIS_URL, decode_responses=True)

    def key(self, suffix: str) -> str:
        return self.env["VIBE_REDIS_PREFIX"] + suffix


StartStack = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def start_stack(isolated_env: dict[str, str]) -> StartStack:
    """`async with start_stack(EVALUATOR_WORKERS="0") as stack:` — the four services
    with extra settings."""

    @contextlib.asynccontextmanager
    async def start(**overrides: str) -> AsyncIterator[Stack]:
        env = {**isolated_env, **overrides}
        async with in_process_stack(env) as addrs:
            async with grpc.aio.insecure_channel(addrs.gateway) as channel:
                yield Stack(addrs, env, channel, gateway_pb2_grpc.GatewayStub(channel))

    return start


@pytest.fixture
async def stack(start_stack: StartStack) -> AsyncIterator[Stack]:
    async with start_stack() as s:
        yield s


class Candidate:
    """A backend's view of one session: the gateway stub plus the session token."""

    def __init__(self, gateway: gateway_pb2_grpc.GatewayStub, session: gateway_pb2.Session, token: str):
        self.gateway = gateway
        self.session = session
        self.token = token

    @property
    def session_id(self) -> str:
        return self.session.session_id

    @property
    def auth(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    async def chat(self, message: str) -> list[gateway_pb2.ChatEvent]:
        call = self.gateway.Chat(gateway_pb2.ChatRequest(session_id=self.session_id, message=message), metadata=self.auth)
        return [event async for event in call]

    async def submit(self, code: str, language: str = "python") -> list[gateway_pb2.SubmitEvent]:
        call = self.gateway.Submit(
            gateway_pb2.SubmitRequest(session_id=self.session_id, language=language, code=code), metadata=self.auth
        )
        return [event async for event in call]

    async def report(self) -> gateway_pb2.Report:
        return await self.gateway.GetReport(gateway_pb2.GetReportRequest(session_id=self.session_id), metadata=self.auth)


async def new_candidate(stack: Stack, problem_id: str = "two-sum", candidate_id: str = "cand-1") -> Candidate:
    reply = await stack.gateway.CreateSession(
        gateway_pb2.CreateSessionRequest(candidate_id=candidate_id, problem_id=problem_id)
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


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    """A local Gemini-compatible HTTP server (vibe_dev/fake_gemini.py) for this test."""
    async with running() as server:
        yield server


def gemini_stack(start_stack: StartStack, fake: FakeGemini, **overrides: str) -> contextlib.AbstractAsyncContextManager[Stack]:
    """The four services on the Gemini provider, talking to `fake`."""
    return start_stack(VIBE_LLM_PROVIDER="gemini", GEMINI_API_KEY="test-key", GEMINI_BASE_URL=fake.url, **overrides)
