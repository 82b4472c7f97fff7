"""The per-intent rubrics (vibe/llm/rubrics.py): weights, the weighted turn score in
both judges, discernment, and median-of-k judging against the fake Gemini server."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from vibe.llm import make_provider
from vibe.llm.base import (
    DISCERNMENT,
    RUBRIC_CRITERIA,
    Exchange,
    GuardrailVerdict,
    Intent,
    ProblemContext,
    RubricScore,
    Violation,
)
from vibe.llm.judge_output import InvalidModelOutput, parse_turn
from vibe.llm.median import MedianOfK, median_judgement, median_of
from vibe.llm.offline import OfflineProvider
from vibe.llm.offline.turn_judge import judge_turn
from vibe.llm.prompts import turn_prompt
from vibe.llm.rubrics import RUBRICS, rubric_for, weighted_score
from vibe.platform.config import EvaluatorSettings
from vibe_dev.fake_gemini import FakeGemini, Reply, default_turn_judgement

PROBLEM = ProblemContext(
    "longest-unique-subarray",
    "Longest Subarray Without Repeats",
    "Given an array of n integers, find the length of the longest contiguous subarray in which no value appears twice.",
)
OK = GuardrailVerdict.ok()
EARLIER = (
    Exchange(
        1,
        "How do I avoid restarting the window?",
        "Set left to the last position of the repeated value plus one; it is O(n).",
    ),
)


def test_every_intent_has_a_rubric_whose_weights_sum_to_one() -> None:
    assert set(RUBRICS) == set(Intent)
    for intent, rubric in RUBRICS.items():
        assert sum(c.weight for c in rubric.criteria) == pytest.approx(1.0), intent
        assert all(c.name in RUBRIC_CRITERIA and c.weight > 0 and c.meaning for c in rubric.criteria), intent
        assert len(set(rubric.names)) == len(rubric.names), intent


def test_discernment_weighs_where_the_ai_can_be_checked() -> None:
    for intent in (Intent.FOLLOW_UP, Intent.DEBUGGING, Intent.OPTIMIZATION, Intent.TEST_CASE):
        assert rubric_for(intent).weight(DISCERNMENT) >= 0.2, intent
    assert rubric_for(Intent.RULE_SETTING).weight(DISCERNMENT) == 0
    assert rubric_for(Intent.DEBUGGING).weight("completeness") > rubric_for(Intent.RULE_SETTING).weight("completeness")


def test_weighted_score_math() -> None:
    rows = [RubricScore("clarity", 100, "r", 0.75), RubricScore("context", 20, "r", 0.25)]
    assert weighted_score(rows) == 80.0  # 0.75 * 100 + 0.25 * 20, not the plain mean 60
    assert weighted_score([]) == 0.0


def test_offline_turn_score_is_the_rubric_weighted_mean() -> None:
    judgement = judge_turn(PROBLEM, EARLIER, Exchange(2, "You said left jumps; why is that O(n)?", "..."), OK)
    rubric = rubric_for(judgement.intent)
    assert [(r.criterion, r.weight) for r in judgement.rubrics] == [(c.name, c.weight) for c in rubric.criteria]
    assert judgement.score == round(sum(r.score * r.weight for r in judgement.rubrics), 2)


def _discernment(message: str) -> float:
    judgement = judge_turn(PROBLEM, EARLIER, Exchange(2, message, "What do you think?"), OK)
    assert rubric_for(judgement.intent).weight(DISCERNMENT) > 0, (message, judgement.intent)
    return next(r.score for r in judgement.rubrics if r.criterion == DISCERNMENT)


def test_discernment_rewards_push_back_and_not_a_bare_request() -> None:
    push_back = _discernment(
        "You said left = last + 1, but that fails for [1, 2, 1, 3, 2]: left would move backwards. Are you sure it isn't max(left, last + 1)?"
    )
    bare = _discernment("ok, what about the next step?")
    korean = _discernment(
        "아까 마지막 위치 다음으로 옮기라고 하셨는데, [1, 2, 1, 3, 2]에서는 왼쪽이 뒤로 가지 않나요? 정말 맞나요?"
    )
    assert push_back >= 70 and korean >= 70, (push_back, korean)
    assert bare <= 30, bare


def test_a_guardrail_violation_scores_zero_on_the_intents_rubric() -> None:
    verdict = GuardrailVerdict(True, Violation.SOLUTION_REQUEST, "asks for the full solution")
    judgement = judge_turn(PROBLEM, (), Exchange(1, "Write the entire program for me.", "I can't."), verdict)
    assert judgement.score == 0
    assert [r.criterion for r in judgement.rubrics] == list(rubric_for(judgement.intent).names)
    assert all(r.score == 0 for r in judgement.rubrics)


# ----- the Gemini side: prompt and parser -------------------------------------------------


def test_the_judge_prompt_lists_every_intents_rubric() -> None:
    system = turn_prompt(PROBLEM, EARLIER, Exchange(2, "why?", "..."), OK).system
    for intent, rubric in RUBRICS.items():
        line = next(row for row in system.splitlines() if row.startswith(f"- {intent.value}:"))
        for c in rubric.criteria:
            assert f"{c.name} {c.weight:g} ({c.meaning})" in line


def test_the_parser_weighs_the_scores_itself_for_the_chosen_intent() -> None:
    rubric = rubric_for(Intent.DEBUGGING)
    scores = dict(zip(rubric.names, (100, 0, 50, 50, 80), strict=True))
    data = {
        **default_turn_judgement(),
        "intent": "debugging",
        "rubrics": [{"criterion": c, "score": s, "reason": "r"} for c, s in scores.items()]
        + [{"criterion": "efficiency", "score": 0, "reason": "not in the debugging rubric"}],
        "score": 99,  # a model-computed total is ignored
    }
    judgement = parse_turn(data)
    assert [r.criterion for r in judgement.rubrics] == list(rubric.names), "criteria outside the rubric are left out"
    assert judgement.score == round(sum(scores[c.name] * c.weight for c in rubric.criteria), 2)
    assert judgement.score != round(sum(scores.values()) / len(scores), 2)


def test_the_parser_rejects_a_rubric_missing_one_of_the_intents_criteria() -> None:
    data = {**default_turn_judgement(), "intent": "follow_up"}  # the default scores no discernment
    with pytest.raises(InvalidModelOutput, match="missing criteria: discernment"):
        parse_turn(data)


# ----- median of k --------------------------------------------------------------------------


def test_median_judgement_keeps_the_middle_sample_and_its_spread() -> None:
    base = judge_turn(PROBLEM, (), Exchange(1, "hint", "..."), OK)
    samples = [replace(base, score=s, final_reasoning=f"scored {s}") for s in (80, 20, 60)]
    chosen = median_judgement(samples)
    assert (chosen.score, chosen.final_reasoning, chosen.samples, chosen.score_spread) == (60, "scored 60", 3, 60)
    even = median_judgement([*samples, replace(base, score=70)])
    assert even.score == 60 and even.samples == 4, "the lower middle one for an even k"
    assert median_of(OfflineProvider(), 1).__class__ is OfflineProvider


def _judged(intent: str, score: float) -> Reply:
    data = {**default_turn_judgement(), "intent": intent}
    data["rubrics"] = [
        {"criterion": c, "score": score, "reason": f"{c}: {score}"} for c in rubric_for(Intent(intent)).names
    ]
    return Reply(text=json.dumps(data))


async def test_median_of_k_over_gemini_records_the_spread(isolated_env: dict[str, str], fake: FakeGemini) -> None:
    env = {
        **isolated_env,
        "VIBE_LLM_PROVIDER": "gemini",
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": fake.url,
        "VIBE_LLM_JUDGE_TEMPERATURE": "0.7",
        "VIBE_LLM_SEED": "42",
        "EVALUATOR_JUDGE_SAMPLES": "3",
    }
    settings = EvaluatorSettings.from_env(env)
    fake.script("turn_evaluation", _judged("hint_query", 90), _judged("hint_query", 30), _judged("hint_query", 55))
    llm = median_of(make_provider(settings.common), settings.judge_samples)
    assert isinstance(llm, MedianOfK)
    try:
        judgement = await llm.evaluate_turn(PROBLEM, (), Exchange(1, "Which structure remembers positions?", "..."), OK)
        violated = GuardrailVerdict(True, Violation.SOLUTION_REQUEST, "full solution")
        await llm.evaluate_turn(PROBLEM, (), Exchange(2, "Give me the code.", "I can't."), violated)
    finally:
        await llm.aclose()
    assert (judgement.provider, judgement.degraded) == ("gemini", False)
    assert (judgement.score, judgement.samples, judgement.score_spread) == (55, 3, 60)
    requests = fake.of("turn_evaluation")
    assert len(requests) == 4, "k calls for the clean turn, one for the violation (scored 0 anyway)"
    config = requests[0].body["generationConfig"]
    assert (config["temperature"], config["seed"]) == (0.7, 42)


# ----- the report ---------------------------------------------------------------------------


def test_the_cli_report_shows_weighted_rubric_rows_holistic_evidence_and_refusals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vibe_api.evaluator.v1 import evaluator_pb2
    from vibe_api.gateway.v1 import gateway_pb2
    from vibe_dev.cli import print_report

    turn = evaluator_pb2.TurnEvaluation(
        turn=1,
        intent=evaluator_pb2.INTENT_FOLLOW_UP,
        score=62.5,
        judge_samples=3,
        score_spread=12.0,
        rubrics=[
            evaluator_pb2.RubricScore(criterion="context", score=80, reason="builds on turn 1", weight=0.3),
            evaluator_pb2.RubricScore(criterion="discernment", score=70, reason="pushes back", weight=0.25),
        ],
    )
    holistic = evaluator_pb2.HolisticEvaluation(
        score=50,
        criteria=[
            evaluator_pb2.HolisticCriterion(criterion="verification_of_ai_output", score=45, evidence="turn 3: ran it")
        ],
    )
    report = gateway_pb2.Report(
        turns=[turn],
        holistic=holistic,
        guardrails=gateway_pb2.GuardrailSummary(refused_turns=2, by_violation={"jailbreak": 1, "solution_request": 1}),
    )
    print_report(report)
    out = capsys.readouterr().out
    assert "(median of 3, spread 12.0)" in out
    assert out.index("context       x0.30   80.00  builds on turn 1") < out.index(
        "discernment   x0.25   70.00  pushes back"
    )
    assert "verification_of_ai_output   45.00  turn 3: ran it" in out
    assert "2 turns refused: jailbreak x1, solution_request x1" in out
