"""Conversation memory without a model: an extractive summary, one line per turn saying
what the candidate asked or tried (their code shown as [code]) and what the tutor
hinted, in the candidate's language (English or Korean).

The summary is extended, never recomputed: new turns are appended to the previous
summary, and when it grows past ``MAX_SUMMARY_CHARS`` its oldest lines are dropped
first (a mark says so), so its size stays bounded however long the session runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from vibe.llm.base import Exchange
from vibe.llm.offline.text import CODE_BLOCK, clip, is_korean, summarize_answer, summarize_prompt

MAX_SUMMARY_CHARS = 1600  # ~400 tokens
_ASKED_CHARS, _HINTED_CHARS = 120, 120
OMITTED = "(earlier turns omitted)"


def summarize_exchanges(exchanges: Sequence[Exchange], previous_summary: str) -> str:
    lines = [ln for ln in previous_summary.splitlines() if ln.strip() and ln != OMITTED]
    omitted = previous_summary.startswith(OMITTED)
    lines.extend(_turn_line(ex) for ex in exchanges)
    while len(lines) > 1 and len("\n".join(lines)) + len(OMITTED) + 1 > MAX_SUMMARY_CHARS:
        lines.pop(0)
        omitted = True
    text = "\n".join(([OMITTED] if omitted else []) + lines)
    return text if len(text) <= MAX_SUMMARY_CHARS else clip(text, MAX_SUMMARY_CHARS)


def _turn_line(ex: Exchange) -> str:
    tried = bool(CODE_BLOCK.search(ex.user))
    asked = clip(summarize_prompt(ex.user), _ASKED_CHARS)
    hinted = clip(summarize_answer(ex.assistant), _HINTED_CHARS)
    if is_korean(ex.user):
        verb = "코드를 보여 줌" if tried else "질문"
        return f"턴 {ex.turn}: 지원자 {verb}: {asked} / 튜터 힌트: {hinted}"
    verb = "tried (showed code)" if tried else "asked"
    return f"Turn {ex.turn}: candidate {verb}: {asked} / tutor hinted: {hinted}"
