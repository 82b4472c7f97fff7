"""Bad input stops at the edge with a clear INVALID_ARGUMENT/400 (or 404/405/413/415 on
HTTP, in the JSON error model) and stores nothing; store faults are UNAVAILABLE, never
UNKNOWN; a pool whose connections were cut serves the next request.

The cases the issue reported one by one; tests/test_properties.py generates the rest."""

from __future__ import annotations

import asyncio
import base64
import codecs
import gzip
import json
import zlib
from collections.abc import Awaitable
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
import redis.exceptions
from google.protobuf import timestamp_pb2
from yarl import URL

from tests.support.stack import Stack, StartStack, new_candidate, reply_text
from vibe.platform import errors
from vibe.platform.errors import InvalidArgument, Unavailable, translate
from vibe.platform.storefaults import hot_copy_optional, retry_idempotent
from vibe_api.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from vibe_api.gateway.v1 import gateway_pb2, review_pb2, review_pb2_grpc
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc
from vibe_api.tutor.v1 import tutor_pb2, tutor_pb2_grpc
from vibe_dev.scratch import DATABASE_URL


async def rows(stack: Stack) -> int:
    db = await stack.db()
    try:
        return int(
            await db.fetchval(
                "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM sessions)"
                " + (SELECT count(*) FROM api_keys)"
            )
        )
    finally:
        await db.close()


