"""Conversions between the LLM layer's plain types and protobuf messages that more
than one service needs."""

from __future__ import annotations

from vibe.llm.base import GuardrailVerdict, Violation
from vibe_api.tutor.v1 import tutor_pb2

VIOLATION_TO_PB = {
    Violation.SOLUTION_REQUEST: tutor_pb2.VIOLATION_TYPE_SOLUTION_REQUEST,
    Violation.JAILBREAK: tutor_pb2.VIOLATION_TYPE_JAILBREAK,
    Violation.OFF_TOPIC: tutor_pb2.VIOLATION_TYPE_OFF_TOPIC,
    Violation.ABUSE: tutor_pb2.VIOLATION_TYPE_ABUSE,
}
PB_TO_VIOLATION = {v: k for k, v in VIOLATION_TO_PB.items()}


def guardrail_to_pb(verdict: GuardrailVerdict) -> tutor_pb2.Guardrail:
    return tutor_pb2.Guardrail(
        violated=verdict.violated,
        violation_type=VIOLATION_TO_PB[verdict.violation]
        if verdict.violation
        else tutor_pb2.VIOLATION_TYPE_UNSPECIFIED,
        reason=verdict.reason,
    )


def guardrail_from_pb(pb: tutor_pb2.Guardrail) -> GuardrailVerdict:
    if not pb.violated:
        return GuardrailVerdict.ok()
    return GuardrailVerdict(True, PB_TO_VIOLATION.get(pb.violation_type), pb.reason)


def guardrail_from_columns(violation: str | None, reason: str) -> GuardrailVerdict:
    """From the `messages.guardrail_violation/_reason` columns."""
    if violation is None:
        return GuardrailVerdict.ok()
    return GuardrailVerdict(True, Violation(violation), reason)
