"""Who may call what on the gateway, over gRPC and HTTP: every RPC and endpoint against
every kind of credential (none, a wrong key, a revoked key, a key without the scope, the
session's candidate token, another session's token, a good key), the key admin API and
the CLI, and what the candidate sees of the report under each VIBE_CANDIDATE_REPORT."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import pytest

from tests.support.stack import REFERENCE, Candidate, Stack, StartStack, key_auth, new_candidate, running_stack
from tests.test_http_api import read_sse
from vibe.platform.api_keys import Scope, new_key
from vibe_api.gateway.v1 import gateway_pb2, review_pb2, review_pb2_grpc

OK = grpc.StatusCode.OK
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
CANDIDATE = "candidate"  # an operation of the session's candidate (session token), not of a scope


@dataclass
class Creds:
    """One credential of each kind, for session `target` (its token) and `other`."""

    good: str
    revoked: str
    wrong: str
    without: dict[str, str]  # required scope (or CANDIDATE) -> a live key lacking it
    target: Candidate
    other: Candidate

    def cells(self, requires: str) -> list[tuple[str, str | None, grpc.StatusCode]]:
        """(cell, credential, expected code) of the matrix for an operation that `requires`."""
        return [
            ("no credential", None, UNAUTH),
            ("wrong key", self.wrong, UNAUTH),
            ("revoked key", self.revoked, UNAUTH),
            ("key without the scope", self.without[requires], DENIED),
            ("candidate token", self.target.token, OK if requires == CANDIDATE else DENIED),
            ("another session's token", self.other.token, DENIED),
        ]


async def _admin_key(stack: Stack, name: str, scopes: list[str]) -> str:
    keys = review_pb2_grpc.ApiKeyServiceStub(stack.channel)
    created = await keys.CreateApiKey(review_pb2.CreateApiKeyRequest(name=name, scopes=scopes), metadata=stack.key_auth)
    return created.api_key


async def _creds(stack: Stack) -> Creds:
    all_but = {scope: [s.value for s in Scope if s is not scope] for scope in Scope}
    without = {scope.value: await _admin_key(stack, f"no-{scope.name.lower()}", all_but[scope]) for scope in Scope}
    without[CANDIDATE] = await _admin_key(stack, "every-scope", [s.value for s in Scope])  # still not a candidate
    revoked = await _admin_key(stack, "revoked", [s.value for s in Scope])
    keys = review_pb2_grpc.ApiKeyServiceStub(stack.channel)
    await keys.RevokeApiKey(review_pb2.RevokeApiKeyRequest(key_id=revoked.split("_")[1]), metadata=stack.key_auth)
    return Creds(
        good=stack.api_key,
        revoked=revoked,
        wrong=new_key()[2],
        without=without,
        target=await new_candidate(stack, candidate_id="target"),
        other=await new_candidate(stack, candidate_id="other"),
    )


# --- gRPC ---------------------------------------------------------------------------------


GrpcOp = Callable[[Stack, str, tuple[tuple[str, str], ...]], Awaitable[Any]]


def _grpc_ops() -> dict[str, tuple[str, GrpcOp]]:
    def gw(stack: Stack) -> Any:
        return stack.gateway

    def review(stack: Stack) -> Any:
        return review_pb2_grpc.ReviewServiceStub(stack.channel)

    def keys(stack: Stack) -> Any:
        return review_pb2_grpc.ApiKeyServiceStub(stack.channel)

    async def stream(call: Any) -> list[Any]:
        return [e async for e in call]

    return {
        "CreateSession": (
            Scope.SESSIONS_CREATE,
            lambda s, sid, md: gw(s).CreateSession(
                gateway_pb2.CreateSessionRequest(candidate_id="c", problem_id="two-sum"), metadata=md
            ),
        ),
        "GetSession": (
            CANDIDATE + "|" + Scope.REPORTS_READ,
            lambda s, sid, md: gw(s).GetSession(gateway_pb2.GetSessionRequest(session_id=sid), metadata=md),
        ),
        "Chat": (
            CANDIDATE,
            lambda s, sid, md: stream(
                gw(s).Chat(gateway_pb2.ChatRequest(session_id=sid, message="Which structure helps?"), metadata=md)
            ),
        ),
        "GetReport": (
            CANDIDATE + "|" + Scope.REPORTS_READ,
            lambda s, sid, md: gw(s).GetReport(gateway_pb2.GetReportRequest(session_id=sid), metadata=md),
        ),
        "ListSessions": (
            Scope.REPORTS_READ,
            lambda s, sid, md: review(s).ListSessions(review_pb2.ListSessionsRequest(), metadata=md),
        ),
        "GetTranscript": (
            Scope.REPORTS_READ,
            lambda s, sid, md: review(s).GetTranscript(review_pb2.GetTranscriptRequest(session_id=sid), metadata=md),
        ),
        "ExportSession": (
            Scope.REPORTS_READ,
            lambda s, sid, md: review(s).ExportSession(review_pb2.ExportSessionRequest(session_id=sid), metadata=md),
        ),
        "ReleaseReport": (
            Scope.REPORTS_READ,
            lambda s, sid, md: review(s).ReleaseReport(review_pb2.ReleaseReportRequest(session_id=sid), metadata=md),
        ),
        "CreateApiKey": (
            Scope.ADMIN,
            lambda s, sid, md: keys(s).CreateApiKey(
                review_pb2.CreateApiKeyRequest(name="made", scopes=["reports:read"]), metadata=md
            ),
        ),
        "ListApiKeys": (
            Scope.ADMIN,
            lambda s, sid, md: keys(s).ListApiKeys(review_pb2.ListApiKeysRequest(), metadata=md),
        ),
        "RevokeApiKey": (
            Scope.ADMIN,
            lambda s, sid, md: keys(s).RevokeApiKey(review_pb2.RevokeApiKeyRequest(key_id="000000000000"), metadata=md),
        ),
        "RunVisibleTests": (
            CANDIDATE,
            lambda s, sid, md: gw(s).RunVisibleTests(
                gateway_pb2.RunVisibleTestsRequest(session_id=sid, language="python", code="print(1)"), metadata=md
            ),
        ),
        # Submit last: it closes the session.
        "Submit": (
            CANDIDATE,
            lambda s, sid, md: stream(
                gw(s).Submit(gateway_pb2.SubmitRequest(session_id=sid, language="python", code=REFERENCE), metadata=md)
            ),
        ),
    }


async def _grpc_code(op: GrpcOp, stack: Stack, session_id: str, credential: str | None) -> tuple[grpc.StatusCode, str]:
    md = () if credential is None else key_auth(credential)
    try:
        await op(stack, session_id, md)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


def _allowed(code: grpc.StatusCode) -> bool:
    """Past the access rules: answered, or refused for something else (no report yet, no such key)."""
    return code not in (UNAUTH, DENIED)


async def test_every_grpc_method_against_every_kind_of_credential(stack: Stack) -> None:
    creds = await _creds(stack)
    sid = creds.target.session_id
    seen: list[str] = []
    for name, (requires, op) in _grpc_ops().items():
        kinds = requires.split("|")
        for cell, credential, expected in creds.cells(kinds[-1]):
            if cell == "candidate token" and CANDIDATE in kinds:
                expected = OK
            code, details = await _grpc_code(op, stack, sid, credential)
            if expected is OK:
                assert _allowed(code), (name, cell, code, details)
            else:
                assert code == expected, (name, cell, code, details)
                assert details, (name, cell)
            seen.append(f"{name}/{cell}")
        # A key with the scope (or, for the candidate's operations, no key: the token above).
        if kinds[-1] != CANDIDATE:
            code, details = await _grpc_code(op, stack, sid, creds.good)
            assert _allowed(code), (name, "good key", code, details)
        else:
            code, details = await _grpc_code(op, stack, sid, creds.good)
            assert code == DENIED and "session token" in details, (name, details)
    assert len(seen) == 13 * 6


async def test_refusals_say_what_to_send(stack: Stack) -> None:
    creds = await _creds(stack)
    create: GrpcOp = _grpc_ops()["CreateSession"][1]
    sid = creds.target.session_id
    _, none = await _grpc_code(create, stack, sid, None)
    assert "needs a backend API key with the scope sessions:create" in none and "Bearer vk_" in none
    _, token = await _grpc_code(create, stack, sid, creds.target.token)
    assert "not a session token" in token
    _, revoked = await _grpc_code(create, stack, sid, creds.revoked)
    assert "was revoked at" in revoked
    _, wrong = await _grpc_code(create, stack, sid, creds.wrong)
    assert "invalid API key" in wrong and "vibe keys create" in wrong
    _, malformed = await _grpc_code(create, stack, sid, "vk_x")
    assert "malformed API key" in malformed
    _, scope = await _grpc_code(create, stack, sid, creds.without[Scope.SESSIONS_CREATE])
    assert "lacks the scope sessions:create" in scope
    chat: GrpcOp = _grpc_ops()["Chat"][1]
    _, other = await _grpc_code(chat, stack, sid, creds.other.token)
    assert f"does not belong to session {sid}" in other


async def test_a_revoked_key_is_refused_from_the_next_call(stack: Stack) -> None:
    key = await _admin_key(stack, "short-lived", ["sessions:create"])
    request = gateway_pb2.CreateSessionRequest(candidate_id="c", problem_id="two-sum")
    created = await stack.gateway.CreateSession(request, metadata=key_auth(key))
    assert created.session_token
    keys = review_pb2_grpc.ApiKeyServiceStub(stack.channel)
    listed = await keys.ListApiKeys(review_pb2.ListApiKeysRequest(), metadata=stack.key_auth)
    assert {"scratch", "short-lived"} <= {k.name for k in listed.keys}
    assert next(k for k in listed.keys if k.name == "scratch").from_settings
    key_id = key.split("_")[1]
    revoked = await keys.RevokeApiKey(review_pb2.RevokeApiKeyRequest(key_id=key_id), metadata=stack.key_auth)
    assert revoked.key.HasField("revoked_at")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.gateway.CreateSession(request, metadata=key_auth(key))
    assert err.value.code() == UNAUTH and "revoked" in (err.value.details() or "")
    # The session it created lives on, with its own token.
    candidate = Candidate(stack.gateway, created.session, created.session_token)
    assert [e.WhichOneof("event") for e in await candidate.chat("A hint?")][-1] == "completed"
    # A settings key is not revoked through the API (it would come back at the next start).
    settings_key_id = stack.api_key.split("_")[1]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await keys.RevokeApiKey(review_pb2.RevokeApiKeyRequest(key_id=settings_key_id), metadata=stack.key_auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "VIBE_API_KEYS" in (err.value.details() or "")
    # The key's record stays: what it created can be traced to it.
    conn = await stack.db()
    try:
        assert (
            await conn.fetchval("SELECT api_key_id FROM sessions WHERE session_id = $1", candidate.session_id) == key_id
        )
    finally:
        await conn.close()


# --- HTTP ---------------------------------------------------------------------------------


def _http_ops(sid: str) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(requires, method, path, JSON body) of every credentialed endpoint; submit last."""
    return [
        (Scope.SESSIONS_CREATE, "POST", "/api/sessions", {"candidate_id": "c", "problem_id": "two-sum"}),
        (CANDIDATE + "|" + Scope.REPORTS_READ, "GET", f"/api/sessions/{sid}", None),
        (CANDIDATE, "POST", f"/api/sessions/{sid}/chat", {"message": "Which structure helps?"}),
        (CANDIDATE + "|" + Scope.REPORTS_READ, "GET", f"/api/sessions/{sid}/report", None),
        (Scope.REPORTS_READ, "GET", "/api/review/sessions", None),
        (Scope.REPORTS_READ, "GET", f"/api/review/sessions/{sid}/transcript", None),
        (Scope.REPORTS_READ, "GET", f"/api/review/sessions/{sid}/export", None),
        (Scope.REPORTS_READ, "POST", f"/api/review/sessions/{sid}/release", None),
        (Scope.ADMIN, "GET", "/api/keys", None),
        (Scope.ADMIN, "POST", "/api/keys", {"name": "made", "scopes": ["reports:read"]}),
        (Scope.ADMIN, "POST", "/api/keys/000000000000/revoke", None),
        (CANDIDATE, "POST", f"/api/sessions/{sid}/run", {"language": "python", "code": "print(1)"}),
        (CANDIDATE, "POST", f"/api/sessions/{sid}/submit", {"language": "python", "code": REFERENCE}),
    ]


