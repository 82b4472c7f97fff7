"""The offline per-turn judge: the intent (learned.py), and rubric scores from features of
the prompt a reviewer can check (prompt_features.py), moved into the score band the
learned band classifier reads when the two disagree (holistic_judge.py reads the
sequence of judged turns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from vibe.llm.base import (
    DISCERNMENT,
    Exchange,
    GuardrailVerdict,
    Intent,
    ProblemContext,
    RubricScore,
    TurnJudgement,
)
from vibe.llm.offline.intent import rule_intent
from vibe.llm.offline.learned import BAND_RANGES, band_probabilities, intent_probabilities
from vibe.llm.offline.prompt_features import PromptFeatures
from vibe.llm.offline.text import CODE_BLOCK, leaks_reference, rx, summarize_answer, summarize_prompt
from vibe.llm.rubrics import rubric_for, weighted_score


def clamp(value: float) -> float:
    return float(max(0.0, min(100.0, round(value, 2))))


def _score_clarity(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    if f.words < 3:
        score, why = 15.0, f"only {f.words:g} word(s): too short to say what is needed"
    elif f.words < 6:
        score, why = 40.0, f"short ({f.words:g} words), the request is only partly clear"
    elif f.words <= 80:
        score, why = 75.0, f"a readable {f.words:g}-word request"
    elif f.words <= 200:
        score, why = 62.0, f"long ({f.words:g} words), the main ask takes effort to find"
    else:
        score, why = 45.0, f"very long ({f.words:g} words), rambling"
    notes = [why]
    if f.questions == 1:
        score += 10
        notes.append("one focused question")
    elif f.questions >= 3:
        score -= min(20, 10 * (f.questions - 2))
        notes.append(f"{f.questions} questions at once")
    if f.formatted_code:
        score += 10
        notes.append("code set apart in backticks")
    return score, "; ".join(notes)


# What a complete request of each intent states (rubrics.py says it in words).
def _completeness_elements(f: PromptFeatures, intent: Intent) -> dict[str, bool]:
    if intent is Intent.GENERATION:
        return {
            "the piece of code wanted, named": f.code or bool(f.problem_terms),
            "inputs or outputs": f.expected or f.observed or bool(f.problem_terms),
            "constraints or sizes": f.numbers or f.complexity,
            "an example or signature": f.code,
        }
    if intent is Intent.OPTIMIZATION:
        return {
            "the current approach": f.tried or f.code,
            "its complexity": f.complexity,
            "the limit to meet": f.numbers,
            "what should improve": f.expected or f.observed or f.complexity,
        }
    if intent is Intent.TEST_CASE:
        return {
            "what is tested": f.code or bool(f.problem_terms),
            "concrete inputs": f.numbers or f.code,
            "expected outputs": f.expected or f.observed,
            "what was already tested or tried": f.tried or f.verified,
        }
    if intent is Intent.HINT_QUERY:
        return {
            "what is understood or tried": f.tried or f.history_ref or f.complexity,
            "where exactly it gets stuck": f.questions >= 1 and f.words >= 6,
            "the problem's terms": bool(f.problem_terms),
            "a concrete example": f.code or f.numbers,
        }
    return {  # debugging, and the default
        "what was tried": f.tried,
        "the expected result": f.expected,
        "what was observed": f.observed,
        "code or a concrete example": f.code,
    }


def _score_completeness(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    elements = _completeness_elements(f, intent)
    present = [name for name, ok in elements.items() if ok]
    missing = [name for name, ok in elements.items() if not ok]
    score = 20.0 + 20.0 * len(present)
    if f.words < 4:
        score = min(score, 15.0)
    reason = f"states {', '.join(present)}" if present else f"states none of: {', '.join(elements)}"
    if present and missing:
        reason += f"; missing {', '.join(missing)}"
    return score, reason


def _score_specificity(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    score = 20.0
    notes: list[str] = []
    if f.code:
        score += 30
        notes.append("names code/identifiers or a concrete input")
    if f.numbers:
        score += 25
        notes.append("gives numbers or constraints")
    if f.complexity:
        score += 15
        notes.append("talks about complexity")
    if f.problem_terms:
        score += 10
        notes.append("uses the problem's terms")
    if intent is Intent.RULE_SETTING:
        # A rule is specific through the directives it gives (do / never / only / first),
        # not through numbers.
        score += min(3, f.directives) * 20
        if f.directives:
            notes.append(f"{f.directives} directive(s) for the AI")
    if f.words < 3:
        score = min(score, 10.0)
        notes.append("too short to be specific")
    return score, "; ".join(notes) or "generic wording, no code, numbers or constraints"


def _score_context(f: PromptFeatures, intent: Intent, has_history: bool) -> tuple[float, str]:
    score = 15.0
    notes: list[str] = []
    if f.problem_terms:
        score += min(45, 15 * len(f.problem_terms))
        notes.append(f"refers to the problem ({', '.join(f.problem_terms[:4])})")
    else:
        notes.append("no reference to the problem's own terms")
    if f.history_ref:
        score += 25 if intent is not Intent.FOLLOW_UP else 35
        notes.append("builds on an earlier turn")
    elif has_history:
        notes.append("does not refer to earlier turns")
    if f.code:
        score += 15
        notes.append("includes their own code")
    if f.words < 4:
        score = min(score, 30.0)
        notes.append("too short to carry the context")
    return score, "; ".join(notes)


def _score_efficiency(f: PromptFeatures, intent: Intent) -> tuple[float, str]:
    if f.low_effort:
        return 15.0, 'a low-effort request ("next hint" / "just tell me") that hands the work to the AI'
    if f.words < 3:
        return 20.0, "too short to move the work forward"
    score = 60.0
    notes: list[str] = []
    if f.questions <= 1:
        score += 15
        notes.append("one focused request")
    elif f.questions >= 3:
        score -= 20
        notes.append(f"{f.questions} questions in one turn dilute the focus")
    if f.tried or f.code:
        score += 15
        notes.append("shows their own work so the answer can move it forward")
    if f.words > 200:
        score -= 15
        notes.append("much more text than the request needs")
    return score, "; ".join(notes) or "a workable request"


def _score_discernment(f: PromptFeatures, intent: Intent, has_history: bool) -> tuple[float, str]:
    if not has_history and not (f.pushback or f.verified):
        # The AI has said nothing yet: nothing to check, so neither credit nor blame.
        return 50.0, "first turn: no AI answer to check yet (neutral)"
    score = 10.0
    notes: list[str] = []
    if f.pushback:
        # Doubting a claim the AI made counts fully; doubting in general, before the AI said anything, half.
        score += 40 if has_history else 20
        notes.append("questions or pushes back on a claim")
    if f.verified:
        score += 25
        notes.append("checked it themselves (ran, traced or tested it)")
    if intent is Intent.TEST_CASE and (f.code or f.numbers):
        score += 30
        notes.append("proposes concrete tests to check the code")
    if f.history_ref:
        score += 15
        notes.append("refers to what the AI said")
        if f.code or f.numbers:
            score += 10
            notes.append("tries the earlier answer on a concrete case")
    if not notes:
        return score, "takes what the AI says on trust: no check, test or push-back"
    return score, "; ".join(notes)


def score_criterion(criterion: str, f: PromptFeatures, intent: Intent, has_history: bool) -> tuple[float, str]:
    """(score 0..100, reason) of one rubric criterion for a prompt of this intent."""
    if criterion == "clarity":
        score, why = _score_clarity(f, intent)
    elif criterion == "completeness":
        score, why = _score_completeness(f, intent)
    elif criterion == "specificity":
        score, why = _score_specificity(f, intent)
    elif criterion == "context":
        score, why = _score_context(f, intent, has_history)
    elif criterion == "efficiency":
        score, why = _score_efficiency(f, intent)
    elif criterion == DISCERNMENT:
        score, why = _score_discernment(f, intent, has_history)
    else:
        raise ValueError(f"no offline scorer for criterion {criterion!r}")
    return clamp(score), why


_REFUSAL_MARKERS = rx(
    r"\bcan'?t\s+(?:give|share|ignore|hand|help\s+with\s+that)|\bwon'?t\s+(?:give|hand)|드릴\s*수\s*없|할\s*수\s*없|넘어가겠|따를\s*수\s*없"
)


def _describe_answer(problem: ProblemContext, answer: str) -> str:
    actions: list[str] = []
    if _REFUSAL_MARKERS.search(answer):
        actions.append("gave an educational refusal")
    if "?" in answer or "？" in answer:
        actions.append("asked a guiding question")
    hints_given = [i + 1 for i, h in enumerate(problem.hints) if h.strip() and h.strip() in answer]
    if hints_given:
        actions.append(f"gave hint {', '.join(map(str, hints_given))}")
    if not actions:
        actions.append("explained without asking a question" if answer.strip() else "gave no reply")
    sentence = "The tutor " + (", ".join(actions[:-1]) + " and " + actions[-1] if len(actions) > 1 else actions[0])
    if leaks_reference(problem, answer):
        return sentence + " but leaked part of the reference solution."
    has_code = bool(CODE_BLOCK.search(answer))
    return sentence + (" with a code block." if has_code else " without code.")


def rule_rubrics(
    problem: ProblemContext, history: Sequence[Exchange], message: str, intent: Intent
) -> tuple[RubricScore, ...]:
    """The rubric of `intent` scored from the prompt's rule features alone."""
    f = PromptFeatures.of(problem, history, message)
    return tuple(
        RubricScore(c.name, *score_criterion(c.name, f, intent, bool(history)), c.weight)
        for c in rubric_for(intent).criteria
    )


