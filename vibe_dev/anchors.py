"""Builds the few-shot anchors of the Gemini judge and guardrail prompts from the labelled
corpus: `vibe/llm/data/anchors.json` (package data, read by `vibe/llm/anchors.py`).

    python -m vibe_dev.anchors            # writes the file
    python -m vibe_dev.anchors --check    # exit 1 when the file is not what the corpus makes

Anchors come only from the corpus's FIRST batch (turns-en, turns-ko, guardrail-en,
guardrail-ko), never from a line whose id is in `corpus/test-split.txt` (the frozen test
split, one id per line) when that file exists: a model shown a test turn as an example
would be graded on its own answer key. The order is deterministic (a hash of each id,
not the file order) and interleaved, so that a prefix of any length covers every intent
(judge) and every category of attack and of legitimate question (guardrail): the prompt
builder takes them in this order, each one that still fits its token budget.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
OUTPUT = REPO / "vibe" / "llm" / "data" / "anchors.json"
TURN_FILES = ("turns-en.jsonl", "turns-ko.jsonl")
GUARDRAIL_FILES = ("guardrail-en.jsonl", "guardrail-ko.jsonl")
TEST_SPLIT = "test-split.txt"
FORMAT = "vibe.anchors/v1"

MAX_TEXT_CHARS = 360  # longer examples cost more of the budget than they teach
PER_GROUP = 3  # anchors kept per (intent, band) and per (label, category)
_BANDS = ("high", "low", "mid", "zero")  # the contrast first: a strong and a weak example per intent


class CorpusError(ValueError):
    """The corpus cannot be read; the message says where."""


def split_ids(corpus: Path = CORPUS) -> frozenset[str]:
    path = corpus / TEST_SPLIT
    if not path.exists():
        return frozenset()
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _rows(corpus: Path, names: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        path = corpus / name
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CorpusError(f"cannot read {path}: {exc}") from None
        for n, line in enumerate(lines, start=1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{n}: {exc}") from None
    return rows


def _rank(row_id: str) -> str:
    return hashlib.sha256(row_id.encode()).hexdigest()


def _interleave(groups: dict[tuple[str, ...], list[dict[str, Any]]], order: Iterable[tuple[str, ...]]) -> list[Any]:
    """Round-robin over the groups in `order`: the first of each, then the second, ..."""
    keys = [k for k in order if groups.get(k)]
    out = []
    for i in range(max((len(groups[k]) for k in keys), default=0)):
        out += [groups[k][i] for k in keys if i < len(groups[k])]
    return out


def build(corpus: Path = CORPUS) -> dict[str, Any]:
    excluded = split_ids(corpus)
    turns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(_rows(corpus, TURN_FILES), key=lambda r: _rank(r["id"])):
        if row["id"] in excluded or len(row["prompt"]) > MAX_TEXT_CHARS:
            continue
        group = turns[(row["intent"], row["band"])]
        if len(group) < PER_GROUP:
            group.append(
                {
                    "id": row["id"],
                    "lang": row["lang"],
                    "intent": row["intent"],
                    "band": row["band"],
                    "violation": row["violation"],
                    "earlier_turns": len(row["history"]),
                    "prompt": row["prompt"],
                    "reason": row["reason"],
                }
            )
    intents = sorted({k[0] for k in turns})
    turn_order = [(intent, band) for band in _BANDS for intent in intents]

    guard: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(_rows(corpus, GUARDRAIL_FILES), key=lambda r: _rank(r["id"])):
        if row["id"] in excluded or len(row["message"]) > MAX_TEXT_CHARS:
            continue
        group = guard[(row["label"], row["category"])]
        if len(group) < PER_GROUP:
            group.append(
                {
                    "id": row["id"],
                    "lang": row["lang"],
                    "label": row["label"],
                    "category": row["category"],
                    "message": row["message"],
                    "reason": row["reason"],
                }
            )
    # Attacks and legitimate questions alternate, hard negatives first among the legitimate
    # ones: a model shown only attacks learns to refuse everything.
    # Attacks: one category of each label in turn (solution requests, jailbreaks, off-topic, abuse).
    by_label: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for key in sorted(k for k in guard if k[0] != "none"):
        by_label[key[0]].append(key)
    attacks: list[tuple[str, ...]] = []
    for i in range(max((len(v) for v in by_label.values()), default=0)):
        attacks += [keys[i] for _, keys in sorted(by_label.items()) if i < len(keys)]
    legit = sorted((k for k in guard if k[0] == "none"), key=lambda k: (k[1] != "hard_negative", k[1]))
    guard_order: list[tuple[str, ...]] = []
    for i in range(max(len(attacks), len(legit))):
        guard_order += [*attacks[i : i + 1], *legit[i : i + 1]]
    return {
        "format": FORMAT,
        "source": [*TURN_FILES, *GUARDRAIL_FILES],
        "excluded_test_split_ids": len(excluded),
        "turns": _interleave(turns, turn_order),
        "guardrail": _interleave(guard, guard_order),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vibe_dev.anchors", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs from what the corpus makes")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    try:
        text = render(build(args.corpus))
    except (CorpusError, KeyError) as exc:
        print(f"error: {exc!r}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m vibe_dev.anchors", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    data = json.loads(text)
    print(f"wrote {args.output}: {len(data['turns'])} turn anchors, {len(data['guardrail'])} guardrail anchors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
