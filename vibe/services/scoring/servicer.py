"""gRPC edge of the scoring service: validates and translates, the core decides."""

from __future__ import annotations

import dataclasses
from typing import Any

import grpc

from vibe.platform.errors import InvalidArgument, grpc_errors
from vibe.platform.validation import check_id, check_language, check_text
from vibe.services.scoring.bank import ProblemSpec
from vibe.services.scoring.core import Scoring
from vibe.services.scoring.integrity import IntegrityReport
from vibe.services.scoring.judge import CheckResult, Complexity, TestOutcome, Verdict, VisibleResult
from vibe.services.scoring.languages import LANGUAGES
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc


def problem_to_pb(p: ProblemSpec) -> scoring_pb2.Problem:
    """The candidate's view: statement and visible examples, never hidden tests or the reference."""
    return scoring_pb2.Problem(
        problem_id=p.problem_id,
        title=p.title,
        statement=p.statement,
        statement_ko=p.statement_ko,
        hints=list(p.hints),
        input_format=p.input_format,
        output_format=p.output_format,
        examples=[
            scoring_pb2.Example(input=t.input.decode(errors="replace"), output=t.expected.decode(errors="replace"))
            for t in p.visible_tests
        ],
        time_limit_ms=p.time_limit_ms,
        memory_limit_mb=p.memory_limit_mb,
        starter_code=p.starter_code,
        languages=list(LANGUAGES),
        difficulty=p.difficulty,
    )


def _verdict(v: Verdict) -> str:
    """The proto enum's name (protobuf takes names as well as numbers)."""
    return "VERDICT_" + str(v).upper()


def complexity_to_pb(c: Complexity | None) -> scoring_pb2.ComplexityEstimate | None:
    if c is None:
        return None
    return scoring_pb2.ComplexityEstimate(
        estimated_class=c.estimated_class,
        exponent=c.exponent or 0.0,
        has_exponent=c.exponent is not None,
        reference_class=c.reference_class,
        reference_exponent=c.reference_exponent or 0.0,
        points=[
            scoring_pb2.ScalingPoint(
                n=p.n, verdict=_verdict(p.verdict), cpu_ms=p.cpu_ms, reference_cpu_ms=p.reference_cpu_ms
            )
            for p in c.points
        ],
        sizes=c.sizes,
        credit=c.credit,
    )


def integrity_to_pb(i: IntegrityReport) -> scoring_pb2.Integrity:
    return scoring_pb2.Integrity(
        checked=i.checked,
        score=i.score,
        flagged=i.flagged,
        method=i.method,
        fragments=[
            scoring_pb2.MatchingFragment(
                turn=f.turn, submitted_first_line=f.submitted_first_line, submitted=f.submitted, shown=f.shown
            )
            for f in i.fragments
        ],
    )


def _tests_to_pb(tests: list[TestOutcome]) -> list[scoring_pb2.TestResult]:
    return [
        scoring_pb2.TestResult(
            test_id=t.test_id,
            hidden=t.hidden,
            verdict=_verdict(t.verdict),
            cpu_ms=t.cpu_ms,
            wall_ms=t.wall_ms,
            peak_memory_kb=t.peak_memory_kb,
            exit_code=t.exit_code if t.exit_code is not None else -(t.signal or 0),
            detail=t.detail,
            reference_cpu_ms=t.reference_cpu_ms or 0.0,
        )
        for t in tests
    ]


def check_result_to_pb(r: CheckResult) -> scoring_pb2.CheckCodeResponse:
    return scoring_pb2.CheckCodeResponse(
        problem_id=r.problem_id,
        language=r.language,
        verdict=_verdict(r.verdict),
        tests=_tests_to_pb(r.tests),
        passed=r.passed,
        total=r.total,
        correctness_score=r.correctness_score,
        performance_score=r.performance_score,
        compile_output=r.compile_output,
        performance_rule=r.performance_rule,
        isolation=r.isolation,
        isolation_mode=r.isolation_mode,
        time_limit_ms=r.time_limit_ms,
        time_score=r.time_score,
        complexity=complexity_to_pb(r.complexity),
        integrity=integrity_to_pb(r.integrity),
        early_stop=r.early_stop,
    )


def visible_result_to_pb(r: VisibleResult) -> scoring_pb2.RunVisibleTestsResponse:
    return scoring_pb2.RunVisibleTestsResponse(
        problem_id=r.problem_id,
        language=r.language,
        verdict=_verdict(r.verdict),
        tests=_tests_to_pb(r.tests),
        compile_output=r.compile_output,
        time_limit_ms=r.time_limit_ms,
    )


class ScoringServicer(scoring_pb2_grpc.ScoringServicer):
    def __init__(self, scoring: Scoring):
        self.scoring = scoring

    async def CheckCode(
        self, request: scoring_pb2.CheckCodeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> scoring_pb2.CheckCodeResponse:
        async with grpc_errors(context):
            check_id("problem_id", request.problem_id)
            check_language(request.language)
            check_text("code", request.code, multiline=True)
            if request.session_id:
                check_id("session_id", request.session_id)
            result = await self.scoring.check_code(
                request.problem_id, request.language, request.code, request.session_id, request.fence
            )
            return check_result_to_pb(result)

    async def RunVisibleTests(
        self, request: scoring_pb2.RunVisibleTestsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> scoring_pb2.RunVisibleTestsResponse:
        async with grpc_errors(context):
            result = await self.scoring.run_visible(request.problem_id, request.language, request.code)
            return visible_result_to_pb(result)

    async def GradeSession(
        self, request: scoring_pb2.GradeSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> scoring_pb2.FinalScores:
        async with grpc_errors(context):
            check_id("session_id", request.session_id)
            for name in ("holistic_flow_score", "aggregate_turn_score", "performance_score", "correctness_score"):
                value = getattr(request, name)
                if not 0.0 <= value <= 100.0:  # also false for NaN
                    raise InvalidArgument(f"{name} must be a number from 0 to 100, got {value!r}")
            scores = await self.scoring.grade(
                request.session_id,
                request.holistic_flow_score,
                request.aggregate_turn_score,
                request.performance_score,
                request.correctness_score,
                request.fence,
            )
            return scoring_pb2.FinalScores(session_id=request.session_id, **dataclasses.asdict(scores))

    async def GetProblem(
        self, request: scoring_pb2.GetProblemRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> scoring_pb2.Problem:
        async with grpc_errors(context):
            return problem_to_pb(self.scoring.problem(check_id("problem_id", request.problem_id)))

    async def ListProblems(
        self, request: scoring_pb2.ListProblemsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> scoring_pb2.ListProblemsResponse:
        async with grpc_errors(context):
            return scoring_pb2.ListProblemsResponse(problems=[problem_to_pb(p) for p in self.scoring.problems.values()])
