"""LLM cost and chat latency with VIBE_LLM_PROVIDER=gemini, against the fake Gemini
server of the tests with a fixed latency (no network, no key):

- LLM calls and tokens per evaluated turn (target: 1 call per turn);
- chat time to first chunk through the gateway, minus the LLM's own first-chunk
  latency measured in the same run with the bare SDK (target: under 5 ms median).

    .venv/bin/python -m bench.bench_llm [--turns 20] [--latency-ms 50]

Needs PostgreSQL and Redis at DATABASE_URL / REDIS_URL; uses its own schema and key
prefix and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import AsyncGenerator
from typing import cast

import asyncpg
import grpc

from vibe.llm.gemini import close_client, make_client
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.scratch import DATABASE_URL, LIFTED_LIMITS, REDIS_URL, drop_scratch
from vibe_dev.stack import in_process_stack

MODEL = "gemini-2.5-flash"
REFERENCE = "def two_sum(nums, target):\n    seen = {}\n    for i, x in enumerate(nums):\n        if target - x in seen:\n            return [seen[target - x], i]\n        seen[x] = i\n"


async def fake_gemini(latency_ms: float) -> tuple[asyncio.subprocess.Process, str]:
    """The tests' fake server in its own process, so that its work does not load the
    event loop the services run on; returns it and its URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vibe_dev.fake_gemini", "--latency-ms", str(latency_ms), stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    url = (await proc.stdout.readline()).decode().strip()
    if not url.startswith("http://"):
        raise RuntimeError("the fake Gemini server did not start")
    return proc, url


async def sdk_first_chunk_s(url: str, samples: int) -> list[float]:
    """The LLM's own time to first chunk, as our provider's client sees it."""
    client = make_client("bench-key", url, "v1beta", 30)
    times = []
    try:
        for _ in range(samples):
            started = time.perf_counter()
            stream = await client.aio.models.generate_content_stream(model=MODEL, contents="How do I start?")
            async for _chunk in stream:
                times.append(time.perf_counter() - started)
                break
            await cast("AsyncGenerator[object, None]", stream).aclose()  # the SDK annotates an AsyncIterator
    finally:
        await close_client(client)
    return times


async def chat_and_submit(env: dict[str, str], turns: int) -> list[float]:
    """One session of `turns` chats through the four services, then its submit;
    returns each chat's time to first chunk as the candidate's client sees it."""
    env = {**env, **LIFTED_LIMITS}
    async with in_process_stack(env) as addrs, grpc.aio.insecure_channel(addrs.gateway) as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        created = await gateway.CreateSession(
            gateway_pb2.CreateSessionRequest(candidate_id="bench", problem_id="two-sum"),
            metadata=(("authorization", f"Bearer {addrs.api_key}"),),
        )
        session_id = created.session.session_id
        auth = (("authorization", f"Bearer {created.session_token}"),)
        first_chunks = []
        for turn in range(turns):
            message = f"Hint {turn}: which data structure helps here?"
            started = time.perf_counter()
            first = None
            async for event in gateway.Chat(
                gateway_pb2.ChatRequest(session_id=session_id, message=message), metadata=auth
            ):
                if first is None and event.WhichOneof("event") == "delta":
                    first = time.perf_counter() - started
            assert first is not None
            first_chunks.append(first)
        async for _event in gateway.Submit(
            gateway_pb2.SubmitRequest(session_id=session_id, language="python", code=REFERENCE), metadata=auth
        ):
            pass
    return first_chunks


def stack_env(schema: str, prefix: str, **overrides: str) -> dict[str, str]:
    return {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "VIBE_DB_SCHEMA": schema,
        "VIBE_REDIS_PREFIX": prefix,
        "EVALUATOR_WORKERS": "0",  # evaluations at submit: nothing else runs during the chats
        "GATEWAY_ADDR": "127.0.0.1:0",
        "TUTOR_ADDR": "127.0.0.1:0",
        "EVALUATOR_ADDR": "127.0.0.1:0",
        "SCORING_ADDR": "127.0.0.1:0",
        "GATEWAY_HTTP_ADDR": "",
        "VIBE_LOG_LEVEL": "error",
        **overrides,
    }


async def bench(turns: int, latency_ms: float) -> None:
    tag = uuid.uuid4().hex[:10]
    schema, prefix = f"bench_{tag}", f"bench:{tag}:"
    fake, url = await fake_gemini(latency_ms)
    try:
        direct = await sdk_first_chunk_s(url, turns)
        gemini = stack_env(
            schema,
            prefix,
            VIBE_LLM_PROVIDER="gemini",
            GEMINI_API_KEY="bench-key",
            GEMINI_BASE_URL=url,
            VIBE_LLM_RPM="100000",
            VIBE_LLM_TPM="1000000000",
        )
        through_stack = await chat_and_submit(gemini, turns)
        conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": schema})
        try:
            rows = await conn.fetch(
                "SELECT purpose, count(*) AS calls, sum(prompt_tokens) AS prompt, sum(output_tokens) AS output,"
                " sum(thinking_tokens) AS thinking FROM llm_usage GROUP BY purpose"
            )
            evaluated = await conn.fetchval(
                "SELECT count(*) FROM prompt_evaluations WHERE evaluation_type = 'TURN_EVAL'"
            )
        finally:
            await conn.close()
        # The same chats with no LLM at all: what the services cost on their own.
        offline = await chat_and_submit(stack_env(schema + "_off", prefix + "off:", VIBE_LLM_PROVIDER="offline"), turns)
    finally:
        fake.terminate()
        await fake.wait()
        await drop_scratch((schema, schema + "_off"), prefix)

    by_purpose = {r["purpose"]: r for r in rows}
    ev = by_purpose["turn_evaluation"]
    print(
        f"fake Gemini (own process): {latency_ms:g} ms to first byte; {turns} chat turns, {evaluated} turns evaluated\n"
    )
    print(f"LLM calls per evaluated turn: {ev['calls'] / evaluated:.2f} (target 1)")
    print(
        f"tokens per evaluated turn: {(ev['prompt'] + ev['output'] + ev['thinking']) / evaluated:.0f} "
        f"(prompt {ev['prompt'] / evaluated:.0f}, output {ev['output'] / evaluated:.0f}, thinking {ev['thinking'] / evaluated:.0f})"
    )
    chat_calls = sum(by_purpose[p]["calls"] for p in ("guardrail", "tutor_reply") if p in by_purpose)
    print(f"LLM calls per chat turn (guardrail + reply, concurrent): {chat_calls / turns:.2f}\n")
    d_med, s_med, o_med = (statistics.median(x) * 1000 for x in (direct, through_stack, offline))
    print(f"LLM's own time to first chunk (bare SDK), median: {d_med:.2f} ms")
    print(f"chat time to first chunk through the gateway, median: {s_med:.2f} ms")
    print(f"added by our services, median: {s_med - d_med:.2f} ms (target < 5 ms)")
    print(f"  of which the services without any LLM (offline provider, same chats), median: {o_med:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    asyncio.run(bench(args.turns, args.latency_ms))


if __name__ == "__main__":
    main()