def rule_score(problem: ProblemContext, history: Sequence[Exchange], message: str) -> float:
    """The rubric score under the rules' own intent: one input of the band classifier
    (the same at training and at run time, whatever the learned intent is)."""
    return weighted_score(rule_rubrics(problem, history, message, rule_intent(message, bool(history))))


def band_of(score: float) -> str:
    return "low" if score < 40 else "mid" if score < 70 else "high"


def shifted_to(rubrics: tuple[RubricScore, ...], target: float, within: float = 0.5) -> tuple[RubricScore, ...]:
    """The rubric scores shifted by one common amount so that their weighted mean is
    `target` (to `within` points)."""
    moved = rubrics
    for _ in range(8):  # criteria pinned at 0 or 100 absorb nothing: spread the rest again
        gap = target - weighted_score(moved)
        if abs(gap) < within:
            break
        moved = tuple(replace(r, score=clamp(r.score + gap)) for r in moved)
    return moved


def move_into_band(rubrics: tuple[RubricScore, ...], band: str, p: float) -> tuple[tuple[RubricScore, ...], str]:
    """The rubric scores shifted by one common amount so that their weighted mean lands in
    `band` (at the edge nearest to where the rules put it), and a note saying so. Unchanged
    when the rules' score is in the band already. Each criterion keeps its reason: the
    rules still say what is present and missing; the shift says how a reviewer weighs it."""
    raw = weighted_score(rubrics)
    if band_of(raw) == band:
        return rubrics, ""
    lo, hi = BAND_RANGES[band]
    moved = shifted_to(rubrics, min(max(raw, lo), hi))
    shift = weighted_score(moved) - raw
    label = f"{shift:+.0f} for the learned band reading ({band}, p={p:.2f})"
    moved = tuple(
        replace(m, reason=f"{m.reason} [{m.score - r.score:+.0f}: learned band {band}]") if m.score != r.score else m
        for m, r in zip(moved, rubrics, strict=True)
    )
    return moved, f" The rubric features alone gave {raw:g}; moved {label}."