async def test_http_edge_cases_are_client_errors_in_the_json_model(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    base = f"http://{stack.addrs.http}"
    auth = {"Authorization": f"Bearer {candidate.token}"}
    chat = f"{base}/api/sessions/{candidate.session_id}/chat"
    before = await rows(stack)
    cases: list[tuple[str, str, dict[str, str], bytes | None, int, str]] = [
        ("GET", f"{base}/api/sessions/%00", auth, None, 400, "control character"),
        ("POST", chat, {**auth, "Content-Type": "application/json"}, b'{"message": "\\ud800"}', 400, "surrogate"),
        ("POST", chat, {**auth, "Content-Type": "application/json"}, b'{"message": "a\\u0000b"}', 400, "U+0000"),
        ("POST", chat, {**auth, "Content-Type": "application/json; charset=foo"}, b'{"message": "hi"}', 415, "charset"),
        ("POST", chat, {**auth, "Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000, 400, "deep"),
        ("POST", chat, {**auth, "Content-Type": "application/json"}, b'{"message": "\xff"}', 400, "UTF-8"),
        ("POST", chat, {**auth, "Content-Type": "application/json"}, b"{" + b" " * (2 << 20) + b"}", 413, ""),
        ("GET", f"{base}/api/nowhere", {}, None, 404, ""),
        ("DELETE", chat, auth, None, 405, ""),
        ("POST", f"{base}/api/sessions/not%20an%20id/chat", auth, b'{"message": "hi"}', 400, "malformed"),
    ]
    async with aiohttp.ClientSession() as http:
        for method, url, headers, body, status, words in cases:
            async with http.request(method, url, headers=headers, data=body) as r:
                error = json.loads(await r.text())["error"]
                assert (r.status, words in error["message"]) == (status, True), (method, url, body and body[:40], error)
                assert error["code"] in ("INVALID_ARGUMENT", "NOT_FOUND", "UNIMPLEMENTED")
                if status == 405:
                    assert "GET" not in r.headers["Allow"] and "POST" in r.headers["Allow"]
    assert await rows(stack) == before, "nothing was stored"


async def test_requests_the_http_parser_refuses_are_answered_in_the_json_model(stack: Stack) -> None:
    # aiohttp's parser answers these before any route: it was plain text with its internals
    # ("Invalid method encountered", "Got more than 8190 bytes when reading: bytearray(b'/api/...")
    # and 400 whether a header or the URL was too long.
    host, _, port = stack.addrs.http.rpartition(":")
    key = stack.api_key.encode()
    cases = [
        (b"GET /api/keys HTTP/1.1\r\nHost: g\r\nX-API-Key: " + key + b"\r\nX-Pad: " + b"a" * 9000, 431, "a header"),
        (b"GET /api/keys HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer " + b"a" * 9000, 431, "a header"),
        (b"GET /api/keys HTTP/1.1\r\nHost: g\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)), 431, "headers"),
        (b"GET /api/sessions/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: g", 414, "the URL"),
        (b"FOO /api/problems HTTP/1.1\r\nHost: g", 501, "GET and POST"),
        (b"GET /api/review/sessions?page_size= 5 HTTP/1.1\r\nHost: g", 400, "Bad status line"),
        (b"GET /api/problems HTTP/1.1", 400, "Host"),
    ]
    for head, status, words in cases:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(head.rstrip(b"\r\n") + b"\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 30)  # the connection is closed after an error
        finally:
            writer.close()
        top, _, body = answer.partition(b"\r\n\r\n")
        assert int(top.split(b" ", 2)[1]) == status and b"application/json" in top, (head[:60], answer[:300])
        error = json.loads(body)["error"]
        assert words in error["message"] and error["code"] in ("INVALID_ARGUMENT", "UNIMPLEMENTED"), error


async def _answer(reader: asyncio.StreamReader, within_s: float) -> tuple[int, bytes, float]:
    """(status, body, seconds) of what the server sends before it closes the connection."""
    started = asyncio.get_running_loop().time()
    answer = await asyncio.wait_for(reader.read(), within_s)
    top, _, body = answer.partition(b"\r\n\r\n")
    status = int(top.split(b" ", 2)[1]) if top else 0
    return status, body, asyncio.get_running_loop().time() - started


async def test_a_connection_that_sends_nothing_or_stops_short_is_closed(start_stack: StartStack) -> None:
    # A head that never ends held its connection (and a file descriptor) for good: a few
    # thousand of them, a byte now and then, would leave the gateway none to accept with.
    async with start_stack(GATEWAY_HTTP_REQUEST_TIMEOUT_S="1") as stack:
        host, _, port = stack.addrs.http.rpartition(":")
        candidate = await new_candidate(stack)

        async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await asyncio.open_connection(host, int(port))

        # A head that stops short, then trickles a byte a time: 408, then closed.
        reader, writer = await connect()
        writer.write(b"GET /api/problems HTTP/1.1\r\nHost: g\r\n")
        for _ in range(3):
            await asyncio.sleep(0.2)
            writer.write(b"X")
        status, body, took = await _answer(reader, 10)
        writer.close()
        assert status == 408 and "head" in json.loads(body)["error"]["message"] and took < 5, (status, body)

        # A body that stops short of its length: 408 in the JSON model, then closed; nothing stored.
        before = await rows(stack)
        reader, writer = await connect()
        writer.write(
            b"POST /api/sessions/%s/chat HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer %s\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"message": "hel'
            % (candidate.session_id.encode(), candidate.token.encode())
        )
        status, body, took = await _answer(reader, 10)
        writer.close()
        error = json.loads(body)["error"]
        assert (status, error["code"]) == (408, "INVALID_ARGUMENT") and "body" in error["message"], body
        assert await rows(stack) == before

        # A kept-alive connection with nothing more to ask is closed without an answer.
        reader, writer = await connect()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: g\r\n\r\n")
        status, body, took = await _answer(reader, 10)
        writer.close()
        assert status == 200 and body.endswith(b'{"status": "ok"}') and 0.5 < took < 5, (status, body, took)

    # A reply that streams longer than the timeout is not cut: the wait is for the request.
    async with start_stack(GATEWAY_HTTP_REQUEST_TIMEOUT_S="0.5", VIBE_OFFLINE_LATENCY_MS="1500") as stack:
        candidate = await new_candidate(stack)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://{stack.addrs.http}/api/sessions/{candidate.session_id}/chat",
                json={"message": "Which data structure finds the complement quickly?"},
                headers={"Authorization": f"Bearer {candidate.token}"},
            ) as r,
        ):
            text = await r.text()
        assert r.status == 200 and "event: completed" in text, text[-300:]


async def test_every_http_body_goes_through_the_one_parser(stack: Stack) -> None:
    # The admin API's body had its own parser: 10k levels of JSON were a 500 (RecursionError),
    # an unknown charset a 500 (LookupError), latin-1 and UTF-16 were decoded as declared. A
    # compressed body was inflated by aiohttp: a corrupt one was a 500, brotli a plain-text 400.
    candidate = await new_candidate(stack)
    base = f"http://{stack.addrs.http}"
    key = {"Authorization": f"Bearer {stack.api_key}"}
    new_key = b'{"name": "fuzz", "scopes": ["reports:read"]}'
    before = await rows(stack)
    cases: list[tuple[str, dict[str, str], bytes, int, str]] = [
        ("/api/keys", {"Content-Type": "application/json"}, b"[" * 10_000 + b"]" * 10_000, 400, "deep"),
        ("/api/keys", {"Content-Type": "application/json; charset=foo"}, new_key, 415, "charset"),
        ("/api/keys", {"Content-Type": "application/json; charset=latin-1"}, new_key, 415, "charset"),
        ("/api/keys", {"Content-Type": "application/json; charset=utf-16"}, new_key.decode().encode("utf-16"), 415, ""),
        ("/api/keys", {"Content-Type": "application/json"}, b'{"name": "fuzz", "scopes": ["\\ud800"]}', 400, ""),
    ]
    bodies = {
        "/api/keys": new_key,
        "/api/sessions": b'{"candidate_id": "zip", "problem_id": "two-sum"}',
        f"/api/sessions/{candidate.session_id}/chat": b'{"message": "How do I start?"}',
    }
    for path, body in bodies.items():
        for encoding, sent in [
            ("gzip", gzip.compress(body)),
            ("gzip", b"not gzip at all"),
            ("deflate", zlib.compress(body)),
            ("deflate", b"not deflate"),
            ("br", b"not brotli"),
            ("zstd", b"not zstd"),
            ("x-unheard-of", body),
        ]:
            headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
            cases.append((path, headers, sent, 415, "Content-Encoding"))
    async with aiohttp.ClientSession() as http:
        for path, headers, body, status, words in cases:
            auth = {"Authorization": f"Bearer {candidate.token}"} if path.endswith("/chat") else key
            async with http.post(base + path, headers={**auth, **headers}, data=body) as r:
                text = await r.text()
                assert r.headers["Content-Type"].startswith("application/json"), (path, headers, text[:200])
                error = json.loads(text)["error"]
                assert (r.status, words in error["message"]) == (status, True), (path, headers, body[:30], error)
        async with http.get(base + "/healthz") as r:
            assert r.status == 200
    assert await rows(stack) == before, "nothing was stored"


async def test_a_page_token_outside_the_calendar_is_invalid_argument(stack: Stack) -> None:
    # A page token is the caller's to send back: one forged with a time whose UTC is past
    # year 9999 (or before year 1) reached PostgreSQL and came back UNKNOWN / HTTP 500.
    review = review_pb2_grpc.ReviewServiceStub(stack.channel)
    base = f"http://{stack.addrs.http}/api/review/sessions"
    for at in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"):
        token = base64.urlsafe_b64encode(json.dumps([at, "a"]).encode()).decode().rstrip("=")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await review.ListSessions(review_pb2.ListSessionsRequest(page_token=token), metadata=stack.key_auth)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in (err.value.details() or "")
        async with (
            aiohttp.ClientSession() as http,
            http.get(base, params={"page_token": token}, headers={"X-API-Key": stack.api_key}) as r,
        ):
            assert r.status == 400 and "page_token" in (await r.json())["error"]["message"]
    # The last instant of year 9999 is inside the calendar (it was rounded past it).
    last = timestamp_pb2.Timestamp(seconds=253402300799, nanos=999_999_999)
    page = await review.ListSessions(review_pb2.ListSessionsRequest(created_before=last), metadata=stack.key_auth)
    assert list(page.sessions) == []


async def test_an_error_quotes_only_a_bounded_part_of_what_was_sent(stack: Stack) -> None:
    # Errors quoted the caller's value whole: a 1 MB scope or a 100 kB key id made a status
    # message larger than gRPC's metadata limit, so the caller got RESOURCE_EXHAUSTED ("Stream
    # removed") from its own transport instead of the answer, and HTTP a 5 kB message.
    keys = review_pb2_grpc.ApiKeyServiceStub(stack.channel)
    before = await rows(stack)
    calls: list[tuple[Awaitable[Any], str]] = [
        (
            keys.CreateApiKey(
                review_pb2.CreateApiKeyRequest(name="x", scopes=["s" * 1_000_000]), metadata=stack.key_auth
            ),
            "unknown scope",
        ),
        (
            keys.CreateApiKey(
                review_pb2.CreateApiKeyRequest(name="x", scopes=["한" * 300_000]), metadata=stack.key_auth
            ),
            "unknown scope",
        ),
        (keys.RevokeApiKey(review_pb2.RevokeApiKeyRequest(key_id="k" * 100_000), metadata=stack.key_auth), "malformed"),
        (
            keys.RevokeApiKey(review_pb2.RevokeApiKeyRequest(key_id="../../etc/passwd"), metadata=stack.key_auth),
            "malformed",
        ),
    ]
    for call, words in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        details = err.value.details() or ""
        assert (err.value.code(), words in details) == (grpc.StatusCode.INVALID_ARGUMENT, True), details[:200]
        assert len(details) < 500, len(details)
    base = f"http://{stack.addrs.http}"
    key = {"X-API-Key": stack.api_key}
    async with aiohttp.ClientSession() as http:
        for method, path in [
            ("POST", "/api/keys/" + "k" * 5000 + "/revoke"),
            ("GET", "/api/review/sessions?status=" + "s" * 7000),
            ("GET", "/api/review/sessions?created_after=" + "1" * 7000),
            ("GET", "/api/review/sessions?page_size=" + "9" * 7000),
        ]:
            async with http.request(method, base + path, headers=key) as r:
                error = (await r.json())["error"]
                assert r.status == 400 and len(error["message"]) < 500, (path[:40], r.status, len(error["message"]))
    assert await rows(stack) == before
    # Whatever raises it, a message stays within what any gRPC client accepts as a status.
    long = InvalidArgument("é" * 100_000 + "the end")
    assert len(long.message.encode()) <= errors.MAX_MESSAGE_BYTES and long.message.endswith("…")


async def test_a_message_of_invisible_characters_is_blank(stack: Stack) -> None:
    # Only whitespace was blank: zero-width spaces, a BOM or bidi marks alone were stored as a
    # turn (and used one of the session's turns) although the candidate wrote nothing.
    candidate = await new_candidate(stack)
    before = await rows(stack)
    invisible = ["\u200b\u200b", "\ufeff", "\u200e\u2066\u2069 \n", "\u2060\u180e\u00ad"]
    for text in invisible:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await candidate.chat(text)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "empty" in (err.value.details() or "")
    base = f"http://{stack.addrs.http}/api/sessions/{candidate.session_id}"
    auth = {"Authorization": f"Bearer {candidate.token}"}
    async with aiohttp.ClientSession() as http:
        for text in invisible:
            async with http.post(base + "/chat", json={"message": text}, headers=auth) as r:
                assert r.status == 400 and "empty" in (await r.json())["error"]["message"]
            async with http.post(base + "/run", json={"language": "python", "code": text}, headers=auth) as r:
                assert r.status == 400 and "empty" in (await r.json())["error"]["message"]
    assert await rows(stack) == before
    # Text that holds them beside visible characters is a message like any other.
    assert reply_text(await candidate.chat("\u200bHow do I start?")).strip()


async def test_the_reviewer_api_reads_its_query_strictly(stack: Stack) -> None:
    # The query was decoded leniently: bytes that are not UTF-8 became U+FFFD (a filter that
    # silently matched nothing), a repeated parameter kept its first value, page_size was
    # whatever int() takes ('1_0', '+5', full-width digits), and an unknown name was ignored.
    base = f"http://{stack.addrs.http}/api/review/sessions?"
    key = {"X-API-Key": stack.api_key}
    cases = [
        ("candidate_id=%FF", "UTF-8"),
        ("candidate_id=%ED%A0%80", "UTF-8"),
        ("problem_id=two%C0%80sum", "UTF-8"),
        ("status=graded&status=active", "more than once"),
        ("page_size=1_0", "integer"),
        ("page_size=%2B5", "integer"),
        ("page_size=%EF%BC%91", "integer"),
        ("page_size=0x10", "integer"),
        # A misspelt filter was ignored: every session came back as if filtered.
        ("candidate=ada", "unknown query parameter 'candidate'"),
        ("page_size=5&pagesize=5", "unknown query parameter 'pagesize'"),
    ]
    async with aiohttp.ClientSession() as http:
        for query, words in cases:
            async with http.get(URL(base + query, encoded=True), headers=key) as r:
                error = (await r.json())["error"]
                assert (r.status, words in error["message"]) == (400, True), (query, error)
        for query in ("candidate_id=%ED%95%9C&page_size=5", "status=graded&candidate_id=a+b", "page_size=", ""):
            async with http.get(URL(base + query, encoded=True), headers=key) as r:
                assert r.status == 200, (query, await r.text())


async def test_a_body_that_is_not_a_json_object_says_what_is_wrong_with_it(stack: Stack) -> None:
    # Every body that did not parse was "the request body must be a JSON object", whether it
    # was empty, cut short, an array, or held a 5000-digit number; NaN and Infinity (not JSON)
    # were taken as numbers.
    candidate = await new_candidate(stack)
    chat = f"http://{stack.addrs.http}/api/sessions/{candidate.session_id}/chat"
    headers = {"Authorization": f"Bearer {candidate.token}", "Content-Type": "application/json"}
    before = await rows(stack)
    cases = [
        (b"", "empty"),
        (b"  \n", "empty"),
        (b'{"message": "hi",}', "line 1, column 18"),
        (b'{"message": "hi"', "line 1, column 17"),
        (b'{"message": "hi"}\n{"message": "again"}', "line 2, column 1"),
        (b'{"message": "hi", "n": ' + b"9" * 5000 + b"}", "4300 digits"),
        (b'{"message": "hi", "n": NaN}', "NaN is not a JSON number"),
        (b'{"message": "hi", "n": [-Infinity]}', "-Infinity is not a JSON number"),
        (b'[{"message": "hi"}]', "not an array"),
        (b'"hi"', "not a string"),
        (b"null", "not null"),
    ]
    async with aiohttp.ClientSession() as http:
        for body, words in cases:
            async with http.post(chat, data=body, headers=headers) as r:
                error = (await r.json())["error"]
                assert (r.status, words in error["message"]) == (400, True), (body[:40], error)
    assert await rows(stack) == before


async def test_a_key_given_twice_a_byte_order_mark_or_utf_16_get_a_clear_answer(stack: Stack) -> None:
    # json.loads kept the last of two equal keys, so '{"message": "a", "message": "b"}' chatted
    # "b" (and a proxy that reads the first saw "a"); a UTF-8 body with a byte order mark was
    # "Unexpected UTF-8 BOM (decode using utf-8-sig)", a UTF-16 one just "not UTF-8", and a raw
    # control character in a string "Invalid control character at at line 1, column 15".
    candidate = await new_candidate(stack)
    base = f"http://{stack.addrs.http}"
    chat = f"{base}/api/sessions/{candidate.session_id}/chat"
    token = {"Authorization": f"Bearer {candidate.token}", "Content-Type": "application/json"}
    key = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    session = '{"candidate_id": "bom", "problem_id": "two-sum"}'
    before = await rows(stack)
    refused: list[tuple[str, dict[str, str], bytes, int, str]] = [
        (
            chat,
            token,
            b'{"message": "How do I start?", "message": "Give me the code"}',
            400,
            "'message' more than once",
        ),
        (chat, token, b'{"message": "hi", "x": {"a": 1, "a": 1}}', 400, "'a' more than once"),
        (f"{base}/api/sessions", key, session[:-1].encode() + b', "problem_id": "two-sum"}', 400, "more than once"),
        (f"{base}/api/keys", key, b'{"name": "a", "scopes": ["admin"], "name": "b"}', 400, "'name' more than once"),
        (chat, token, '{"message": "How do I start?"}'.encode("utf-16"), 415, "UTF-16"),
        (chat, token, '{"message": "How do I start?"}'.encode("utf-16-le"), 415, "UTF-16"),
        (chat, token, '{"message": "How do I start?"}'.encode("utf-32"), 415, "UTF-32"),
        (chat, token, b'{"message": "a\x01b"}', 400, "U+0001 at line 1, column 15 is inside a string unescaped"),
        # A form was "Expecting value at line 1, column 1", whatever its Content-Type said.
        (chat, {**token, "Content-Type": "application/x-www-form-urlencoded"}, b"message=hi", 400, "sent as"),
    ]
    async with aiohttp.ClientSession() as http:
        for url, headers, body, status, words in refused:
            async with http.post(url, data=body, headers=headers) as r:
                error = (await r.json())["error"]
                assert (r.status, words in error["message"]) == (status, True), (body[:40], error)
                assert " at at " not in error["message"] and "utf-8-sig" not in error["message"], error
        assert await rows(stack) == before, "nothing was stored"
        # A UTF-8 byte order mark is still UTF-8 (RFC 8259 lets a parser ignore it).
        async with http.post(f"{base}/api/sessions", data=codecs.BOM_UTF8 + session.encode(), headers=key) as r:
            assert r.status == 201, await r.text()
            assert (await r.json())["session"]["candidate_id"] == "bom"


async def test_a_misspelt_body_field_is_refused_not_ignored(stack: Stack) -> None:
    # {"lang": "cpp", "code": ...} was graded as Python (the language's default): the session
    # was over, with a compile error for a grade. A key with a stray field was created.
    candidate = await new_candidate(stack)
    base = f"http://{stack.addrs.http}"
    token = {"Authorization": f"Bearer {candidate.token}"}
    key = {"Authorization": f"Bearer {stack.api_key}"}
    cpp = "#include <cstdio>\nint main() { return 0; }\n"
    before = await rows(stack)
    cases = [
        (f"/api/sessions/{candidate.session_id}/submit", token, {"lang": "cpp", "code": cpp}, "'lang'"),
        (f"/api/sessions/{candidate.session_id}/run", token, {"Language": "cpp", "code": cpp}, "'Language'"),
        (f"/api/sessions/{candidate.session_id}/chat", token, {"message": "hi", "turn": 3}, "'turn'"),
        ("/api/sessions", key, {"candidate_id": "c", "problem_id": "two-sum", "problem": "x"}, "'problem'"),
        ("/api/keys", key, {"name": "k", "scopes": ["admin"], "scope": "reports:read"}, "'scope'"),
    ]
    async with aiohttp.ClientSession() as http:
        for path, headers, body, words in cases:
            async with http.post(base + path, json=body, headers=headers) as r:
                error = (await r.json())["error"]
                assert (r.status, f"unknown field {words}" in error["message"]) == (400, True), (path, error)
    assert await rows(stack) == before, "nothing was stored"
    session = await stack.gateway.GetSession(
        gateway_pb2.GetSessionRequest(session_id=candidate.session_id), metadata=candidate.auth
    )
    assert session.status == gateway_pb2.SESSION_STATUS_ACTIVE, "the session was not submitted"


async def test_grpc_strings_that_cannot_be_stored_are_invalid_argument(stack: Stack) -> None:
    candidate = await new_candidate(stack)
    before = await rows(stack)
    calls = [
        gateway_pb2.ChatRequest(session_id=candidate.session_id, message="a\x00b"),
        gateway_pb2.ChatRequest(session_id=candidate.session_id, message="\x1b[2Jclear"),
        gateway_pb2.ChatRequest(session_id=candidate.session_id + "\x00", message="hi"),
    ]
    for request in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            [e async for e in stack.gateway.Chat(request, metadata=candidate.auth)]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.gateway.CreateSession(
            gateway_pb2.CreateSessionRequest(candidate_id="x\x00", problem_id="two-sum"), metadata=stack.key_auth
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A string field that is not UTF-8 (a lone surrogate, as some clients write it) does not even parse.
    raw = b"\x0a\x05ab\xed\xa0\x80"  # field 1 (session_id), 5 bytes
    unary: Any = stack.channel.unary_unary("/vibe.gateway.v1.Gateway/GetSession")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await unary(raw, metadata=candidate.auth)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "UTF-8" in (err.value.details() or "")
    assert await rows(stack) == before


async def test_internal_services_check_what_they_receive(stack: Stack) -> None:
    async with (
        stack.internal("evaluator") as evaluator_channel,
        stack.internal("tutor") as tutor_channel,
        stack.internal("scoring") as scoring_channel,
    ):
        evaluator = evaluator_pb2_grpc.EvaluatorStub(evaluator_channel)
        tutor = tutor_pb2_grpc.TutorStub(tutor_channel)
        scoring = scoring_pb2_grpc.ScoringStub(scoring_channel)
        calls: list[Awaitable[Any]] = [
            evaluator.EvaluateTurn(evaluator_pb2.EvaluateTurnRequest(session_id="a\x00", turn=1)),
            evaluator.GetTurnStatuses(evaluator_pb2.GetTurnStatusesRequest(session_id="\u202e")),
            scoring.GetProblem(scoring_pb2.GetProblemRequest(problem_id="two-sum\x00")),
            scoring.GradeSession(scoring_pb2.GradeSessionRequest(session_id="s-1", holistic_flow_score=float("nan"))),
            scoring.CheckCode(
                scoring_pb2.CheckCodeRequest(problem_id="two-sum", language="python", code="print(1)\x00")
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        stream = tutor.StreamReply(
            tutor_pb2.StreamReplyRequest(session_id="s-1", turn=1, problem_id="two-sum", message="hi\x00")
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            [e async for e in stream]
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_store_faults_are_unavailable_and_everything_else_is_not() -> None:
    faults = [
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InternalClientError("cannot switch to state 11; another operation is in progress"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        redis.exceptions.ConnectionError("Error 111 connecting"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        ConnectionRefusedError(111, "Connect call failed"),
    ]
    for fault in faults:
        err = translate(fault)
        assert isinstance(err, Unavailable) and "retry" in err.message, fault
    for bug in (ValueError("x"), KeyError("k"), asyncpg.exceptions.DataError("bad input"), AssertionError()):
        assert translate(bug) is None, bug

    def fail(exc: Exception) -> None:
        raise exc

    with hot_copy_optional("a cache write"):
        fail(redis.exceptions.ConnectionError("down"))  # swallowed: the copy is optional
    with pytest.raises(ValueError, match="never swallowed"), hot_copy_optional("a cache write"):
        fail(ValueError("a bug is never swallowed"))


async def test_a_pool_whose_connections_were_cut_serves_the_next_request() -> None:
    # Only this pool's own backends are terminated (the shared server's other clients are untouched).
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=3, max_size=3)
    assert pool is not None
    killer = await asyncpg.connect(DATABASE_URL)
    try:
        async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
            pids = [await conn.fetchval("SELECT pg_backend_pid()") for conn in (a, b, c)]
        await killer.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
        await asyncio.sleep(0.2)
        assert await retry_idempotent(lambda: pool.fetchval("SELECT 41 + 1"), "read", pool=pool) == 42
        assert [await pool.fetchval("SELECT 1") for _ in range(5)] == [1] * 5
        assert not set(pids) & {await pool.fetchval("SELECT pg_backend_pid()") for _ in range(3)}
    finally:
        await killer.close()
        await pool.close()
