"""What each LLM request cost, collected for whoever asked for it.

Providers do not know sessions or turns, and the `LLMProvider` methods return plain
results, so usage travels on the side: a service opens a `UsageMeter` around the calls
it makes for one turn (a context variable, so it follows the asyncio task through
wrappers and async generators) and every request a provider sends lands in it.
The service then stores the meter's calls with the session and turn
(`vibe.llm.usage_store`).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallUsage:
    """One request sent to an LLM (a retry is another request)."""

    purpose: str  # guardrail | tutor_reply | turn_evaluation | holistic_evaluation
    provider: str
    model: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0
    ok: bool = True  # False: it failed (429, 5xx, broken stream, unusable output)


@dataclass
class UsageMeter:
    calls: list[CallUsage] = field(default_factory=list)


_current: contextvars.ContextVar[UsageMeter | None] = contextvars.ContextVar("vibe_llm_usage", default=None)


@contextlib.contextmanager
def metered() -> Iterator[UsageMeter]:
    """Collects every LLM request made inside the block (in this task)."""
    meter = UsageMeter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def record(call: CallUsage) -> None:
    """Called by providers for every request; a no-op when nobody is metering."""
    meter = _current.get()
    if meter is not None:
        meter.calls.append(call)
