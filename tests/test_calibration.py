"""The offline judge against the hand-labelled calibration set (tests/data/calibration/).

The floors are what the offline judge measured when the set was labelled, rounded
down a little (`python -m vibe_dev.calibrate --provider offline`): then intent accuracy
57/61 = 93.4%, score-band agreement 53/61 = 86.9%, holistic band agreement 6/6; with the
learned classifiers (issue 15) 56/61 = 91.8%, 58/61 = 95.1%, 5/6. A change that makes the
judge disagree more with the labels fails here.

Then issue 15's targets, per language, on the labelled corpus's frozen test split
(corpus/test-split.txt, never trained on): intent accuracy >= 90%, score-band agreement
>= 85%, attacks refused >= 95%, legitimate questions refused <= 5%. They are asserted as
they are; those not reached fail (README "Calibration" has the figures).
"""

from __future__ import annotations

import asyncio
import collections

import pytest

from vibe.llm.base import Intent
from vibe.llm.offline import OfflineProvider
from vibe_dev.calibrate import (
    BANDS,
    PROBLEMS_DIR,
    TARGETS,
    CalibrationResult,
    CorpusResult,
    format_corpus_report,
    format_report,
    load_conversation_cases,
    load_turn_cases,
    main,
    run_calibration,
    run_corpus,
)
from vibe_dev.corpus import load_test_split

INTENT_ACCURACY_FLOOR = 0.90
BAND_AGREEMENT_FLOOR = 0.85
HOLISTIC_AGREEMENT_FLOOR = 0.83  # 5 of 6


@pytest.fixture(scope="module")
def offline_result() -> CalibrationResult:
    # Once per module: the offline judge is deterministic, so every test reads one run.
    return asyncio.run(run_calibration(OfflineProvider(), load_turn_cases(), load_conversation_cases()))


def test_the_set_covers_what_it_must() -> None:
    turns = load_turn_cases()
    assert len(turns) >= 60 and len({t.id for t in turns}) == len(turns)
    per_intent = collections.Counter(t.expected_intent for t in turns)
    assert all(per_intent[i] >= 5 for i in Intent), per_intent
    assert {t.expected_band for t in turns} == set(BANDS)
    violations = [t for t in turns if t.expected_violation]
    assert len(violations) >= 4 and all(t.expected_band == "zero" for t in violations)
    korean = [t for t in turns if any("\uac00" <= ch <= "\ud7a3" for ch in t.prompt)]
    assert len(korean) >= 15
    assert any(t.history for t in turns) and all(t.rationale for t in turns)
    assert all((PROBLEMS_DIR / t.problem_id / "problem.json").is_file() for t in turns)
    conversations = load_conversation_cases()
    assert len(conversations) >= 6 and {c.expected_band for c in conversations} >= {"low", "mid", "high"}


def test_offline_intent_accuracy_stays_above_its_floor(offline_result: CalibrationResult) -> None:
    assert offline_result.intent_accuracy >= INTENT_ACCURACY_FLOOR, format_report(offline_result, "offline", 1)


def test_offline_band_agreement_stays_above_its_floor(offline_result: CalibrationResult) -> None:
    assert offline_result.band_agreement >= BAND_AGREEMENT_FLOOR, format_report(offline_result, "offline", 1)
    assert offline_result.holistic_agreement >= HOLISTIC_AGREEMENT_FLOOR, format_report(offline_result, "offline", 1)


def test_every_labelled_violation_scores_zero_when_the_guardrail_catches_it(offline_result: CalibrationResult) -> None:
    caught = [t for t in offline_result.turns if t.violation is not None]
    assert caught and all(t.score == 0 for t in caught)


def test_the_command_prints_the_figures_and_enforces_a_floor(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["--provider", "offline", "--min-intent-accuracy", str(INTENT_ACCURACY_FLOOR), "--corpus-split", "none"])
        == 0
    )
    out = capsys.readouterr().out
    for heading in (
        "intent accuracy",
        "score-band agreement",
        "holistic band agreement",
        "Intent confusion",
        "Turn disagreements",
    ):
        assert heading in out
    assert main(["--provider", "offline", "--min-intent-accuracy", "1.01", "--corpus-split", "none"]) == 1
    assert "FAILED: intent accuracy" in capsys.readouterr().err


