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
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, cast

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


class TextMemo(Generic[R]):
    """`fn(text)` memoised for the most recently used texts, as many as fit in `budget`
    characters (each entry weighs `weight(text, result)`), not a count of entries.

    Why: an analysis every later turn repeats on every earlier message (the grader-text
    check of a conversation sanitised for the judge) needs the messages of every active
    session at once. A count that is too small for them evicts each message just before
    its session's next turn asks for it again (least recently used, in a cycle), so every
    turn analyses its whole conversation again; a count large enough for short messages
    would not bound the memory of long ones."""

    def __init__(self, fn: Callable[[str], R], budget: int, weight: Callable[[str, R], int]):
        self._fn = fn
        self._budget = budget
        self._weight = weight
        self._entries: OrderedDict[str, tuple[R, int]] = OrderedDict()
        self._total = 0
        functools.update_wrapper(self, fn)
        self.__wrapped__: Callable[[str], R] = fn  # the analysis itself, uncached

    def __call__(self, text: str) -> R:
        entry = self._entries.get(text)
        if entry is not None:
            self._entries.move_to_end(text)
            return entry[0]
        result = self._fn(text)
        self.put(text, result)
        return result

    def put(self, text: str, result: R) -> None:
        """Remembers `result` as fn(text) (computed elsewhere: another thread)."""
        if text in self._entries:
            return
        weight = self._weight(text, result)
        if weight <= self._budget:
            self._entries[text] = (result, weight)
            self._total += weight
            while self._total > self._budget:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._total -= dropped

    def cache_clear(self) -> None:
        self._entries.clear()
        self._total = 0


def text_memo(budget: int, weight: Callable[[str, R], int]) -> Callable[[Callable[[str], R]], TextMemo[R]]:
    """`TextMemo` as a decorator (forgotten by `clear_memos` too)."""

    def wrap(fn: Callable[[str], R]) -> TextMemo[R]:
        memo = TextMemo(fn, budget, weight)
        _MEMOS.append(memo)
        return memo

    return wrap


def clear_memos() -> None:
    """Forgets every memoised analysis."""
    for cached in _MEMOS:
        cached.cache_clear()
