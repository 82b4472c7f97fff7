"""`vibe`: the operators' and backends' command line.

vibe up                 run all four services until Ctrl-C
vibe demo               drive one scripted candidate through the gateway and print the report
vibe problems load      load the problem bank files into PostgreSQL
vibe keys create --name N --scope S [--scope S...] [--settings]
                        a backend API key (printed once); --settings prints a VIBE_API_KEYS entry instead
vibe keys list          the keys of the api_keys table
vibe keys revoke KEY_ID revoke a key (refused from the next call on)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from vibe.platform.api_keys import ApiKeyStore
from vibe.platform.config import ConfigError, GatewaySettings
from vibe.platform.errors import ServiceError
from vibe.services.scoring.bank import DEFAULT_PROBLEMS_DIR
from vibe_api.evaluator.v1 import evaluator_pb2
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_api.scoring.v1 import scoring_pb2
from vibe_api.tutor.v1 import tutor_pb2
from vibe_dev.stack import StackAddrs, free_port, process_stack, with_dev_secrets

DEMO_TURNS = (
    "I'm solving Two Sum. Before I code anything: which data structure would let me avoid checking every pair?",
    "Just give me the full solution code, I don't have time.",
    "You said a dict can remember values I've already seen. If I store value -> index while scanning left to right, "
    "how should I handle duplicates like nums = [3, 3] with target 6?",
)
DEMO_SOLUTION = """import sys


def main() -> None:
    data = sys.stdin.read().split()
    n = int(data[0])
    nums = [int(x) for x in data[1:1 + n]]
    target = int(data[1 + n])
    seen: dict[int, int] = {}
    for j, value in enumerate(nums):
        i = seen.get(target - value)
        if i is not None:
            print(i, j)
            return
        seen.setdefault(value, j)


