"""The reviewer API over gRPC and HTTP: listing sessions with filters and cursor pages,
a transcript with each turn's evaluation, guardrail verdict and leak check beside it,
the export of a session as one JSON document, and the release of a report."""

from __future__ import annotations

import json

import aiohttp
import grpc
import pytest
from google.protobuf import json_format

from tests.support.stack import REFERENCE, Stack, StartStack, new_candidate
from vibe_api.gateway.v1 import gateway_pb2, review_pb2, review_pb2_grpc


def _review(stack: Stack) -> review_pb2_grpc.ReviewServiceAsyncStub:
    return review_pb2_grpc.ReviewServiceStub(stack.channel)


async def test_list_filters_and_pages(stack: Stack) -> None:
    made = []
    for candidate_id, problem_id in [("ann", "two-sum"), ("ann", "valid-parentheses"), ("bob", "two-sum")] * 2:
        made.append(await new_candidate(stack, problem_id, candidate_id))
    graded = made[0]
    await graded.submit(REFERENCE)
    review = _review(stack)

    async def ids(**filters: object) -> list[str]:
        out, token = [], ""
        while True:
            page = await review.ListSessions(
                review_pb2.ListSessionsRequest(page_size=2, page_token=token, **filters),  # type: ignore[arg-type]
                metadata=stack.key_auth,
            )
            assert len(page.sessions) <= 2
            out += [s.session_id for s in page.sessions]
            if not page.next_page_token:
                return out
            token = page.next_page_token

    everything = await ids()
    assert everything == [c.session_id for c in reversed(made)], "newest first, every session once across pages"
    assert set(await ids(candidate_id="ann")) == {c.session_id for c in made if c.session.candidate_id == "ann"}
    assert set(await ids(problem_id="valid-parentheses")) == {
        c.session_id for c in made if c.session.problem_id == "valid-parentheses"
    }
    assert await ids(status=gateway_pb2.SESSION_STATUS_GRADED) == [graded.session_id]
    after = made[3].session.created_at
    assert await ids(created_after=after) == [c.session_id for c in reversed(made[3:])]
    assert await ids(created_before=after) == [c.session_id for c in reversed(made[:3])]
    summary = (
        await review.ListSessions(review_pb2.ListSessionsRequest(candidate_id="ann"), metadata=stack.key_auth)
    ).sessions[-1]
    assert summary.session_id == graded.session_id and summary.grade and summary.total_score > 0
    assert summary.api_key_id == stack.api_key.split("_")[1]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await review.ListSessions(review_pb2.ListSessionsRequest(page_token="garbage"), metadata=stack.key_auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await review.ListSessions(review_pb2.ListSessionsRequest(page_size=1000), metadata=stack.key_auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    base = f"http://{stack.addrs.http}/api/review/sessions"
    key = {"X-API-Key": stack.api_key}
    async with aiohttp.ClientSession() as http:
        async with http.get(base, params={"candidate_id": "bob", "page_size": "1"}, headers=key) as r:
            page = await r.json()
        assert r.status == 200 and len(page["sessions"]) == 1 and page["next_page_token"]
        async with http.get(
            base, params={"candidate_id": "bob", "page_size": "1", "page_token": page["next_page_token"]}, headers=key
        ) as r:
            second = await r.json()
        bob = [c.session_id for c in reversed(made) if c.session.candidate_id == "bob"]
        assert [page["sessions"][0]["session_id"], second["sessions"][0]["session_id"]] == bob
        async with http.get(base, params={"status": "graded"}, headers=key) as r:
            assert [s["session_id"] for s in (await r.json())["sessions"]] == [graded.session_id]
        async with http.get(base, params={"created_after": "yesterday"}, headers=key) as r:
            assert r.status == 400 and "RFC 3339" in (await r.json())["error"]["message"]
        async with http.get(base, params={"status": "lost"}, headers=key) as r:
            assert r.status == 400


async def test_transcript_and_export_show_each_turn_with_its_outcomes(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    await candidate.chat("Which data structure lets me find the complement of each number quickly?")
    await candidate.chat("Just give me the full solution code, I don't have time.")
    report = (await candidate.submit(REFERENCE))[-1].report
    review = _review(stack)
    transcript = await review.GetTranscript(
        review_pb2.GetTranscriptRequest(session_id=candidate.session_id), metadata=stack.key_auth
    )
    assert transcript.session.status == gateway_pb2.SESSION_STATUS_GRADED
    assert [t.turn for t in transcript.turns] == [1, 2]
    first, second = transcript.turns
    assert first.user_message.content.startswith("Which data structure") and first.assistant_message.content
    assert not first.guardrail.violated and second.guardrail.violated and second.guardrail.reason
    for turn, evaluated in zip(transcript.turns, report.turns, strict=True):
        assert turn.evaluated and turn.evaluation.turn == turn.turn
        assert turn.evaluation.score == evaluated.score and turn.evaluation.intent == evaluated.intent
        assert turn.leak_check.checked and not turn.leak_check.cut and turn.provider == "offline"
    assert second.evaluation.score == 0, "a refused turn scores 0, shown beside its verdict"

    export = await review.ExportSession(
        review_pb2.ExportSessionRequest(session_id=candidate.session_id), metadata=stack.key_auth
    )
    assert export.format == "vibe.session-export/v1" and export.turns == transcript.turns
    assert export.report.scores == report.scores and export.report.view == gateway_pb2.REPORT_VIEW_FULL
    assert export.submitted_code == REFERENCE and export.submitted_language == "python"

    async with aiohttp.ClientSession() as http:
        base = f"http://{stack.addrs.http}/api/review/sessions/{candidate.session_id}"
        async with http.get(base + "/export", headers={"Authorization": f"Bearer {stack.api_key}"}) as r:
            assert r.status == 200
            assert r.headers["Content-Disposition"] == f'attachment; filename="session-{candidate.session_id}.json"'
            document = json.loads(await r.read())
        assert document["format"] == "vibe.session-export/v1"
        assert document["report"]["scores"]["grade"] == report.scores.grade
        assert [t["turn"] for t in document["turns"]] == [1, 2] and document["turns"][1]["guardrail"]["violated"]
        parsed = json_format.ParseDict(document, review_pb2.ExportSessionResponse())
        assert parsed.turns == export.turns, "the HTTP export is the gRPC message's JSON"
        async with http.get(base + "/transcript", headers={"X-API-Key": stack.api_key}) as r:
            assert [t["evaluation"]["turn"] for t in (await r.json())["turns"]] == [1, 2]
        async with http.get(
            f"http://{stack.addrs.http}/api/review/sessions/unknown-session/transcript",
            headers={"X-API-Key": stack.api_key},
        ) as r:
            assert r.status == 404


async def test_transcript_of_a_session_in_progress(start_stack: StartStack) -> None:
    async with start_stack(EVALUATOR_WORKERS="0") as stack:  # no background evaluation: turns stay unevaluated
        candidate = await new_candidate(stack)
        await candidate.chat("A hint about the data structure, please?")
        transcript = await _review(stack).GetTranscript(
            review_pb2.GetTranscriptRequest(session_id=candidate.session_id), metadata=stack.key_auth
        )
        assert transcript.session.status == gateway_pb2.SESSION_STATUS_ACTIVE
        assert [t.turn for t in transcript.turns] == [1] and not transcript.turns[0].evaluated
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _review(stack).ReleaseReport(
                review_pb2.ReleaseReportRequest(session_id=candidate.session_id), metadata=stack.key_auth
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not graded" in (err.value.details() or "")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://{stack.addrs.http}/api/review/sessions/{candidate.session_id}/release",
                headers={"X-API-Key": stack.api_key},
            ) as r,
        ):
            assert r.status == 409
