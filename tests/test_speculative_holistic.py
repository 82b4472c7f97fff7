"""Issue 17: the holistic judgement folded into each turn's evaluation call (kept fresh
while the candidate works, used as is at submit when no turn came after), and the code
checks started at the freeze, beside the turn guard. Against the real services and the
fake Gemini server, whose request log tells which LLM calls a submit made."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.support.stack import REFERENCE, Stack, StartStack, gemini_stack, new_candidate
from vibe.llm.base import EvaluatedTurn, Exchange, GuardrailVerdict, Intent, ProblemContext, Violation
from vibe.llm.median import MedianOfK
from vibe.llm.offline import OfflineProvider, judge_holistic
from vibe.llm.prompts import LISTED_TURNS, Prompt, turn_prompt
from vibe.services.evaluator.core import usable_precomputed
from vibe.services.evaluator.store import TurnLog
from vibe_api.gateway.v1 import gateway_pb2
from vibe_dev.fake_gemini import FakeGemini, Reply, default_holistic, default_turn_judgement

QUESTIONS = (
    "Which data structure would let me avoid checking every pair in two sum?",
    "If I store each number's index in a dict as I go, what do I look up for the complement?",
    "I ran my version on [3, 3] with target 6 and got [0, 0]; why is the same index used twice?",
)
PROBLEM = ProblemContext("two-sum", "Two Sum", "Return the indices of two numbers adding up to target.")


async def turn_logs(stack: Stack, session_id: str) -> list[dict[str, Any]]:
    db = await stack.db()
    try:
        rows = await db.fetch(
            "SELECT details FROM prompt_evaluations WHERE session_id = $1 AND evaluation_type = 'TURN_EVAL'"
            " ORDER BY turn",
            session_id,
        )
        return [json.loads(r["details"]) for r in rows]
    finally:
        await db.close()


async def wait_evaluated(stack: Stack, session_id: str, turns: int, timeout_s: float = 30.0) -> None:
    """Until the background workers stored `turns` evaluations (fails, never skips)."""
    end = time.monotonic() + timeout_s
    while len(await turn_logs(stack, session_id)) < turns:
        assert time.monotonic() < end, f"the background workers did not evaluate {turns} turns in {timeout_s}s"
        await asyncio.sleep(0.1)


def holistic_progress(events: list[gateway_pb2.SubmitEvent]) -> str:
    done = [
        e.progress.message
        for e in events
        if e.WhichOneof("event") == "progress" and e.progress.stage == "holistic" and e.progress.done == 1
    ]
    assert len(done) == 1, done
    return done[0]


# ----- through the services ---------------------------------------------------------------


async def test_a_submit_after_a_pause_makes_no_llm_call_and_the_report_says_the_judgement_was_precomputed(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    # One worker: turn 2 is evaluated after turn 1, so it sees turn 1's evaluation.
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="1") as stack:
        candidate = await new_candidate(stack)
        for question in QUESTIONS[:2]:
            await candidate.chat(question)
        await wait_evaluated(stack, candidate.session_id, 2)
        before = len(fake.requests)
        events = await candidate.submit(REFERENCE)
        at_submit = fake.requests[before:]
        logs = await turn_logs(stack, candidate.session_id)
    report = events[-1].report
    assert at_submit == [], f"the submit called the LLM: {[r.purpose for r in at_submit]}"
    assert not fake.of("holistic_evaluation"), "the conversation was never judged in a call of its own"
    assert (report.holistic.precomputed, report.holistic.through_turn) == (True, 2)
    assert report.holistic.usage.calls == 0 and report.llm_usage.submit.calls == 0
    assert report.holistic.score == 70 and report.holistic.provider == "gemini" and not report.degraded_parts
    assert "judged with turn 2's evaluation" in holistic_progress(events)
    # Each turn's call judged the conversation through it; turn 2's listed turn 1 with its verdict.
    assert [log["holistic"]["through_turn"] for log in logs] == [1, 2]
    assert logs[1]["holistic"]["unevaluated_turns"] == []
    second = fake.of("turn_evaluation")[1]
    assert "THE CONVERSATION SO FAR: 1 earlier turn(s)" in second.prompt
    assert "Turn 1 (intent hint_query, score 72" in second.prompt
    assert "holistic" in second.schema["properties"]


async def test_a_holistic_judgement_the_fallback_made_is_judged_again_at_submit(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    # Turn 2's evaluation gets an error Gemini does not retry: the offline fallback judges
    # the turn and the conversation (degraded). The submit gives Gemini another chance.
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="1") as stack:
        candidate = await new_candidate(stack)
        await candidate.chat(QUESTIONS[0])
        await wait_evaluated(stack, candidate.session_id, 1)
        fake.script("turn_evaluation", Reply(status=400, text="bad request"))
        await candidate.chat(QUESTIONS[1])
        await wait_evaluated(stack, candidate.session_id, 2)
        before = len(fake.requests)
        events = await candidate.submit(REFERENCE)
        at_submit = [r.purpose for r in fake.requests[before:]]
        logs = await turn_logs(stack, candidate.session_id)
    report = events[-1].report
    assert logs[1]["degraded"] and logs[1]["holistic"]["degraded"]
    assert at_submit == ["holistic_evaluation"]
    assert (report.holistic.precomputed, report.holistic.through_turn) == (False, 2)
    assert (report.holistic.provider, report.holistic.degraded) == ("gemini", False)
    assert report.degraded_parts == ["turn 2 evaluation"]
    assert "judged at submit" in holistic_progress(events)


async def test_the_guard_evaluates_the_last_turn_first_and_its_call_carries_the_holistic_judgement(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    # No background workers: every turn is missing at submit; with one guard slot the
    # order of the calls is the guard's order.
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0", VIBE_GUARD_CONCURRENCY="1") as stack:
        candidate = await new_candidate(stack)
        for question in QUESTIONS:
            await candidate.chat(question)
        events = await candidate.submit(REFERENCE)
        logs = await turn_logs(stack, candidate.session_id)
    report = events[-1].report
    calls = fake.of("turn_evaluation")
    assert [c.prompt.count("THE TURN TO GRADE: turn 3.") for c in calls] == [1, 0, 0], "turn 3 first"
    assert not fake.of("holistic_evaluation")
    assert (report.holistic.precomputed, report.holistic.through_turn) == (True, 3)
    # Turns 1 and 2 were not evaluated yet when turn 3 judged the conversation: read from
    # their transcript, and the prompt says so.
    assert logs[2]["holistic"]["unevaluated_turns"] == [1, 2]
    assert "Turn 1 (not evaluated yet" in calls[0].prompt
    assert QUESTIONS[0][:40] in calls[0].prompt


async def test_the_code_checks_start_at_the_freeze_beside_the_turn_evaluations(
    start_stack: StartStack, fake: FakeGemini
) -> None:
    # The only turn is evaluated by the guard and Gemini takes 6 s to answer: the code
    # checks' results must be stored before that answer comes, not after it.
    slow = {**default_turn_judgement(), "holistic": default_holistic()}
    async with gemini_stack(start_stack, fake, EVALUATOR_WORKERS="0") as stack:
        candidate = await new_candidate(stack)
        await candidate.chat(QUESTIONS[0])
        fake.script("turn_evaluation", Reply(text=json.dumps(slow), latency_s=6.0))
        db = await stack.db()
        try:
            submit = asyncio.create_task(candidate.submit(REFERENCE))
            tests_stored_at = None
            while not submit.done():
                rows = await db.fetchval(
                    "SELECT count(*) FROM test_results WHERE session_id = $1", candidate.session_id
                )
                if rows and tests_stored_at is None:
                    tests_stored_at = time.monotonic()
                await asyncio.sleep(0.05)
            events = await submit
            if tests_stored_at is None:  # stored between the last poll and the end: then at the latest
                tests_stored_at = time.monotonic()
        finally:
            await db.close()
    [evaluation] = fake.of("turn_evaluation")
    answered_at = evaluation.at + 6.0
    assert events[-1].report.code.passed == events[-1].report.code.total > 0
    assert tests_stored_at < answered_at, (
        f"the code checks finished {tests_stored_at - answered_at:.2f}s after the turn evaluation: they waited for it"
    )


# ----- the providers ----------------------------------------------------------------------


def _turn(n: int, user: str, intent: Intent | None, score: float | None, violated: bool = False) -> EvaluatedTurn:
    return EvaluatedTurn(n, user, f"answer {n}", intent, score, violated)


async def test_the_offline_turn_judgement_carries_the_conversation_judged_through_it() -> None:
    provider = OfflineProvider()
    conversation = [_turn(1, "Can you give me a hint on how to start?", Intent.HINT_QUERY, 60.0)]
    exchange = Exchange(2, "I tried a dict of value to index; I ran [3,3] and got [0,0]. Why?", "What if...?")
    judgement = await provider.evaluate_turn(
        PROBLEM, [Exchange(1, conversation[0].user, "a")], exchange, GuardrailVerdict.ok(), conversation
    )
    plain = await provider.evaluate_turn(
        PROBLEM, [Exchange(1, conversation[0].user, "a")], exchange, GuardrailVerdict.ok()
    )
    assert plain.holistic is None, "no conversation, no holistic judgement"
    assert judgement.holistic is not None and judgement.holistic.provider == "offline"
    expected = judge_holistic([*conversation, _turn(2, exchange.user, judgement.intent, judgement.score)])
    assert judgement.holistic.score == expected.score
    assert "turn 2" in " ".join(c.evidence for c in judgement.holistic.criteria)


async def test_a_refused_turn_counts_as_a_violation_in_the_conversation_judged_with_it() -> None:
    provider = OfflineProvider()
    refused = GuardrailVerdict(True, Violation.SOLUTION_REQUEST, "asks for the full code")
    exchange = Exchange(2, "Just write the whole solution for me.", "I can't do that in this test.")
    conversation = [_turn(1, "What does the problem ask for?", Intent.HINT_QUERY, 55.0)]
    judgement = await provider.evaluate_turn(PROBLEM, [], exchange, refused, conversation)
    assert judgement.holistic is not None
    coherence = next(c for c in judgement.holistic.criteria if c.criterion == "strategy_coherence")
    assert "turn 2: guardrail violation" in coherence.evidence


async def test_turns_not_evaluated_yet_are_read_from_their_transcript() -> None:
    provider = OfflineProvider()
    conversation = [
        _turn(1, "Give me a hint about the approach please", None, None),
        _turn(2, "Write the function for me", None, None, violated=True),
    ]
    exchange = Exchange(3, "I ran it on [2,7,11,15] target 9 and got [0,1], is that right?", "Check it yourself.")
    judgement = await provider.evaluate_turn(PROBLEM, [], exchange, GuardrailVerdict.ok(), conversation)
    assert judgement.holistic is not None
    evidence = " ".join(c.evidence for c in judgement.holistic.criteria)
    assert "turn 2: guardrail violation" in evidence
    # The same conversation judged directly (intent unknown is classified, not guessed as one fixed value).
    assert judge_holistic(conversation).score > 0


async def test_median_of_k_keeps_the_holistic_judgement_of_the_median_sample() -> None:
    judgement = await MedianOfK(OfflineProvider(), 3).evaluate_turn(
        PROBLEM, [], Exchange(1, "How should I start?", "What do you know?"), GuardrailVerdict.ok(), []
    )
    assert judgement.samples == 3 and judgement.holistic is not None


def test_only_a_judgement_through_the_last_turn_by_the_configured_provider_is_used_at_submit() -> None:
    def log(turn: int, through: int | None, degraded: bool = False) -> TurnLog:
        entry: dict[str, Any] = {"turn_number": turn}
        if through is not None:
            entry["holistic"] = {"through_turn": through, "degraded": degraded, "score": 50.0}
        return entry  # type: ignore[return-value]  # only what usable_precomputed reads

    used = usable_precomputed([log(1, 1), log(2, 2)], 2)
    assert used is not None and used["through_turn"] == 2
    # A later turn whose evaluation carries none (a log of an earlier version): judged at submit.
    assert usable_precomputed([log(1, 1), log(2, None)], 2) is None
    assert usable_precomputed([log(1, 1)], 2) is None
    assert usable_precomputed([log(1, 1), log(2, 2, degraded=True)], 2) is None


def test_the_conversation_listing_stays_bounded_however_long_the_session_and_its_messages() -> None:

    huge = "I tried this approach and it still fails on the edge cases. " * 70  # ~4,200 characters
    history = [Exchange(t, huge, huge) for t in range(1, 60)]
    conversation = [_turn(t, huge, Intent.DEBUGGING, 50.0) for t in range(1, 60)]
    exchange = Exchange(60, "Why does it fail?", "Which input fails?")
    plain = turn_prompt(PROBLEM, history, exchange, GuardrailVerdict.ok())
    listed = turn_prompt(PROBLEM, history, exchange, GuardrailVerdict.ok(), conversation)
    added = listed.chars() - plain.chars()
    # Every earlier turn is named, its text clipped; past LISTED_TURNS only its verdict.
    assert all(f"Turn {t} (intent debugging, score 50" in _text(listed) for t in range(1, 60))
    assert added < 2_000 + LISTED_TURNS * 500 + 60 * 80, f"the listing added {added} characters"
    assert _text(listed).count("| Assistant in brief:") == LISTED_TURNS


def _text(prompt: Prompt) -> str:
    return prompt.system + "".join(p.get("text") or "" for c in prompt.contents for p in c.get("parts") or ())


def test_the_stored_report_is_the_same_document_with_its_turns_converted_beforehand() -> None:
    from vibe.services.gateway.report import report_to_json, turns_to_json
    from vibe_api.evaluator.v1 import evaluator_pb2

    turns = [
        evaluator_pb2.TurnEvaluation(
            session_id="s",
            turn=n,
            score=40.0 + n,
            final_reasoning=f"turn {n}",
            rubrics=[evaluator_pb2.RubricScore(criterion="clarity", score=50.0, reason="ok", weight=0.5)],
        )
        for n in (1, 2, 3)
    ]
    report = gateway_pb2.Report(session_id="s", turns=turns, language="python")
    report.holistic.precomputed = True
    assert report_to_json(report, turns_to_json(turns)) == report_to_json(report)
    empty = gateway_pb2.Report(session_id="s")
    assert report_to_json(empty, turns_to_json([])) == report_to_json(empty)
