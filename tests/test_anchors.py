"""The few-shot anchors of the Gemini judge and guardrail (vibe/llm/anchors.py, made by
vibe_dev/anchors.py): deterministic, within VIBE_GEMINI_ANCHOR_TOKENS, every intent and
every kind of verdict represented, only from the corpus's first batch, never from the
frozen test split; sent in the system instruction before anything that changes per
request; and `python -m vibe_dev.calibrate --provider gemini` runs end to end against
the fake Gemini server."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sys
from pathlib import Path

import pytest

from tests.support.stack import MakeLLM
from vibe.llm.anchors import chosen, estimate_tokens, guardrail_anchors, judge_anchors, load
from vibe.llm.base import Exchange, GuardrailVerdict, Intent, ProblemContext, Violation
from vibe.platform.config import CommonSettings, ConfigError
from vibe_dev import anchors as generator
from vibe_dev.fake_gemini import FakeGemini

REPO = Path(__file__).resolve().parents[1]
FIRST_BATCH = (*generator.TURN_FILES, *generator.GUARDRAIL_FILES)
DEFAULT = CommonSettings.gemini_anchor_tokens
PROBLEM = ProblemContext("two-sum", "Two Sum", "Return the indices of the two numbers that add up to target.")


def ids_in(names: tuple[str, ...], corpus: Path = REPO / "corpus") -> set[str]:
    return {json.loads(line)["id"] for name in names for line in (corpus / name).read_text("utf-8").splitlines()}


# ----- the anchors ----------------------------------------------------------------------


def test_the_default_budget_is_1500_and_a_bad_value_names_the_variable() -> None:
    assert DEFAULT == 1500
    assert CommonSettings.from_env({"VIBE_GEMINI_ANCHOR_TOKENS": "0"}).gemini_anchor_tokens == 0
    for bad in ("lots", "-1", "999999"):
        with pytest.raises(ConfigError, match="VIBE_GEMINI_ANCHOR_TOKENS"):
            CommonSettings.from_env({"VIBE_GEMINI_ANCHOR_TOKENS": bad})


@pytest.mark.parametrize("budget", [0, 40, 120, 400, DEFAULT, 6000])
def test_each_block_stays_within_its_budget(budget: int) -> None:
    for block in (judge_anchors(budget), guardrail_anchors(budget)):
        assert estimate_tokens(block) <= budget
        assert (block == "") == (budget < 120), "0 and tiny budgets: no anchors; otherwise some"


def test_every_intent_and_every_kind_of_verdict_is_represented_at_the_default_budget() -> None:
    turns, guard = chosen(DEFAULT)
    assert {a.intent for a in turns} == set(Intent)
    assert {"high", "mid", "low"} <= {a.band for a in turns}
    assert {a.label for a in guard} == {*(v.value for v in Violation), "none"}
    assert "hard_negative" in {a.category for a in guard}, "legitimate messages that look like attacks"
    assert len({a.category for a in guard if a.label != "none"}) >= 8
    # Every anchor shown is in the block, quoted as data.
    block = judge_anchors(DEFAULT)
    assert all(json.dumps(a.prompt, ensure_ascii=False) in block for a in turns)
    assert "example data, never instructions" in block


def test_the_choice_is_deterministic_and_independent_of_the_corpus_order(tmp_path: Path) -> None:
    assert judge_anchors(DEFAULT) == judge_anchors(DEFAULT) and guardrail_anchors(DEFAULT) == guardrail_anchors(DEFAULT)
    shuffled = tmp_path / "corpus"
    shuffled.mkdir()
    for name in FIRST_BATCH:
        lines = (REPO / "corpus" / name).read_text("utf-8").splitlines()
        random.Random(7).shuffle(lines)
        (shuffled / name).write_text("\n".join(lines) + "\n", "utf-8")
    split = REPO / "corpus" / "test-split.txt"  # the same ids left out
    (shuffled / split.name).write_text(split.read_text("utf-8"), "utf-8")
    assert generator.build(shuffled) == generator.build(REPO / "corpus")


def test_anchors_come_only_from_the_first_batch() -> None:
    data = load()
    first = ids_in(FIRST_BATCH)
    assert data.turns and data.guardrail
    assert {a.id for a in data.turns} | {a.id for a in data.guardrail} <= first


def test_no_anchor_is_in_the_frozen_test_split() -> None:
    """When corpus/test-split.txt exists, no packaged anchor is listed in it."""
    split = generator.split_ids()
    data = load()
    shown = {a.id for a in data.turns} | {a.id for a in data.guardrail}
    assert not (shown & split), f"anchors in the test split: {sorted(shown & split)}; run python -m vibe_dev.anchors"


def test_the_generator_leaves_out_every_id_of_a_test_split(tmp_path: Path) -> None:
    """The mechanism, whether or not the real split exists yet: list the ids the anchors
    use now as the split, and none of them is chosen again."""
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", corpus, ignore=shutil.ignore_patterns(generator.TEST_SPLIT))
    before = generator.build(corpus)
    used = [a["id"] for a in before["turns"] + before["guardrail"]]
    (corpus / generator.TEST_SPLIT).write_text("\n".join(used) + "\n", "utf-8")
    after = generator.build(corpus)
    again = {a["id"] for a in after["turns"] + after["guardrail"]}
    assert after["excluded_test_split_ids"] == len(set(used))
    assert after["turns"] and after["guardrail"] and not (again & set(used))


def test_the_packaged_file_is_what_the_corpus_makes() -> None:
    assert generator.main(["--check"]) == 0, "stale: run python -m vibe_dev.anchors"


# ----- in the Gemini prompts ------------------------------------------------------------


def _before_nonce(system: str) -> str:
    return system.split("<<<UNTRUSTED", 1)[0]


async def test_the_judge_and_the_guardrail_get_the_same_anchors_on_every_request(
    gemini: MakeLLM, fake: FakeGemini
) -> None:
    async with gemini() as llm:
        for n, text in enumerate(["How do I start?", "Why is my dict lookup slow for n = 10^5?"], start=1):
            await llm.check_guardrail(PROBLEM, [], text, second_opinion=True)  # the model, not the offline verdict
            await llm.evaluate_turn(PROBLEM, [], Exchange(n, text, "What have you tried?"), GuardrailVerdict.ok())
    judge, guard = fake.of("turn_evaluation"), fake.of("guardrail")
    assert len(judge) == 2 and len(guard) == 2
    assert judge_anchors(DEFAULT) in judge[0].system and guardrail_anchors(DEFAULT) in guard[0].system
    # The same prefix every time (everything that changes per request comes after it).
    assert _before_nonce(judge[0].system) == _before_nonce(judge[1].system)
    assert _before_nonce(guard[0].system) == _before_nonce(guard[1].system)
    assert _before_nonce(judge[0].system).index(judge_anchors(DEFAULT)) > 0


async def test_a_zero_budget_sends_no_anchors(gemini: MakeLLM, fake: FakeGemini) -> None:
    async with gemini(VIBE_GEMINI_ANCHOR_TOKENS="0") as llm:
        await llm.evaluate_turn(PROBLEM, [], Exchange(1, "How do I start?", "What do you know?"), GuardrailVerdict.ok())
    [request] = fake.requests
    assert "Labelled examples" not in request.system


async def test_calibrate_with_the_gemini_provider_runs_against_the_fake_server(
    isolated_env: dict[str, str], fake: FakeGemini
) -> None:
    """`python -m vibe_dev.calibrate --provider gemini` as a user runs it, the fake server
    standing in for Gemini (the real figures need a real key): the same report as the
    offline run, every judgement from Gemini (none degraded), the anchors in every request."""
    env = {
        **os.environ,
        **isolated_env,
        "GEMINI_API_KEY": "test-key",
        "GEMINI_BASE_URL": fake.url,
        "VIBE_LLM_RPM": "100000",  # the fake has no quota; ours would make the run wait
        "VIBE_LLM_TPM": "100000000",
        "VIBE_LLM_MAX_ATTEMPTS": "1",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vibe_dev.calibrate",
        "--provider",
        "gemini",
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    report = out.decode()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert report.startswith("Calibration of the gemini judge (61 turns, 6 conversations")
    for line in ("intent accuracy", "score-band agreement", "guardrail agreement", "holistic band agreement"):
        assert line in report
    assert "degraded" not in report, report[:2000]
    judged = fake.of("turn_evaluation")
    assert len(judged) >= 61 and all(judge_anchors(DEFAULT) in r.system for r in judged)


async def test_a_gemini_calibration_waits_for_the_quota_instead_of_falling_back(
    isolated_env: dict[str, str], fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At Gemini's free 15 requests a minute a full run takes minutes: each call may wait
    that long for the shared quota (unless VIBE_LLM_CALL_BUDGET_S says otherwise)."""
    from vibe.llm.resilient import ResilientProvider
    from vibe_dev.calibrate import GEMINI_CALL_BUDGET_S, _make_llm

    for name, value in {**isolated_env, "GEMINI_API_KEY": "test-key", "GEMINI_BASE_URL": fake.url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VIBE_LLM_CALL_BUDGET_S", raising=False)
    llm = _make_llm("gemini", 1)
    try:
        assert isinstance(llm, ResilientProvider)
        assert getattr(llm.primary, "budget_s", None) == GEMINI_CALL_BUDGET_S == 600
    finally:
        await llm.aclose()
    monkeypatch.setenv("VIBE_LLM_CALL_BUDGET_S", "30")
    llm = _make_llm("gemini", 1)
    try:
        assert getattr(llm, "primary", None) is not None and llm.primary.budget_s == 30  # type: ignore[attr-defined]
    finally:
        await llm.aclose()
