"""Chat at scale with VIBE_LLM_PROVIDER=gemini: the four services as processes, N candidates
chatting at once through the gateway over gRPC, against the fake Gemini server in its own
process with a fixed latency (default 2.5 s to the first chunk, like Gemini 2.5 Flash).

For each N (default 1, 50, 200, 500), N sessions each send one message at a random
moment within --spread-s (default 10 s: N candidates active in the same ten seconds;
--spread-s 0 sends them all at the same instant, a burst no two cores can absorb), in
rounds until --min-samples turns:

- time to first reply chunk through the gateway against the LLM server's own: the same
  request sent straight to the fake server with google-genai, N at once, in the same run;
  "added" at a quantile is the gateway's quantile minus the direct one; "paired" takes
  each request's own time at the fake server out of it first (the server reports when
  each request arrived and when its first chunk left; every message carries a reference
  that pairs them), then subtracts the direct requests' median: the server's own delays,
  which vary between runs by more than ours, then cancel per request;
- the gap between reply chunks, the same way;
- CPU milliseconds per chat turn of each service (utime + stime from /proc/<pid>/stat,
  before the turns and after their background evaluations are stored);
- LLM requests per chat turn (the tutor's guardrail and reply requests, from llm_usage);

then the capacity: the largest N measured whose p99 added first-chunk latency (paired)
is under 50 ms. Printed as a table and written as JSON (--json, default bench/results/chat.json).

    .venv/bin/python -m bench.bench_chat [--sessions 1,50,200,500] [--latency-ms 2500]
        [--spread-s 10] [--env VIBE_EVENT_LOOP=asyncio] [--services-from /tmp/main-export]
        [--profile bench/profiles [--raw-profile]]

--llm-url runs against another Gemini-compatible server instead of starting the fake one
(its key from --llm-key or GEMINI_API_KEY, its model from GEMINI_MODEL as the services'
is): the same table, but "paired" needs the fake server's record of each request, so
without it the capacity is read from the unpaired p99 added (the table says which).

--env sets a setting of the services (an A/B of one change); --services-from runs the
services from another source tree (a baseline: `git archive main` plus its vibe_api/);
--profile records py-spy flame graphs of the gateway, tutor and evaluator.

Needs PostgreSQL and Redis at DATABASE_URL / REDIS_URL; uses its own schema and key
prefix and removes them afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import signal
import sys
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import aiohttp
import asyncpg
import grpc
from google import genai

from vibe.llm.gemini import close_client, make_client
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.scratch import DATABASE_URL, LIFTED_LIMITS, REDIS_URL, drop_scratch
from vibe_dev.stack import process_stack

MODEL = os.environ.get("GEMINI_MODEL") or "gemini-2.5-flash"  # the services read the same variable
CAPACITY_P99_MS = 50.0
TICK_S = 1 / os.sysconf("SC_CLK_TCK")
# What candidates ask, in turn: ordinary requests (the red-team and calibration sets are
# bench_guardrail's); each session sends the next one, so the prompts vary.
MESSAGES = (
    "Which data structure would help me find the complement quickly?",
    "My loop is O(n^2); how could I avoid the inner loop?",
    "What edge cases should I test for two sum?",
    "Why does my solution fail when the same number appears twice?",
    "Can you explain how a hash map lookup works here?",
    "I wrote a brute force version; what should I try next?",
)


async def start_fake_gemini(latency_ms: float, chunk_delay_ms: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake server in its own process, so that its work does not load ours."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vibe_dev.fake_gemini",
        "--latency-ms",
        str(latency_ms),
        "--chunk-delay-ms",
        str(chunk_delay_ms),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    url = (await proc.stdout.readline()).decode().strip()
    if not url.startswith("http://"):
        raise RuntimeError("the fake Gemini server did not start")
    return proc, url


# A chat or direct request not finished this long after it started is counted as failed
# (and the benchmark goes on): the figures say how many.
CALL_TIMEOUT_S = 60.0


@dataclass
class Timings:
    first_chunk_s: list[float] = field(default_factory=list)
    chunk_gap_s: list[float] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # Per message reference: when it was sent and when its first chunk came (time.monotonic()).
    sent: dict[str, float] = field(default_factory=dict)
    first_at: dict[str, float] = field(default_factory=dict)

    def referenced(self, message: str) -> tuple[str, str]:
        """The message with a reference of its own (to pair it with the server's record of it)."""
        ref = uuid.uuid4().hex[:10]
        self.sent[ref] = time.monotonic()
        return ref, f"{message} (ref {ref})"


_REF = re.compile(r"\(ref ([0-9a-f]{10})\)")


async def _bounded(call: Awaitable[None], out: Timings, what: str) -> None:
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await call
    except TimeoutError:
        out.failed.append(f"{what}: no end after {CALL_TIMEOUT_S:g} s")
    except grpc.aio.AioRpcError as exc:
        out.failed.append(f"{what}: {exc.code().name} {exc.details()}")


async def _direct_one(client: genai.Client, message: str, out: Timings, delay_s: float) -> None:
    await asyncio.sleep(delay_s)
    ref, message = out.referenced(message)
    started = time.perf_counter()
    last = None
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=message)
    async with contextlib.aclosing(cast("AsyncGenerator[object, None]", stream)) as chunks:
        async for _chunk in chunks:
            now = time.perf_counter()
            if last is None:
                out.first_chunk_s.append(now - started)
                out.first_at[ref] = time.monotonic()
            else:
                out.chunk_gap_s.append(now - last)
            last = now


