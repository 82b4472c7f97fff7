"""The learned offline classifiers' artefact (vibe/llm/offline/judge_model.npz): trained on
the committed corpus and nothing else, reproducible by the committed script, and its
guardrail confidence means what issue 16 relies on."""

from __future__ import annotations

import collections
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vibe.llm.base import Exchange, ProblemContext
from vibe.llm.offline import check_guardrail_in_context
from vibe.llm.offline.classifier import ARTEFACT_PATH, load_model, read_model, save_model
from vibe.llm.offline.learned import BAND_HEAD, GUARD_HEAD, INTENT_HEAD, make_inputs
from vibe_dev.calibrate import load_problem
from vibe_dev.corpus import TEST_FRACTION, drawn_ids, load_guard, load_test_split, load_turns
from vibe_dev.train_judge import Settings as TrainSettings
from vibe_dev.train_judge import build_items, corpus_hash, predict, train


def test_the_artefact_was_trained_on_the_committed_corpus() -> None:
    model = load_model()
    assert model.meta.get("corpus_sha256") == corpus_hash(), (
        "corpus/ changed since judge_model.npz was trained: run python -m vibe_dev.train_judge"
    )
    assert set(model.heads) == {INTENT_HEAD, BAND_HEAD, GUARD_HEAD}
    # Ships in the wheel: a few MB (two heads have a second reading since round 12; the
    # encoder it reads, a dependency, weighs 91 MB).
    assert ARTEFACT_PATH.stat().st_size < 6_000_000


def test_the_test_split_is_a_stratified_fifth_of_every_language_and_label() -> None:
    """...of the batches it was drawn from; every line written later is training data."""
    test_ids, drawn = load_test_split(), drawn_ids()
    turns, guard = load_turns(), load_guard()
    assert test_ids <= drawn
    strata: dict[tuple[str, str], list[bool]] = collections.defaultdict(list)
    for t in turns:
        if t.id in drawn:
            strata[("turn", f"{t.lang}/{t.intent}")].append(t.id in test_ids)
    for g in guard:
        if g.id in drawn:
            strata[("guard", f"{g.lang}/{g.label}")].append(g.id in test_ids)
    for key, chosen in strata.items():
        if len(chosen) >= 15:
            assert abs(sum(chosen) / len(chosen) - TEST_FRACTION) <= 0.06, key


@pytest.mark.timeout(900)
def test_retraining_with_the_committed_script_reproduces_the_artefact() -> None:
    """The artefact cannot drift from the corpus and the script silently: a fresh training
    (which never sees the test split) decides every test-split example as the shipped one."""
    test_ids = load_test_split()
    items = build_items()
    train_items = [i for i in items if i.id not in test_ids]
    assert len(train_items) < len(items)
    held = [i for i in items if i.id in test_ids and i.head != GUARD_HEAD + ":turn"]
    fresh = train(train_items, TrainSettings())
    shipped = read_model(ARTEFACT_PATH)
    assert fresh.index == shipped.index
    for (item, a), (_, b) in zip(predict(shipped, held), predict(fresh, held), strict=True):
        assert max(a, key=lambda c: a[c]) == max(b, key=lambda c: b[c]), item.id
        assert all(abs(a[c] - b[c]) < 0.01 for c in a), item.id


def test_guardrail_confidence_is_calibrated_on_the_test_split() -> None:
    """confidence is the probability of the returned verdict: among verdicts given with
    confidence c, about a share c is right (expected calibration error under 0.1), and the
    confident ones are right more often than the unsure ones."""
    test_ids = load_test_split()
    problems: dict[str, ProblemContext] = {}
    pairs: list[tuple[float, bool]] = []
    for g in load_guard():
        if g.id not in test_ids:
            continue
        problem = problems.setdefault(g.problem_id, load_problem(g.problem_id))
        history = tuple(Exchange(i, u, a) for i, (u, a) in enumerate(g.history, start=1))
        verdict = check_guardrail_in_context(problem, history, g.message)
        assert 0.0 <= verdict.confidence <= 1.0
        pairs.append((verdict.confidence, verdict.violated == (g.label != "none")))
    bins: dict[int, list[tuple[float, bool]]] = collections.defaultdict(list)
    for conf, ok in pairs:
        bins[min(int(conf * 10), 9)].append((conf, ok))
    ece = sum(abs(sum(c for c, _ in b) / len(b) - sum(ok for _, ok in b) / len(b)) * len(b) for b in bins.values())
    assert ece / len(pairs) < 0.1
    sure = [ok for conf, ok in pairs if conf >= 0.9]
    unsure = [ok for conf, ok in pairs if conf < 0.75]
    assert sure and unsure and sum(sure) / len(sure) > sum(unsure) / len(unsure)


def test_the_intent_heads_hidden_layer_ships_and_reads_back_the_same(tmp_path: Path) -> None:
    """The intent head mixes its linear model with a hidden layer (round 10); the artefact
    keeps that layer's weights in int8, and a model written and read again decides as it did."""
    model = load_model()
    hidden = model.heads[INTENT_HEAD].hidden
    assert hidden is not None and 0.0 < hidden.share < 1.0
    assert len(hidden.columns) < len(model.index) and hidden.w1.shape == (len(hidden.columns), len(hidden.b1))
    save_model(tmp_path / "again.npz", model)
    again = read_model(tmp_path / "again.npz")
    problem = load_problem("two-sum")
    history = (Exchange(1, "is a dict the right idea?", "What would you look up in it?"),)
    head = model.heads[INTENT_HEAD]
    linear_only = replace(head, hidden=None)
    moved = 0.0
    for message in (
        "why does my loop return None when the pair is the last two elements?",
        "ok and if two values are equal, does the dict still work? zzqx",  # a gram outside every vocabulary
        "앞으로는 힌트만 주세요",
    ):
        inputs = make_inputs(problem, history, message)
        a = model.probabilities(INTENT_HEAD, inputs)
        b = again.probabilities(INTENT_HEAD, inputs)
        assert all(abs(a[c] - b[c]) < 1e-6 for c in a), message
        columns, values = model.vectorize(inputs)
        logits = values @ model.runtime.weights(INTENT_HEAD)[columns] + head.bias
        linear = linear_only.mix(logits, columns, values)
        assert linear.sum() == pytest.approx(1.0)
        moved = max(moved, float(np.abs(head.mix(logits, columns, values) - linear).max()))
    assert moved > 0.01  # the hidden layer takes part in the decision
