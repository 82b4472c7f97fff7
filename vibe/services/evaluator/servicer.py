"""gRPC edge of the evaluator: validates and translates, the core decides."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, timestamp_pb2

from vibe.llm.base import Violation
from vibe.platform.errors import InvalidArgument, grpc_errors
from vibe.platform.validation import check_id
from vibe.services.evaluator.core import (
    EvaluationSource,
    Evaluator,
    TurnState,
    TurnStatus,
)
from vibe.services.evaluator.store import HolisticRecord, TurnLog
from vibe.shared.convert import VIOLATION_TO_PB
from vibe_api.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from vibe_api.tutor.v1 import tutor_pb2

DEFAULT_WAIT_S = 60.0  # when the caller set no deadline
_SOURCES = {
    evaluator_pb2.EVALUATION_SOURCE_UNSPECIFIED: EvaluationSource.SUBMIT_GUARD,
    evaluator_pb2.EVALUATION_SOURCE_BACKGROUND: EvaluationSource.BACKGROUND,
    evaluator_pb2.EVALUATION_SOURCE_SUBMIT_GUARD: EvaluationSource.SUBMIT_GUARD,
}
_SOURCE_TO_PB = {
    EvaluationSource.BACKGROUND: evaluator_pb2.EVALUATION_SOURCE_BACKGROUND,
    EvaluationSource.SUBMIT_GUARD: evaluator_pb2.EVALUATION_SOURCE_SUBMIT_GUARD,
}
_STATE_TO_PB = {
    TurnState.DONE: evaluator_pb2.TURN_EVALUATION_STATE_DONE,
    TurnState.IN_FLIGHT: evaluator_pb2.TURN_EVALUATION_STATE_IN_FLIGHT,
    TurnState.QUEUED: evaluator_pb2.TURN_EVALUATION_STATE_QUEUED,
    TurnState.DEAD: evaluator_pb2.TURN_EVALUATION_STATE_DEAD,
    TurnState.MISSING: evaluator_pb2.TURN_EVALUATION_STATE_MISSING,
}


def _timestamp(iso: str) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromJsonString(iso.replace("+00:00", "Z"))
    return ts


def turn_log_to_pb(entry: TurnLog) -> evaluator_pb2.TurnEvaluation:
    details = entry["prompt_evaluation_details"]
    guard = entry["guardrail"]
    return evaluator_pb2.TurnEvaluation(
        session_id=entry["session_id"],
        turn=entry["turn_number"],
        user_prompt_summary=entry["user_prompt_summary"],
        intent=f"INTENT_{details['intent'].upper()}",
        score=details["score"],
        # Fields the judge adds before the contract has them are kept in the log, not sent.
        # Built directly, not through json_format.ParseDict: 40x cheaper, and a submit reads
        # every turn's rubrics while the code checks run on the same CPUs.
        rubrics=[_rubric(r) for r in details["rubrics"]],
        final_reasoning=details["final_reasoning"],
        llm_answer_summary=entry["llm_answer_summary"],
        llm_answer_reasoning=entry["llm_answer_reasoning"],
        guardrail=tutor_pb2.Guardrail(
            violated=guard["violated"],
            violation_type=VIOLATION_TO_PB[Violation(guard["violation_type"])]
            if guard["violation_type"]
            else tutor_pb2.VIOLATION_TYPE_UNSPECIFIED,
            reason=guard["reason"],
        ),
        provider=entry["provider"],
        degraded=entry["degraded"],
        source=_SOURCE_TO_PB.get(EvaluationSource(entry["source"]), evaluator_pb2.EVALUATION_SOURCE_UNSPECIFIED),
        evaluated_at=_timestamp(entry.get("evaluated_at") or entry["timestamp"]),
        model=entry.get("model", ""),
        usage=evaluator_pb2.LlmUsage(**entry.get("usage", {})),
        judge_samples=entry.get("judge_samples", 1),
        score_spread=entry.get("score_spread", 0.0),
        leak_cut=guard.get("leak_cut", False),
    )


def _rubric(entry: dict[str, Any]) -> evaluator_pb2.RubricScore:
    return evaluator_pb2.RubricScore(
        criterion=str(entry.get("criterion", "")),
        score=float(entry.get("score", 0.0)),
        reason=str(entry.get("reason", "")),
        weight=float(entry.get("weight", 0.0)),
    )


def turn_status_to_pb(status: TurnStatus) -> evaluator_pb2.TurnStatus:
    return evaluator_pb2.TurnStatus(
        turn=status.turn,
        state=_STATE_TO_PB[status.state],
        dead_reason=status.dead_reason,
        dead_attempts=status.dead_attempts,
    )


def holistic_to_pb(details: HolisticRecord) -> evaluator_pb2.HolisticEvaluation:
    return evaluator_pb2.HolisticEvaluation(
        session_id=details["session_id"],
        score=details["score"],
        criteria=[evaluator_pb2.HolisticCriterion(**c) for c in details["criteria"]],
        summary=details["summary"],
        provider=details["provider"],
        degraded=details["degraded"],
        evaluated_at=_timestamp(details["timestamp"]),
        model=details.get("model", ""),
        usage=evaluator_pb2.LlmUsage(**details.get("usage", {})),
        session_usage=json_format.ParseDict(details.get("session_usage", {}), evaluator_pb2.SessionUsage()),
        precomputed=details.get("precomputed", False),
        through_turn=details.get("through_turn", 0),
    )


class EvaluatorServicer(evaluator_pb2_grpc.EvaluatorServicer):
    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    async def EvaluateTurn(
        self, request: evaluator_pb2.EvaluateTurnRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> evaluator_pb2.TurnEvaluation:
        async with grpc_errors(context):
            check_id("session_id", request.session_id)
            if request.turn < 1:
                raise InvalidArgument(f"turn must be >= 1, got {request.turn}")
            remaining = context.time_remaining()
            wait_s = DEFAULT_WAIT_S if remaining is None else max(0.0, remaining - 0.05)
            entry = await self.evaluator.ensure_turn(
                request.session_id, request.turn, _SOURCES.get(request.source, EvaluationSource.SUBMIT_GUARD), wait_s
            )
            return turn_log_to_pb(entry)

    async def EvaluateHolistic(
        self, request: evaluator_pb2.EvaluateHolisticRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> evaluator_pb2.HolisticEvaluation:
        async with grpc_errors(context):
            check_id("session_id", request.session_id)
            return holistic_to_pb(await self.evaluator.evaluate_holistic(request.session_id, request.fence))

    async def GetTurnEvaluations(
        self, request: evaluator_pb2.GetTurnEvaluationsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> evaluator_pb2.GetTurnEvaluationsResponse:
        async with grpc_errors(context):
            check_id("session_id", request.session_id)
            logs = await self.evaluator.turn_logs(request.session_id)
            return evaluator_pb2.GetTurnEvaluationsResponse(evaluations=[turn_log_to_pb(e) for e in logs])

    async def GetTurnStatuses(
        self, request: evaluator_pb2.GetTurnStatusesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> evaluator_pb2.GetTurnStatusesResponse:
        async with grpc_errors(context):
            check_id("session_id", request.session_id)
            statuses = await self.evaluator.turn_statuses(request.session_id)
            return evaluator_pb2.GetTurnStatusesResponse(turns=[turn_status_to_pb(s) for s in statuses])
