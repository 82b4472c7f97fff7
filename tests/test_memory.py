"""Conversation memory: over a 60-turn session the history sent to the model stays under
TUTOR_HISTORY_TOKEN_BUDGET on every turn, older turns are folded into the Redis summary
(`memory:summary:{session}`) incrementally, the summary is sent from then on, and a lost
summary is rebuilt from PostgreSQL."""

from __future__ import annotations

import re

from tests.support.stack import StartStack, new_candidate
from vibe.llm.base import Exchange
from vibe.llm.offline.memory import MAX_SUMMARY_CHARS, summarize_exchanges
from vibe.services.tutor.memory import MESSAGE_OVERHEAD_TOKENS, estimate_tokens
from vibe_dev.fake_gemini import FakeGemini, Recorded

BUDGET = 400
TURNS = 60
_SUMMARY = re.compile(r"Summary of turns \d+-\d+:[^\n]*")


def _question(turn: int) -> str:
    return (
        f"Turn {turn}: I tried storing each value with its index in a dict and looking up target minus the value; "
        f"for input number {turn} my loop still checks pairs twice. What am I missing?"
    )


def test_the_offline_summary_is_extractive_bilingual_and_bounded() -> None:
    exchanges = [
        Exchange(
            t,
            _question(t) if t % 2 else "두 수의 합을 빠르게 찾으려면 어떤 자료구조를 써야 할까요?",
            "Which value completes the pair?",
        )
        for t in range(1, TURNS + 1)
    ]
    summary = ""
    for i in range(0, TURNS, 7):  # extended a few turns at a time, as the tutor does
        summary = summarize_exchanges(exchanges[i : i + 7], summary)
        assert len(summary) <= MAX_SUMMARY_CHARS
    assert summary.startswith("(earlier turns omitted)")
    assert f"Turn {TURNS - 1}: candidate asked" in summary and f"턴 {TURNS}: 지원자 질문" in summary
    assert "tutor hinted: Which value completes the pair?" in summary


def _history_tokens(request: Recorded) -> int:
    """The estimate of what the request carries as memory: earlier messages + summary."""
    contents = request.body["contents"][:-1]  # the last one is this turn's message
    messages = sum(
        estimate_tokens("".join(p.get("text", "") for p in c["parts"])) + MESSAGE_OVERHEAD_TOKENS for c in contents
    )
    summary = _SUMMARY.search(request.system)
    return messages + (estimate_tokens(summary.group()) if summary else 0)


async def test_a_60_turn_session_stays_under_the_history_budget(start_stack: StartStack, fake: FakeGemini) -> None:
    env = {
        "VIBE_LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": fake.url,
        "EVALUATOR_WORKERS": "0",
        "TUTOR_HISTORY_TOKEN_BUDGET": str(BUDGET),
        "VIBE_LLM_RPM": "100000",  # 60 turns in seconds: the quota is not what is tested here
        "VIBE_LLM_TPM": "100000000",
    }
    async with start_stack(**env) as stack:
        candidate = await new_candidate(stack)
        redis = stack.redis()
        key = stack.key(f"memory:summary:{candidate.session_id}")
        try:
            first_summarised_turn = None
            for turn in range(1, TURNS + 1):
                events = await candidate.chat(_question(turn))
                assert events[-1].completed.turn == turn
                if first_summarised_turn is None and await redis.exists(key):
                    first_summarised_turn = turn
            stored = await redis.hgetall(key)
            summary_calls = len(fake.of("conversation_summary"))

            # A lost summary is rebuilt from the turns stored in PostgreSQL.
            await redis.delete(key)
            await candidate.chat(_question(TURNS + 1))
            rebuilt = await redis.hgetall(key)
        finally:
            await redis.aclose()

    replies = fake.of("tutor_reply")
    assert len(replies) == TURNS + 1
    sizes = [_history_tokens(r) for r in replies]
    print(f"history tokens per turn: max {max(sizes)}, last 10 {sizes[-11:-1]}; summary calls {summary_calls}")
    assert max(sizes) <= BUDGET, sizes
    assert first_summarised_turn is not None and first_summarised_turn < 15
    # Extended in steps, not recomputed every turn.
    assert 1 <= summary_calls <= (TURNS - first_summarised_turn) // 2
    through = int(stored["through_turn"])
    assert 1 <= through < TURNS
    # The last request carries the stored summary and only the turns after it.
    last = replies[TURNS - 1]
    assert str(stored["summary"]) in last.system
    first_history_message = last.body["contents"][0]["parts"][0]["text"]
    assert first_history_message == _question(through + 1)
    # The rebuild summarised in batches that each fit the budget, up to at least where it was.
    assert int(rebuilt["through_turn"]) >= through
    rebuild_requests = fake.of("conversation_summary")[summary_calls:]
    assert rebuild_requests and all(estimate_tokens(r.prompt) < 3 * BUDGET for r in rebuild_requests)
    assert sizes[-1] <= BUDGET