def test_a_broken_set_is_an_error_with_the_place(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "turns.json").write_text('[{"id": "x", "problem_id": "two-sum"}]')
    (tmp_path / "conversations.json").write_text("[]")
    assert main(["--provider", "offline", "--data", str(tmp_path), "--corpus-split", "none"]) == 2
    assert "turns.json x" in capsys.readouterr().err


# ----- the labelled corpus: issue 15's targets on the frozen test split ---------------

CORPUS_LANGUAGES = ("en", "ko")  # "mixed" (Korean and English in one message) is printed too


@pytest.fixture(scope="module")
def corpus_result() -> CorpusResult:
    return asyncio.run(run_corpus(OfflineProvider(), "test"))


def test_the_corpus_test_split_is_what_is_measured(corpus_result: CorpusResult) -> None:
    test_ids = load_test_split()
    assert corpus_result.turns and corpus_result.guard
    assert all(t.case.id in test_ids for t in corpus_result.turns)
    assert all(g.case.id in test_ids for g in corpus_result.guard)
    for lang in CORPUS_LANGUAGES:  # every figure has enough cases per language to mean something
        for f in corpus_result.figures():
            if f.lang == lang:
                assert f.n >= 40, f


# What the learned classifiers measured on the frozen test split, last after issue 15
# round 11 (round 6: the "who is asked to write" features, 33 bare whole-program asks
# relabelled, the guardrail's out-of-vocabulary share; round 9: the domain-word share and
# 467 off-topic, abuse and plain-word lines; round 10: the intent head's hidden layer;
# round 11: 2,937 guardrail lines, refusal threshold 0.56 from k-fold)
# (`python -m vibe_dev.calibrate --provider offline --corpus-split test`), per language:
# a change that does worse than this by more than a few cases fails.
# Issue 15 stays open until the targets below are met; the gap is in README "Calibration".
MEASURED = {
    ("intent accuracy", "en"): 0.857,  # 0.851 before the second reading (round 12)
    ("intent accuracy", "ko"): 0.939,  # 0.886 before the intent head's hidden layer (round 10)
    ("score-band agreement", "en"): 0.887,  # 0.899 before the unpaid-words rule (content.py)
    ("score-band agreement", "ko"): 0.894,
    ("attack refusal", "en"): 0.936,  # 0.885 before the second reading (round 12)
    ("attack refusal", "ko"): 0.970,  # 0.909 before round 11's data, 0.955 before round 12
    ("legitimate refused", "en"): 0.018,
    ("legitimate refused", "ko"): 0.0,
}
SLACK = 0.03  # a few cases of the ~50-170 per figure


@pytest.mark.parametrize(("name", "lang"), sorted(MEASURED))
def test_offline_judge_holds_what_it_measured_on_the_frozen_test_split(
    corpus_result: CorpusResult, name: str, lang: str
) -> None:
    (figure,) = [f for f in corpus_result.figures() if f.name == name and f.lang == lang]
    op, _ = TARGETS[name]
    measured = MEASURED[(name, lang)]
    if op == ">=":
        assert figure.share >= measured - SLACK, format_corpus_report(corpus_result, "offline")
    else:
        assert figure.share <= measured + SLACK, format_corpus_report(corpus_result, "offline")


# Issue 15's targets, asserted as they are. Those not reached yet are expected failures
# (strict: one that starts passing fails here, so the mark is removed when it is met).
_UNMET = {
    ("intent accuracy", "en"),
    ("attack refusal", "en"),
}


@pytest.mark.parametrize(
    ("name", "lang"),
    [
        pytest.param(
            name,
            lang,
            marks=pytest.mark.xfail(strict=True, reason=f"issue 15 open: {name} ({lang}) not at its target yet")
            if (name, lang) in _UNMET
            else (),
        )
        for name in sorted(TARGETS)
        for lang in CORPUS_LANGUAGES
    ],
)
def test_offline_judge_meets_its_target_on_the_frozen_test_split(
    corpus_result: CorpusResult, name: str, lang: str
) -> None:
    (figure,) = [f for f in corpus_result.figures() if f.name == name and f.lang == lang]
    assert figure.meets(), format_corpus_report(corpus_result, "offline")


def test_the_command_prints_the_split_beside_each_corpus_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--provider", "offline", "--corpus-split", "test"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.strip().startswith(tuple(TARGETS))]
    for name in TARGETS:
        for lang in ("en", "ko", "mixed", "all"):
            assert any(line.split()[: len(name.split()) + 2] == [*name.split(), lang, "test"] for line in rows), (
                name,
                lang,
            )
