"""Memoised pure text analyses of the LLM layer.

One chat turn reads the same texts several times (the guardrail's rules of the message,
then its rule features; the intent and band heads of the turn judge; the grader-text
check of every earlier message, again on every later turn, when the conversation is
sanitised for a judge), and these analyses are pure functions of their arguments: each
keeps its most recent answers. `clear_memos` forgets them all (a benchmark measuring the
cost of a message never seen).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")

# Recent calls each memoised analysis keeps by default: a few hundred entries hold any
# session's recent messages.
MEMO_SIZE = 512
_MEMOS: list[Any] = []


def memo_of(size: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """`fn` memoised on its arguments (strings and flags; the result must be immutable),
    the `size` most recent calls."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        cached = functools.lru_cache(maxsize=size)(fn)
        _MEMOS.append(cached)
        return cast("Callable[P, R]", cached)

    return wrap


def memo(fn: Callable[P, R]) -> Callable[P, R]:
    """`fn` memoised on its arguments, the MEMO_SIZE most recent calls."""
    return memo_of(MEMO_SIZE)(fn)


def clear_memos() -> None:
    """Forgets every memoised analysis."""
    for cached in _MEMOS:
        cached.cache_clear()
