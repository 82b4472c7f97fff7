"""Conversation memory: the history sent to the model stays under
TUTOR_HISTORY_TOKEN_BUDGET tokens; older turns live on as a summary.

Tokens are estimated without a tokenizer call (`estimate_tokens`): ~4 characters per
token for ASCII text (English and code, Gemini's average) and one token per other
character (a Hangul syllable is one token or more), plus a few tokens per message for
its framing. It errs on the high side, so the real count stays under the budget.

The summary covers turns 1..`through_turn` and lives in Redis
(`memory:summary:{session}`) with that turn number. It is only ever extended: turns it
covers are never sent again, and when the turns after it outgrow the budget, the oldest
of them are folded into it (`summarize_conversation`), enough of them that the next
few turns fit without another summary call. PostgreSQL stays the system of record: a
lost summary is rebuilt from the stored turns, in batches that each fit the budget.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from vibe.llm.base import Exchange, LLMProvider, ProblemContext
from vibe.platform.hot_state import Keys
from vibe.platform.storefaults import hot_copy_optional

log = logging.getLogger(__name__)

MESSAGE_OVERHEAD_TOKENS = 4  # role and framing of one message
SUMMARY_SHARE = 0.25  # of the budget, at most, for the summary
SUMMARY_TTL_S = 24 * 3600


def estimate_tokens(text: str) -> int:
    ascii_chars = len(text.encode("ascii", "ignore"))
    return -(-ascii_chars // 4) + (len(text) - ascii_chars)


def exchange_tokens(ex: Exchange) -> int:
    return estimate_tokens(ex.user) + estimate_tokens(ex.assistant) + 2 * MESSAGE_OVERHEAD_TOKENS


def history_tokens(exchanges: Sequence[Exchange], summary: str = "") -> int:
    """What `exchanges` and `summary` cost in the model's prompt (the estimate)."""
    return sum(exchange_tokens(ex) for ex in exchanges) + (estimate_tokens(summary) if summary else 0)


def clip_to_tokens(text: str, tokens: int) -> str:
    """The end of `text` (its newest lines) within `tokens`."""
    lines = text.splitlines()
    while len(lines) > 1 and estimate_tokens("\n".join(lines)) > tokens:
        lines.pop(0)
    text = "\n".join(lines)
    while text and estimate_tokens(text) > tokens:
        text = text[len(text) // 8 + 1 :]
    return text


@dataclass(frozen=True)
class Recall:
    history: list[Exchange]  # the recent turns, sent as they are
    summary: str  # of the turns before them ("" when all fit)
    through_turn: int  # the last turn the summary covers (0 = none)


class ConversationMemory:
    def __init__(self, redis: aioredis.Redis, keys: Keys, llm: LLMProvider, budget_tokens: int):
        if budget_tokens < 100:
            raise ValueError(f"history token budget must be >= 100, got {budget_tokens}")
        self.redis = redis
        self.keys = keys
        self.llm = llm
        self.budget = budget_tokens
        self.summary_cap = int(budget_tokens * SUMMARY_SHARE)

    async def recall(self, session_id: str, problem: ProblemContext, exchanges: Sequence[Exchange]) -> Recall:
        """The recent turns and the summary of the older ones, together within budget."""
        if history_tokens(exchanges) <= self.budget:
            # The whole conversation fits: no summary can have been needed (the history only
            # grows; a budget raised since only means more is sent as is), so the stored one
            # is not even read: a Redis round trip saved before most replies start.
            return Recall(list(exchanges), "", 0)
        through, summary = await self._load(session_id, exchanges)
        recent = [ex for ex in exchanges if ex.turn > through]
        if history_tokens(recent, summary) <= self.budget:
            return Recall(recent, summary, through)
        # Fold the oldest turns into the summary until the rest takes at most half of
        # what the summary leaves, so the next turns fit without another call.
        room = (self.budget - self.summary_cap) // 2
        keep = len(recent)
        while keep > 0 and history_tokens(recent[len(recent) - keep :]) > room:
            keep -= 1
        older, recent = recent[: len(recent) - keep], recent[len(recent) - keep :]
        try:
            for batch in self._batches(older):
                summary = clip_to_tokens(
                    await self.llm.summarize_conversation(problem, batch, summary), self.summary_cap
                )
                through = batch[-1].turn
                await self._save(session_id, through, summary)
        except Exception:
            # The reply matters more than the memory: go on with what is summarised so
            # far; the turns not yet folded in are retried on the next turn.
            log.exception("could not extend the conversation summary", extra={"session_id": session_id})
        return Recall(recent, summary, through)

    def _batches(self, older: Sequence[Exchange]) -> list[list[Exchange]]:
        """`older` cut so that each summary request carries at most a budget of turns."""
        batches: list[list[Exchange]] = [[]]
        for ex in older:
            if batches[-1] and history_tokens(batches[-1] + [ex]) > self.budget:
                batches.append([])
            batches[-1].append(ex)
        return [b for b in batches if b]

    async def _load(self, session_id: str, exchanges: Sequence[Exchange]) -> tuple[int, str]:
        stored: dict[str, str] = {}
        with hot_copy_optional("read the conversation summary"):  # lost: rebuilt from the turns
            stored = cast("dict[str, str]", await self.redis.hgetall(self.keys.memory_summary(session_id)))
        try:
            through, summary = int(stored.get("through_turn", 0)), stored.get("summary", "")
        except ValueError:
            through, summary = 0, ""
        last = exchanges[-1].turn if exchanges else 0
        if through > last:  # not this conversation's summary (it cannot run ahead of it)
            return 0, ""
        return through, clip_to_tokens(summary, self.summary_cap)  # the budget may have shrunk since

    async def _save(self, session_id: str, through: int, summary: str) -> None:
        key = self.keys.memory_summary(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"through_turn": through, "summary": summary})
            pipe.expire(key, SUMMARY_TTL_S)
            await pipe.execute()
