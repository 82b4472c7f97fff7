"""Background evaluation throughput: turns per second through the Redis Stream queue,
with VIBE_LLM_PROVIDER=gemini against the tests' fake Gemini server at a fixed latency
(no network, no key).

- 1, 2 and 4 workers (EVALUATOR_WORKERS) in one evaluator process: turns/s (median of
  the rounds) and the ratio to 1 worker (target: close to the worker count, since
  the workers spend their time waiting on the LLM);
- 4 workers under a shared rate limit low enough to bind (VIBE_LLM_RPM per
  VIBE_LLM_RATE_WINDOW_S): throughput plateaus at the limit, and no window of the
  fake server's arrivals holds more requests than the limit.

    .venv/bin/python -m bench.bench_eval_throughput [--turns 40] [--latency-ms 200]

The evaluator runs as its own process (`python -m vibe.services.evaluator`), so that the
fake server, which runs in this process and counts the requests it receives, does not
share its event loop. Needs PostgreSQL and Redis at DATABASE_URL / REDIS_URL; uses its
own schema and key prefix and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import redis.asyncio as aioredis

from vibe.platform.healthcheck import wait_serving
from vibe.platform.hot_state import Keys
from vibe.shared.eval_queue import EvalJob
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.fake_gemini import FakeGemini
from vibe_dev.scratch import DATABASE_URL, LIFTED_LIMITS, REDIS_URL, drop_scratch
from vibe_dev.stack import free_port, in_process_stack, with_dev_secrets

ROOT = Path(__file__).resolve().parents[1]
TURNS_PER_SESSION = 5
ROUNDS = 3


def base_env(schema: str, prefix: str) -> dict[str, str]:
    return {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "VIBE_DB_SCHEMA": schema,
        "VIBE_REDIS_PREFIX": prefix,
        "GATEWAY_ADDR": "127.0.0.1:0",
        "TUTOR_ADDR": "127.0.0.1:0",
        "EVALUATOR_ADDR": "127.0.0.1:0",
        "SCORING_ADDR": "127.0.0.1:0",
        "GATEWAY_HTTP_ADDR": "",
        "VIBE_LOG_LEVEL": "error",
    }


async def create_turns(env: dict[str, str], turns: int) -> list[tuple[str, int]]:
    """Sessions with `turns` completed turns in all, chatted through the four services
    with the offline provider and no workers (nothing is evaluated yet)."""
    env = {**env, "VIBE_LLM_PROVIDER": "offline", "EVALUATOR_WORKERS": "0", **LIFTED_LIMITS}
    created: list[tuple[str, int]] = []
    async with in_process_stack(env) as addrs, grpc.aio.insecure_channel(addrs.gateway) as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        while len(created) < turns:
            reply = await gateway.CreateSession(
                gateway_pb2.CreateSessionRequest(candidate_id="bench", problem_id="two-sum"),
                metadata=(("authorization", f"Bearer {addrs.api_key}"),),
            )
            auth = (("authorization", f"Bearer {reply.session_token}"),)
            for turn in range(1, min(TURNS_PER_SESSION, turns - len(created)) + 1):
                message = f"Question {turn}: which data structure avoids checking every pair, and why?"
                request = gateway_pb2.ChatRequest(session_id=reply.session.session_id, message=message)
                async for _event in gateway.Chat(request, metadata=auth):
                    pass
                created.append((reply.session.session_id, turn))
    return created


@contextlib.asynccontextmanager
async def evaluator_process(env: dict[str, str], **overrides: str) -> AsyncIterator[None]:
    addr = f"127.0.0.1:{free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vibe.services.evaluator",
        env={**os.environ, **with_dev_secrets(env), "EVALUATOR_ADDR": addr, **overrides},
        cwd=ROOT,
    )
    try:
        await wait_serving(addr, 60)
        yield
    finally:
        proc.terminate()
        await proc.wait()


async def reset(db: asyncpg.Connection, redis: aioredis.Redis, prefix: str) -> None:
    """Forget every evaluation and the Redis state it left (turn logs, counters, the
    rate-limit window); the queue itself (empty between rounds) and its group stay."""
    await db.execute("DELETE FROM prompt_evaluations")
    kept = (f"{prefix}session:", f"{prefix}eval:jobs")
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000) if not k.startswith(kept)]
    if keys:
        await redis.delete(*keys)


async def one_round(
    db: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, turns: list[tuple[str, int]], fake: FakeGemini
) -> tuple[float, int, int, int]:
    """Queues every turn and waits until all are stored; returns (seconds, fake-server
    requests seen meanwhile, degraded evaluations, the index of the first request)."""
    first_request = len(fake.requests)
    started = time.perf_counter()
    async with redis.pipeline(transaction=False) as pipe:
        for session_id, turn in turns:
            fields: dict[Any, Any] = EvalJob(session_id, turn).fields()  # redis-py wants its own key/value union
            pipe.xadd(keys.eval_jobs(), fields)
        await pipe.execute()
    stored = "SELECT count(*) FROM prompt_evaluations WHERE evaluation_type = 'TURN_EVAL'"
    while await db.fetchval(stored) < len(turns):  # noqa: ASYNC110 (polling another process's writes)
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - started
    degraded = await db.fetchval(
        "SELECT count(*) FROM prompt_evaluations WHERE evaluation_type = 'TURN_EVAL' AND (details->>'degraded')::boolean"
    )
    return elapsed, len(fake.requests) - first_request, degraded, first_request


def max_in_window(arrivals: list[float], window_s: float) -> int:
    """The most arrivals in any interval of `window_s` seconds (sliding)."""
    arrivals = sorted(arrivals)
    best, lo = 0, 0
    for hi, at in enumerate(arrivals):
        while at - arrivals[lo] >= window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def bench(turn_total: int, latency_ms: float, rpm: int, window_s: float) -> None:
    tag = uuid.uuid4().hex[:10]
    schema, prefix = f"bench_{tag}", f"bench:{tag}:"
    env = base_env(schema, prefix)
    keys = Keys(prefix)
    fake = FakeGemini(latency_s=latency_ms / 1000)
    url = await fake.start()
    gemini = {
        "VIBE_LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": "bench-key",
        "GEMINI_BASE_URL": url,
        "VIBE_LLM_TPM": "1000000000",
    }
    db = redis = None
    try:
        turns = await create_turns(env, turn_total)
        db = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": schema})
        redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
        print(
            f"fake Gemini in this process: {latency_ms:g} ms per request; {len(turns)} turns queued at once per round\n"
        )

        rates: dict[int, float] = {}
        for workers in (1, 2, 4):
            seconds = []
            async with evaluator_process(env, **gemini, EVALUATOR_WORKERS=str(workers), VIBE_LLM_RPM="1000000"):
                for _ in range(ROUNDS):
                    await reset(db, redis, prefix)
                    elapsed, requests, degraded, _ = await one_round(db, redis, keys, turns, fake)
                    assert degraded == 0, f"{degraded} evaluations fell back to offline: the figures would be wrong"
                    seconds.append(elapsed)
            rates[workers] = len(turns) / statistics.median(seconds)
            ratio = rates[workers] / rates[1]
            print(
                f"{workers} worker(s): {rates[workers]:6.2f} turns/s (median of {ROUNDS}; "
                f"{statistics.median(seconds):.2f} s for {len(turns)} turns; {requests / len(turns):.2f} LLM requests per turn); "
                f"x{ratio:.2f} vs 1 worker (ideal x{workers})"
            )

        limit = rpm / window_s
        async with evaluator_process(
            env, **gemini, EVALUATOR_WORKERS="4", VIBE_LLM_RPM=str(rpm), VIBE_LLM_RATE_WINDOW_S=f"{window_s:g}"
        ):
            await reset(db, redis, prefix)
            elapsed, requests, degraded, first = await one_round(db, redis, keys, turns, fake)
        arrivals = [r.at for r in fake.requests[first:]]
        span = max(arrivals) - min(arrivals)
        # A sliding-window limiter lets a full window's worth through at once, then one
        # request per freed slot: past the first burst, the rate is the limit.
        sustained = (len(arrivals) - rpm) / span if span > 0 else float("nan")
        # Arrival times at the server lag admission by the network and the SDK, a few ms
        # apart from one request to the next: the windows checked are 50 ms shorter.
        worst = max_in_window(arrivals, window_s - 0.05)
        print(
            f"\nrate limit {rpm} requests per {window_s:g} s (= {limit:.2f}/s), 4 workers "
            f"(unlimited: {rates[4]:.2f} turns/s):"
        )
        print(
            f"  {len(turns) / elapsed:.2f} turns/s end to end ({elapsed:.2f} s, including the first window's burst of {rpm})"
        )
        print(f"  {sustained:.2f} requests/s after the first burst (the limit: {limit:.2f}/s)")
        print(
            f"  most requests the fake server saw in any {window_s:g} s window: {worst} (limit {rpm}); degraded: {degraded}"
        )
        if worst > rpm:
            raise SystemExit(f"the limiter let {worst} requests through in one window; the limit is {rpm}")
    finally:
        if db is not None:
            await db.close()
        if redis is not None:
            await redis.aclose()
        await fake.stop()
        await drop_scratch((schema,), prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--rpm", type=int, default=8, help="requests per rate window in the limited run")
    parser.add_argument("--window-s", type=float, default=2.0, help="VIBE_LLM_RATE_WINDOW_S in the limited run")
    args = parser.parse_args()
    asyncio.run(bench(args.turns, args.latency_ms, args.rpm, args.window_s))


if __name__ == "__main__":
    main()
