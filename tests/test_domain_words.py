"""The guardrail's "is it about programming at all" signal (vibe/llm/offline/domain.py):
what counts as a word of the domain, in English and Korean, and what does not."""

from __future__ import annotations

import pytest

from vibe.llm.offline.domain import domain_share


@pytest.mark.parametrize(
    "message",
    [
        "why does my loop skip the last element?",
        "is sorting first a reasonable idea here",
        "what's the model of computation, RAM?",
        "I think the sliding-window breaks on duplicates",
        "배열을 정렬하면 인덱스가 바뀌잖아요",
        "재귀로 하면 시간초과 날까요?",
        "k가 짝수일 때 따로 처리해야 하나요?",  # a one-letter variable
        "j=1일 때 멈춰요",  # an assignment
        "f-string에서 :.6f 쓰면 반올림 돼요?",
        "does typing.List still work?",  # an attribute
        "is n^2 fast enough for 1e5?",
        "는 `seen` 에 먼저 넣어야 하나요",  # a backtick
    ],
)
def test_programming_talk_has_domain_words(message: str) -> None:
    words, share = domain_share(message)
    assert words and share > 0, message


@pytest.mark.parametrize(
    "message",
    [
        "how do I ask my landlord to fix the heater without sounding rude",
        "what's a good pasta recipe for four people",
        "전세 계약할 때 사기 안 당하려면 뭐 확인해야 해요?",
        "제가 실수했어요 다시 말씀해 주세요",  # 실수 is a mistake here, not a real number
        "in that case my phone broke and I lost the key again",  # everyday case and key
        "can u tell me a joke",  # texting's "u" is not a variable
    ],
)
def test_everyday_talk_has_none(message: str) -> None:
    words, share = domain_share(message)
    assert words and share == 0.0, message


def test_the_problem_statements_own_terms_count() -> None:
    assert domain_share("how many islands are there?")[1] == 0.0
    assert domain_share("how many islands are there?", frozenset({"islands"}))[1] > 0


def test_an_empty_or_symbol_only_message_has_no_words() -> None:
    assert domain_share("") == (0, 0.0)
    assert domain_share("?!… ㅋㅋ")[0] == 0
