"""The final report: assembled from the services' answers, stored as JSON, shown as is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format, timestamp_pb2

from vibe.services.gateway.store import SessionRow
from vibe_api.evaluator.v1 import evaluator_pb2
from vibe_api.gateway.v1 import gateway_pb2
from vibe_api.scoring.v1 import scoring_pb2
from vibe_api.tutor.v1 import tutor_pb2


def build_report(
    session: SessionRow,
    turns: Sequence[evaluator_pb2.TurnEvaluation],
    holistic: evaluator_pb2.HolisticEvaluation,
    code: scoring_pb2.CheckCodeResponse,
    scores: scoring_pb2.FinalScores,
    language: str,
    submitted_code: str,
    late_by_s: int = 0,
) -> gateway_pb2.Report:
    refused = [t for t in turns if t.guardrail.violated]
    by_violation = Counter(
        tutor_pb2.ViolationType.Name(t.guardrail.violation_type).removeprefix("VIOLATION_TYPE_").lower()
        for t in refused
    )
    degraded = [f"turn {t.turn} evaluation" for t in turns if t.degraded]
    if holistic.degraded:
        degraded.append("holistic evaluation")
    providers = sorted(({t.provider for t in turns} | {holistic.provider}) - {""})
    models = sorted(({t.model for t in turns} | {holistic.model}) - {""})
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    report = gateway_pb2.Report(
        session_id=session.session_id,
        candidate_id=session.candidate_id,
        problem_id=session.problem_id,
        turns=turns,
        holistic=holistic,
        code=code,
        scores=scores,
        guardrails=gateway_pb2.GuardrailSummary(
            refused_turns=len(refused),
            by_violation=dict(by_violation),
            leak_cut_turns=[t.turn for t in turns if t.leak_cut],
        ),
        llm_provider=", ".join(providers),
        llm_model=", ".join(models),
        # The holistic evaluation is the submit's last LLM call, so its view of the
        # session's usage is complete.
        llm_usage=holistic.session_usage,
        degraded_parts=degraded,
        language=language,
        submitted_code=submitted_code,
        graded_at=now,
        late_by_s=late_by_s,
    )
    if session.submitted_at is not None:
        report.submitted_at.FromDatetime(session.submitted_at)
    return report


def guardrail_line(summary: gateway_pb2.GuardrailSummary) -> str:
    """ "2 turns refused: solution_request x1, jailbreak x1", most frequent first."""
    if summary.refused_turns == 0:
        line = "no turns refused"
    else:
        kinds = sorted(summary.by_violation.items(), key=lambda kv: (-kv[1], kv[0]))
        noun = "turn" if summary.refused_turns == 1 else "turns"
        line = f"{summary.refused_turns} {noun} refused: " + ", ".join(f"{kind} x{n}" for kind, n in kinds)
    if summary.leak_cut_turns:
        cut = ", ".join(str(t) for t in summary.leak_cut_turns)
        line += f"; reply cut by the leak check on turn(s) {cut}"
    return line


def holistic_line(holistic: evaluator_pb2.HolisticEvaluation) -> str:
    """How the conversation was judged: in the last turn's evaluation call, while the
    candidate worked (no LLM call at submit), or at submit."""
    if holistic.precomputed:
        return f"judged with turn {holistic.through_turn}'s evaluation (precomputed)"
    return "judged at submit"


def rubric_rows(turn: evaluator_pb2.TurnEvaluation) -> list[tuple[str, float, float, str]]:
    """(criterion, weight, score, reason) of a turn's rubric, heaviest criterion first."""
    return sorted(((r.criterion, r.weight, r.score, r.reason) for r in turn.rubrics), key=lambda row: -row[1])


def turns_to_json(turns: Sequence[evaluator_pb2.TurnEvaluation]) -> list[dict[str, Any]]:
    """The turns' part of the stored report, made on its own: it is most of the report
    (7 ms for 30 turns here), so a submit makes it while the code checks still run."""
    return [json_format.MessageToDict(t, preserving_proto_field_name=True) for t in turns]


def report_to_json(report: gateway_pb2.Report, turns_json: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The report as stored; with `turns_json` (turns_to_json of its turns) only the rest
    is converted now. The same document either way."""
    if turns_json is None:
        return json_format.MessageToDict(report, preserving_proto_field_name=True)
    shell = gateway_pb2.Report()
    shell.CopyFrom(report)
    shell.ClearField("turns")
    data = json_format.MessageToDict(shell, preserving_proto_field_name=True)
    if turns_json:
        data["turns"] = turns_json
    return data


def report_from_json(data: dict[str, Any]) -> gateway_pb2.Report:
    return json_format.ParseDict(data, gateway_pb2.Report(), ignore_unknown_fields=True)