def judge_turn(
    problem: ProblemContext,
    history: Sequence[Exchange],
    exchange: Exchange,
    guardrail: GuardrailVerdict,
    intent: Intent | None = None,
) -> TurnJudgement:
    """The turn judged; `intent`, when given, is taken instead of the one read from the
    text (the same turn read without some of its words keeps the intent read from all)."""
    intents = intent_probabilities(exchange.user, history, problem)
    intent = intent or max(intents, key=lambda i: intents[i])
    prompt_summary = summarize_prompt(exchange.user)
    answer_summary = summarize_answer(exchange.assistant)
    answer_reasoning = _describe_answer(problem, exchange.assistant)
    rubric = rubric_for(intent)
    if guardrail.violated:
        kind = guardrail.violation.value if guardrail.violation else "unknown"
        why = f"scored 0: the turn violated the guardrail ({kind}: {guardrail.reason or 'no detail'})"
        return TurnJudgement(
            intent=intent,
            score=0.0,
            rubrics=tuple(RubricScore(c.name, 0.0, why, c.weight) for c in rubric.criteria),
            final_reasoning=f"Intent {intent.value}; the turn violated the guardrail ({kind}) and is scored 0 as the design requires.",
            user_prompt_summary=prompt_summary,
            llm_answer_summary=answer_summary,
            llm_answer_reasoning=answer_reasoning,
        )
    rubrics = rule_rubrics(problem, history, exchange.user, intent)
    bands = band_probabilities(problem, history, exchange.user, rule_score(problem, history, exchange.user))
    band = max(bands, key=lambda b: bands[b])
    rubrics, moved = move_into_band(rubrics, band, bands[band])
    score = weighted_score(rubrics)
    best = max(rubrics, key=lambda r: r.score)
    worst = min(rubrics, key=lambda r: r.score)
    final = (
        f"Intent {intent.value} (p={intents[intent]:.2f}), score {score:g} (weighted): strongest {best.criterion} "
        f"({best.score:g}, {best.reason}); weakest {worst.criterion} ({worst.score:g}, {worst.reason}).{moved}"
    )
    return TurnJudgement(
        intent=intent,
        score=score,
        rubrics=rubrics,
        final_reasoning=final,
        user_prompt_summary=prompt_summary,
        llm_answer_summary=answer_summary,
        llm_answer_reasoning=answer_reasoning,
    )
