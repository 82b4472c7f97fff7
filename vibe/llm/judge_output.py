"""The JSON the model must answer with, and our own check of what it sent.

The schemas are sent with each request (`response_json_schema`), but a schema is a
request, not a guarantee: the SDK's `parsed` is silently None when the reply is wrapped
in markdown fences or cut off at MAX_TOKENS, and a model can still invent an intent.
So every reply's text is parsed and validated here: fences and surrounding prose are
stripped (repair), numbers are clamped to their range, and anything else that is wrong
(an unknown intent, a missing criterion, truncation) raises `InvalidModelOutput`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from vibe.llm.base import (
    HOLISTIC_CRITERIA,
    RUBRIC_CRITERIA,
    GuardrailVerdict,
    HolisticCriterionScore,
    HolisticJudgement,
    Intent,
    RubricScore,
    TurnJudgement,
    Violation,
)
from vibe.llm.rubrics import rubric_for, weighted_score

NO_VIOLATION = "none"


class InvalidModelOutput(ValueError):
    def __init__(self, message: str, *, truncated: bool = False):
        super().__init__(message)
        self.truncated = truncated


def _scored_items(name: str, criteria: Sequence[str], text_field: str) -> dict[str, Any]:
    return {
        "type": "array",
        "description": f"exactly one entry per {name}",
        "items": {
            "type": "object",
            "properties": {
                "criterion": {"type": "string", "enum": list(criteria)},
                "score": {"type": "number", "minimum": 0, "maximum": 100},
                text_field: {"type": "string"},
            },
            "required": ["criterion", "score", text_field],
        },
    }


TURN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "intent": {"type": "string", "enum": [i.value for i in Intent]},
        # Every criterion the chosen intent's rubric lists (vibe/llm/rubrics.py); the
        # enum is all of them because the intent is only known once the model chose it.
        "rubrics": _scored_items("criterion of the chosen intent's rubric", RUBRIC_CRITERIA, "reason"),
        "user_prompt_summary": {"type": "string"},
        "llm_answer_summary": {"type": "string"},
        "llm_answer_reasoning": {"type": "string"},
        "final_reasoning": {"type": "string"},
    },
    "required": [
        "intent",
        "rubrics",
        "user_prompt_summary",
        "llm_answer_summary",
        "llm_answer_reasoning",
        "final_reasoning",
    ],
}
HOLISTIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "criteria": _scored_items("criterion", HOLISTIC_CRITERIA, "evidence"),
        "summary": {"type": "string"},
    },
    "required": ["criteria", "summary"],
}
# One call judges the turn and, when asked, the whole conversation through it: the turn's
# fields plus a "holistic" object (vibe/llm/base.py, TurnJudgement.holistic).
TURN_WITH_HOLISTIC_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {**TURN_SCHEMA["properties"], "holistic": HOLISTIC_SCHEMA},
    "required": [*TURN_SCHEMA["required"], "holistic"],
}
GUARDRAIL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "violation": {"type": "string", "enum": [NO_VIOLATION, *(v.value for v in Violation)]},
        "reason": {"type": "string"},
    },
    "required": ["violation", "reason"],
}

_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def load_object(text: str | None, finish_reason: str) -> dict[str, Any]:
    """The JSON object in a reply, repaired when it is only wrapped (fences, prose)."""
    truncated = finish_reason == "MAX_TOKENS"
    if not text or not text.strip():
        raise InvalidModelOutput(f"empty reply (finish reason {finish_reason})", truncated=truncated)
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end < start:
        raise InvalidModelOutput(f"no JSON object in the reply (finish reason {finish_reason})", truncated=truncated)
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidModelOutput(
            f"reply is not valid JSON ({exc}; finish reason {finish_reason})", truncated=truncated
        ) from None
    if not isinstance(data, dict):
        raise InvalidModelOutput("reply is not a JSON object")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise InvalidModelOutput(f"{key!r} must be a string")
    return value.strip()


def _score(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidModelOutput(f"{where}: score must be a number")
    return round(max(0.0, min(100.0, float(value))), 2)


def _scores(
    data: dict[str, Any], key: str, criteria: Sequence[str], text_field: str, known: Sequence[str] | None = None
) -> dict[str, tuple[float, str]]:
    """criterion -> (clamped score, text); every one of `criteria` exactly once. Entries
    for other `known` criteria (not weighed here) are accepted and left out."""
    known = criteria if known is None else known
    items = data.get(key)
    if not isinstance(items, list):
        raise InvalidModelOutput(f"{key!r} must be a list")
    found: dict[str, tuple[float, str]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidModelOutput(f"{key!r} entries must be objects")
        criterion = item.get("criterion")
        if not isinstance(criterion, str) or criterion not in known:
            raise InvalidModelOutput(f"unknown criterion {criterion!r}")
        if criterion in found:
            raise InvalidModelOutput(f"criterion {criterion!r} appears twice")
        found[criterion] = (_score(item.get("score"), criterion), _text(item, text_field))
    missing = [c for c in criteria if c not in found]
    if missing:
        raise InvalidModelOutput(f"missing criteria: {', '.join(missing)}")
    return {c: found[c] for c in criteria}


def parse_turn(data: dict[str, Any]) -> TurnJudgement:
    raw_intent = data.get("intent")
    try:
        intent = Intent(str(raw_intent))
    except ValueError:
        raise InvalidModelOutput(f"unknown intent {raw_intent!r}") from None  # an error, never a guess
    rubric = rubric_for(intent)
    scores = _scores(data, "rubrics", rubric.names, "reason", known=RUBRIC_CRITERIA)
    rubrics = tuple(RubricScore(c.name, *scores[c.name], c.weight) for c in rubric.criteria)
    return TurnJudgement(
        intent=intent,
        # Our arithmetic, not the model's: the intent's weighted mean of the clamped scores.
        score=weighted_score(rubrics),
        rubrics=rubrics,
        final_reasoning=_text(data, "final_reasoning"),
        user_prompt_summary=_text(data, "user_prompt_summary"),
        llm_answer_summary=_text(data, "llm_answer_summary"),
        llm_answer_reasoning=_text(data, "llm_answer_reasoning"),
    )


def parse_holistic(data: dict[str, Any]) -> HolisticJudgement:
    scores = _scores(data, "criteria", HOLISTIC_CRITERIA, "evidence")
    criteria = tuple(HolisticCriterionScore(c, *scores[c]) for c in HOLISTIC_CRITERIA)
    return HolisticJudgement(
        score=round(sum(c.score for c in criteria) / len(criteria), 2),
        criteria=criteria,
        summary=_text(data, "summary"),
    )


def parse_turn_with_holistic(data: dict[str, Any]) -> TurnJudgement:
    """A turn judgement and the holistic judgement of the conversation through it; a
    missing or malformed "holistic" object makes the whole answer unusable (retried)."""
    holistic = data.get("holistic")
    if not isinstance(holistic, dict):
        raise InvalidModelOutput("'holistic' must be an object")
    return replace(parse_turn(data), holistic=parse_holistic(holistic))


def parse_guardrail(data: dict[str, Any]) -> GuardrailVerdict:
    raw = data.get("violation")
    if raw == NO_VIOLATION:
        return GuardrailVerdict.ok()
    try:
        violation = Violation(str(raw))
    except ValueError:
        raise InvalidModelOutput(f"unknown violation {raw!r}") from None
    return GuardrailVerdict(True, violation, f"{violation.value}: {_text(data, 'reason')} (model classification)")
