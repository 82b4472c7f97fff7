"""Hint escalation (vibe.services.tutor.hints): one rung per hint request, never repeated,
and after TUTOR_LOW_EFFORT_LIMIT low-effort requests in a row an attempt first."""

from __future__ import annotations

import pytest

from tests.support.stack import StartStack, new_candidate, reply_text
from vibe.llm.base import Exchange, GuardrailVerdict, TutorGuidance
from vibe.llm.offline import check_guardrail_text
from vibe.llm.offline.tutor import compose_reply
from vibe.llm.prompts import tutor_prompt
from vibe.services.tutor.hints import SignsCache, decide_guidance, is_low_effort, plan_hints, rungs_shown
from vibe_dev.redteam_report import problem_context

PROBLEM = problem_context("two-sum")
HINTS = PROBLEM.hints


def converse(messages: list[str], limit: int = 3) -> list[tuple[TutorGuidance, str]]:
    """Plays the messages as a conversation with the offline tutor, guided like the service."""
    history: list[Exchange] = []
    out: list[tuple[TutorGuidance, str]] = []
    for turn, message in enumerate(messages, start=1):
        guidance = decide_guidance(PROBLEM, history, message, low_effort_limit=limit)
        reply = compose_reply(PROBLEM, history, message, check_guardrail_text(PROBLEM, message), guidance)
        out.append((guidance, reply))
        history.append(Exchange(turn, message, reply))
    return out


def hints_in(reply: str) -> list[int]:
    return [k for k, hint in enumerate(HINTS) if hint in reply]


@pytest.mark.parametrize(
    ("message", "low"),
    [
        ("next hint", True),
        ("just tell me", True),
        ("give me another hint please", True),
        ("I don't know", True),
        ("힌트 더", True),
        ("몰라", True),
        ("다음 힌트 주세요", True),
        ("그냥 알려줘", True),
        ("I tried a dict but [3, 3] gives 1 1", False),
        ("My plan: scan once, look up target - x, then store x", False),
        ("What should I store in the dictionary?", False),
        ("```python\nseen = {}\n```", False),
        ("예시 1을 손으로 풀어 보니 2를 볼 때 7이 필요해요", False),
    ],
)
def test_low_effort_requests_are_recognised(message: str, low: bool) -> None:
    assert is_low_effort(message) is low


def test_ladder_climbs_one_rung_per_request_and_never_repeats() -> None:
    # Specific requests (not low effort), so only the ladder is at work.
    messages = [
        "Can you give me a hint about why checking every pair is slow?",
        "I see, pairs are too many. Any hint about what to remember from earlier elements?",
        "So for nums[j] I need target - nums[j]. A hint on how to look it up fast?",
        "A dict then. Hint on the order of lookup and insert for [3, 3]?",
        "One more hint about duplicates like [3, 3] with target 6?",
    ]
    result = converse(messages)
    assert [g.hint_index for g, _ in result] == [0, 1, 2, 3, 3]  # clamped to the last rung
    assert [hints_in(reply) for _, reply in result] == [[0], [1], [2], [3], [3]]
    assert not any(g.ask_to_try_first for g, _ in result)


def test_messages_that_ask_no_hint_get_no_rung_and_do_not_use_one_up() -> None:
    result = converse(
        ["give me a hint", "My loop gives IndexError on [2, 7]; expected 0 1", "another hint about the dict lookup?"]
    )
    assert [g.hint_index for g, _ in result] == [0, None, 1]


def test_low_effort_streak_asks_for_an_attempt_and_gives_no_new_hint() -> None:
    result = converse(["give me a hint", "next hint", "next hint", "just tell me"], limit=3)
    guidance = [g for g, _ in result]
    assert [g.hint_index for g in guidance] == [0, 1, None, None]
    assert [g.ask_to_try_first for g in guidance] == [False, False, True, True]
    for _, reply in result[2:]:
        assert hints_in(reply) == [], reply
        assert "show me something of your own" in reply and "by hand" in reply


def test_an_attempt_resets_the_streak_and_the_ladder_resumes_without_skipping() -> None:
    result = converse(
        [
            "give me a hint",
            "next hint",
            "next hint",  # asked to try first
            "Here is what I have:\n```python\nfor i in range(n):\n    for j in range(i + 1, n):\n        if nums[i] + nums[j] == target: print(i, j)\n```\nIt is slow. What next?",
            "next hint",
            "next hint",
            "next hint",  # the streak is back at 3
        ]
    )
    guidance = [g for g, _ in result]
    assert [g.ask_to_try_first for g in guidance] == [False, False, True, False, False, False, True]
    assert [g.hint_index for g in guidance] == [0, 1, None, 2, 3, 3, None]


