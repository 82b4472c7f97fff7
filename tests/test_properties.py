"""Property tests over every public RPC and HTTP endpoint of the gateway: whatever a
caller sends, the answer is a deliberate one (never UNKNOWN/INTERNAL, never a 500, the
JSON error model on HTTP), it comes back in bounded time, and a rejected request changes
no row of any table.

Hypothesis generates the requests (strings with NUL, lone surrogates, control
characters, bytes that are not UTF-8, malformed ids; random routes, methods, charsets and
bodies), on three surfaces: the candidates' gRPC, their HTTP, and the reviewers' and admins'
API over both (where a forged page token, a deep body to /api/keys or a compressed one were
a 500); vibe_dev/fuzz.py sends them, raw, to the real services and compares the tables
before and after (`checked`). Background evaluation is off, so every row that changes is
the request's doing. Hypothesis runs in a worker thread and hands each request to the
event loop the services run in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.stack import StartStack
from vibe_dev.fuzz import Call, GrpcCall, HttpCall, Target, World, checked, grpc_call, make_world

EXAMPLES = 150

# Text of every kind: surrogates and control characters included (hypothesis leaves
# surrogates out unless asked), valid values, and raw bytes that are not UTF-8.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=80)
NOT_UTF8 = st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xc3(", b"ok\x80"])


def field(valid: list[str]) -> st.SearchStrategy[str | bytes]:
    return st.one_of(
        st.sampled_from(valid), ANY_TEXT, NOT_UTF8, st.builds(lambda v, t: v + t, st.sampled_from(valid), ANY_TEXT)
    )


@contextlib.asynccontextmanager
async def target_of(start_stack: StartStack) -> AsyncIterator[tuple[Target, World]]:
    async with start_stack(EVALUATOR_WORKERS="0") as stack, aiohttp.ClientSession() as http:
        db = await stack.db()
        try:
            target = Target(stack.channel, f"http://{stack.addrs.http}", http, db)
            yield target, await make_world(target, stack.env["VIBE_API_KEY"], active=2)
        finally:
            await db.close()


def run_property(loop: asyncio.AbstractEventLoop, target: Target, calls: st.SearchStrategy[Call]) -> Callable[[], None]:
    """A hypothesis test (to run in a thread) sending each generated call on `loop`."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(calls)
    def prop(call: Call) -> None:
        outcome, changed = asyncio.run_coroutine_threadsafe(checked(target, call), loop).result(timeout=90)
        assert not outcome.hung, f"{outcome.name} did not answer"
        assert not outcome.internal, f"{outcome.name} answered {outcome.status} {outcome.detail!r}"
        assert not changed, f"{outcome.name} was rejected ({outcome.status}) but changed {changed}"

    return prop


def grpc_calls(world: World) -> st.SearchStrategy[Call]:
    sessions = [*world.active, world.graded]
    ids = [s for s, _ in sessions]
    tokens = st.one_of(
        st.none(), st.sampled_from([t for _, t in sessions]), st.from_regex(r"[!-~]{0,60}", fullmatch=True)
    )
    messages = ["How do I start?", "What about duplicates?\nI tried a set.", "제 접근이 맞나요?"]
    keys = st.one_of(st.just(""), st.uuids().map(str), ANY_TEXT)
    # A valid submit on a live session would grade it (seconds of sandbox runs); those
    # sessions get submits with a language no problem has, the graded one any submit.
    live_submit = st.builds(
        lambda s, code: grpc_call("Submit", s[1], session_id=s[0], language="cobol", code=code),
        st.sampled_from(world.active),
        field(["print(1)"]),
    )
    return st.one_of(
        st.builds(
            lambda k, c, p: grpc_call("CreateSession", k, candidate_id=c, problem_id=p),
            st.sampled_from([world.api_key, None, "vk_nope_secret"]),
            field(["cand-1", "Ada Lovelace"]),
            field(["two-sum", "nope"]),
        ),
        st.builds(lambda s, t: grpc_call("GetSession", t, session_id=s), field(ids), tokens),
        st.builds(lambda s, t: grpc_call("GetReport", t, session_id=s), field(ids), tokens),
        st.builds(
            lambda s, t, lang, code: grpc_call("RunVisibleTests", t, session_id=s, language=lang, code=code),
            field(ids),
            tokens,
            field(["python", "cpp", "cobol"]),
            field(["print(1)"]),
        ),
        st.builds(
            lambda s, t, m, k: grpc_call("Chat", t, session_id=s, message=m, idempotency_key=k),
            field(ids),
            tokens,
            field(messages),
            keys,
        ),
        st.builds(
            lambda t, lang, code, k: grpc_call(
                "Submit", t, session_id=world.graded[0], language=lang, code=code, idempotency_key=k
            ),
            tokens,
            field(["python", "cpp"]),
            field(["print(1)"]),
            keys,
        ),
        live_submit,
        st.builds(
            lambda m, raw: GrpcCall(m, (), raw=raw),
            st.sampled_from(["Chat", "Submit", "GetSession"]),
            st.binary(max_size=40),
        ),
    )


