"""The labelled corpus (corpus/README.md): loading it as typed records, and its frozen test split.

    python -m vibe_dev.corpus split    # writes corpus/test-split.txt (once; refuses to change it)
    python -m vibe_dev.corpus check    # every line parses, every test-split id exists

The test split is 20% of the turns and 20% of the guardrail messages, stratified by language
and label (turns: intent and band; guardrail: label), chosen by a hash of the id so that it
does not depend on file order. It is committed as corpus/test-split.txt and never trained on:
the learned offline classifiers (vibe_dev/train_judge.py) train on the rest, and the Gemini
few-shot anchors exclude it too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO_ROOT / "corpus"
TEST_SPLIT_PATH = CORPUS_DIR / "test-split.txt"
TEST_FRACTION = 0.2
INTENTS = ("generation", "optimization", "debugging", "test_case", "hint_query", "rule_setting", "follow_up")
BANDS = ("zero", "low", "mid", "high")
VIOLATIONS = ("solution_request", "jailbreak", "off_topic", "abuse")
GUARD_LABELS = ("none", *VIOLATIONS)
LANGS = ("en", "ko", "mixed")
# The files the frozen test split was drawn from (the first two batches). Lines written
# later, in other files, all belong to the training part.
SPLIT_DRAWN_FROM = (
    "turns-en.jsonl",
    "turns-en-2.jsonl",
    "turns-ko.jsonl",
    "turns-ko-2.jsonl",
    "guardrail-en.jsonl",
    "guardrail-en-2.jsonl",
    "guardrail-ko.jsonl",
    "guardrail-ko-2.jsonl",
)


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class TurnExample:
    id: str
    lang: str
    problem_id: str
    history: tuple[tuple[str, str], ...]
    prompt: str
    intent: str
    band: str
    violation: str | None
    reason: str


@dataclass(frozen=True)
class GuardExample:
    id: str
    lang: str
    problem_id: str
    history: tuple[tuple[str, str], ...]
    message: str
    label: str
    category: str
    reason: str


def _lines(pattern: str, corpus_dir: Path) -> Iterable[tuple[str, int, dict[str, object]]]:
    files = sorted(corpus_dir.glob(pattern))
    if not files:
        raise CorpusError(f"no {pattern} in {corpus_dir}")
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path.name}:{number}: not JSON ({exc})") from exc
            if not isinstance(row, dict):
                raise CorpusError(f"{path.name}:{number}: not an object")
            yield path.name, number, row


def _history(where: str, value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        raise CorpusError(f"{where}: history is not a list")
    pairs: list[tuple[str, str]] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item)):
            raise CorpusError(f"{where}: a history entry is not [candidate, tutor]")
        pairs.append((item[0], item[1]))
    return tuple(pairs)


def _str(where: str, row: dict[str, object], key: str, allowed: Sequence[str] | None = None) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise CorpusError(f"{where}: {key!r} is missing or not a string")
    if allowed is not None and value not in allowed:
        raise CorpusError(f"{where}: {key!r} is {value!r}, not one of {', '.join(allowed)}")
    return value


def load_turns(corpus_dir: Path = CORPUS_DIR) -> list[TurnExample]:
    out: list[TurnExample] = []
    for name, number, row in _lines("turns-*.jsonl", corpus_dir):
        where = f"{name}:{number}"
        violation = row.get("violation")
        if violation is not None and violation not in VIOLATIONS:
            raise CorpusError(f"{where}: violation {violation!r} is not one of {', '.join(VIOLATIONS)}")
        out.append(
            TurnExample(
                id=_str(where, row, "id"),
                lang=_str(where, row, "lang", LANGS),
                problem_id=_str(where, row, "problem_id"),
                history=_history(where, row.get("history", [])),
                prompt=_str(where, row, "prompt"),
                intent=_str(where, row, "intent", INTENTS),
                band=_str(where, row, "band", BANDS),
                violation=violation if isinstance(violation, str) else None,
                reason=str(row.get("reason", "")),
            )
        )
    _unique(t.id for t in out)
    return out


def load_guard(corpus_dir: Path = CORPUS_DIR) -> list[GuardExample]:
    out: list[GuardExample] = []
    for name, number, row in _lines("guardrail-*.jsonl", corpus_dir):
        where = f"{name}:{number}"
        out.append(
            GuardExample(
                id=_str(where, row, "id"),
                lang=_str(where, row, "lang", LANGS),
                problem_id=_str(where, row, "problem_id"),
                history=_history(where, row.get("history", [])),
                message=_str(where, row, "message"),
                label=_str(where, row, "label", GUARD_LABELS),
                category=str(row.get("category", "")),
                reason=str(row.get("reason", "")),
            )
        )
    _unique(g.id for g in out)
    return out


def _unique(ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise CorpusError(f"id {i!r} appears twice")
        seen.add(i)


def _rank(example_id: str) -> str:
    return hashlib.sha256(f"vibe-split-v1:{example_id}".encode()).hexdigest()


def choose_test_split(strata: dict[str, list[str]], fraction: float = TEST_FRACTION) -> set[str]:
    """`fraction` of every stratum, at least one of any stratum of three or more, by hash order."""
    chosen: set[str] = set()
    for ids in strata.values():
        ordered = sorted(ids, key=_rank)
        take = round(len(ordered) * fraction)
        if take == 0 and len(ordered) >= 3:
            take = 1
        chosen.update(ordered[:take])
    return chosen


def compute_test_split(corpus_dir: Path = CORPUS_DIR) -> list[str]:
    turn_strata: dict[str, list[str]] = defaultdict(list)
    for t in load_turns(corpus_dir):
        turn_strata[f"turn/{t.lang}/{t.intent}/{t.band}"].append(t.id)
    guard_strata: dict[str, list[str]] = defaultdict(list)
    for g in load_guard(corpus_dir):
        guard_strata[f"guard/{g.lang}/{g.label}"].append(g.id)
    return sorted(choose_test_split(turn_strata) | choose_test_split(guard_strata))


def load_test_split(path: Path = TEST_SPLIT_PATH) -> frozenset[str]:
    if not path.exists():
        raise CorpusError(f"{path} is missing (python -m vibe_dev.corpus split writes it once)")
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def drawn_ids(corpus_dir: Path = CORPUS_DIR) -> set[str]:
    """The ids of the lines the test split was drawn from (SPLIT_DRAWN_FROM)."""
    out: set[str] = set()
    for name in SPLIT_DRAWN_FROM:
        for line in (corpus_dir / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.add(str(json.loads(line)["id"]))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vibe_dev.corpus", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("split", "check"))
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    args = parser.parse_args(argv)
    try:
        split_path = args.corpus / TEST_SPLIT_PATH.name
        if args.command == "split":
            if split_path.exists():
                # Frozen: lines added to the corpus later go to the training part unless someone
                # decides otherwise by hand; re-drawing the split would leak tested ids into training.
                print(f"{split_path} exists and is frozen; not rewritten", file=sys.stderr)
                return 2
            ids = compute_test_split(args.corpus)
            split_path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
            print(f"wrote {len(ids)} ids to {split_path}")
            return 0
        known = {t.id for t in load_turns(args.corpus)} | {g.id for g in load_guard(args.corpus)}
        unknown = sorted(load_test_split(split_path) - known)
        if unknown:
            print(f"test split names unknown ids: {', '.join(unknown[:10])}", file=sys.stderr)
            return 1
        print(f"corpus ok: {len(known)} examples, test split of {len(load_test_split(split_path))}")
        return 0
    except CorpusError as exc:
        print(f"corpus: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
