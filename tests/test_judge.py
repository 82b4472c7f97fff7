"""Tests of the problem bank and the judge (no database, no gRPC)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from scoring_service import judge as judge_mod
from scoring_service.bank import DEFAULT_PROBLEMS_DIR, ProblemBankError, load_problem_bank
from scoring_service.judge import (
    PERFORMANCE_RULE,
    Judge,
    UnsupportedLanguage,
    Verdict,
    compare_tokens,
)
from scoring_service.sandbox import ISOLATION_DESCRIPTION

PROBLEMS = {p.problem_id: p for p in load_problem_bank()}

TWO_SUM_QUADRATIC = """\
import sys
d = sys.stdin.read().split()
n = int(d[0]); a = list(map(int, d[1:1 + n])); t = int(d[1 + n])
for i in range(n):
    for j in range(i + 1, n):
        if a[i] + a[j] == t:
            print(i, j)
            sys.exit()
"""
TWO_SUM_WRONG = "print(0, 1)\n"
TWO_SUM_CRASH = "import sys\nsys.stdin.read()\nraise ValueError('boom-marker 42')\n"


# ----------------------------------------------------------------------------- bank


def test_bank_loads_and_is_well_formed():
    assert len(PROBLEMS) >= 3
    for p in PROBLEMS.values():
        assert 2 <= len(p.visible_tests) <= 3
        assert len(p.hidden_tests) >= 4
        assert any(t.large for t in p.hidden_tests)
        assert len(p.hints) == 4
        assert p.checker == "tokens"
        assert p.large_input_n >= 10**5
        assert "TODO" in p.starter_code
        for t in p.tests:
            assert len(t.input) < 2 * 1024 * 1024 and t.expected.strip()


def test_bank_reports_path_and_problem(tmp_path: Path):
    shutil.copytree(DEFAULT_PROBLEMS_DIR / "two-sum", tmp_path / "two-sum")
    load_problem_bank(tmp_path)  # a valid copy loads
    pj = tmp_path / "two-sum" / "problem.json"
    spec = json.loads(pj.read_text())
    del spec["hints"]
    pj.write_text(json.dumps(spec))
    with pytest.raises(ProblemBankError, match=r"problem\.json.*hints"):
        load_problem_bank(tmp_path)
    spec["hints"] = ["a"]
    pj.write_text(json.dumps(spec))
    (tmp_path / "two-sum" / "tests" / "03.out").unlink()
    with pytest.raises(ProblemBankError, match=r"03\.out: file is missing"):
        load_problem_bank(tmp_path)


def test_compare_tokens():
    assert compare_tokens(b"3 5\n", b"  3\n5  ") is None
    assert compare_tokens(b"3 5", b"3 4") == "expected `3 5`, got `3 4`"
    assert "got no output" in compare_tokens(b"1", b"")
    long = b" ".join(str(i).encode() for i in range(1000))
    detail = compare_tokens(long, long.replace(b" 500 ", b" 501 "))
    assert detail.startswith("token 501") and len(detail) <= 120
    assert "ended after" in compare_tokens(long, long[:20])


# ----------------------------------------------------------------------------- judge


@pytest.mark.parametrize("problem_id", sorted(PROBLEMS))
async def test_reference_is_accepted_with_high_performance(problem_id):
    problem = PROBLEMS[problem_id]
    judge = Judge(max_parallel_runs=2)
    result = await judge.check(problem, "python", problem.reference_solution)
    assert result.verdict == Verdict.ACCEPTED, [(t.test_id, t.verdict, t.detail) for t in result.tests]
    assert result.passed == result.total == len(problem.tests)
    assert result.correctness_score == 100.0
    assert result.performance_score >= 80, result.tests
    assert result.compile_output == ""
    assert result.isolation == ISOLATION_DESCRIPTION
    assert result.performance_rule == PERFORMANCE_RULE
    for t in result.tests:
        assert t.reference_cpu_ms is not None and t.peak_memory_kb > 0 and t.exit_code == 0
    ref = await judge.reference_times(problem)
    for t in problem.tests:
        if t.large:
            assert ref[t.test_id] < 1000, (t.test_id, ref[t.test_id])


async def test_quadratic_solution_times_out_on_large_tests():
    problem = PROBLEMS["two-sum"]
    judge = Judge(max_parallel_runs=2)
    quad, ref = await asyncio.gather(
        judge.check(problem, "python", TWO_SUM_QUADRATIC),
        judge.check(problem, "python", problem.reference_solution),
    )
    by_id = {t.test_id: t for t in quad.tests}
    for t in problem.tests:
        if t.large:
            assert by_id[t.test_id].verdict == Verdict.TIME_LIMIT_EXCEEDED
            assert "hidden test" in by_id[t.test_id].detail
        elif not t.hidden:
            assert by_id[t.test_id].verdict == Verdict.ACCEPTED
    assert quad.verdict == Verdict.TIME_LIMIT_EXCEEDED
    assert 0 < quad.correctness_score < 100
    assert quad.performance_score < 60
    assert quad.performance_score < ref.performance_score - 30


async def test_wrong_answer_and_hidden_details():
    problem = PROBLEMS["two-sum"]
    result = await Judge(2).check(problem, "python", TWO_SUM_WRONG)
    assert result.verdict == Verdict.WRONG_ANSWER
    assert result.correctness_score < 100
    assert result.performance_score < 50
    by_id = {t.test_id: t for t in result.tests}
    assert by_id["01"].verdict == Verdict.ACCEPTED  # the answer of example 1 is "0 1"
    assert by_id["02"].verdict == Verdict.WRONG_ANSWER
    assert by_id["02"].detail == "expected `1 2`, got `0 1`"
    expected = {t.test_id: t.expected.decode().strip() for t in problem.tests}
    for t in result.tests:
        if t.hidden and t.verdict != Verdict.ACCEPTED:
            assert t.detail == "hidden test: wrong answer"
            assert expected[t.test_id] not in t.detail


async def test_syntax_error_is_compile_error_everywhere():
    problem = PROBLEMS["two-sum"]
    result = await Judge(2).check(problem, "python", "def f(:\n    pass\n")
    assert result.verdict == Verdict.COMPILE_ERROR
    assert all(t.verdict == Verdict.COMPILE_ERROR for t in result.tests)
    assert "SyntaxError" in result.compile_output
    assert result.correctness_score == 0 and result.performance_score == 0


async def test_crash_is_runtime_error_with_last_line_on_visible_tests_only():
    problem = PROBLEMS["two-sum"]
    result = await Judge(2).check(problem, "python", TWO_SUM_CRASH)
    assert result.verdict == Verdict.RUNTIME_ERROR
    assert result.correctness_score == 0 and result.performance_score == 0
    for t in result.tests:
        assert t.verdict == Verdict.RUNTIME_ERROR
        assert t.exit_code == 1
        if t.hidden:
            assert "boom-marker" not in t.detail
        else:
            assert t.detail == "ValueError: boom-marker 42"


async def test_memory_hog_is_memory_limit_exceeded():
    problem = PROBLEMS["valid-parentheses"]
    result = await Judge(2).check(problem, "python", "x = [0] * (10 ** 9)\n")
    assert result.verdict == Verdict.MEMORY_LIMIT_EXCEEDED
    assert all(t.verdict == Verdict.MEMORY_LIMIT_EXCEEDED for t in result.tests)


async def test_unsupported_language_raises():
    with pytest.raises(UnsupportedLanguage, match="python") as info:
        await Judge(2).check(PROBLEMS["two-sum"], "cobol", "DISPLAY 'HI'.")
    assert isinstance(info.value, ValueError)


async def test_reference_times_are_measured_once(monkeypatch):
    problem = PROBLEMS["valid-parentheses"]
    judge = Judge(max_parallel_runs=2)
    calls = 0
    real_run = judge._run

    async def counting_run(*args, **kwargs):
        nonlocal calls
        calls += 1
        return await real_run(*args, **kwargs)

    monkeypatch.setattr(judge, "_run", counting_run)
    a, b = await asyncio.gather(judge.reference_times(problem), judge.reference_times(problem))
    assert a == b and set(a) == {t.test_id for t in problem.tests}
    n_large = sum(t.large for t in problem.tests)
    assert calls == len(problem.tests) + (judge_mod.REFERENCE_RUNS_LARGE - 1) * n_large
    await judge.reference_times(problem)
    assert calls == len(problem.tests) + (judge_mod.REFERENCE_RUNS_LARGE - 1) * n_large