def _headers(credential: str | None, key_header: bool) -> dict[str, str]:
    if credential is None:
        return {}
    if key_header and credential.startswith("vk_"):
        return {"X-API-Key": credential}
    return {"Authorization": f"Bearer {credential}"}


async def test_every_http_endpoint_against_every_kind_of_credential(stack: Stack) -> None:
    creds = await _creds(stack)
    base = f"http://{stack.addrs.http}"
    statuses = {UNAUTH: 401, DENIED: 403}
    async with aiohttp.ClientSession() as http:
        for n, (requires, method, path, body) in enumerate(_http_ops(creds.target.session_id)):
            kinds = requires.split("|")
            for cell, credential, expected in creds.cells(kinds[-1]):
                if cell == "candidate token" and CANDIDATE in kinds:
                    expected = OK
                # Keys go in X-API-Key on every other endpoint, as a Bearer token on the rest.
                async with http.request(method, base + path, json=body, headers=_headers(credential, n % 2 == 0)) as r:
                    if expected is OK:
                        assert r.status not in (401, 403), (path, cell, r.status, await r.text())
                        if r.content_type == "text/event-stream":
                            await read_sse(r)
                    else:
                        error = (await r.json())["error"]
                        assert r.status == statuses[expected], (path, cell, r.status, error)
                        assert error["code"] == expected.name and error["message"], (path, cell)
            async with http.request(method, base + path, json=body, headers=_headers(creds.good, n % 2 == 1)) as r:
                if kinds[-1] == CANDIDATE:
                    assert r.status == 403 and "session token" in (await r.json())["error"]["message"], path
                else:
                    assert r.status not in (401, 403), (path, r.status, await r.text())
        for path in ("/", "/healthz", "/api/problems", "/api/openapi.json"):
            async with http.get(base + path) as r:
                assert r.status == 200, path


