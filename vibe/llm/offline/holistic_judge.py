"""The offline holistic judge: the sequence of evaluated turns read as a problem-solving
strategy, on the five criteria of HOLISTIC_CRITERIA, each with evidence citing turns.

A turn whose own evaluation is not known yet (intent and score None: it is being
evaluated beside the turn that judges the conversation) is read from its transcript:
its intent classified from the message, its score a neutral 50 (the provider fills in
the offline turn judge's score when it has the problem at hand)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from vibe.llm.base import HOLISTIC_CRITERIA, EvaluatedTurn, HolisticCriterionScore, HolisticJudgement, Intent
from vibe.llm.offline.learned import classify_intent
from vibe.llm.offline.prompt_features import LOW_EFFORT, PUSHBACK, VERIFIED
from vibe.llm.offline.text import prose
from vibe.llm.offline.turn_judge import clamp

# The expected order of work; follow_up continues whatever stage came before.
_STAGE: dict[Intent, int] = {
    Intent.HINT_QUERY: 0,
    Intent.RULE_SETTING: 0,
    Intent.GENERATION: 1,
    Intent.TEST_CASE: 2,
    Intent.DEBUGGING: 3,
    Intent.OPTIMIZATION: 4,
}
_LOW_SCORE = 40.0
_UNKNOWN_SCORE = 50.0  # a turn not evaluated yet: neither weak nor strong


@dataclass(frozen=True)
class _Turn:
    """An EvaluatedTurn whose intent and score are known."""

    turn: int
    user: str
    intent: Intent
    score: float
    violated: bool


def _known(turns: Sequence[EvaluatedTurn]) -> list[_Turn]:
    ordered = sorted(turns, key=lambda t: t.turn)
    return [
        _Turn(
            t.turn,
            t.user,
            t.intent if t.intent is not None else classify_intent(t.user, i > 0),
            t.score if t.score is not None else (0.0 if t.violated else _UNKNOWN_SCORE),
            t.violated,
        )
        for i, t in enumerate(ordered)
    ]


def _turn_list(numbers: Sequence[int]) -> str:
    if not numbers:
        return "no turns"
    nums = ", ".join(str(n) for n in numbers)
    return f"turn {nums}" if len(numbers) == 1 else f"turns {nums}"


def _judge_decomposition(turns: Sequence[_Turn]) -> HolisticCriterionScore:
    clean = [t for t in turns if not t.violated]
    intents = sorted({t.intent.value for t in clean})
    score = 10.0 + 15.0 * len(intents)
    first_gen = next((t.turn for t in clean if t.intent is Intent.GENERATION), None)
    planning = [
        t.turn
        for t in clean
        if t.intent in (Intent.HINT_QUERY, Intent.RULE_SETTING, Intent.TEST_CASE)
        and (first_gen is None or t.turn < first_gen)
    ]
    if first_gen is None:
        plan_note = "no generation turn"
    elif planning:
        score += 20
        plan_note = f"{_turn_list(planning)} explored the problem before generation at turn {first_gen}"
    else:
        score -= 10
        plan_note = f"jumped to generation at turn {first_gen} without first breaking the problem down"
    evidence = f"{_turn_list([t.turn for t in clean])}: {len(intents)} distinct intent(s) ({', '.join(intents) or 'none'}); {plan_note}"
    return HolisticCriterionScore("problem_decomposition", clamp(score), evidence)


def _judge_feedback(turns: Sequence[_Turn]) -> HolisticCriterionScore:
    if len(turns) < 2:
        return HolisticCriterionScore(
            "feedback_integration",
            30.0,
            f"{_turn_list([t.turn for t in turns])}: a single turn, no earlier answer to build on",
        )
    building = [t.turn for t in turns[1:] if not t.violated and t.intent in (Intent.FOLLOW_UP, Intent.DEBUGGING)]
    score = 25.0 + 25.0 * len(building)
    # Recovering after a weak turn shows the candidate used the feedback.
    recoveries = [b.turn for a, b in itertools.pairwise(turns) if a.score < _LOW_SCORE and b.score >= a.score + 20]
    if recoveries:
        score += 10
    if building:
        evidence = f"{_turn_list(building)}: follow-up/debugging turns building on earlier answers"
    else:
        evidence = f"{_turn_list([t.turn for t in turns])}: no turn builds on an earlier answer"
    if recoveries:
        evidence += f"; {_turn_list(recoveries)} improved after a weak turn"
    return HolisticCriterionScore("feedback_integration", clamp(score), evidence)


def _judge_coherence(turns: Sequence[_Turn]) -> HolisticCriterionScore:
    score = 100.0
    notes: list[str] = []
    violations = [t.turn for t in turns if t.violated]
    if violations:
        score -= 25.0 * len(violations)
        notes.append(f"{_turn_list(violations)}: guardrail violation(s)")
    backward: list[int] = []
    stage: int | None = None
    for t in turns:
        if t.violated or t.intent not in _STAGE:
            continue
        current = _STAGE[t.intent]
        # Going back one stage (debug -> test) is normal iteration; jumping back further
        # (optimize -> first hints) means the plan was lost.
        if stage is not None and current < stage - 1:
            backward.append(t.turn)
        stage = current
    if backward:
        score -= 15.0 * len(backward)
        notes.append(f"{_turn_list(backward)}: jumped back to an earlier stage")
    low_runs = [b.turn for a, b in itertools.pairwise(turns) if a.score < _LOW_SCORE and b.score < _LOW_SCORE]
    if low_runs:
        score -= 10.0 * len(low_runs)
        notes.append(f"{_turn_list(low_runs)}: repeated low-score turns")
    if len(turns) == 1:
        score = min(score, 60.0)
        notes.append(f"{_turn_list([turns[0].turn])}: a single turn shows little strategy")
    if not notes:
        order = " -> ".join(t.intent.value for t in turns)
        notes.append(f"{_turn_list([t.turn for t in turns])}: a sensible order ({order})")
    return HolisticCriterionScore("strategy_coherence", clamp(score), "; ".join(notes))


def _checks_ai(t: _Turn, earlier: bool) -> bool:
    """The turn checks, tests or pushes back on what the AI said."""
    if t.violated or not earlier:
        return False
    return bool(PUSHBACK.search(prose(t.user)) or VERIFIED.search(t.user)) or t.intent is Intent.TEST_CASE


def _judge_verification(turns: Sequence[_Turn]) -> HolisticCriterionScore:
    # Only a turn after some answer can check one; a test_case turn checks the code the
    # conversation produced, a push-back or "I ran it" checks a claim.
    checking = [t.turn for i, t in enumerate(turns) if _checks_ai(t, earlier=i > 0)]
    score = 15.0 + 30.0 * len(checking)
    if len(turns) < 2:
        return HolisticCriterionScore(
            "verification_of_ai_output",
            15.0,
            f"{_turn_list([t.turn for t in turns])}: a single turn, no AI output to check yet",
        )
    if checking:
        evidence = f"{_turn_list(checking)}: checked, tested or questioned what the AI said"
    else:
        evidence = f"{_turn_list([t.turn for t in turns])}: took every answer on trust, no test or push-back"
    return HolisticCriterionScore("verification_of_ai_output", clamp(score), evidence)


def _judge_iteration(turns: Sequence[_Turn]) -> HolisticCriterionScore:
    wasted: list[int] = []
    repeated: list[int] = []
    seen: set[str] = set()
    for t in turns:
        text = " ".join(t.user.lower().split())
        if text in seen:
            repeated.append(t.turn)
        seen.add(text)
        if t.violated or LOW_EFFORT.search(t.user) or t.score < _LOW_SCORE:
            wasted.append(t.turn)
    productive = len(turns) - len(wasted)
    score = 20.0 + 80.0 * productive / len(turns) - 10.0 * len(repeated)
    moved = [t.turn for t in turns if t.turn not in wasted]
    notes = [f"{_turn_list(moved)}: {productive} of {len(turns)} turn(s) moved the work forward"]
    if wasted:
        notes.append(f"{_turn_list(wasted)}: refused, low-effort or weak")
    if repeated:
        notes.append(f"{_turn_list(repeated)}: repeated an earlier message")
    return HolisticCriterionScore("iteration_efficiency", clamp(score), "; ".join(notes))


def judge_holistic(turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
    if not turns:
        return HolisticJudgement(
            score=0.0,
            criteria=tuple(HolisticCriterionScore(c, 0.0, "no turns") for c in HOLISTIC_CRITERIA),
            summary="No turns to evaluate.",
        )
    ordered = _known(turns)
    by_name = {
        "problem_decomposition": _judge_decomposition(ordered),
        "feedback_integration": _judge_feedback(ordered),
        "strategy_coherence": _judge_coherence(ordered),
        "verification_of_ai_output": _judge_verification(ordered),
        "iteration_efficiency": _judge_iteration(ordered),
    }
    criteria = tuple(by_name[c] for c in HOLISTIC_CRITERIA)
    score = round(sum(c.score for c in criteria) / len(criteria), 2)
    best = max(criteria, key=lambda c: c.score)
    worst = min(criteria, key=lambda c: c.score)
    distinct = len({t.intent for t in ordered})
    summary = (
        f"Over {len(ordered)} turn(s) the candidate used {distinct} distinct intent(s); flow score {score:g}. "
        f"Strongest: {best.criterion} ({best.score:g}); weakest: {worst.criterion} ({worst.score:g})."
    )
    return HolisticJudgement(score=score, criteria=criteria, summary=summary)
