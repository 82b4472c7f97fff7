"""Code fingerprints by winnowing (as in MOSS), shared by the scoring service's integrity
check (submission vs. code the tutor showed) and the tutor's leak check (reply vs. the
reference solutions).

A text is normalised (comments and all whitespace removed, so re-indenting or re-spacing
does not hide a copy), cut into overlapping k-grams of ``MIN_MATCH_CHARS`` characters (the
minimum match length: shorter common runs such as ``for i in range(n):`` are everyday
code), hashed, and winnowed: the minimum hash of every window of ``WINDOW`` consecutive
k-grams (the rightmost one on ties) is a fingerprint.

``fingerprints`` does it for a whole text; ``StreamFingerprinter`` does the same for a
text that arrives in pieces, at a cost per piece proportional to the piece alone. The
stream version can also replace every identifier that is not a keyword by one
placeholder (``identifiers=True``), so renaming variables does not hide a copy either.
"""

from __future__ import annotations

import hashlib
import keyword
import re

MIN_MATCH_CHARS = 30
WINDOW = 4

_COMMENT = re.compile(r"(#|//)[^\n]*")
# Kept as they are when identifiers are normalised: Python's, plus C++'s and JavaScript's.
KEYWORDS = frozenset(keyword.kwlist) | frozenset(
    [
        "auto",
        "bool",
        "break",
        "case",
        "catch",
        "char",
        "class",
        "const",
        "continue",
        "default",
        "delete",
        "do",
        "double",
        "else",
        "enum",
        "extern",
        "float",
        "for",
        "function",
        "if",
        "int",
        "let",
        "long",
        "namespace",
        "new",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "struct",
        "switch",
        "template",
        "this",
        "throw",
        "try",
        "typedef",
        "typename",
        "unsigned",
        "using",
        "var",
        "void",
        "while",
        "include",
        "vector",
        "std",
        "string",
        "map",
        "set",
        "unordered_map",
        "const_iterator",
        "size_t",
    ]
)
_PLACEHOLDER = "v"


def normalise(text: str) -> tuple[str, list[int]]:
    """Text without comments and whitespace, plus each kept character's offset in ``text``."""
    blanked = _COMMENT.sub(lambda m: " " * len(m.group()), text)
    kept = [(ch, i) for i, ch in enumerate(blanked) if not ch.isspace()]
    return "".join(ch for ch, _ in kept), [i for _, i in kept]


def kgram_hash(kgram: str) -> int:
    return int.from_bytes(hashlib.blake2b(kgram.encode(), digest_size=8).digest(), "big")


def fingerprints(norm: str) -> dict[int, int]:
    """Winnowed k-gram hashes of normalised text -> position of their first occurrence."""
    hashes = [kgram_hash(norm[i : i + MIN_MATCH_CHARS]) for i in range(len(norm) - MIN_MATCH_CHARS + 1)]
    chosen: dict[int, int] = {}
    for start in range(max(1, len(hashes) - WINDOW + 1)):
        window = hashes[start : start + WINDOW]
        if not window:
            break
        low = min(window)
        pos = start + max(i for i, h in enumerate(window) if h == low)  # rightmost minimum
        chosen.setdefault(low, pos)
    return chosen


def text_fingerprints(text: str, identifiers: bool = False) -> set[int]:
    """The fingerprints of raw text (normalised first; see StreamFingerprinter)."""
    if not identifiers:
        return set(fingerprints(normalise(text)[0]))
    stream = StreamFingerprinter(identifiers=True)
    stream.feed(text + "\n")  # the newline ends a last identifier
    return set(stream.seen)


class StreamFingerprinter:
    """Fingerprints of a text fed piece by piece, equal to those of the whole text once
    complete (texts shorter than one window aside).

    The normalisation runs as a small state machine (inside a comment until the end of
    the line; a trailing ``/`` waits for the next character to tell ``//`` from a
    division), and each new normalised character adds one k-gram and one window: the
    work per piece is proportional to its length, whatever came before.
    """

    def __init__(self, identifiers: bool = False) -> None:
        self.identifiers = identifiers
        self._word = ""  # the identifier being read (identifiers=True)
        self._in_comment = False
        self._pending_slash = False
        self._tail = ""  # the last MIN_MATCH_CHARS - 1 normalised characters
        self._hashes: list[int] = []  # the last WINDOW k-gram hashes
        self._seen: set[int] = set()

    @property
    def seen(self) -> set[int]:
        return self._seen

    def feed(self, piece: str) -> list[int]:
        """Adds `piece`; returns the fingerprints it revealed for the first time."""
        new: list[int] = []
        for ch in piece:
            if self._in_comment:
                if ch == "\n":
                    self._in_comment = False
                continue
            if self._pending_slash:
                self._pending_slash = False
                if ch == "/":
                    self._in_comment = True
                    continue
                self._add("/", new)
            if ch == "#":
                self._end_word(new)
                self._in_comment = True
            elif ch == "/":
                self._end_word(new)
                self._pending_slash = True
            elif ch.isspace():
                self._end_word(new)
            elif self.identifiers and (ch.isalnum() or ch == "_"):
                self._word += ch
            else:
                self._end_word(new)
                self._add(ch, new)
        return new

    def _end_word(self, new: list[int]) -> None:
        word, self._word = self._word, ""
        if word:
            for ch in word if word in KEYWORDS or word[0].isdigit() else _PLACEHOLDER:
                self._add(ch, new)

    def _add(self, ch: str, new: list[int]) -> None:
        kgram = self._tail + ch
        if len(kgram) < MIN_MATCH_CHARS:
            self._tail = kgram
            return
        self._tail = kgram[1:]
        self._hashes.append(kgram_hash(kgram))
        if len(self._hashes) > WINDOW:
            del self._hashes[0]
        if len(self._hashes) == WINDOW:
            low = min(self._hashes)
            if low not in self._seen:
                self._seen.add(low)
                new.append(low)
