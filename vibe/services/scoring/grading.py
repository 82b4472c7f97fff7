"""The final grade of docs/DESIGN.md §2 (node 7), with weights and bands from settings:

prompt_score = (holistic_flow_score + aggregate_turn_score) / 2
total_score  = w_prompt * prompt_score + w_performance * performance_score
               + w_correctness * correctness_score        (defaults 0.4 / 0.3 / 0.3)
grade        = the first band whose lower bound total_score reaches
"""

from __future__ import annotations

from dataclasses import dataclass

from vibe.platform.config import ScoringSettings
from vibe.platform.errors import InvalidArgument


@dataclass(frozen=True)
class FinalScores:
    """Node 7's result; the fields are those of `final_scores` and scoring.v1.FinalScores."""

    holistic_flow_score: float
    aggregate_turn_score: float
    performance_score: float
    correctness_score: float
    prompt_score: float
    total_score: float
    grade: str
    formula: str  # the rule with this deployment's weights and bands, shown in the report


def final_scores(
    settings: ScoringSettings,
    holistic_flow_score: float,
    aggregate_turn_score: float,
    performance_score: float,
    correctness_score: float,
) -> FinalScores:
    components = {
        "holistic_flow_score": holistic_flow_score,
        "aggregate_turn_score": aggregate_turn_score,
        "performance_score": performance_score,
        "correctness_score": correctness_score,
    }
    for name, value in components.items():
        if not 0.0 <= value <= 100.0:  # also rejects NaN
            raise InvalidArgument(f"{name} must be within 0..100, got {value}")
    prompt = round((holistic_flow_score + aggregate_turn_score) / 2, 2)
    total = round(
        settings.weight_prompt * prompt
        + settings.weight_performance * performance_score
        + settings.weight_correctness * correctness_score,
        2,
    )
    formula = (
        f"prompt = (holistic_flow + aggregate_turn) / 2; total = {settings.weight_prompt:g} * prompt + "
        f"{settings.weight_performance:g} * performance + {settings.weight_correctness:g} * correctness; "
        f"grade: {settings.bands.describe()}"
    )
    return FinalScores(
        holistic_flow_score=round(holistic_flow_score, 2),
        aggregate_turn_score=round(aggregate_turn_score, 2),
        performance_score=round(performance_score, 2),
        correctness_score=round(correctness_score, 2),
        prompt_score=prompt,
        total_score=total,
        grade=settings.bands.grade(total),
        formula=formula,
    )
