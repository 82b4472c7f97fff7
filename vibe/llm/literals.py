"""The words a rule pattern cannot match without: a cheap test that skips, in a table of
patterns, the ones a text cannot match.

Matching the keyword tables was the largest part of the offline guardrail's cost (about
0.35 ms of a new message's 1.3 ms): Python's `re` tries a pattern that opens with
`\\b(?:give|show|send|...)` at every position of the text, and a table holds tens of them.
Almost every pattern needs one of a few words somewhere ("ignore", "정답", "code"), and a
text that holds none of them cannot match it; `str.__contains__` tells that in a fraction
of the time. The test is exact, not a heuristic: a pattern is skipped only when it could not
have matched (`tests/test_rule_literals.py` checks the case folding against `re` itself,
character by character, and every table on the corpus with and without the test).

The words are read from the compiled pattern's parse (`re._parser`, the standard library's
own parser): a literal run of characters that every match contains, or a set of them
(alternatives) one of which every match contains. Where the parse has no such word, or has
a shape this module does not know, the pattern is always tried.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

try:  # the standard library's own parser and IGNORECASE table (CPython 3.11 and later)
    from re import _casefix, _parser  # type: ignore[attr-defined]
    from re import _constants as sre

    _EXTRA_CASES: dict[int, tuple[int, ...]] = _casefix._EXTRA_CASES
except (ImportError, AttributeError):  # a Python whose internals differ: every pattern is tried
    _EXTRA_CASES = {}
    _parser = None

T = TypeVar("T")


def _case_classes() -> dict[str, str]:
    """The lowercase characters `re` treats as one under IGNORECASE beyond their case
    (s and the long s, sigma and final sigma, i and the dotless i, ...; `re._casefix`), each
    mapped to the smallest of its class."""
    parent: dict[int, int] = {}

    def find(c: int) -> int:
        while parent.get(c, c) != c:
            c = parent[c]
        return c

    for lower, extras in _EXTRA_CASES.items():
        for other in extras:
            a, b = find(lower), find(other)
            parent[max(a, b)] = min(a, b)
    return {chr(c): chr(find(c)) for c in parent.keys() | {find(c) for c in parent}}


_CLASSES = _case_classes()
_CLASS_OF = str.maketrans(_CLASSES)
_SPECIAL = re.compile("[" + re.escape("".join(_CLASSES)) + "]" if _CLASSES else "(?!)")


def fold(text: str) -> str:
    """`text` as `re` compares it under IGNORECASE, one character for one: the simple
    lowercase of each character (what `re` compares; `str.lower` differs only for the
    dotted capital I, U+0130, which it makes two characters), the classes of `re._casefix`
    made one."""
    text = text.replace("\u0130", "i").lower()
    return text.translate(_CLASS_OF) if _SPECIAL.search(text) else text


@dataclass(frozen=True)
class Needs:
    """What a pattern cannot match without: one of `words` (folded when the pattern is
    case-insensitive: then the text is folded too). `words` None: nothing known, always try."""

    words: tuple[str, ...] | None
    folded: bool


def _best(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """The more selective of two requirements: longer shortest word, then fewer words."""
    if a is None:
        return b
    if b is None:
        return a
    key_a = (min(map(len, a)), -len(a))
    key_b = (min(map(len, b)), -len(b))
    return b if key_b > key_a else a


def _literal_run(items: Any) -> list[str] | None:
    """The characters of a parsed sequence made only of literals (None: it has anything else)."""
    chars = [chr(av) for op, av in items if op is sre.LITERAL]
    return chars if chars and len(chars) == len(items) else None


def _required(items: Iterable[tuple[Any, Any]], flags: int) -> frozenset[str] | None:
    """One of these strings is in every match of the parsed sequence `items` (None: no
    such set known)."""
    best: frozenset[str] | None = None
    run: list[str] = []

    def flush() -> None:
        nonlocal best
        if run:
            best = _best(best, frozenset(["".join(run)]))
            run.clear()

    for op, av in items:
        if op is sre.LITERAL:
            run.append(chr(av))
            continue
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            # A group that changes case sensitivity would need the other folding: not used.
            if (add_flags | del_flags) & re.IGNORECASE:
                flush()
                continue
            inner = _literal_run(body)
            if inner is not None:  # "(?:ab)": the run goes on through it
                run.extend(inner)
                continue
            flush()
            best = _best(best, _required(body, flags))
            continue
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, _high, body = av
            repeated = _literal_run(body)
            if low >= 1 and repeated is not None:
                # "bc+d": "bc" is in every match, then more c's may come before the "d".
                run.extend(repeated)
                flush()
                continue
            flush()
            if low >= 1:
                best = _best(best, _required(body, flags))
            continue
        flush()
        if op is sre.BRANCH:
            alternatives = [_required(alt, flags) for alt in av[1]]
            if all(alt is not None for alt in alternatives):
                best = _best(best, frozenset().union(*(alt for alt in alternatives if alt is not None)))
        elif op is sre.ATOMIC_GROUP:
            best = _best(best, _required(av, flags))
        # Anything else (classes, anchors, lookarounds, references) needs no known word.
    flush()
    return best


def needs(pattern: re.Pattern[str]) -> Needs:
    """The words `pattern` cannot match without."""
    folded = bool(pattern.flags & re.IGNORECASE)
    if _parser is None or (folded and not _EXTRA_CASES):
        return Needs(None, folded)
    try:
        words = _required(_parser.parse(pattern.pattern, pattern.flags), pattern.flags)
    except Exception:  # a parse this module does not know: always try the pattern
        words = None
    if words is None:
        return Needs(None, folded)
    if folded:
        words = frozenset(fold(w) for w in words)
    # Longest first: a long word is rarer, so a text that has it is found sooner.
    return Needs(tuple(sorted(words, key=lambda w: (-len(w), w))), folded)


class Table(Generic[T]):
    """A table of (pattern, label) rules, in order, each pattern behind its words' test.

    `candidates(text)` yields the rules, in order, leaving out those whose pattern cannot
    match `text`: the first rule that matches among them is the first rule that matches."""

    def __init__(self, rules: Sequence[tuple[re.Pattern[str], T]]):
        self.rules = tuple(rules)
        self.gates = tuple(Gated(pattern) for pattern, _ in self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[tuple[re.Pattern[str], T]]:
        return iter(self.rules)

    def candidates(self, text: str) -> Iterator[tuple[re.Pattern[str], T]]:
        for rule, gate in zip(self.rules, self.gates, strict=True):
            if gate.may_match(text):
                yield rule


class Gated:
    """One pattern behind the test of its words: `search`, `finditer` and `findall` answer
    as the pattern's own do, without running it on a text that holds none of its words
    (tested on the whole text, also when `pos`/`endpos` bound the search: a word missing
    from the text is missing from any part of it)."""

    __slots__ = ("folded", "pattern", "words")

    def __init__(self, pattern: str | re.Pattern[str], flags: int = 0):
        self.pattern = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        need = needs(self.pattern)
        self.words = need.words
        self.folded = need.folded

    def may_match(self, text: str) -> bool:
        if self.words is None:
            return True
        return any(map((_fold_recent(text) if self.folded else text).__contains__, self.words))

    def search(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self.pattern.search(text, pos, endpos) if self.may_match(text) else None

    def finditer(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        return self.pattern.finditer(text, pos, endpos) if self.may_match(text) else iter(())

    def findall(self, text: str, pos: int = 0, endpos: int = sys.maxsize) -> list[Any]:
        return self.pattern.findall(text, pos, endpos) if self.may_match(text) else []


_recent: tuple[str, str] = ("", "")


def _fold_recent(text: str) -> str:
    """`fold(text)`, remembering the last text: the patterns of one table or one detector
    are asked about the same text one after another."""
    global _recent
    last, folded = _recent  # one read: another thread's write cannot split the pair
    if last is text or last == text:
        return folded
    folded = fold(text)
    _recent = (text, folded)
    return folded