async def _raw_http(addr: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """`request` as bytes on the wire (aiohttp's client will not send header bytes that are
    no text): the status and the JSON body of the answer."""
    host, _, port = addr.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"application/json" in head, answer[:300]
    return status, json.loads(body)


async def test_credentials_that_are_not_text_are_refused_never_a_server_error(stack: Stack) -> None:
    """Header bytes that are no UTF-8 (aiohttp reads them with surrogate escapes) where a
    key's secret or a session token goes: 401/403 in the JSON model, never a 500 (the
    secret was hashed as UTF-8 and raised); nothing is created."""
    candidate = await new_candidate(stack)
    body = json.dumps({"candidate_id": "c", "problem_id": "two-sum"}).encode()
    key_id = stack.api_key.split("_")[1]
    for header in (
        b"X-API-Key: vk_" + key_id.encode() + b"_\xff\xfe0123456789abcdefghij",
        b"Authorization: Bearer vk_" + key_id.encode() + b"_\xed\xa0\x800123456789abcdefghij",
        b"Authorization: Bearer vk_abcdefgh_0123456789abcdefghij\x80",
        b"X-API-Key: " + stack.api_key.encode() + b"\xc3",
    ):
        request = (
            b"POST /api/sessions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n%s\r\nConnection: close\r\n\r\n%s" % (len(body), header, body)
        )
        status, answer = await _raw_http(stack.addrs.http, request)
        assert status == 401 and answer["error"]["code"] == "UNAUTHENTICATED", (header, status, answer)
        assert "malformed API key" in answer["error"]["message"], answer
    for token in (b"\xff\xfe", b"\xed\xa0\x80" + candidate.token.encode()):
        request = (
            b"GET /api/sessions/%s HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n"
            b"Connection: close\r\n\r\n" % (candidate.session_id.encode(), token)
        )
        status, answer = await _raw_http(stack.addrs.http, request)
        assert status == 403 and answer["error"]["code"] == "PERMISSION_DENIED", (token, status, answer)
    db = await stack.db()
    try:
        assert await db.fetchval("SELECT count(*) FROM sessions") == 1
    finally:
        await db.close()


async def test_a_call_with_two_different_credentials_is_refused(stack: Stack) -> None:
    """Two credentials in one call were read differently by each edge: gRPC acted as the last
    `authorization`, HTTP as the first, and X-API-Key silently won over a bearer token. Now
    two different ones are 401 on both; the same one twice is still that credential."""
    candidate = await new_candidate(stack)
    other = await new_candidate(stack, candidate_id="cand-2")
    request = gateway_pb2.GetSessionRequest(session_id=candidate.session_id)
    for metadata in (
        (("authorization", f"Bearer {candidate.token}"), ("authorization", f"Bearer {other.token}")),
        (("authorization", f"Bearer {other.token}"), ("authorization", f"Bearer {candidate.token}")),
        (("authorization", f"Bearer {candidate.token}"), ("x-api-key", stack.api_key)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.gateway.GetSession(request, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, (metadata, err.value.details())
        assert "send exactly one" in (err.value.details() or "")
    twice = (("authorization", f"Bearer {candidate.token}"),) * 2
    assert (await stack.gateway.GetSession(request, metadata=twice)).session_id == candidate.session_id
    base = f"http://{stack.addrs.http}"
    new_session = {"candidate_id": "two-creds", "problem_id": "two-sum"}
    async with aiohttp.ClientSession() as http:
        for method, path, headers in (
            ("POST", "/api/sessions", [("X-API-Key", stack.api_key), ("Authorization", f"Bearer {candidate.token}")]),
            ("POST", "/api/sessions", [("Authorization", f"Bearer {stack.api_key}"), ("Authorization", "Bearer x")]),
            (
                "GET",
                f"/api/sessions/{candidate.session_id}",
                [("Authorization", f"Bearer {candidate.token}"), ("Authorization", f"Bearer {other.token}")],
            ),
        ):
            body = new_session if method == "POST" else None
            async with http.request(method, base + path, json=body, headers=headers) as r:
                error = (await r.json())["error"]
                assert (r.status, error["code"]) == (401, "UNAUTHENTICATED"), (path, headers, error)
                assert "send exactly one" in error["message"], error
        async with http.get(base + "/api/keys", headers={"X-API-Key": "junk"}) as r:  # a key still, if a bad one
            assert (r.status, "malformed API key" in (await r.json())["error"]["message"]) == (401, True)
        same = [("X-API-Key", stack.api_key), ("Authorization", f"Bearer {stack.api_key}")]
        async with http.post(base + "/api/sessions", json=new_session, headers=same) as r:
            assert r.status == 201, await r.text()
    db = await stack.db()
    try:
        assert await db.fetchval("SELECT count(*) FROM sessions WHERE candidate_id = 'two-creds'") == 1
    finally:
        await db.close()


async def test_a_session_token_never_reads_as_an_api_key(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """token_urlsafe starts a token with 'vk_' once in 64^3 draws, and a credential that
    starts so is taken for a key: that session's candidate was refused every call (401
    'malformed API key'). Here the first draw is such a token."""
    real = secrets.token_urlsafe
    draws = iter(["vk_" + real(32)[3:]])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n=None: next(draws, None) or real(n))
    candidate = await new_candidate(stack)
    monkeypatch.undo()
    assert next(draws, None) is None, "the session's token was drawn"
    events = await candidate.chat("Which data structure finds the complement in O(1)?")  # was UNAUTHENTICATED
    assert events[-1].WhichOneof("event") == "completed"
    assert not candidate.token.startswith("vk_")


# --- what the candidate sees --------------------------------------------------------------


async def _graded(stack: Stack) -> tuple[Candidate, list[gateway_pb2.SubmitEvent]]:
    candidate = await new_candidate(stack)
    await candidate.chat("Which data structure finds the complement in O(1)?")
    return candidate, await candidate.submit(REFERENCE)


async def test_by_default_the_candidate_gets_a_receipt_until_the_report_is_released(
    isolated_env: dict[str, str],
) -> None:
    unset = {k: v for k, v in isolated_env.items() if k != "VIBE_CANDIDATE_REPORT"}  # the default policy
    async with running_stack(unset) as stack:
        candidate, events = await _graded(stack)
        seen = events[-1].report
        assert seen.view == gateway_pb2.REPORT_VIEW_RECEIPT and "received and graded" in seen.notice
        assert not seen.HasField("scores") and not seen.turns and not seen.submitted_code
        assert seen.HasField("graded_at") and seen.session_id == candidate.session_id
        progress = " ".join(e.progress.message for e in events if e.WhichOneof("event") == "progress")
        assert "grade" not in progress.replace("graded", "") and "tests passed" not in progress, progress
        assert (await candidate.report()).view == gateway_pb2.REPORT_VIEW_RECEIPT
        # The reviewer sees it whole, from the start.
        full = await stack.gateway.GetReport(
            gateway_pb2.GetReportRequest(session_id=candidate.session_id), metadata=stack.key_auth
        )
        assert full.view == gateway_pb2.REPORT_VIEW_FULL and full.scores.grade and full.turns
        review = review_pb2_grpc.ReviewServiceStub(stack.channel)
        released = await review.ReleaseReport(
            review_pb2.ReleaseReportRequest(session_id=candidate.session_id), metadata=stack.key_auth
        )
        again = await review.ReleaseReport(
            review_pb2.ReleaseReportRequest(session_id=candidate.session_id), metadata=stack.key_auth
        )
        assert again.released_at == released.released_at, "releasing again keeps the first time"
        shown = await candidate.report()
        assert shown.view == gateway_pb2.REPORT_VIEW_FULL and shown.scores == full.scores
        assert shown.released_at == released.released_at
        # A second submit returns the stored report, as the candidate now may see it.
        assert (await candidate.submit(REFERENCE))[-1].report.view == gateway_pb2.REPORT_VIEW_FULL
        # Over HTTP, the same.
        base = f"http://{stack.addrs.http}"
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{base}/api/sessions/{candidate.session_id}/report",
                headers={"Authorization": f"Bearer {candidate.token}"},
            ) as r,
        ):
            assert (await r.json())["view"] == "REPORT_VIEW_FULL"


@pytest.mark.parametrize(
    ("policy", "view"), [("scores", gateway_pb2.REPORT_VIEW_SCORES), ("full", gateway_pb2.REPORT_VIEW_FULL)]
)
async def test_the_policy_sets_the_candidates_view(start_stack: StartStack, policy: str, view: int) -> None:
    async with start_stack(VIBE_CANDIDATE_REPORT=policy) as stack:
        candidate, events = await _graded(stack)
        seen = events[-1].report
        assert seen.view == view and seen.scores.grade and seen.scores.total_score > 0
        assert bool(seen.turns) == (policy == "full") and bool(seen.submitted_code) == (policy == "full")
        assert (await candidate.report()).view == view
        base = f"http://{stack.addrs.http}"
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{base}/api/sessions/{candidate.session_id}/report",
                headers={"Authorization": f"Bearer {candidate.token}"},
            ) as r,
        ):
            body = await r.json()
        assert body["view"] == gateway_pb2.ReportView.Name(view) and body["scores"]["grade"] == seen.scores.grade
        assert ("turns" in body) == (policy == "full")


