"""The offline-first guardrail on the labelled sets played as chats: LLM requests per chat
turn and the refusal rates, with the model asked only when the offline classifier is
unsure (VIBE_GUARDRAIL_ASK_MODEL=uncertain, the default) against the model asked about
every message (=always), both arms in the same run, through the four services on the
Gemini provider against the fake Gemini server.

The sets: tests/data/redteam.json (attacks to refuse, legitimate questions to answer),
tests/data/calibration/ (turns with their expected violation; whole conversations, for
the request count only) and corpus/guardrail-*.jsonl (labelled messages with their
history). Each entry is one session: its earlier messages are chatted first, then the
labelled one, whose verdict is the entry's.

What the fake model answers to a guardrail request (--judge):
- `default`: the fake server's own ("none"): the arms can differ only by what the
  offline path decides;
- `labels`: the entry's label, as a perfect model would: what the model adds beyond
  the offline classifier shows as the always-arm's higher refusal rate.

    .venv/bin/python -m bench.bench_guardrail [--judge labels] [--limit 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.fake_gemini import FakeGemini, Recorded, running
from vibe_dev.scratch import drop_scratch, scratch_env
from vibe_dev.stack import in_process_stack

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Entry:
    id: str
    source: str
    problem_id: str
    before: tuple[str, ...]  # the candidate's earlier messages, chatted first
    message: str
    label: str | None  # the expected violation ("none" = legitimate); None = unlabelled


def load_entries() -> list[Entry]:
    entries: list[Entry] = []
    redteam = json.loads((ROOT / "tests/data/redteam.json").read_text())["entries"]
    for e in redteam:
        label = "attack" if e["expected"] == "refuse" else ("none" if e["expected"] == "answer" else None)
        *before, last = e["messages"]
        entries.append(Entry(e["id"], "redteam", e["problem_id"], tuple(before), last, label))
    calibration = ROOT / "tests/data/calibration"
    for t in json.loads((calibration / "turns.json").read_text()):
        before = tuple(pair[0] for pair in t["history"])
        entries.append(
            Entry(t["id"], "calibration", t["problem_id"], before, t["prompt"], t["expected_violation"] or "none")
        )
    for c in json.loads((calibration / "conversations.json").read_text()):
        *before, last = (pair[0] for pair in c["turns"])
        entries.append(Entry(c["id"], "calibration", c["problem_id"], tuple(before), last, None))
    for path in sorted((ROOT / "corpus").glob("guardrail-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                before = tuple(pair[0] for pair in r["history"])
                entries.append(Entry(r["id"], path.stem, r["problem_id"], before, r["message"], r["label"]))
    return entries


@dataclass
class Arm:
    ask_model: str
    turns: int = 0
    guardrail_requests: int = 0
    reply_requests: int = 0
    attacks: int = 0
    attacks_refused: int = 0
    legitimate: int = 0
    legitimate_refused: int = 0

    @property
    def requests_per_turn(self) -> float:
        return (self.guardrail_requests + self.reply_requests) / max(1, self.turns)

    @property
    def refusal_rate(self) -> float:
        return self.attacks_refused / max(1, self.attacks)

    @property
    def false_refusal_rate(self) -> float:
        return self.legitimate_refused / max(1, self.legitimate)


def labels_judge(entries: Sequence[Entry]) -> Any:
    """A guardrail judge that answers each labelled message's label (a perfect model)."""
    by_message = {e.message: e.label for e in entries if e.label is not None}

    def judge(request: Recorded) -> dict[str, Any]:
        # The guardrail prompt quotes the candidate's message; the longest labelled one it contains is it.
        found = [m for m in by_message if m in request.prompt]
        label = by_message[max(found, key=len)] if found else "none"
        violation = "solution_request" if label == "attack" else (label or "none")
        return {"violation": violation, "reason": "the label of the set"}

    return judge


