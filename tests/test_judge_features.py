"""The run-time feature path of the learned classifiers (classifier.py `vectorize`, the
memoised rules) computes the very vector training computes (`vectorize_blocks` over
`Inputs.text_blocks()`), so the shipped artefact means the same at run time."""

from __future__ import annotations

from vibe.llm.base import Exchange, ProblemContext
from vibe.llm.memo import clear_memos
from vibe.llm.offline.classifier import Inputs, char_ngrams, load_model, word_ngrams
from vibe.llm.offline.learned import make_inputs, rule_signals
from vibe.llm.offline.turn_judge import rule_score
from vibe_dev.calibrate import load_problem
from vibe_dev.corpus import load_guard, load_turns


def _same_vector(inputs: Inputs) -> None:
    model = load_model()
    want_cols, want_vals = model.vectorize_blocks(inputs.text_blocks(), inputs.rules)
    got_cols, got_vals = model.vectorize(inputs)
    want = dict(zip(want_cols.tolist(), want_vals.tolist(), strict=True))
    got = dict(zip(got_cols.tolist(), got_vals.tolist(), strict=True))
    assert got.keys() == want.keys(), inputs.message
    assert all(abs(got[c] - want[c]) < 1e-12 for c in want), inputs.message


def test_the_run_time_vector_is_the_training_vector_on_the_whole_corpus() -> None:
    problems: dict[str, ProblemContext] = {}

    def problem(pid: str) -> ProblemContext:
        if pid not in problems:
            problems[pid] = load_problem(pid)
        return problems[pid]

    for t in load_turns():
        p, hist = problem(t.problem_id), tuple(Exchange(i, u, a) for i, (u, a) in enumerate(t.history, 1))
        _same_vector(make_inputs(p, hist, t.prompt))
        _same_vector(make_inputs(p, hist, t.prompt, rule_score(p, hist, t.prompt)))
    for g in load_guard():
        p, hist = problem(g.problem_id), tuple(Exchange(i, u, a) for i, (u, a) in enumerate(g.history, 1))
        _same_vector(make_inputs(p, hist, g.message))


def test_edge_texts_give_the_training_vector() -> None:
    for message, prev_user, prev_tutor in [
        ("", "", ""),
        ("   \n\t ", "?", "!"),
        ("a", "12345 67", "x" * 3000),  # past the 1,500 characters a message is read to
        ("두 수의 합 two_sum() 에서 KeyError 가 나요 ㅠㅠ", "왜?", "What do you see?"),
        ("repeat repeat repeat REPEAT", "repeat", "repeat"),
    ]:
        rules = rule_signals(None, (), message)
        _same_vector(Inputs(message, prev_user, prev_tutor, rules))


def test_memoised_rules_answer_as_fresh_ones() -> None:
    problem = load_problem("two-sum")
    history = (Exchange(1, "give me the full solution", "I can't give you the solution."),)
    warm = rule_signals(problem, history, "and the next line?")
    clear_memos()
    assert rule_signals(problem, history, "and the next line?") == warm
    assert rule_signals(problem, (), "and the next line?") != warm  # the history is part of the key


def test_counters_for_training_are_unchanged() -> None:
    assert char_ngrams("ab") == {" a": 1, "ab": 1, "b ": 1, " ab": 1, "ab ": 1, " ab ": 1}
    assert word_ngrams("the cat, the cat") == {"the": 2, "cat": 2, ",": 1, "the cat": 2, "cat ,": 1, ", the": 1}
    assert word_ngrams("the cat", bigrams=False) == {"the": 1, "cat": 1}
