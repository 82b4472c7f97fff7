"""How much of the submission is code the tutor showed (winnowing, as in MOSS).

Both texts are normalised (comments and all whitespace removed, so re-indenting or re-spacing
does not hide a copy), cut into overlapping k-grams of ``MIN_MATCH_CHARS`` characters (the
minimum match length: shorter common runs such as ``for i in range(n):`` are everyday code),
hashed, and winnowed (the minimum hash of every window of ``WINDOW`` k-grams is a fingerprint).
Fingerprints of the problem's starter code are subtracted from the submission's first.

``score`` = percentage of the submission's remaining fingerprints that also occur in code blocks
of the tutor's replies.  ``flagged`` when it reaches ``FLAG_THRESHOLD``.  It is a flag for a
human reviewer, never a penalty: the grade does not use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vibe.shared.fingerprint import MIN_MATCH_CHARS, WINDOW
from vibe.shared.fingerprint import fingerprints as _fingerprints
from vibe.shared.fingerprint import normalise as _normalise

FLAG_THRESHOLD = 40.0
MAX_FRAGMENTS = 10
METHOD = (
    f"winnowing: comments and whitespace removed, {MIN_MATCH_CHARS}-character k-grams, window "
    f"{WINDOW}; starter-code fingerprints subtracted; score = % of the submission's fingerprints "
    f"found in code the tutor showed; flagged at >= {FLAG_THRESHOLD:g}% (a flag for review, not a penalty)"
)

_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)


@dataclass(frozen=True)
class ShownCode:
    turn: int
    text: str


@dataclass(frozen=True)
class Fragment:
    turn: int
    submitted_first_line: int
    submitted: str
    shown: str


@dataclass(frozen=True)
class IntegrityReport:
    checked: bool
    score: float
    flagged: bool
    fragments: list[Fragment]
    method: str = METHOD


NOT_CHECKED = IntegrityReport(checked=False, score=0.0, flagged=False, fragments=[])


def code_blocks(turn: int, reply: str) -> list[ShownCode]:
    """The fenced code blocks of one tutor reply (prose is not code the candidate could paste)."""
    return [ShownCode(turn, block) for block in _FENCE.findall(reply) if block.strip()]


def _line_span(text: str, offsets: list[int], start: int, end: int) -> tuple[int, str]:
    """First line number and the full lines of ``text`` covering normalised chars start..end."""
    first, last = offsets[start], offsets[min(end, len(offsets)) - 1]
    line_start = text.rfind("\n", 0, first) + 1
    line_end = text.find("\n", last)
    return text.count("\n", 0, first) + 1, text[line_start : line_end if line_end >= 0 else len(text)]


def compare(submission: str, shown: list[ShownCode], starter_code: str = "") -> IntegrityReport:
    sub_norm, sub_offsets = _normalise(submission)
    mine = _fingerprints(sub_norm)
    for h in _fingerprints(_normalise(starter_code)[0]):
        mine.pop(h, None)
    if not mine:
        return IntegrityReport(checked=True, score=0.0, flagged=False, fragments=[])
    # hash -> (block index, position in that block's normalised text)
    theirs: dict[int, tuple[int, int]] = {}
    blocks = [(code, *_normalise(code.text)) for code in shown]
    for b, (_, norm, _) in enumerate(blocks):
        for h, pos in _fingerprints(norm).items():
            theirs.setdefault(h, (b, pos))
    common = sorted((pos, theirs[h]) for h, pos in mine.items() if h in theirs)
    score = round(100.0 * len(common) / len(mine), 2)

    # Merge matches that are adjacent in both texts into fragments shown side by side.
    runs: list[list[int]] = []  # [block, sub_start, sub_end, shown_start, shown_end]
    for sub_pos, (b, pos) in common:
        last = runs[-1] if runs else None
        if last and last[0] == b and sub_pos <= last[2] + WINDOW and pos >= last[3]:
            last[2], last[4] = sub_pos + MIN_MATCH_CHARS, max(last[4], pos + MIN_MATCH_CHARS)
        else:
            runs.append([b, sub_pos, sub_pos + MIN_MATCH_CHARS, pos, pos + MIN_MATCH_CHARS])
    runs.sort(key=lambda r: r[2] - r[1], reverse=True)
    fragments = []
    for b, s0, s1, t0, t1 in runs[:MAX_FRAGMENTS]:
        code, _, offsets = blocks[b]
        line, sub_text = _line_span(submission, sub_offsets, s0, s1)
        _, shown_text = _line_span(code.text, offsets, t0, t1)
        fragments.append(Fragment(code.turn, line, sub_text, shown_text))
    fragments.sort(key=lambda f: f.submitted_first_line)
    return IntegrityReport(checked=True, score=score, flagged=score >= FLAG_THRESHOLD, fragments=fragments)