def test_keys_from_the_command_line(isolated_env: dict[str, str]) -> None:
    env = {**os.environ, **isolated_env}

    def vibe(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vibe_dev.cli", "keys", *args], env=env, capture_output=True, text=True, timeout=60
        )

    created = vibe("create", "--name", "hr-platform", "--scope", "sessions:create", "--scope", "reports:read")
    assert created.returncode == 0, created.stderr
    key = created.stdout.split("API key (shown once, give it to the backend): ")[1].split()[0]
    key_id = key.split("_")[1]
    listed = vibe("list")
    assert key_id in listed.stdout and "reports:read sessions:create" in listed.stdout
    assert key.split("_", 2)[2] not in listed.stdout, "the secret is never shown again"
    revoked = vibe("revoke", key_id)
    assert revoked.returncode == 0 and f"revoked key {key_id} (hr-platform)" in revoked.stdout
    bad = vibe("create", "--name", "x", "--scope", "everything")
    assert bad.returncode == 1 and "unknown scope 'everything'" in bad.stderr
    settings = vibe("create", "--name", "boot", "--scope", "admin", "--settings")
    assert settings.returncode == 0 and "VIBE_API_KEYS entry" in settings.stdout
    entry = settings.stdout.strip().splitlines()[-1]
    assert entry.startswith("boot:") and entry.endswith(":admin")