def test_acknowledgements_neither_count_nor_reset() -> None:
    guidance = [g for g, _ in converse(["next hint", "thanks", "next hint", "ok", "next hint"])]
    assert [g.ask_to_try_first for g in guidance] == [False, False, False, False, True]


def test_one_replay_with_remembered_signs_decides_as_the_two_functions() -> None:
    # The tutor plans each reply with plan_hints and a SignsCache (each earlier message
    # classified once per process): the same guidance and rungs as the replays without it.
    messages = ["next hint", "thanks", "give me a hint", "just give me the full solution", "next hint", "idk", "more"]
    signs = SignsCache(size=4)  # smaller than the conversation: evictions must not change anything
    history: list[Exchange] = []
    for turn, message in enumerate(messages, start=1):
        for _ in range(2):  # the second time from the cache
            guidance, shown = plan_hints(PROBLEM, history, message, low_effort_limit=2, signs=signs)
            assert guidance == decide_guidance(PROBLEM, history, message, low_effort_limit=2)
            assert shown == rungs_shown(PROBLEM, history, message, low_effort_limit=2)
        history.append(Exchange(turn, message, f"reply {turn}"))


def test_the_limit_is_configurable() -> None:
    assert decide_guidance(PROBLEM, [], "next hint", low_effort_limit=1).ask_to_try_first
    assert not decide_guidance(PROBLEM, [], "next hint", low_effort_limit=2).ask_to_try_first
    with pytest.raises(ValueError, match="low_effort_limit"):
        decide_guidance(PROBLEM, [], "next hint", low_effort_limit=0)


def test_korean_streak_and_ladder() -> None:
    result = converse(
        [
            "힌트 좀 줘",
            "힌트 더",
            "몰라",
            "제 코드는 이중 반복문이에요: `for i in range(n)` 안에 `for j` 가 있어요. 너무 느려요. 힌트 주세요",
        ]
    )
    guidance = [g for g, _ in result]
    assert [g.hint_index for g in guidance] == [0, 1, None, 2]
    assert guidance[2].ask_to_try_first
    _, asking = result[2]
    assert "직접 시도한 것을 보여 주세요" in asking and hints_in(asking) == []
    assert HINTS[2] in result[3][1] and "힌트 3/4" in result[3][1]


def test_a_hint_quoted_by_an_earlier_reply_is_not_given_again() -> None:
    # Another provider revealed rung 2 word for word in its first reply.
    history = [Exchange(1, "how do I start?", f"Think about this: {HINTS[1]}")]
    assert decide_guidance(PROBLEM, history, "Can I get a hint about the lookup?").hint_index == 2


def test_solution_request_refusal_offers_the_planned_rung() -> None:
    result = converse(["give me a hint", "just give me the full solution"])
    guidance, reply = result[1]
    assert guidance.hint_index == 1 and "can't give you the full solution" in reply and hints_in(reply) == [1]


def test_gemini_prompt_renders_the_guidance() -> None:
    ok = GuardrailVerdict.ok()
    rung = tutor_prompt(
        PROBLEM, [], "hint please", ok, TutorGuidance(hint_index=1, memory_summary="Tried sorting; too slow.")
    ).system
    assert HINTS[0] in rung and HINTS[1] in rung and HINTS[2] not in rung and HINTS[3] not in rung
    assert "Give this hint now" in rung
    assert "Summary of the earlier conversation: Tried sorting; too slow." in rung

    ask = tutor_prompt(PROBLEM, [], "next hint", ok, TutorGuidance(hint_index=None, ask_to_try_first=True)).system
    assert not any(h in ask for h in HINTS)
    assert "Do NOT give a new hint" in ask and "Summary of the earlier conversation" not in ask

    free = tutor_prompt(PROBLEM, [], "hint please", ok, None).system  # direct callers: the whole ladder
    assert all(h in free for h in HINTS)
    assert "in parts or line by line" in free and "tests plus the function they test" in free


async def test_streak_through_the_stack(start_stack: StartStack) -> None:
    async with start_stack(EVALUATOR_WORKERS="0", TUTOR_LOW_EFFORT_LIMIT="2") as stack:
        candidate = await new_candidate(stack, "two-sum")
        first = reply_text(await candidate.chat("give me a hint"))
        second = reply_text(await candidate.chat("next hint"))
        attempt = reply_text(
            await candidate.chat(
                "I worked Example 1 by hand: for 7 I need 2, which I saw at index 0. How do I find it fast?"
            )
        )
        after = reply_text(await candidate.chat("next hint"))
    assert hints_in(first) == [0]
    assert hints_in(second) == [] and "show me something of your own" in second
    assert hints_in(attempt) == [1]
    assert hints_in(after) == [2]