def _quote(value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return "".join(chr(b) if b < 0x80 and (chr(b).isalnum() or chr(b) in "-_.~") else f"%{b:02X}" for b in raw)


def _body(fields: dict[str, Any]) -> bytes:
    """JSON whose strings may hold lone surrogates (as \\u escapes) or raw non-UTF-8 bytes."""
    parts = []
    for key, value in fields.items():
        encoded = b'"' + value + b'"' if isinstance(value, bytes) else json.dumps(value).encode()
        parts.append(json.dumps(key).encode() + b": " + encoded)
    return b"{" + b", ".join(parts) + b"}"


def _key_body(name: str | bytes, scope: str | bytes) -> bytes:
    """{"name": name, "scopes": [scope]}, each string encoded as _body encodes it."""
    return _body({"name": name})[:-1] + b', "scopes": [' + _body({"s": scope})[len(b'{"s": ') : -1] + b"]}"


def http_calls(world: World) -> st.SearchStrategy[Call]:
    sessions = [*world.active, world.graded]
    ids = field([s for s, _ in sessions])
    auth = st.one_of(
        st.none(), st.sampled_from([t for _, t in sessions]), st.from_regex(r"[!-~]{1,40}", fullmatch=True)
    )
    content_type = st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "application/json; charset=foo", "text/plain", ""]
    )
    routes = st.one_of(
        st.tuples(st.just("/api/problems"), st.just("GET")),
        st.tuples(st.just("/api/sessions"), st.just("POST")),
        ids.map(lambda s: (f"/api/sessions/{_quote(s)}", "GET")),
        ids.map(lambda s: (f"/api/sessions/{_quote(s)}/chat", "POST")),
        ids.map(lambda s: (f"/api/sessions/{_quote(s)}/report", "GET")),
        st.just((f"/api/sessions/{world.graded[0]}/submit", "POST")),
        ANY_TEXT.map(lambda p: (f"/{_quote(p)}", "GET")),
    )
    bodies = st.one_of(
        st.builds(
            lambda c, p, m, lang, code: _body(
                {"candidate_id": c, "problem_id": p, "message": m, "language": lang, "code": code}
            ),
            field(["cand-1"]),
            field(["two-sum"]),
            field(["How do I start?"]),
            field(["python"]),
            field(["print(1)"]),
        ),
        st.binary(max_size=64),
        st.integers(1, 5000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.just(b'{"message": 5, "candidate_id": null}'),
    )

    def build(
        route: tuple[str, str], other_method: str | None, token: str | None, ctype: str, body: bytes, key: str | None
    ) -> HttpCall:
        path, method = route
        method = other_method or method
        headers = [("Content-Type", ctype)] if ctype else []
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
        if key is not None:
            headers.append(("Idempotency-Key", key))
        return HttpCall(method, path, tuple(headers), body if method in ("POST", "PUT", "PATCH") else None)

    return st.builds(
        build,
        routes,
        st.one_of(st.none(), st.none(), st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])),
        auth,
        content_type,
        bodies,
        st.one_of(st.none(), st.from_regex(r"[ -~]{0,140}", fullmatch=True)),
    )