def start_offsets(n: int, spread_s: float, seed: int) -> list[float]:
    """When each of `n` sessions sends its message: uniformly at random within the window
    (the same offsets for the gateway and the direct requests); all at once with 0."""
    rng = random.Random(seed)
    return [rng.uniform(0, spread_s) if n > 1 else 0.0 for _ in range(n)]


async def direct(url: str, key: str, n: int, rounds: int, spread_s: float) -> Timings:
    """N requests at once straight to the LLM server, as our provider's client sends them."""
    client = make_client(key, url, "v1beta", 60)
    out = Timings()
    try:
        for r in range(rounds):
            offsets = start_offsets(n, spread_s, r)
            await asyncio.gather(
                *(
                    _bounded(_direct_one(client, MESSAGES[(i + r) % len(MESSAGES)], out, offsets[i]), out, "direct")
                    for i in range(n)
                )
            )
    finally:
        await close_client(client)
    return out


async def _chat_one(
    gateway: gateway_pb2_grpc.GatewayAsyncStub, session: tuple[str, str], message: str, out: Timings, delay_s: float
) -> None:
    await asyncio.sleep(delay_s)
    session_id, token = session
    ref, message = out.referenced(message)
    started = time.perf_counter()
    last = None
    completed = False
    async for event in gateway.Chat(
        gateway_pb2.ChatRequest(session_id=session_id, message=message),
        metadata=(("authorization", f"Bearer {token}"),),
    ):
        kind = event.WhichOneof("event")
        if kind == "delta":
            now = time.perf_counter()
            if last is None:
                out.first_chunk_s.append(now - started)
                out.first_at[ref] = time.monotonic()
            else:
                out.chunk_gap_s.append(now - last)
            last = now
        elif kind == "completed":
            completed = True
    if not completed:
        raise RuntimeError("a chat ended without its completed event")


async def through_gateway(
    gateway: gateway_pb2_grpc.GatewayAsyncStub,
    sessions: Sequence[tuple[str, str]],
    rounds: int,
    turn0: int,
    spread_s: float = 0.0,
) -> Timings:
    out = Timings()
    for r in range(rounds):
        offsets = start_offsets(len(sessions), spread_s, r)
        await asyncio.gather(
            *(
                _bounded(_chat_one(gateway, s, MESSAGES[(i + r + turn0) % len(MESSAGES)], out, offsets[i]), out, "chat")
                for i, s in enumerate(sessions)
            )
        )
    return out


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@dataclass
class Level:
    sessions: int
    turns: int
    llm_first_chunk_ms: dict[str, float]
    gateway_first_chunk_ms: dict[str, float]
    added_first_chunk_ms: dict[str, float]
    llm_chunk_gap_ms: dict[str, float]
    gateway_chunk_gap_ms: dict[str, float]
    added_chunk_gap_ms: dict[str, float]
    cpu_ms_per_turn: dict[str, float]
    llm_requests_per_turn: float
    evaluations_stored: int
    failed: list[str]
    # Reply messages per turn as the client received them, and the LLM server's chunks per
    # request: the tutor sends chunks that reached it together as one message.
    deltas_per_turn: float = math.nan
    llm_chunks_per_request: float = math.nan
    # The first chunk's added latency with the server's own time taken out per request
    # (see the module's doc), and how many requests were paired.
    paired_added_first_chunk_ms: dict[str, float] = field(default_factory=dict)


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    return {q: round(quantile(values, p) * 1000, 2) for q, p in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}