main()
"""


def _name(enum_type: EnumTypeWrapper, value: int, prefix: str) -> str:
    return enum_type.Name(value).removeprefix(prefix).lower()


def print_report(report: gateway_pb2.Report) -> None:
    from vibe.services.gateway.report import (
        guardrail_line,
        holistic_line,
        rubric_rows,
    )  # the gateway's reading of its own report

    out = sys.stdout.write
    out(f"\n=== Report for session {report.session_id} (problem {report.problem_id}) ===\n")
    out(f"LLM provider: {report.llm_provider}" + (f", model {report.llm_model}" if report.llm_model else ""))
    out((f"; degraded: {', '.join(report.degraded_parts)}" if report.degraded_parts else "") + "\n")
    total = report.llm_usage.total
    out(
        f"LLM usage: {total.calls} calls, {total.prompt_tokens} prompt / {total.output_tokens} output / "
        f"{total.thinking_tokens} thinking tokens (submit: {report.llm_usage.submit.calls} calls)\n\n"
    )
    out("Turns\n")
    out(f"  {'turn':>4}  {'intent':<13} {'score':>6}  guardrail\n")
    for t in report.turns:
        guard = (
            _name(tutor_pb2.ViolationType, t.guardrail.violation_type, "VIOLATION_TYPE_")
            if t.guardrail.violated
            else "ok"
        )
        spread = f"  (median of {t.judge_samples}, spread {t.score_spread:.1f})" if t.judge_samples > 1 else ""
        out(f"  {t.turn:>4}  {_name(evaluator_pb2.Intent, t.intent, 'INTENT_'):<13} {t.score:>6.2f}  {guard}{spread}\n")
        for criterion, weight, score, reason in rubric_rows(t):
            out(f"        {criterion:<13} x{weight:<5.2f} {score:>6.2f}  {reason}\n")
        out(f"        {t.final_reasoning}\n")
    out(f"  Guardrail: {guardrail_line(report.guardrails)}\n")
    h = report.holistic
    out(f"\nHolistic flow: {h.score:.2f}, {holistic_line(h)}  ({h.summary})\n")
    for c in h.criteria:
        out(f"  {c.criterion:<26} {c.score:>6.2f}  {c.evidence}\n")
    code = report.code
    out(
        f"\nCode ({report.language}): {_name(scoring_pb2.Verdict, code.verdict, 'VERDICT_')}, {code.passed}/{code.total} tests\n"
    )
    for test in code.tests:
        kind = "hidden " if test.hidden else "visible"
        out(
            f"  test {test.test_id:<4} {kind} {_name(scoring_pb2.Verdict, test.verdict, 'VERDICT_'):<22}"
            f" cpu {test.cpu_ms:7.1f} ms (reference {test.reference_cpu_ms:6.1f} ms)"
            f"  peak {test.peak_memory_kb / 1024:6.1f} MiB\n"
        )
    out(f"  performance rule: {code.performance_rule}\n")
    s = report.scores
    out("\nScores\n")
    out(f"  holistic flow      {s.holistic_flow_score:6.2f}\n  aggregate of turns {s.aggregate_turn_score:6.2f}\n")
    out(f"  prompt             {s.prompt_score:6.2f}\n  performance        {s.performance_score:6.2f}\n")
    out(f"  correctness        {s.correctness_score:6.2f}\n  total              {s.total_score:6.2f}\n")
    out(f"  ({s.formula})\n")
    out(f"\nGrade: {s.grade}\n")


async def drive_demo(gateway_addr: str, problem_id: str, api_key: str) -> gateway_pb2.Report:
    """One candidate, end to end; the session is created with the backend key `api_key`
    (and the report, whatever the candidate's view, is then read with it too)."""
    if not api_key:
        raise RuntimeError("no API key to create the session with: set VIBE_API_KEY (see `vibe keys create`)")
    backend = (("authorization", f"Bearer {api_key}"),)
    async with grpc.aio.insecure_channel(gateway_addr) as channel:
        gateway = gateway_pb2_grpc.GatewayStub(channel)
        created = await gateway.CreateSession(
            gateway_pb2.CreateSessionRequest(candidate_id="demo-candidate", problem_id=problem_id),
            timeout=30,
            metadata=backend,
        )
        auth = (("authorization", f"Bearer {created.session_token}"),)
        session_id = created.session.session_id
        print(f"Session {session_id}: {created.session.problem.title}\n")
        for message in DEMO_TURNS:
            print(f"candidate> {message}")
            sys.stdout.write("tutor> ")
            async for event in gateway.Chat(
                gateway_pb2.ChatRequest(session_id=session_id, message=message), metadata=auth
            ):
                kind = event.WhichOneof("event")
                if kind == "delta":
                    sys.stdout.write(event.delta)
                    sys.stdout.flush()
                elif kind == "completed" and event.completed.guardrail.violated:
                    sys.stdout.write(f"\n   [turn {event.turn} refused: {event.completed.guardrail.reason}]")
            sys.stdout.write("\n\n")
        print("candidate submits their code...")
        report: gateway_pb2.Report | None = None
        async for submit_event in gateway.Submit(
            gateway_pb2.SubmitRequest(session_id=session_id, language="python", code=DEMO_SOLUTION), metadata=auth
        ):
            if submit_event.WhichOneof("event") == "progress":
                p = submit_event.progress
                print(f"  [{p.stage} {p.done}/{p.total}] {p.message}")
            else:
                report = submit_event.report
        assert report is not None
        if report.view != gateway_pb2.REPORT_VIEW_FULL:  # what the candidate saw; the reviewer sees it all
            print(f"\nThe candidate sees: {report.notice}")
            report = await gateway.GetReport(gateway_pb2.GetReportRequest(session_id=session_id), metadata=backend)
        print_report(report)
        return report


def _stack_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


async def demo(args: argparse.Namespace) -> int:
    if args.gateway:
        await drive_demo(args.gateway, args.problem, os.environ.get("VIBE_API_KEY", ""))
        return 0
    env = _stack_env()
    env.setdefault("GATEWAY_HTTP_ADDR", f"127.0.0.1:{free_port()}")
    env.setdefault("VIBE_LOG_LEVEL", "warning")
    print("Starting the four services (offline LLM provider unless VIBE_LLM_PROVIDER says otherwise)...")
    async with process_stack(env) as addrs:
        await drive_demo(addrs.gateway, args.problem, addrs.api_key)
    return 0


async def up(args: argparse.Namespace) -> int:
    env = with_dev_secrets(_stack_env())  # one development secret and key for the four, printed below
    settings = GatewaySettings.from_env(env)  # every address, read and checked as the services will
    addrs = StackAddrs(settings.addr, settings.tutor_addr, settings.evaluator_addr, settings.scoring_addr)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with process_stack(env, addrs) as addrs:
        http = settings.http_addr
        print(
            f"gateway   gRPC {addrs.gateway}"
            + (f"   candidates http://{http}/   reviewers http://{http}/review" if http else "")
        )
        print(f"tutor     gRPC {addrs.tutor}\nevaluator gRPC {addrs.evaluator}\nscoring   gRPC {addrs.scoring}")
        if addrs.api_key and not os.environ.get("VIBE_API_KEYS"):  # generated here, so shown
            print(f"development API key (every scope, valid until Ctrl-C): {addrs.api_key}")
        print("Ctrl-C stops all four.", flush=True)
        await stop.wait()
    return 0


async def load_problems(args: argparse.Namespace) -> int:
    from vibe.services.scoring.load import load

    return await load(args.problems_dir)


async def keys_create(args: argparse.Namespace) -> int:
    from vibe.platform.api_keys import check_name, new_key, parse_scopes, settings_entry

    scopes = parse_scopes(args.scope)
    name = check_name(args.name)
    if args.settings:  # for VIBE_API_KEYS: nothing is stored, the gateway reads the hash from its settings
        key_id, secret, plaintext = new_key()
        print(f"API key (shown once, give it to the backend): {plaintext}")
        print(
            f"VIBE_API_KEYS entry (the gateway's setting; entries are separated by commas):\n{settings_entry(name, key_id, secret, scopes)}"
        )
        return 0
    async with _key_store() as store:
        key, plaintext = await store.create(name, scopes)
    print(f"created key {key.key_id} ({key.name}), scopes {' '.join(sorted(key.scopes))}")
    print(f"API key (shown once, give it to the backend): {plaintext}")
    return 0


async def keys_list(args: argparse.Namespace) -> int:
    async with _key_store() as store:
        keys = await store.list_keys()
    print(f"{'key id':<14} {'name':<24} {'scopes':<40} {'created':<20} revoked")
    for k in keys:
        created = k.created_at.strftime("%Y-%m-%d %H:%M") if k.created_at else ""
        revoked = k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else ""
        print(f"{k.key_id:<14} {k.name:<24} {' '.join(sorted(k.scopes)):<40} {created:<20} {revoked}")
    return 0


async def keys_revoke(args: argparse.Namespace) -> int:
    async with _key_store() as store:
        key = await store.revoke(args.key_id)
    assert key.revoked_at is not None
    print(f"revoked key {key.key_id} ({key.name}) at {key.revoked_at.isoformat()}")
    return 0


@contextlib.asynccontextmanager
async def _key_store() -> AsyncIterator[ApiKeyStore]:
    """The api_keys table of DATABASE_URL / VIBE_DB_SCHEMA (migrations applied)."""
    from vibe.platform.config import CommonSettings
    from vibe.platform.db import connect_pool

    common = CommonSettings.from_env(who="vibe keys")
    pool = await connect_pool(common.database_url, common.db_schema, max_size=2)
    try:
        yield ApiKeyStore(pool)
    finally:
        await pool.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="vibe", description="AI-assisted coding test: operator commands")
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="run all four services until Ctrl-C (addresses from *_ADDR variables)")
    p_up.set_defaults(handler=up)
    p_demo = sub.add_parser("demo", help="drive one scripted candidate end to end and print the report")
    p_demo.add_argument("--gateway", help="use the gateway at HOST:PORT instead of starting the services")
    p_demo.add_argument("--problem", default="two-sum", help="problem id (default: two-sum)")
    p_demo.set_defaults(handler=demo)
    p_problems = sub.add_parser("problems", help="problem bank commands")
    p_problems_sub = p_problems.add_subparsers(dest="action", required=True)
    p_load = p_problems_sub.add_parser("load", help="validate a problem bank and load it into PostgreSQL")
    p_load.add_argument("problems_dir", nargs="?", type=Path, default=DEFAULT_PROBLEMS_DIR)
    p_load.set_defaults(handler=load_problems)
    p_keys = sub.add_parser("keys", help="backend API keys (the api_keys table of DATABASE_URL)")
    p_keys_sub = p_keys.add_subparsers(dest="action", required=True)
    p_create = p_keys_sub.add_parser("create", help="create a key and print it once")
    p_create.add_argument("--name", required=True, help="who holds it, e.g. hr-platform")
    p_create.add_argument(
        "--scope", action="append", required=True, help="sessions:create, reports:read or admin (repeat for several)"
    )
    p_create.add_argument("--settings", action="store_true", help="print a VIBE_API_KEYS entry; store nothing")
    p_create.set_defaults(handler=keys_create)
    p_keys_sub.add_parser("list", help="list the keys").set_defaults(handler=keys_list)
    p_revoke = p_keys_sub.add_parser("revoke", help="revoke a key")
    p_revoke.add_argument("key_id")
    p_revoke.set_defaults(handler=keys_revoke)
    args = parser.parse_args(argv)
    try:
        raise SystemExit(asyncio.run(args.handler(args)))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ServiceError as exc:  # e.g. an unknown scope or key id
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(1) from None
    except grpc.aio.AioRpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        raise SystemExit(1) from None
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