def review_calls(world: World) -> st.SearchStrategy[Call]:
    """The reviewers' and admins' API, gRPC and HTTP: forged page tokens, hostile filters,
    key names, scopes and ids, bodies deep, compressed or in another charset."""
    sessions = [*world.active, world.graded]
    ids = field([s for s, _ in sessions])
    creds = st.one_of(st.just(world.api_key), st.just(world.api_key), st.none(), st.sampled_from([sessions[0][1]]))
    times = st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
        st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]),
        ANY_TEXT,
    )
    page_tokens = st.one_of(
        st.just(""),
        ANY_TEXT,
        st.builds(
            lambda t, i: base64.urlsafe_b64encode(json.dumps([t, i]).encode()).decode().rstrip("="), times, ANY_TEXT
        ),
    )
    grpc_review = st.one_of(
        st.builds(
            lambda k, c, p, t: grpc_call("ListSessions", k, candidate_id=c, problem_id=p, page_token=t),
            creds,
            field(["fuzz-1"]),
            field(["two-sum"]),
            page_tokens,
        ),
        st.builds(
            lambda m, k, s: grpc_call(m, k, session_id=s),
            st.sampled_from(["GetTranscript", "ExportSession", "ReleaseReport"]),
            creds,
            ids,
        ),
        st.builds(
            lambda k, n, sc: grpc_call("CreateApiKey", k, name=n, scopes=sc),
            creds,
            field(["fuzz-key"]),
            field(["reports:read", "admin"]),
        ),
        st.builds(lambda k, i: grpc_call("RevokeApiKey", k, key_id=i), creds, field(["000000000000"])),
    )
    query = st.one_of(
        page_tokens.map(lambda t: f"page_token={_quote(t)}"),
        ids.map(lambda c: f"candidate_id={_quote(c)}"),
        times.map(lambda t: f"created_after={_quote(t)}"),
        st.text(max_size=12).map(lambda n: f"page_size={_quote(n)}"),
        st.binary(max_size=12).map(lambda b: f"status={_quote(b)}&status=graded"),
    )
    key_bodies = st.one_of(
        st.builds(_key_body, field(["fuzz-key"]), field(["reports:read"])),
        st.integers(1, 20_000).map(lambda depth: b"[" * depth + b"]" * depth),
        st.binary(max_size=64),
    )

    def http(
        path: str, method: str, cred: str | None, body: bytes | None, ctype: str, encoding: str | None
    ) -> HttpCall:
        headers = [("Content-Type", ctype)]
        if cred is not None:
            headers.append(("Authorization", f"Bearer {cred}"))
        if encoding is not None:
            headers.append(("Content-Encoding", encoding))
        return HttpCall(method, path, tuple(headers), body)

    ctypes = st.sampled_from(["application/json", "application/json; charset=latin-1", "application/json; charset=x"])
    encodings = st.one_of(st.none(), st.none(), st.sampled_from(["gzip", "deflate", "br", "identity"]))
    http_review = st.one_of(
        st.builds(lambda q, c: http(f"/api/review/sessions?{q}", "GET", c, None, "", None), query, creds),
        st.builds(
            lambda s, a, c: http(f"/api/review/sessions/{_quote(s)}/{a[0]}", a[1], c, None, "", None),
            ids,
            st.sampled_from([("transcript", "GET"), ("export", "GET"), ("release", "POST")]),
            creds,
        ),
        st.builds(lambda b, c, t, e: http("/api/keys", "POST", c, b, t, e), key_bodies, creds, ctypes, encodings),
        st.builds(lambda i, c: http(f"/api/keys/{_quote(i)}/revoke", "POST", c, None, "", None), ANY_TEXT, creds),
    )
    return st.one_of(grpc_review, http_review)


@pytest.mark.parametrize("surface", ["grpc", "http", "review"])
async def test_no_request_is_an_internal_error_or_changes_a_row_when_rejected(
    start_stack: StartStack, surface: str
) -> None:
    async with target_of(start_stack) as (target, world):
        calls = {"grpc": grpc_calls, "http": http_calls, "review": review_calls}[surface](world)
        await asyncio.to_thread(run_property(asyncio.get_running_loop(), target, calls))
