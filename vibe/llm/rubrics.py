"""The per-intent rubrics: which criteria score a turn of each intent, how much each
weighs, and what each means for that intent. The one place they are written down:
the offline judge scores with them, the Gemini judge is shown them, and the turn score
is always `weighted_score` over them (our arithmetic, never a model's).

Why the weights differ: a debugging request lives or dies by what was tried, expected
and observed (completeness); a rule for the AI by being unambiguous (clarity); a
follow-up by how precisely it uses the earlier answer (context) and whether it checks
that answer (discernment).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vibe.llm.base import DISCERNMENT, RUBRIC_CRITERIA, Intent, RubricScore

# What each criterion means whatever the intent; the rubrics below refine it per intent.
GENERAL_MEANING: Mapping[str, str] = {
    "clarity": "the request is unambiguous and easy to read; one clear ask",
    "completeness": "gives what the AI needs to answer without guessing",
    "specificity": "concrete inputs, code, numbers, the problem's own terms",
    "context": "uses the problem's constraints and the conversation so far",
    "efficiency": "moves the work forward in one focused turn; no wasted turn",
    DISCERNMENT: "checks, tests or pushes back on what the AI said instead of taking it on trust "
    '("you said X but that fails for Y", "why is that O(n)?")',
}


@dataclass(frozen=True)
class Criterion:
    name: str
    weight: float
    meaning: str  # what it asks of this intent


@dataclass(frozen=True)
class Rubric:
    intent: Intent
    criteria: tuple[Criterion, ...]

    def weight(self, criterion: str) -> float:
        return next((c.weight for c in self.criteria if c.name == criterion), 0.0)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.criteria)


def _rubric(intent: Intent, *criteria: tuple[str, float, str]) -> Rubric:
    return Rubric(
        intent, tuple(Criterion(name, weight, meaning or GENERAL_MEANING[name]) for name, weight, meaning in criteria)
    )


RUBRICS: Mapping[Intent, Rubric] = {
    r.intent: r
    for r in (
        _rubric(
            Intent.GENERATION,
            ("clarity", 0.20, "says exactly which piece of code is wanted"),
            ("completeness", 0.30, "states inputs, outputs and constraints (sizes, edge behaviour)"),
            ("specificity", 0.25, "names the function, signature, types or an example input/output"),
            ("context", 0.15, "ties the piece to the problem and to what is already written"),
            ("efficiency", 0.10, "asks for one piece the candidate can check, not the whole program"),
        ),
        _rubric(
            Intent.OPTIMIZATION,
            ("clarity", 0.15, "says what should be faster or leaner"),
            ("completeness", 0.20, "gives the current approach, its complexity and the limit it must meet"),
            ("specificity", 0.25, "names the bottleneck, n, the time limit or the target complexity"),
            ("context", 0.15, "uses the problem's constraints and the earlier discussion"),
            (DISCERNMENT, 0.25, 'questions complexity claims and trade-offs ("why is that O(n)?")'),
        ),
        _rubric(
            Intent.DEBUGGING,
            ("clarity", 0.15, "one clearly described failure"),
            ("completeness", 0.30, "states what was tried, what was expected and what was observed"),
            ("specificity", 0.25, "the failing input, the error message, the lines of code involved"),
            ("context", 0.10, "relates the failure to the problem and earlier advice"),
            (DISCERNMENT, 0.20, "checks the AI's diagnosis or earlier suggestion against the failure"),
        ),
        _rubric(
            Intent.TEST_CASE,
            ("clarity", 0.15, "says which behaviour is to be tested"),
            ("completeness", 0.20, "says what is tested, with which inputs and expected outputs"),
            ("specificity", 0.30, "concrete inputs, boundaries, sizes"),
            ("context", 0.15, "uses the problem's constraints (limits, duplicates, empty input)"),
            (DISCERNMENT, 0.20, "uses tests to check code or claims, including the AI's"),
        ),
        _rubric(
            Intent.HINT_QUERY,
            ("clarity", 0.25, "one focused question"),
            ("completeness", 0.25, "says what is already understood or tried and where exactly it gets stuck"),
            ("specificity", 0.20, "points at the step, idea or term in question"),
            ("context", 0.20, "uses the problem's terms and the hints so far"),
            ("efficiency", 0.10, "asks for the next step, not for everything at once"),
        ),
        _rubric(
            Intent.RULE_SETTING,
            ("clarity", 0.35, "the rule is unambiguous"),
            ("specificity", 0.30, "says exactly what the AI should and should not do"),
            ("context", 0.15, "fits the test and the problem"),
            ("efficiency", 0.20, "set once, briefly, so later turns need not repeat it"),
        ),
        _rubric(
            Intent.FOLLOW_UP,
            ("clarity", 0.15, "says which part of the earlier answer it is about"),
            ("specificity", 0.20, "names the exact step, value or line in question"),
            ("context", 0.30, "builds precisely on the earlier answer"),
            ("efficiency", 0.10, "moves on from the earlier answer instead of repeating it"),
            (DISCERNMENT, 0.25, "checks, questions or pushes back on the earlier answer"),
        ),
    )
}


def rubric_for(intent: Intent) -> Rubric:
    return RUBRICS[intent]


def weighted_score(scores: Iterable[RubricScore]) -> float:
    """The turn score: the weighted mean of the criterion scores (0..100, 2 decimals)."""
    items = list(scores)
    total = sum(r.weight for r in items)
    if total <= 0:
        return 0.0
    return round(sum(r.score * r.weight for r in items) / total, 2)


def describe_rubrics() -> str:
    """Every intent's rubric as text, for the judge's system instruction."""
    lines = []
    for rubric in RUBRICS.values():
        parts = "; ".join(f"{c.name} {c.weight:g} ({c.meaning})" for c in rubric.criteria)
        lines.append(f"- {rubric.intent.value}: {parts}")
    return "\n".join(lines)


def _check() -> None:
    # At import: a typo in a weight or a criterion must not reach a grade.
    if set(RUBRICS) != set(Intent):
        raise ValueError(f"intents without a rubric: {sorted(set(Intent) - set(RUBRICS))}")
    for rubric in RUBRICS.values():
        if abs(sum(c.weight for c in rubric.criteria) - 1.0) > 1e-9:
            raise ValueError(f"the weights of the {rubric.intent} rubric do not sum to 1")
        unknown = [c.name for c in rubric.criteria if c.name not in RUBRIC_CRITERIA]
        if unknown:
            raise ValueError(f"unknown criteria in the {rubric.intent} rubric: {unknown}")


_check()
