"""The caller's deadline, carried to the LLM layer without widening its interface.

A service that knows when its own caller gives up (the submit guard's gRPC deadline)
opens a `deadline_scope`; every LLM call inside it — limiter waits, attempts, backoff —
ends in time for the service to fall back and still answer.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("vibe_llm_deadline", default=None)


@contextlib.contextmanager
def deadline_scope(at: float) -> Iterator[None]:
    """LLM calls inside the block end by `at` (a `time.monotonic()` instant)."""
    outer = _deadline.get()
    token = _deadline.set(at if outer is None else min(at, outer))
    try:
        yield
    finally:
        _deadline.reset(token)


def call_deadline(budget_s: float) -> float:
    """When a call starting now must be over: its own budget, or the caller's deadline
    if that comes first."""
    own = time.monotonic() + budget_s
    outer = _deadline.get()
    return own if outer is None else min(own, outer)
