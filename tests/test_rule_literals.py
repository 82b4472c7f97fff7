"""The rule tables skip a pattern only when it could not have matched (literals.py).

The skip test is a speed-up of the keyword rules, so it must change no answer: the case
folding it compares under is checked against `re` itself for every character the tables'
words use, and every pattern of every table against the whole labelled corpus, the probes
and the same texts with their letters swapped for the look-alikes `re` folds together."""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from vibe.llm import injection, literals
from vibe.llm.literals import Gated, Table, fold, needs
from vibe.llm.offline.guardrail import FAMILIES
from vibe.llm.offline.intent import INTENT_RULES

TABLES: dict[str, Table[object]] = {name: table for name, (table, _) in FAMILIES.items()}  # type: ignore[misc]
TABLES["intent"] = INTENT_RULES  # type: ignore[assignment]
# The grader-text detector's patterns, each behind its own test.
GATED = {name: value for name, value in vars(injection).items() if isinstance(value, Gated)}

DATA = Path(__file__).parent / "data"
CORPUS = Path(__file__).parent.parent / "corpus"

# Every code point a str can hold (no lone surrogates: they cannot be folded or matched).
EVERY_CHARACTER = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)

# Letters `re` matches under IGNORECASE that str.lower() alone would not make equal.
LOOK_ALIKES = str.maketrans({"s": "\u017f", "k": "\u212a", "i": "\u0131", "I": "\u0130", "a": "A", "e": "E", "o": "O"})


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _texts() -> list[str]:
    """Every string of the corpus and of the test data (messages, replies, grader text)."""
    texts: set[str] = set()
    for path in sorted([*CORPUS.glob("*.jsonl"), *DATA.rglob("*.jsonl"), *DATA.rglob("*.json")]):
        lines = path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        for line in lines:
            texts.update(s for s in _strings(json.loads(line)) if len(s) > 3)
    return sorted(texts)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return _texts()


def test_the_folding_is_the_one_re_uses_for_every_character_of_the_tables_words() -> None:
    characters = {c for table in TABLES.values() for gate in table.gates for w in gate.words or () for c in w}
    characters |= {c for gate in GATED.values() for w in gate.words or () for c in w}
    characters |= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert len(characters) > 100
    for c in sorted(characters):
        for match in re.finditer(re.escape(c), EVERY_CHARACTER, re.IGNORECASE):
            assert fold(match.group()) == fold(c), (c, match.group(), hex(ord(match.group())))


def test_folding_keeps_every_position() -> None:
    assert len(fold(EVERY_CHARACTER)) == len(EVERY_CHARACTER)
    assert fold("\u0130GNORE \u017fystem \u212aelvin \u039f\u0394\u039f\u03a3") == fold(
        "ignore system kelvin \u03bf\u03b4\u03bf\u03c2"
    )


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"\b(?:give|show)\b.{0,20}\bcode\b", ("code",)),
        (r"a?bc+d", ("bc",)),
        (r"(?:x|)yz", ("yz",)),
        (r"(?:ab|cd)\s+e", ("ab", "cd")),
        (r"(?:정답|풀이)\s*코드", ("코드",)),
        (r"(?:정답|풀이)\s*\S", ("정답", "풀이")),
        (r"\d+\s*[a-z]", None),
        (r"(?:ab)?", None),
        (r"foo(?i:BAR)", ("foo",)),
    ],
)
def test_the_words_a_pattern_needs(pattern: str, words: tuple[str, ...] | None) -> None:
    need = needs(re.compile(pattern))
    assert need.words == (tuple(sorted(words, key=lambda w: (-len(w), w))) if words else None)


def test_a_case_insensitive_pattern_is_tested_on_the_folded_text() -> None:
    table = Table([(re.compile(r"\bignore\s+previous", re.IGNORECASE), "jailbreak")])
    assert [label for _, label in table.candidates("please IGNORE previous")] == ["jailbreak"]
    assert [label for _, label in table.candidates("please \u0131gnore previous")] == ["jailbreak"]
    assert re.search(r"\bignore\s+previous", "please \u0131gnore previous", re.IGNORECASE)  # as re itself
    assert list(table.candidates("nothing to see")) == []


@pytest.mark.parametrize("variant", ["as written", "look-alike letters"])
def test_no_pattern_that_matches_is_ever_skipped(texts: list[str], variant: str) -> None:
    if variant != "as written":
        texts = [t.translate(LOOK_ALIKES) for t in texts]
    assert len(texts) > 8000
    skipped = 0
    for name, table in TABLES.items():
        for text in texts:
            kept = {id(pattern) for pattern, _ in table.candidates(text)}
            for pattern, label in table:
                if id(pattern) in kept:
                    continue
                skipped += 1
                assert pattern.search(text) is None, (name, label, text)
    assert skipped > len(texts) * 20  # the test is worth having: most patterns are skipped


@pytest.mark.parametrize("variant", ["as written", "normalized as the detector reads it", "look-alike letters"])
def test_no_grader_text_pattern_that_matches_is_ever_skipped(texts: list[str], variant: str) -> None:
    if variant == "look-alike letters":
        texts = [t.translate(LOOK_ALIKES) for t in texts]
    elif variant != "as written":
        texts = [injection.normalize(t) for t in texts]
    assert len(GATED) >= 25
    skipped = 0
    for name, gate in GATED.items():
        for text in texts:
            if not gate.may_match(text):
                skipped += 1
                assert gate.pattern.search(text) is None, (name, text)
    assert skipped > len(texts) * 10


def test_the_grader_text_fold_is_the_per_character_one_for_every_character() -> None:
    def reference(text: str) -> str:  # its definition, one character at a time
        out = []
        for ch in text:
            if ord(ch) in injection._ZERO_WIDTH:
                out.append(" ")
            else:
                folded = unicodedata.normalize("NFKC", ch).translate(injection._HOMOGLYPHS)
                out.append(folded if len(folded) == 1 else ch)
        return "".join(out)

    assert injection._fold(EVERY_CHARACTER) == reference(EVERY_CHARACTER)
    ascii_text = "".join(map(chr, range(128)))
    assert injection._fold(ascii_text) == reference(ascii_text) == ascii_text


def test_without_the_standard_librarys_parser_every_pattern_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another Python whose re internals differ: no skipping, the same answers.
    monkeypatch.setattr(literals, "_parser", None)
    table = Table([(re.compile(r"\bignore\b"), "x")])
    assert needs(re.compile(r"\bignore\b")).words is None
    assert [label for _, label in table.candidates("nothing here")] == ["x"]