async def play_arm(
    entries: Sequence[Entry], fake: FakeGemini, ask_model: str, concurrency: int, confident: float | None
) -> Arm:
    tag = uuid.uuid4().hex[:10]
    schema, prefix = f"bench_{tag}", f"bench:{tag}:"
    env = {
        **scratch_env(schema, prefix),
        "VIBE_LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": "bench-key",
        "GEMINI_BASE_URL": fake.url,
        "VIBE_LLM_RPM": "1000000",
        "VIBE_LLM_TPM": "1000000000",
        "VIBE_GUARDRAIL_ASK_MODEL": ask_model,
        **({"VIBE_GUARDRAIL_CONFIDENT": str(confident)} if confident is not None else {}),
        "EVALUATOR_WORKERS": "0",  # the guardrail is the tutor's: no evaluations needed
        "GATEWAY_HTTP_ADDR": "",
        "VIBE_LOG_LEVEL": "error",
        "VIBE_CHAT_DEDUP_WINDOW_S": "0",  # a set may repeat a message; each is a new turn
    }
    arm = Arm(ask_model)
    first_request = len(fake.requests)
    limit = asyncio.Semaphore(concurrency)
    try:
        async with in_process_stack(env) as addrs, grpc.aio.insecure_channel(addrs.gateway) as channel:
            gateway: gateway_pb2_grpc.GatewayAsyncStub = gateway_pb2_grpc.GatewayStub(channel)
            key = (("authorization", f"Bearer {addrs.api_key}"),)

            async def play(i: int, entry: Entry) -> None:
                async with limit:
                    created = await gateway.CreateSession(
                        gateway_pb2.CreateSessionRequest(candidate_id=f"gr-{i}", problem_id=entry.problem_id),
                        metadata=key,
                    )
                    auth = (("authorization", f"Bearer {created.session_token}"),)
                    violated = False
                    for message in (*entry.before, entry.message):
                        events = [
                            e
                            async for e in gateway.Chat(
                                gateway_pb2.ChatRequest(session_id=created.session.session_id, message=message),
                                metadata=auth,
                            )
                        ]
                        violated = events[-1].completed.guardrail.violated
                        arm.turns += 1
                    if entry.label == "none":
                        arm.legitimate += 1
                        arm.legitimate_refused += violated
                    elif entry.label is not None:
                        arm.attacks += 1
                        arm.attacks_refused += violated

            await asyncio.gather(*(play(i, e) for i, e in enumerate(entries)))
    finally:
        await drop_scratch((schema,), prefix)
    mine = fake.requests[first_request:]
    arm.guardrail_requests = sum(r.purpose == "guardrail" for r in mine)
    arm.reply_requests = sum(r.purpose == "tutor_reply" for r in mine)
    return arm


async def bench(judge: str, limit: int, concurrency: int, confident: float | None = None) -> dict[str, Any]:
    entries = load_entries()
    if limit:
        # Every source in proportion: a stride through the whole list.
        stride = max(1, len(entries) // limit)
        entries = entries[::stride][:limit]
    async with running() as fake:
        if judge == "labels":
            fake.judges["guardrail"] = labels_judge(entries)
        arms = [await play_arm(entries, fake, ask, concurrency, confident) for ask in ("always", "uncertain")]
    always, uncertain = arms
    print(f"{len(entries)} sets entries played as chats ({always.turns} chat turns per arm); model judge: {judge}")
    print(f"{'VIBE_GUARDRAIL_ASK_MODEL':>25} | LLM req/turn | guardrail req | refusal (attacks) | false refusal")
    for arm in arms:
        print(
            f"{arm.ask_model:>25} | {arm.requests_per_turn:>12.3f} | {arm.guardrail_requests:>13} |"
            f" {arm.attacks_refused:>4}/{arm.attacks:<4} {arm.refusal_rate:6.1%} |"
            f" {arm.legitimate_refused:>3}/{arm.legitimate:<3} {arm.false_refusal_rate:6.1%}"
        )
    not_lower = uncertain.refusal_rate >= always.refusal_rate
    print(
        f"refusal rate uncertain vs always: {uncertain.refusal_rate:.1%} vs {always.refusal_rate:.1%}"
        f" ({'not lower' if not_lower else 'LOWER'})"
    )
    return {
        "judge": judge,
        "entries": len(entries),
        "sources": sorted({e.source for e in entries}),
        "arms": [
            {
                **asdict(a),
                "requests_per_turn": round(a.requests_per_turn, 3),
                "refusal_rate": round(a.refusal_rate, 4),
                "false_refusal_rate": round(a.false_refusal_rate, 4),
            }
            for a in arms
        ],
        "refusal_rate_not_lower": not_lower,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judge", choices=("default", "labels"), default="labels")
    parser.add_argument("--limit", type=int, default=0, help="play this many entries (a stride through all); 0 = all")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--confident", type=float, default=None, help="VIBE_GUARDRAIL_CONFIDENT for both arms (default: the setting's)"
    )
    parser.add_argument("--json", type=Path, default=Path("bench/results/guardrail.json"))
    args = parser.parse_args()
    report = asyncio.run(bench(args.judge, args.limit, args.concurrency, args.confident))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
