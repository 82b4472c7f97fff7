"""Tracing overhead on chat and submit: the same four services run twice side by side,
one stack exporting traces and metrics over OTLP to a local receiver, one with telemetry
off; requests alternate between them so machine noise hits both alike.

    .venv/bin/python -m bench.bench_tracing [--chats 40] [--submits 6]

Prints medians per stack and the ratio traced / untraced.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid

import asyncpg
import grpc

from vibe.services.scoring.bank import DEFAULT_PROBLEMS_DIR
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.otlp_receiver import otlp_receiver
from vibe_dev.scratch import DATABASE_URL, LIFTED_LIMITS
from vibe_dev.stack import process_stack

REFERENCE = (DEFAULT_PROBLEMS_DIR / "two-sum" / "reference.py").read_text()


async def new_session(stub: gateway_pb2_grpc.GatewayAsyncStub, api_key: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    created = await stub.CreateSession(
        gateway_pb2.CreateSessionRequest(candidate_id="bench", problem_id="two-sum"),
        metadata=(("authorization", f"Bearer {api_key}"),),
    )
    return created.session.session_id, (("authorization", f"Bearer {created.session_token}"),)


async def timed_chat(
    stub: gateway_pb2_grpc.GatewayAsyncStub, sid: str, auth: tuple[tuple[str, str], ...], message: str
) -> float:
    started = time.perf_counter()
    async for _ in stub.Chat(gateway_pb2.ChatRequest(session_id=sid, message=message), metadata=auth):
        pass
    return time.perf_counter() - started


async def timed_submit(stub: gateway_pb2_grpc.GatewayAsyncStub, api_key: str) -> float:
    sid, auth = await new_session(stub, api_key)
    await timed_chat(stub, sid, auth, "Which data structure avoids checking every pair?")
    started = time.perf_counter()
    async for _ in stub.Submit(
        gateway_pb2.SubmitRequest(session_id=sid, language="python", code=REFERENCE), metadata=auth
    ):
        pass
    return time.perf_counter() - started


async def main(chats: int, submits: int) -> None:
    tags = {name: uuid.uuid4().hex[:10] for name in ("plain", "traced")}
    base = {
        **os.environ,
        "GATEWAY_HTTP_ADDR": "",
        "VIBE_LOG_LEVEL": "warning",
        "DATABASE_URL": DATABASE_URL,
        **LIFTED_LIMITS,
    }
    async with otlp_receiver() as (receiver, endpoint):
        envs = {
            name: {**base, "VIBE_DB_SCHEMA": f"bench_{tag}", "VIBE_REDIS_PREFIX": f"bench:{tag}:"}
            for name, tag in tags.items()
        }
        envs["traced"].update(
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_INSECURE="true", OTEL_BSP_SCHEDULE_DELAY="200"
        )
        try:
            async with (
                process_stack(envs["plain"], quiet=True) as plain,
                process_stack(envs["traced"], quiet=True) as traced,
                grpc.aio.insecure_channel(plain.gateway) as a,
                grpc.aio.insecure_channel(traced.gateway) as b,
            ):
                stubs = {"plain": gateway_pb2_grpc.GatewayStub(a), "traced": gateway_pb2_grpc.GatewayStub(b)}
                keys = {"plain": plain.api_key, "traced": traced.api_key}  # each launcher's development key
                sessions = {name: await new_session(stub, keys[name]) for name, stub in stubs.items()}
                chat_times: dict[str, list[float]] = {"plain": [], "traced": []}
                submit_times: dict[str, list[float]] = {"plain": [], "traced": []}
                for i in range(chats + 3):
                    for name in ("plain", "traced") if i % 2 else ("traced", "plain"):
                        sid, auth = sessions[name]
                        t = await timed_chat(stubs[name], sid, auth, f"Question {i}: can you give me a hint?")
                        if i >= 3:  # the first turns warm up connections and caches
                            chat_times[name].append(t)
                for i in range(submits):
                    for name in ("plain", "traced") if i % 2 else ("traced", "plain"):
                        submit_times[name].append(await timed_submit(stubs[name], keys[name]))
        finally:
            conn = await asyncpg.connect(DATABASE_URL)
            for tag in tags.values():
                await conn.execute(f'DROP SCHEMA IF EXISTS "bench_{tag}" CASCADE')
            await conn.close()
        spans = len(receiver.spans)
    print(f"tracing overhead ({chats} chats, {submits} submits per stack, alternating; {spans} spans received)")
    for label, times in (("chat", chat_times), ("submit", submit_times)):
        plain_ms = statistics.median(times["plain"]) * 1000
        traced_ms = statistics.median(times["traced"]) * 1000
        print(
            f"  {label:<7} median untraced {plain_ms:8.1f} ms   traced {traced_ms:8.1f} ms   ratio {traced_ms / plain_ms:5.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--submits", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(main(args.chats, args.submits))
