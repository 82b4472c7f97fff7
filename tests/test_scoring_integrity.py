"""Integrity (winnowing against the code the tutor showed), and the scoring service over gRPC:
new report fields, a hostile submission leaving the service healthy, the bank load command."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.stack import Stack, new_candidate
from vibe.services.scoring.bank import load_problem_bank
from vibe.services.scoring.integrity import code_blocks, compare
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc

TWO_SUM = {p.problem_id: p for p in load_problem_bank()}["two-sum"]
SHOWN = """\
Here is one way to do it:

```python
def two_sum(nums, target):
    seen = {}
    for j, x in enumerate(nums):
        want = target - x
        if want in seen:
            return seen[want], j
        seen.setdefault(x, j)
    return -1, -1
```
"""


def test_copied_code_is_flagged_with_fragments_side_by_side() -> None:
    shown = code_blocks(3, SHOWN)
    assert len(shown) == 1 and shown[0].turn == 3
    # Re-indented, re-spaced and commented: still the same code.
    copied = TWO_SUM.starter_code.replace(
        "    # TODO: implement\n    return -1, -1\n",
        "    seen = {}  # value -> index\n    for j, x in enumerate(nums):\n        want = target - x\n"
        "        if want in seen:\n            return seen[want], j\n        seen.setdefault(x,  j)\n    return -1, -1\n",
    )
    report = compare(copied, shown, TWO_SUM.starter_code)
    assert report.checked and report.flagged and report.score >= 40
    assert report.fragments and all(f.turn == 3 for f in report.fragments)
    assert any("enumerate(nums)" in f.submitted and "enumerate(nums)" in f.shown for f in report.fragments)


def test_own_code_and_starter_code_are_not_flagged() -> None:
    shown = code_blocks(1, SHOWN)
    assert not compare(TWO_SUM.starter_code, shown, TWO_SUM.starter_code).flagged
    own = TWO_SUM.reference_solution
    report = compare(own, shown, TWO_SUM.starter_code)
    assert not report.flagged and report.score < 40
    assert compare(own, [], TWO_SUM.starter_code).score == 0
    assert code_blocks(1, "no code here, just `inline` words") == []


async def _seed_submission(stack: Stack, session_id: str, code: str) -> None:
    conn = await stack.db()
    try:
        await conn.execute(
            "INSERT INTO messages (session_id, turn, role, content) VALUES ($1, 1, 'user', 'how?'), ($1, 1, 'assistant', $2)",
            session_id,
            SHOWN,
        )
        await conn.execute(
            "INSERT INTO submissions (session_id, language, code) VALUES ($1, 'python', $2)", session_id, code
        )
    finally:
        await conn.close()


async def test_check_code_reports_isolation_complexity_and_integrity(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    code = TWO_SUM.reference_solution + "\n" + SHOWN.split("```python\n")[1].split("```")[0]
    await _seed_submission(stack, candidate.session_id, code)
    async with stack.internal("scoring") as channel:
        scoring = scoring_pb2_grpc.ScoringStub(channel)
        reply = await scoring.CheckCode(
            scoring_pb2.CheckCodeRequest(
                problem_id="two-sum", language="python", code=code, session_id=candidate.session_id
            ),
            timeout=120,
        )
        problem = await scoring.GetProblem(scoring_pb2.GetProblemRequest(problem_id="two-sum"))
    assert reply.verdict == scoring_pb2.VERDICT_ACCEPTED
    assert reply.isolation_mode == "namespaces" and reply.isolation.startswith(reply.isolation_mode)
    assert reply.time_limit_ms >= 1000 and "Time limit" in reply.performance_rule
    assert reply.complexity.sizes >= 5 and reply.complexity.points and reply.complexity.estimated_class
    assert reply.integrity.checked and reply.integrity.fragments and reply.integrity.fragments[0].turn == 1
    assert (
        problem.statement_ko and len(problem.hints) == 4 and set(problem.languages) == {"python", "cpp", "javascript"}
    )
    assert all(e.input for e in problem.examples) and len(problem.examples) == 2  # visible tests only
    conn = await stack.db()
    try:
        row = await conn.fetchrow(
            "SELECT isolation, integrity FROM code_checks WHERE session_id = $1", candidate.session_id
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["isolation"] == reply.isolation_mode and '"flagged"' in row["integrity"]


async def test_hostile_submission_leaves_the_service_healthy(stack: Stack) -> None:
    fork_bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    async with stack.internal("scoring") as channel:
        scoring = scoring_pb2_grpc.ScoringStub(channel)
        reply = await scoring.CheckCode(
            scoring_pb2.CheckCodeRequest(problem_id="valid-parentheses", language="python", code=fork_bomb), timeout=120
        )
        assert reply.verdict in (scoring_pb2.VERDICT_TIME_LIMIT_EXCEEDED, scoring_pb2.VERDICT_RUNTIME_ERROR)
        health_stub: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lists no methods
        health = await health_stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        listed = await scoring.ListProblems(scoring_pb2.ListProblemsRequest(), timeout=5)
        assert len(listed.problems) >= 6


async def test_load_command_loads_the_bank(isolated_env: dict[str, str]) -> None:
    env = {**os.environ, **isolated_env}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vibe.services.scoring.load",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err
    assert out.decode().count(": loaded") >= 6


async def test_visible_tests_run_before_submitting_are_neither_graded_nor_stored(stack: Stack) -> None:
    async with stack.internal("scoring") as channel:
        scoring = scoring_pb2_grpc.ScoringStub(channel)
        right = await scoring.RunVisibleTests(
            scoring_pb2.RunVisibleTestsRequest(
                problem_id="two-sum", language="python", code=TWO_SUM.reference_solution
            ),
            timeout=120,
        )
        wrong = await scoring.RunVisibleTests(
            scoring_pb2.RunVisibleTestsRequest(problem_id="two-sum", language="py", code="print(0, 1)\n"), timeout=120
        )
        broken = await scoring.RunVisibleTests(
            scoring_pb2.RunVisibleTestsRequest(problem_id="two-sum", language="cpp", code="int main( {"), timeout=120
        )
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await scoring.RunVisibleTests(
                scoring_pb2.RunVisibleTestsRequest(problem_id="two-sum", language="cobol", code="x"), timeout=30
            )
    visible = [t for t in TWO_SUM.tests if not t.hidden]
    assert right.verdict == scoring_pb2.VERDICT_ACCEPTED and [t.test_id for t in right.tests] == [
        t.test_id for t in visible
    ]
    assert all(not t.hidden for t in right.tests) and right.time_limit_ms >= 1000
    assert wrong.verdict == scoring_pb2.VERDICT_WRONG_ANSWER and wrong.language == "python"
    assert any(t.detail.startswith("expected `") for t in wrong.tests), [t.detail for t in wrong.tests]
    assert broken.verdict == scoring_pb2.VERDICT_COMPILE_ERROR and "error" in broken.compile_output
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    conn = await stack.db()
    try:
        stored = await conn.fetchval("SELECT count(*) FROM code_checks") + await conn.fetchval(
            "SELECT count(*) FROM test_results"
        )
    finally:
        await conn.close()
    assert stored == 0, "runs before a submit leave nothing behind"


# Visible tests show the program's own output and the last line of its stderr in their detail;
# here with NUL (which PostgreSQL's text refuses), other control characters and a right-to-left
# override (which would turn what a reviewer reads around).
CONTROL_CHARACTERS_OUT = (
    "import sys\n"
    "sys.stdout.write('0\\x00 1\\x1b[2J\\n')\n"
    "sys.stderr.write('boom\\x00\\x07 \\u202eDETCEPXE\\n')\n"
    "sys.exit(3 if sys.stdin.read().split()[0] == '4' else 0)\n"
)


async def test_control_characters_in_the_programs_output_are_stored_and_shown_escaped(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    await _seed_submission(stack, candidate.session_id, CONTROL_CHARACTERS_OUT)
    async with stack.internal("scoring") as channel:
        scoring = scoring_pb2_grpc.ScoringStub(channel)
        reply = await scoring.CheckCode(
            scoring_pb2.CheckCodeRequest(
                problem_id="two-sum", language="python", code=CONTROL_CHARACTERS_OUT, session_id=candidate.session_id
            ),
            timeout=120,
        )
    visible = {t.test_id: t.detail for t in reply.tests if not t.hidden}
    assert visible == {
        "01": "exit code 3: boom\\x00\\x07 \\u202eDETCEPXE",
        "02": "expected `1 2`, got `0\\x00 1\\x1b[2J`",
    }, visible
    conn = await stack.db()
    try:
        rows = await conn.fetch(
            "SELECT test_id, detail FROM test_results WHERE session_id = $1 AND NOT hidden", candidate.session_id
        )
    finally:
        await conn.close()
    assert {r["test_id"]: r["detail"] for r in rows} == visible
