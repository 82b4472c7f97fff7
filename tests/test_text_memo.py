"""TextMemo: a text analysis remembered for as many texts as fit in a character budget,
least recently used first out; and the grader-text split keeps every active session's
conversation (the evaluator sanitises it again on every turn)."""

from __future__ import annotations

from vibe.llm import injection
from vibe.llm.memo import TextMemo, clear_memos


def test_a_text_memo_is_bounded_by_characters_and_keeps_what_fits() -> None:
    calls: list[str] = []

    def analyse(text: str) -> int:
        calls.append(text)
        return len(text)

    memo = TextMemo(analyse, budget=30, weight=lambda text, _: len(text))
    texts = ["a" * 10, "b" * 10, "c" * 10]
    # Three texts of 10 fit in 30: asked in a cycle, each is analysed once.
    for _ in range(5):
        assert [memo(t) for t in texts] == [10, 10, 10]
    assert calls == texts
    # A fourth pushes out the least recently used one only.
    memo("d" * 10)
    calls.clear()
    memo("b" * 10), memo("c" * 10), memo("d" * 10)
    assert calls == []
    memo("a" * 10)
    assert calls == ["a" * 10]
    # A text heavier than the whole budget is answered, not kept.
    calls.clear()
    memo("e" * 31), memo("e" * 31)
    assert calls == ["e" * 31] * 2
    memo.cache_clear()
    calls.clear()
    memo("b" * 10)
    assert calls == ["b" * 10]


def test_the_split_memo_holds_five_hundred_conversations() -> None:
    """500 sessions of 20 turns asked in rounds, each turn splitting its whole
    conversation (what a count of 4,096 entries could not hold: from the ninth round on it
    split almost every earlier message again)."""
    assert isinstance(injection.split_grader_text, TextMemo)
    clear_memos()
    computed = 0
    body = injection.split_grader_text.__wrapped__

    def counted(text: str) -> injection.GraderSplit:
        nonlocal computed
        computed += 1
        return body(text)

    split = TextMemo(counted, injection.SPLIT_MEMO_CHARS, injection._split_weight)
    conversations: dict[int, list[str]] = {s: [] for s in range(500)}
    for turn in range(20):
        for s, conversation in conversations.items():
            conversation.append(f"Session {s}, turn {turn}: why is my loop slow?")
            for message in conversation:
                split(message)
    assert computed == 500 * 20, "each message split once"
