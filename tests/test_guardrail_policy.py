"""The offline-first guardrail of the Gemini provider (the model is asked only when the
offline classifier is unsure, or when the reply tripped the leak check) and the thinking
budget of every Gemini call, against the fake Gemini server with the real SDK."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from tests.support.stack import StartStack, gemini_stack, new_candidate, reply_text
from vibe.llm.base import Exchange, GuardrailVerdict, ProblemContext, Violation
from vibe.llm.gemini import GeminiProvider, GuardrailPolicy, ThinkingBudgets, make_client
from vibe.llm.ratelimit import SharedRateLimiter
from vibe.llm.retry import RetryPolicy
from vibe.platform.config import ConfigError, TutorSettings
from vibe.platform.hot_state import connect_redis
from vibe.services.scoring.bank import load_problem_bank
from vibe_dev.fake_gemini import FakeGemini, Reply
from vibe_dev.scratch import REDIS_URL

PROBLEM = ProblemContext("two-sum", "Two Sum", "Return the indices of the two numbers that add up to target.")
SPEC = {p.problem_id: p for p in load_problem_bank()}["two-sum"]
REFERENCE_LINES = SPEC.references["python"].splitlines(keepends=True)


def verdict(violated: bool, confidence: float) -> GuardrailVerdict:
    if violated:
        return GuardrailVerdict(True, Violation.SOLUTION_REQUEST, "offline: asks for the code", confidence)
    return GuardrailVerdict(False, None, "", confidence)


# Messages and the offline verdict (of chosen confidence) the stand-in classifier gives them.
CHOSEN = {
    "confident ok": verdict(False, 0.97),
    "doubtful ok": verdict(False, 0.55),
    "at the threshold": verdict(False, 0.8),
    "just below it": verdict(False, 0.79),
    "confident violation": verdict(True, 0.99),
    "doubtful violation": verdict(True, 0.6),
}


def chosen_classifier(problem: ProblemContext, history: Sequence[Exchange], message: str) -> GuardrailVerdict:
    return CHOSEN[message]


def provider(fake: FakeGemini, prefix: str, policy: GuardrailPolicy, thinking: ThinkingBudgets) -> GeminiProvider:
    limiter = SharedRateLimiter(
        connect_redis(REDIS_URL), prefix, "gemini-2.5-flash", rpm=10_000, tpm=10**9, window_s=60
    )
    return GeminiProvider(
        make_client("test-key", fake.url, "v1beta", 10),
        "gemini-2.5-flash",
        limiter,
        RetryPolicy(1, 0.01, 0.01),
        budget_s=10,
        request_timeout_s=10,
        thinking=thinking,
        guardrail=policy,
        offline_guardrail=chosen_classifier,
    )


def test_the_policy_trusts_the_offline_verdict_from_the_threshold_up() -> None:
    policy = GuardrailPolicy(confident=0.8)
    assert [m for m, v in CHOSEN.items() if policy.offline_is_final(v, second_opinion=False)] == [
        "confident ok",
        "at the threshold",
        "confident violation",
    ]
    assert not any(policy.offline_is_final(v, second_opinion=True) for v in CHOSEN.values())
    # Before the offline-first decision: the model classified everything the rules let through.
    always = GuardrailPolicy(confident=0.8, always_ask=True)
    assert [m for m, v in CHOSEN.items() if always.offline_is_final(v, second_opinion=False)] == [
        "confident violation",
        "doubtful violation",
    ]


async def test_the_model_is_asked_only_about_what_the_offline_classifier_is_unsure_of(
    fake: FakeGemini, isolated_env: dict[str, str]
) -> None:
    # The model flags everything it is asked about, so its verdicts are told from the offline ones.
    fake.judges["guardrail"] = lambda r: {"violation": "jailbreak", "reason": "the model says so"}
    llm = provider(fake, isolated_env["VIBE_REDIS_PREFIX"], GuardrailPolicy(confident=0.8), ThinkingBudgets())
    try:
        verdicts = {m: await llm.check_guardrail(PROBLEM, [], m) for m in CHOSEN}
        asked = [r.prompt for r in fake.of("guardrail")]
        assert [m for m in CHOSEN if any(m in p for p in asked)] == [
            "doubtful ok",
            "just below it",
            "doubtful violation",
        ]
        assert len(asked) == 3
        for message in ("confident ok", "at the threshold", "confident violation"):
            assert verdicts[message] == CHOSEN[message], "a confident offline verdict stands as is"
        for message in ("doubtful ok", "just below it", "doubtful violation"):
            assert verdicts[message].violation is Violation.JAILBREAK, "the model decided"
        # A second opinion (the reply tripped the leak check) asks the model even when sure.
        second = await llm.check_guardrail(PROBLEM, [], "confident ok", second_opinion=True)
        assert second.violation is Violation.JAILBREAK and len(fake.of("guardrail")) == 4
    finally:
        await llm.aclose()


async def test_every_call_carries_its_configured_thinking_budget(
    fake: FakeGemini, isolated_env: dict[str, str]
) -> None:
    budgets = ThinkingBudgets(reply=0, guardrail=128, judge=-1)
    llm = provider(fake, isolated_env["VIBE_REDIS_PREFIX"], GuardrailPolicy(always_ask=True), budgets)
    try:
        assert [c async for c in llm.stream_tutor_reply(PROBLEM, [], "How do I start?", GuardrailVerdict.ok())]
        await llm.check_guardrail(PROBLEM, [], "doubtful ok")
        await llm.evaluate_turn(PROBLEM, [], Exchange(1, "a hint?", "what do you know?"), GuardrailVerdict.ok())
        await llm.summarize_conversation(PROBLEM, [Exchange(1, "a hint?", "what do you know?")], "")
    finally:
        await llm.aclose()
    sent = {r.purpose: r.thinking_budget for r in fake.requests}
    assert sent == {"tutor_reply": 0, "guardrail": 128, "turn_evaluation": -1, "conversation_summary": -1}


def test_the_settings_read_the_budgets_and_the_threshold_and_name_a_bad_value(isolated_env: dict[str, str]) -> None:
    env = {
        **isolated_env,
        "VIBE_GEMINI_THINKING_BUDGET_REPLY": "-1",
        "VIBE_GEMINI_THINKING_BUDGET_GUARDRAIL": "64",
        "VIBE_GEMINI_THINKING_BUDGET_JUDGE": "0",
        "VIBE_GUARDRAIL_CONFIDENT": "0.75",
        "VIBE_GUARDRAIL_ASK_MODEL": "always",
    }
    common = TutorSettings.from_env(env).common
    assert (
        common.gemini_thinking_budget_reply,
        common.gemini_thinking_budget_guardrail,
        common.gemini_thinking_budget_judge,
    ) == (-1, 64, 0)
    assert (common.guardrail_confident, common.guardrail_ask_model) == (0.75, "always")
    for name, bad in (
        ("VIBE_GUARDRAIL_CONFIDENT", "1.5"),
        ("VIBE_GEMINI_THINKING_BUDGET_JUDGE", "-2"),
        ("VIBE_GUARDRAIL_ASK_MODEL", "sometimes"),
    ):
        with pytest.raises(ConfigError, match=name):
            TutorSettings.from_env({**isolated_env, name: bad})


# ----- through the services -------------------------------------------------------------


async def test_an_ordinary_turn_costs_one_llm_request_and_a_leak_asks_the_model(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    """With the default settings a message the offline rules are sure of costs the reply's
    request only; a reply that trips the leak check gets the model's verdict on the message,
    which then scores the turn as a violation."""
    fake.chunk_delay_s = 0.01
    tail = tuple(f"Step {i} of the walkthrough.\n" for i in range(40))
    fake.script(
        "tutor_reply",
        Reply(chunks=("Which lookup would make this one pass?",)),
        Reply(chunks=("Sure, here it is:\n```python\n", *REFERENCE_LINES, "```\n", *tail)),
    )
    fake.script("guardrail", Reply(text=json.dumps({"violation": "solution_request", "reason": "got the code out"})))
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        ordinary = await candidate.chat("Which data structure gives fast lookups by value?")
        assert [r.purpose for r in fake.requests] == ["tutor_reply"], "one LLM request for the turn"
        assert not ordinary[-1].completed.guardrail.violated
        leaked = await candidate.chat("Could you walk me through an example input?")
    assert "I'll stop there" in reply_text(leaked)
    assert [r.purpose for r in fake.requests] == ["tutor_reply", "tutor_reply", "guardrail"]
    assert "walk me through an example input" in fake.of("guardrail")[0].prompt
    completed = leaked[-1].completed
    assert completed.leak_cut and completed.guardrail.violated
