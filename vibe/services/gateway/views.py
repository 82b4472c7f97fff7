"""What a caller sees of a report (VIBE_CANDIDATE_REPORT): reviewers everything; the
candidate everything, the scores only, or a receipt until a reviewer releases the report.

The default is `released`: a hiring team decides what to tell a candidate, and when; the
candidate learns at once that the submission was received and graded, nothing more."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from vibe.services.gateway.submit import Progress, Stage
from vibe_api.gateway.v1 import gateway_pb2


class CandidateReport(StrEnum):
    FULL = "full"
    SCORES = "scores"
    RELEASED = "released"


def candidate_view(policy: CandidateReport, released_at: datetime | None) -> gateway_pb2.ReportView:
    """The view the policy gives the candidate; a released report is shown whole."""
    if released_at is not None or policy is CandidateReport.FULL:
        return gateway_pb2.REPORT_VIEW_FULL
    if policy is CandidateReport.SCORES:
        return gateway_pb2.REPORT_VIEW_SCORES
    return gateway_pb2.REPORT_VIEW_RECEIPT


def shown(report: gateway_pb2.Report, view: gateway_pb2.ReportView, released_at: datetime | None) -> gateway_pb2.Report:
    """`report` as the `view` shows it (a new message; the stored report is untouched)."""
    if view == gateway_pb2.REPORT_VIEW_FULL:
        out = gateway_pb2.Report()
        out.CopyFrom(report)
    else:
        out = gateway_pb2.Report(
            session_id=report.session_id,
            candidate_id=report.candidate_id,
            problem_id=report.problem_id,
            language=report.language,
        )
        for stamp in ("submitted_at", "graded_at"):
            if report.HasField(stamp):
                getattr(out, stamp).CopyFrom(getattr(report, stamp))
        if view == gateway_pb2.REPORT_VIEW_SCORES:
            out.scores.CopyFrom(report.scores)
            out.notice = "Your submission was graded. The detailed report is shared by the hiring team."
        else:
            out.notice = (
                "Your submission was received and graded. The hiring team reviews it and will release "
                "the report to you; this page shows it once they do."
            )
    out.view = view
    if released_at is not None:
        out.released_at.FromDatetime(released_at)
    return out


_RESULT_STAGES = {
    Stage.HOLISTIC: "the conversation was judged",
    Stage.TESTS: "the code was run against the tests",
    Stage.GRADE: "graded",
}


def progress_shown(progress: Progress, view: gateway_pb2.ReportView) -> Progress:
    """A submit's progress as the view shows it: in a receipt, the steps that carry
    results (a score, tests passed, the grade) say only that they are done."""
    if view != gateway_pb2.REPORT_VIEW_RECEIPT or progress.stage not in _RESULT_STAGES:
        return progress
    if progress.done < progress.total:
        return progress
    return Progress(progress.stage, progress.done, progress.total, _RESULT_STAGES[progress.stage])
