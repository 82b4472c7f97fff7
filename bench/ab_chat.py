"""A/B of the added first-chunk latency at one session: several service trees (or
settings) side by side in one run, one session each, their turns interleaved with the
direct requests (each round: the direct request and one turn of each arm, in a shuffled
order), so that a noisy machine's load falls on every arm alike. bench_chat runs one tree
per run; on a shared machine, runs minutes apart differ by more than a change of a few ms.

    .venv/bin/python -m bench.ab_chat --arm main=/tmp/main-export --arm this= [--rounds 40]
        [--arm 'asyncio=;VIBE_EVENT_LOOP=asyncio']

An arm is NAME=CODE_DIR (empty: this checkout; a baseline: `git archive main` plus its
vibe_api/) with optional settings after a semicolon. "added" is the arm's median time to
the first reply chunk through the gateway minus the direct requests' median (google-genai
straight to the fake server, as bench_chat); p25/p75 the same for those quantiles. The
session's history grows by one turn per round, as a candidate's does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import time
import uuid

import grpc

from bench.bench_chat import MESSAGES, Timings, _chat_one, _direct_one, start_fake_gemini
from vibe.llm.gemini import close_client, make_client
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.scratch import DATABASE_URL, LIFTED_LIMITS, REDIS_URL, drop_scratch
from vibe_dev.stack import process_stack


def env_for(tag: str, url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "VIBE_DB_SCHEMA": f"ab_{tag}",
        "VIBE_REDIS_PREFIX": f"ab:{tag}:",
        "VIBE_LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": "bench-key",
        "GEMINI_BASE_URL": url,
        "VIBE_LLM_RPM": "1000000",
        "VIBE_LLM_TPM": "1000000000",
        "GATEWAY_HTTP_ADDR": "",
        "VIBE_LOG_LEVEL": "warning",
        "EVALUATOR_WORKERS": "4",
        "PATH": os.environ.get("PATH", ""),
        **LIFTED_LIMITS,
        **extra,
    }


async def main(arms: list[tuple[str, str, dict[str, str]]], rounds: int, latency_ms: float, pause_s: float) -> None:
    fake, url = await start_fake_gemini(latency_ms, 20.0)
    tags = [uuid.uuid4().hex[:8] for _ in arms]
    try:
        async with contextlib.AsyncExitStack() as stack:
            gateways = []
            for (_name, code_dir, extra), tag in zip(arms, tags, strict=True):
                addrs = await stack.enter_async_context(
                    process_stack(env_for(tag, url, extra), quiet=True, code_dir=code_dir)
                )
                channel = await stack.enter_async_context(grpc.aio.insecure_channel(addrs.gateway))
                gw = gateway_pb2_grpc.GatewayStub(channel)
                created = await gw.CreateSession(
                    gateway_pb2.CreateSessionRequest(candidate_id="ab", problem_id="two-sum"),
                    metadata=(("authorization", f"Bearer {addrs.api_key}"),),
                )
                gateways.append((gw, (created.session.session_id, created.session_token)))
            client = make_client("bench-key", url, "v1beta", 60)
            results: dict[str, Timings] = {name: Timings() for name, _, _ in arms}
            results["direct"] = Timings()
            try:
                for r in range(rounds + 3):
                    order = ["direct", *(name for name, _, _ in arms)]
                    random.shuffle(order)
                    for name in order:
                        out = Timings() if r < 3 else results[name]  # 3 warm-up rounds
                        msg = MESSAGES[r % len(MESSAGES)]
                        if name == "direct":
                            await _direct_one(client, msg, out, 0)
                        else:
                            i = [a[0] for a in arms].index(name)
                            await _chat_one(gateways[i][0], gateways[i][1], msg, out, 0)
                        await asyncio.sleep(pause_s)
                    if r >= 3 and (r - 2) % 10 == 0:
                        report(results)
            finally:
                await close_client(client)
            report(results)
    finally:
        fake.terminate()
        await fake.wait()
        for tag in tags:
            await drop_scratch((f"ab_{tag}",), f"ab:{tag}:")


def report(results: dict[str, Timings]) -> None:
    direct = statistics.median(results["direct"].first_chunk_s) * 1000
    line = [f"n={len(results['direct'].first_chunk_s)} direct p50 {direct:.1f} ms"]
    for name, t in results.items():
        if name == "direct" or not t.first_chunk_s:
            continue
        med = statistics.median(t.first_chunk_s) * 1000
        q = sorted(t.first_chunk_s)
        p25, p75, p90 = (q[int(f * len(q))] * 1000 for f in (0.25, 0.75, 0.9))
        line.append(
            f"{name}: added p50 {med - direct:.1f} (p25 {p25 - direct:.1f}, p75 {p75 - direct:.1f},"
            f" p90 {p90 - direct:.1f}, max {q[-1] * 1000 - direct:.1f})"
        )
    print(" | ".join(line), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--arm", action="append", required=True, help="name=code_dir[;NAME=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=2500.0)
    parser.add_argument(
        "--pause-s",
        type=float,
        default=0.3,
        help="between two requests (bench_chat sends the next turn at once: the previous turn's evaluation then runs beside it)",
    )
    args = parser.parse_args()
    arms = []
    for a in args.arm:
        name, _, rest = a.partition("=")
        code_dir, _, envs = rest.partition(";")
        extra = dict(e.split("=", 1) for e in envs.split(",") if e)
        arms.append((name, code_dir, extra))
    t0 = time.time()
    asyncio.run(main(arms, args.rounds, args.latency_ms, args.pause_s))
    print(f"{time.time() - t0:.0f} s")