def _per_stream(t: Timings) -> float:
    """Reply messages per stream (every stream with a first chunk has its gaps after it)."""
    streams = len(t.first_chunk_s)
    return round((streams + len(t.chunk_gap_s)) / streams, 2) if streams else math.nan


def _added(through: dict[str, float], direct: dict[str, float]) -> dict[str, float]:
    return {q: round(through[q] - direct[q], 2) for q in through}


async def server_times(url: str) -> dict[str, tuple[float, float]]:
    """The fake server's record of each streamed request: message reference -> (arrived,
    first chunk written), time.monotonic() of this machine. Empty for a server that keeps
    no such record (--llm-url): nothing is paired then."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/_fake/streams") as response:
            response.raise_for_status()
            records = await response.json()
    except (aiohttp.ClientError, ValueError):
        return {}
    times = {}
    for r in records:
        refs = _REF.findall(r["message_tail"])
        if refs and r["first_chunk_at"] is not None:
            times[refs[-1]] = (r["at"], r["first_chunk_at"])
    return times


def own_s(t: Timings, server: dict[str, tuple[float, float]]) -> list[float]:
    """Per request with a first chunk: the client's time to it less the server's own (from
    the request's arrival to its first chunk leaving)."""
    return [(t.first_at[ref] - t.sent[ref]) - (server[ref][1] - server[ref][0]) for ref in t.first_at if ref in server]


def paired_added(through: list[float], direct: list[float]) -> dict[str, float]:
    if not through or not direct:
        return _quantiles([]) | {"pairs": 0}
    base = quantile(direct, 0.5)
    return _quantiles([x - base for x in through]) | {"pairs": len(through)}


async def _evaluations(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM prompt_evaluations WHERE evaluation_type = 'TURN_EVAL'"))


async def _chat_requests(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM llm_usage WHERE purpose IN ('guardrail', 'tutor_reply')"))


async def start_profilers(pids: dict[str, int], directory: Path, raw: bool) -> list[asyncio.subprocess.Process]:
    """py-spy on each service (flame graphs, or collapsed stacks with `raw`, written when
    it is interrupted at the end)."""
    spy = Path(sys.executable).with_name("py-spy")
    return [
        await asyncio.create_subprocess_exec(
            str(spy),
            "record",
            "--nonblocking",
            "--rate",
            "200",
            "--format",
            "raw" if raw else "flamegraph",
            "-o",
            str(directory / f"{name}.{'txt' if raw else 'svg'}"),
            "-p",
            str(pid),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for name, pid in pids.items()
        if name != "scoring"
    ]


async def bench(
    levels: list[int],
    latency_ms: float,
    chunk_delay_ms: float,
    min_samples: int,
    profile: Path | None = None,
    raw_profile: bool = False,
    overrides: dict[str, str] | None = None,
    spread_s: float = 10.0,
    code_dir: str = "",
    llm_url: str = "",
    llm_key: str = "bench-key",
) -> dict[str, object]:
    tag = uuid.uuid4().hex[:10]
    schema, prefix = f"bench_{tag}", f"bench:{tag}:"
    fake, url = (None, llm_url) if llm_url else await start_fake_gemini(latency_ms, chunk_delay_ms)
    env = {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "VIBE_DB_SCHEMA": schema,
        "VIBE_REDIS_PREFIX": prefix,
        "VIBE_LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": llm_key,
        "GEMINI_BASE_URL": url,
        "GEMINI_MODEL": MODEL,
        "VIBE_LLM_RPM": "1000000",
        "VIBE_LLM_TPM": "1000000000",
        "GATEWAY_HTTP_ADDR": "",
        "VIBE_LOG_LEVEL": "warning",
        # Every turn's evaluation runs in the background, as in production; enough workers
        # that a 2.5 s judge keeps up with 500 turns at once.
        "EVALUATOR_WORKERS": "32",
        "PATH": os.environ.get("PATH", ""),
        **LIFTED_LIMITS,
        **(overrides or {}),
    }
    results: list[Level] = []
    load_before = os.getloadavg()
    try:
        async with (
            process_stack(env, quiet=True, code_dir=code_dir) as addrs,
            grpc.aio.insecure_channel(addrs.gateway) as channel,
        ):
            gateway: gateway_pb2_grpc.GatewayAsyncStub = gateway_pb2_grpc.GatewayStub(channel)
            key = (("authorization", f"Bearer {addrs.api_key}"),)
            limit = asyncio.Semaphore(20)

            async def create(i: int) -> tuple[str, str]:
                async with limit:
                    created = await gateway.CreateSession(
                        gateway_pb2.CreateSessionRequest(candidate_id=f"bench-{i}", problem_id="two-sum"), metadata=key
                    )
                return created.session.session_id, created.session_token

            sessions = await asyncio.gather(*(create(i) for i in range(max(levels))))
            # Warm-up: connections, caches, the first import of everything on the path.
            await through_gateway(gateway, sessions[: min(5, len(sessions))], 1, 0)
            await direct(url, llm_key, 1, 1, 0)
            profilers = await start_profilers(addrs.pids, profile, raw_profile) if profile else []
            conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": schema})
            try:
                turns_so_far = min(5, len(sessions))
                print(HEADER)
                await _wait_evaluated(conn, turns_so_far)
                for n in levels:
                    rounds = max(1, math.ceil(min_samples / n))
                    llm = await direct(url, llm_key, n, rounds, spread_s)
                    requests0 = await _chat_requests(conn)
                    cpu0 = {name: cpu_s(pid) for name, pid in addrs.pids.items()}
                    gw = await through_gateway(gateway, sessions[:n], rounds, turns_so_far, spread_s)
                    turns = n * rounds
                    turns_so_far += turns
                    stored = await _wait_evaluated(conn, turns_so_far)
                    cpu1 = {name: cpu_s(pid) for name, pid in addrs.pids.items()}
                    requests = await _chat_requests(conn) - requests0
                    server = await server_times(url)
                    cpu = {name: round((cpu1[name] - cpu0[name]) * 1000 / turns, 2) for name in addrs.pids}
                    cpu["all"] = round(sum(cpu.values()), 2)
                    first_llm, first_gw = _quantiles(llm.first_chunk_s), _quantiles(gw.first_chunk_s)
                    gap_llm, gap_gw = _quantiles(llm.chunk_gap_s), _quantiles(gw.chunk_gap_s)
                    level = Level(
                        n,
                        turns,
                        first_llm,
                        first_gw,
                        _added(first_gw, first_llm),
                        gap_llm,
                        gap_gw,
                        _added(gap_gw, gap_llm),
                        cpu,
                        round(requests / turns, 3),
                        stored,
                        llm.failed + gw.failed,
                        _per_stream(gw),
                        _per_stream(llm),
                        paired_added(own_s(gw, server), own_s(llm, server)),
                    )
                    results.append(level)
                    _print_level(level)
            finally:
                await conn.close(timeout=10)
                for spy in profilers:
                    spy.send_signal(signal.SIGINT)
                    await spy.wait()
    finally:
        if fake is not None:
            fake.terminate()
            await fake.wait()
        await drop_scratch((schema,), prefix)

    # Paired when the server told its own times (the fake one); otherwise the plain figure.
    paired = all(lv.paired_added_first_chunk_ms["pairs"] for lv in results)
    figure = "p99 added first-chunk latency" + (" (paired)" if paired else " (unpaired: the server keeps no record)")
    within = [
        lv.sessions
        for lv in results
        if (lv.paired_added_first_chunk_ms if paired else lv.added_first_chunk_ms)["p99"] < CAPACITY_P99_MS
    ]
    capacity = max(within) if within else 0
    report: dict[str, object] = {
        "llm_server": llm_url or "the fake Gemini server (vibe_dev.fake_gemini)",
        "model": MODEL,
        "fake_gemini_latency_ms": None if llm_url else latency_ms,
        "chunk_delay_ms": None if llm_url else chunk_delay_ms,
        "spread_s": spread_s,
        "services_from": code_dir or "this checkout",
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "settings": overrides or {},
        "levels": [asdict(lv) for lv in results],
        "capacity_sessions": capacity,
        "capacity_rule": f"largest N measured with {figure} < {CAPACITY_P99_MS:g} ms",
    }
    print(f"\ncapacity (largest N measured with {figure} < {CAPACITY_P99_MS:g} ms): {capacity}")
    print(f"load average before {report['load_average_before']}, after {report['load_average_after']}")
    return report


async def _wait_evaluated(conn: asyncpg.Connection, expected: int, timeout_s: float = 120) -> int:
    """Waits until the background evaluations of every turn so far are stored: their CPU
    belongs to the turns."""
    count = 0
    for _ in range(int(timeout_s / 0.2)):
        if (count := await _evaluations(conn)) >= expected:
            return count
        await asyncio.sleep(0.2)
    if count < expected:
        print(f"  warning: only {count} of {expected} turns evaluated after {timeout_s:g} s", file=sys.stderr)
    return count


HEADER = (
    f"{'N':>4} {'turns':>5} | {'first chunk added ms p50/p90/p99':>33} | {'paired p50/p90/p99':>26} |"
    f" {'chunk gap added p50/p99':>23} |"
    f" {'CPU ms/turn gw/tutor/eval/scoring = all':>40} | LLM req/turn"
)


def _print_level(lv: Level) -> None:
    a, g, c = lv.added_first_chunk_ms, lv.added_chunk_gap_ms, lv.cpu_ms_per_turn
    p = lv.paired_added_first_chunk_ms
    print(
        f"{lv.sessions:>4} {lv.turns:>5} | {a['p50']:>9.1f} / {a['p90']:>9.1f} / {a['p99']:>9.1f} |"
        f" {p['p50']:>7.1f} / {p['p90']:>7.1f} / {p['p99']:>7.1f} |"
        f" {g['p50']:>10.1f} / {g['p99']:>10.1f} |"
        f" {c['gateway']:>6.1f} / {c['tutor']:>6.1f} / {c['evaluator']:>6.1f} / {c['scoring']:>5.1f} = {c['all']:>6.1f} |"
        f" {lv.llm_requests_per_turn:.2f}"
        f"   (LLM alone: first chunk p50 {lv.llm_first_chunk_ms['p50']:.0f} ms, p99 {lv.llm_first_chunk_ms['p99']:.0f} ms;"
        f" deltas per turn {lv.deltas_per_turn:.2f}, LLM chunks {lv.llm_chunks_per_request:.2f})",
        flush=True,
    )
    if lv.failed:
        print(f"       {len(lv.failed)} calls failed: {sorted(set(lv.failed))[:5]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="1,50,200,500", help="concurrent sessions, comma-separated")
    parser.add_argument("--latency-ms", type=float, default=2500.0, help="the fake server's time to first chunk")
    parser.add_argument("--chunk-delay-ms", type=float, default=20.0, help="the fake server's gap between chunks")
    parser.add_argument(
        "--spread-s",
        type=float,
        default=10.0,
        help="each of the N sessions sends its message at a random moment in this window (0: all at once)",
    )
    parser.add_argument("--min-samples", type=int, default=10, help="chat turns per level at least (rounds of N)")
    parser.add_argument("--profile", type=Path, help="write py-spy flame graphs of the services to this directory")
    parser.add_argument("--raw-profile", action="store_true", help="collapsed stacks (text) instead of SVG")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the services (A/B runs)"
    )
    parser.add_argument(
        "--services-from",
        default="",
        metavar="DIR",
        help="run the services from this source tree (e.g. `git archive main` plus its vibe_api): a baseline",
    )
    parser.add_argument(
        "--llm-url", default="", metavar="URL", help="another Gemini-compatible server instead of the fake one"
    )
    parser.add_argument(
        "--llm-key",
        default=os.environ.get("GEMINI_API_KEY") or "bench-key",
        help="its API key (default: GEMINI_API_KEY)",
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/chat.json"))
    args = parser.parse_args()
    levels = sorted({int(x) for x in args.sessions.split(",") if x.strip()})
    if not levels or levels[0] < 1:
        parser.error("--sessions needs positive numbers")
    overrides = dict(item.split("=", 1) for item in args.env)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(
        bench(
            levels,
            args.latency_ms,
            args.chunk_delay_ms,
            args.min_samples,
            args.profile,
            args.raw_profile,
            overrides,
            args.spread_s,
            args.services_from,
            args.llm_url.rstrip("/"),
            args.llm_key,
        )
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
