"""The tutor's leak check on the way out: a reply reproducing a reference solution is cut
(the rest withheld, a hint sent instead, the turn flagged); snippets, explanations and
the starter code pass; TUTOR_LEAK_THRESHOLD moves the boundary; the check costs the same
per chunk however long the reply is. The Gemini request carries the problem and hints
but no line of any reference solution."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.support.stack import Stack, StartStack, gemini_stack, new_candidate, reply_text
from vibe.llm.base import ProblemContext
from vibe.services.scoring.bank import load_problem_bank
from vibe.services.tutor.leak import LeakGuard
from vibe.shared.fingerprint import StreamFingerprinter, text_fingerprints
from vibe_api.tutor.v1 import tutor_pb2, tutor_pb2_grpc
from vibe_dev.fake_gemini import FakeGemini, Reply

SPEC = {p.problem_id: p for p in load_problem_bank()}["two-sum"]
TWO_SUM = ProblemContext(
    problem_id="two-sum",
    title=SPEC.title,
    statement=SPEC.statement,
    hints=SPEC.hints,
    reference_solution=SPEC.reference_solution,
    starter_code=SPEC.starter_code,
    reference_solutions=SPEC.references,
)
REFERENCE_LINES = SPEC.references["python"].splitlines(keepends=True)
# The whole two_sum function of the reference (lines 1-12): ~40% of its fingerprints.
FUNCTION = "".join(REFERENCE_LINES[:12])
EXPLANATION = (
    "Think about a hash map: for each `num`, is `target - num` already in it? A dict lookup is O(1) on average, "
    "so one pass is O(n). For example `seen = {}` then `if x not in seen:` keeps the first index.\n"
    "```python\nfor i, num in enumerate(nums):\n    print(i, num)\n```\nWhat would you store as the value?"
)


def _share(text: str) -> float:
    check = LeakGuard(0.35).check(TWO_SUM)
    check.feed(text)
    return check.outcome.share


# ----- the check itself -----------------------------------------------------------------


def test_every_reference_language_reproduced_is_cut_even_renamed_and_reindented() -> None:
    for language, source in SPEC.references.items():
        check = LeakGuard(0.35).check(TWO_SUM)
        assert check.feed(source), language
        assert check.outcome.cut and check.outcome.language == language
    renamed = SPEC.references["python"].replace("seen", "index_of").replace("    ", "  ")
    assert _share(renamed) == 1.0


def test_snippets_explanations_and_the_starter_code_pass() -> None:
    assert _share(EXPLANATION) < 0.05
    assert _share(SPEC.starter_code) == 0.0, "the candidate has the starter code already"
    assert _share("".join(REFERENCE_LINES[4:7])) < 0.2, "two lines of the solution are a snippet"


def test_the_threshold_moves_the_boundary() -> None:
    share = _share(FUNCTION)
    assert 0.35 <= share < 0.6
    assert LeakGuard(0.35).check(TWO_SUM).feed(FUNCTION)
    assert not LeakGuard(0.6).check(TWO_SUM).feed(FUNCTION)


def test_streamed_fingerprints_equal_the_whole_texts() -> None:
    for source in [*SPEC.references.values(), "a/b // c\nx = 1 # y\n/#/ // q\nz = a / b\n"]:
        for size in (1, 7, 64):
            for identifiers in (False, True):
                stream = StreamFingerprinter(identifiers=identifiers)
                for i in range(0, len(source), size):
                    stream.feed(source[i : i + size])
                stream.feed("\n")
                assert stream.seen == text_fingerprints(source, identifiers)


def test_the_cost_per_chunk_does_not_grow_with_the_reply() -> None:
    """Measured: 40-character chunks cost the same after 1 KB as after 200 KB of reply."""
    chunk = "Consider each element once; which value would complete the pair? " * 10
    chunk = chunk[:40]

    def per_chunk_us(prefix_chars: int) -> float:
        check = LeakGuard(0.35).check(TWO_SUM)
        check.feed("word " * (prefix_chars // 5))
        started = time.perf_counter()
        for _ in range(500):
            check.feed(chunk)
        return (time.perf_counter() - started) / 500 * 1e6

    short, long = min(per_chunk_us(1_000) for _ in range(3)), min(per_chunk_us(200_000) for _ in range(3))
    print(f"leak check: {short:.1f} us per 40-char chunk after 1 KB, {long:.1f} us after 200 KB")
    assert long < 3 * short + 20
    assert short < 2_000, "well under a millisecond-scale budget per chunk"


# ----- through the real services (Gemini provider against the fake server) --------------


def _reference_reply(lines: list[str]) -> Reply:
    # Prose after the code keeps the stream going for a while after the cut, so that closing it
    # is what the fake server sees even when a busy machine slows the tutor down.
    tail = tuple(f"Step {i} of the walkthrough.\n" for i in range(60))
    return Reply(chunks=("Sure, here it is:\n```python\n", *lines, "```\n", *tail, "That is the whole program."))


async def _assistant_row(stack: Stack, session_id: str, turn: int) -> dict[str, Any]:
    db = await stack.db()
    try:
        row = await db.fetchrow(
            "SELECT content, leak_cut, leak_share FROM messages WHERE session_id = $1 AND turn = $2 AND role = 'assistant'",
            session_id,
            turn,
        )
        assert row is not None
        return dict(row)
    finally:
        await db.close()


async def test_a_reply_streaming_the_reference_is_cut_replaced_by_a_hint_and_flagged(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    fake.chunk_delay_s = 0.02
    fake.script("tutor_reply", _reference_reply(REFERENCE_LINES), Reply(chunks=(EXPLANATION[:90], EXPLANATION[90:])))
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        events = await candidate.chat("Can you explain the idea with an example?")
        cut_row = await _assistant_row(stack, candidate.session_id, 1)
        passed = await candidate.chat("Which data structure gives fast lookups by value?")
        passed_row = await _assistant_row(stack, candidate.session_id, 2)
        await candidate.submit("print(0)\n")
        report = await candidate.report()

    sent = reply_text(events)
    assert "I'll stop there" in sent and any(hint in sent for hint in SPEC.hints), sent
    assert "That is the whole program." not in sent and "main()" not in sent
    sent_code = sent.split("I'll stop there")[0]
    assert _share(sent_code) < 0.35, "what went out before the cut stays under the threshold"
    assert await fake.closed_by_client_within(), "the model's stream was closed when the reply was cut"
    assert cut_row["leak_cut"] is True and cut_row["leak_share"] >= 0.35
    assert cut_row["content"] == sent, "the turn stores what the candidate saw"
    assert events[-1].completed.assistant_message.content == sent
    assert events[-1].completed.leak_cut and not passed[-1].completed.leak_cut
    # The flag reaches the turn's evaluation and the report's guardrail summary.
    assert [t.leak_cut for t in report.turns] == [True, False]
    assert list(report.guardrails.leak_cut_turns) == [1]
    # An explanation with a line of syntax goes through untouched.
    assert reply_text(passed) == EXPLANATION
    assert passed_row["leak_cut"] is False and passed_row["leak_share"] < 0.05


async def _tutor_reply(stack: Stack, session_id: str, message: str) -> list[tutor_pb2.StreamReplyResponse]:
    async with stack.internal("tutor") as channel:
        call = tutor_pb2_grpc.TutorStub(channel).StreamReply(
            tutor_pb2.StreamReplyRequest(session_id=session_id, turn=1, problem_id="two-sum", message=message),
            timeout=30,
        )
        return [event async for event in call]


@pytest.mark.parametrize(("threshold", "cut"), [("0.35", True), ("0.6", False)])
async def test_the_threshold_setting_moves_the_boundary_in_the_service(
    start_stack: StartStack, fake: FakeGemini, threshold: str, cut: bool
) -> None:
    # The two_sum function alone: ~40% of the reference's fingerprints.
    fake.script("tutor_reply", _reference_reply(REFERENCE_LINES[:12]))
    async with gemini_stack(start_stack, fake, TUTOR_LEAK_THRESHOLD=threshold) as stack:
        candidate = await new_candidate(stack)
        events = await _tutor_reply(stack, candidate.session_id, "How would the function look?")
    done = events[-1].done
    text = "".join(e.delta for e in events if e.WhichOneof("event") == "delta")
    assert done.leak.cut is cut and done.leak.language == "python" and done.leak.material == "reference_solution"
    assert 0.35 <= done.leak.share < 0.6
    assert ("That is the whole program." in text) is not cut


async def test_the_gemini_request_has_the_problem_and_hints_but_no_reference_line(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        await candidate.chat("I'm stuck, can I have a hint about where to start?")
        db = await stack.db()
        try:
            row = await db.fetchrow("SELECT spec, reference_solutions FROM problems WHERE problem_id = 'two-sum'")
        finally:
            await db.close()
    assert row is not None
    spec, references = json.loads(row["spec"]), json.loads(row["reference_solutions"])
    [request] = fake.of("tutor_reply")
    sent = json.dumps(request.body, ensure_ascii=False) + request.system + request.prompt
    assert spec["statement"] in request.system and spec["hints"][0] in request.system
    public = spec["starter_code"] + spec["statement"]
    assert len(references) == 3
    for language, source in references.items():
        lines = {ln.strip() for ln in source.splitlines() if len(ln.strip()) >= 8 and ln.strip() not in public}
        assert lines, language
        leaked = [ln for ln in lines if ln in sent or json.dumps(ln)[1:-1] in sent]
        assert not leaked, f"{language} reference lines in the request: {leaked}"
