"""Generated requests against the gateway's public APIs, gRPC and HTTP: every answer must
be a deliberate one (never UNKNOWN or INTERNAL, never a 500), none may hang, and a
rejected request must change no row.

    python -m vibe_dev.fuzz --requests 10000 [--seed 1]

starts the four services in this process on a scratch schema and key prefix (on
DATABASE_URL and REDIS_URL; background evaluation off, so that every row that changes
is the doing of the request just sent), sends the requests one after another, prints
what came back and the three counts (internal errors, hangs, stray rows), and drops the
scratch data. It exits 1 when any count is not 0.

The requests mix well-formed calls on live sessions (chats that store turns, reports of
a graded session) with every kind of bad input: NUL, lone surrogates and control
characters in every string field (sent as raw protobuf bytes on gRPC, since the client
library refuses to encode them; as JSON escapes and raw bytes on HTTP), malformed and
oversized ids, strings that are not UTF-8, truncated protobuf, unknown routes and
methods, foreign charsets, deep and huge JSON bodies, wrong tokens and keys; and the
reviewers' and admins' API (ReviewService, ApiKeyService and their HTTP routes): forged page
tokens, hostile filters and query strings, key names, scopes and ids, compressed bodies.

The tests (tests/test_properties.py) drive the same `send` and `table_digest` with
hypothesis-generated requests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import grpc
from yarl import URL

from vibe_api.gateway.v1 import gateway_pb2, review_pb2

# gRPC methods of the gateway's services (vibe.gateway.v1.Gateway, and the reviewers' and
# admins' ReviewService and ApiKeyService): (response streams, reply message class), and
# their request fields by number (raw protobuf is built from these, so any bytes fit).
METHODS: dict[str, tuple[bool, Any]] = {
    "CreateSession": (False, gateway_pb2.CreateSessionResponse),
    "GetSession": (False, gateway_pb2.Session),
    "Chat": (True, gateway_pb2.ChatEvent),
    "Submit": (True, gateway_pb2.SubmitEvent),
    "GetReport": (False, gateway_pb2.Report),
    "RunVisibleTests": (False, gateway_pb2.RunVisibleTestsResponse),
    "ListSessions": (False, review_pb2.ListSessionsResponse),
    "GetTranscript": (False, review_pb2.GetTranscriptResponse),
    "ExportSession": (False, review_pb2.ExportSessionResponse),
    "ReleaseReport": (False, review_pb2.ReleaseReportResponse),
    "CreateApiKey": (False, review_pb2.CreateApiKeyResponse),
    "ListApiKeys": (False, review_pb2.ListApiKeysResponse),
    "RevokeApiKey": (False, review_pb2.RevokeApiKeyResponse),
}
SERVICES: dict[str, str] = {
    **dict.fromkeys(
        ["ListSessions", "GetTranscript", "ExportSession", "ReleaseReport"], "vibe.gateway.v1.ReviewService"
    ),
    **dict.fromkeys(["CreateApiKey", "ListApiKeys", "RevokeApiKey"], "vibe.gateway.v1.ApiKeyService"),
}  # any other method: vibe.gateway.v1.Gateway
FIELDS: dict[str, dict[str, int]] = {
    "CreateSession": {"candidate_id": 1, "problem_id": 2},
    "GetSession": {"session_id": 1},
    "Chat": {"session_id": 1, "message": 2, "idempotency_key": 3},
    "Submit": {"session_id": 1, "language": 2, "code": 3, "idempotency_key": 4},
    "GetReport": {"session_id": 1},
    "RunVisibleTests": {"session_id": 1, "language": 2, "code": 3},
    "ListSessions": {"candidate_id": 1, "problem_id": 2, "page_token": 7},
    "GetTranscript": {"session_id": 1},
    "ExportSession": {"session_id": 1},
    "ReleaseReport": {"session_id": 1},
    "CreateApiKey": {"name": 1, "scopes": 2},
    "ListApiKeys": {},
    "RevokeApiKey": {"key_id": 1},
}
# Answers that are a decision about the request; anything else from a healthy stack is ours.
REJECTIONS = frozenset(
    {
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "RESOURCE_EXHAUSTED",
        "ALREADY_EXISTS",
    }
)
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
HTTP_REJECTIONS = frozenset({400, 401, 403, 404, 405, 409, 413, 414, 415, 422, 429, 431, 501})
# Tables a request may write (background evaluation is off in the stack this tool starts).
TABLES = (
    "sessions",
    "messages",
    "submissions",
    "prompt_evaluations",
    "test_results",
    "final_scores",
    "llm_usage",
    "api_keys",
)
HANG_S = 30.0


@dataclass(frozen=True)
class GrpcCall:
    method: str
    fields: tuple[tuple[int, bytes], ...]  # (field number, raw bytes of the string)
    token: str | None = None
    raw: bytes | None = None  # the whole request body instead of `fields` (e.g. garbage)

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        out = bytearray()
        for number, value in self.fields:
            out += _varint(number << 3 | 2) + _varint(len(value)) + value
        return bytes(out)


@dataclass(frozen=True)
class HttpCall:
    method: str
    path: str  # already percent-encoded
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    route: str = ""  # the route it aims at, for the summary (e.g. "/api/sessions/{id}/chat")


Call = GrpcCall | HttpCall


@dataclass(frozen=True)
class Outcome:
    call: Call
    status: str  # a gRPC code name, or "HTTP 404"
    detail: str = ""
    accepted: bool = False
    internal: bool = False
    hung: bool = False

    @property
    def name(self) -> str:
        if isinstance(self.call, GrpcCall):
            return f"gRPC {self.call.method}"
        return f"HTTP {self.call.method} {self.call.route or self.call.path[:60]}"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def grpc_call(method: str, token: str | None = None, **values: str | bytes) -> GrpcCall:
    """A gRPC call from field values; str values are UTF-8 with surrogates passed through
    (so a lone surrogate arrives as the bytes Python would write for it)."""
    numbers = FIELDS[method]
    fields = tuple(
        (numbers[name], v if isinstance(v, bytes) else v.encode("utf-8", "surrogatepass")) for name, v in values.items()
    )
    return GrpcCall(method, fields, token)


@dataclass
class Target:
    """Where the calls go, and the database to watch."""

    channel: grpc.aio.Channel
    http_base: str
    http: aiohttp.ClientSession
    db: asyncpg.Connection


async def send(target: Target, call: Call) -> Outcome:
    """Sends one call and classifies the answer."""
    try:
        async with asyncio.timeout(HANG_S):
            if isinstance(call, GrpcCall):
                return await _send_grpc(target, call)
            return await _send_http(target, call)
    except TimeoutError:
        return Outcome(call, "HANG", f"no answer in {HANG_S:g}s", hung=True)


async def _send_grpc(target: Target, call: GrpcCall) -> Outcome:
    streams, reply = METHODS[call.method]
    path = f"/{SERVICES.get(call.method, 'vibe.gateway.v1.Gateway')}/{call.method}"
    metadata = (("authorization", f"Bearer {call.token}"),) if call.token is not None else None
    try:
        if streams:
            stream: Any = target.channel.unary_stream(path, response_deserializer=reply.FromString)
            async for _ in stream(call.body(), metadata=metadata):
                pass
        else:
            unary: Any = target.channel.unary_unary(path, response_deserializer=reply.FromString)
            await unary(call.body(), metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        code = exc.code().name
        return Outcome(call, code, exc.details() or "", internal=code not in REJECTIONS | RETRYABLE)
    return Outcome(call, "OK", accepted=True)


async def _send_http(target: Target, call: HttpCall) -> Outcome:
    url = URL(target.http_base + call.path, encoded=True)
    async with target.http.request(call.method, url, headers=dict(call.headers), data=call.body) as response:
        status = f"HTTP {response.status}"
        text = await response.text(errors="replace")
        if response.status < 400:
            if response.content_type == "text/event-stream":
                lines = text.splitlines()
                for name, data in itertools.pairwise(lines):
                    if name == "event: error" and data.startswith("data: "):
                        error = json.loads(data[6:])
                        code = str(error.get("code", ""))
                        internal = code not in REJECTIONS | RETRYABLE
                        return Outcome(call, code, str(error.get("message", "")), internal=internal)
            return Outcome(call, status, accepted=True)
        try:
            error = json.loads(text)["error"]
            detail, model_ok = f"{error['code']}: {error['message']}", True
        except (ValueError, KeyError, TypeError):
            detail, model_ok = f"not the JSON error model: {text[:120]!r}", False
        deliberate = response.status in HTTP_REJECTIONS or response.status in (503, 504)
        return Outcome(call, status, detail, internal=not (deliberate and model_ok))


async def table_digest(db: asyncpg.Connection) -> dict[str, str]:
    """md5 of each table's rows: equal before and after a request that changed nothing."""
    digests = {}
    for table in TABLES:
        digests[table] = await db.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {table} t"
        )
    return digests


async def checked(target: Target, call: Call) -> tuple[Outcome, list[str]]:
    """Sends `call`; the tables it changed although it was not accepted (must be none)."""
    before = await table_digest(target.db)
    outcome = await send(target, call)
    if outcome.accepted:
        return outcome, []
    after = await table_digest(target.db)
    return outcome, [table for table in TABLES if before[table] != after[table]]


# ---------------------------------------------------------------------------------------
# Random requests (the CLI); the tests generate theirs with hypothesis.
# ---------------------------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\x1b[31mred",
    "\x7f",
    "\x08\x07",
    "\u200b",
    "\ufeff",
    "\U0010ffff",
    "한글 질문",
    "🙂" * 3,
    "../../etc/passwd",
    "%00",
    "' OR 1=1 --",
    "{{7*7}}",
    "\r\n",
    "a" * 65,
    "a" * 5000,
    "\u202eevil",
]
VALID_MESSAGES = [
    "Which data structure helps me avoid checking every pair?",
    "How do I handle duplicates like [3, 3]?",
    "What edge cases should I test?",
    "제 접근이 O(n)인가요?",
    "Is a hash map the right idea here?\nI tried nested loops first.",
]
PROBLEMS = ["two-sum", "valid-parentheses", "nope", "TWO-SUM", "two_sum"]
LANGUAGES = ["python", "cpp", "javascript", "Python ", "cobol", "", "py\x00"]
NOT_UTF8 = [b"\xff\xfe", b"\xed\xa0\x80", b"\xc3", b"abc\x80"]


@dataclass
class World:
    """What the generator knows: live sessions with their tokens, and one graded session."""

    active: list[tuple[str, str]]
    graded: tuple[str, str]
    api_key: str = ""  # a backend key with every scope (CreateSession needs one)
    created: Counter[str] = field(default_factory=Counter)


def random_call(rng: random.Random, world: World) -> Call:
    sessions = [*world.active, world.graded]

    def session() -> tuple[str, str | None]:
        roll = rng.random()
        if roll < 0.6:
            sid, token = rng.choice(sessions)
            return sid, rng.choice([token, token, token, None, "wrong", token + "x"])
        if roll < 0.8:
            return str(uuid.uuid4()), rng.choice([None, "t"])
        return rng.choice(NASTY), rng.choice([None, world.active[0][1]])

    def text(valid: list[str]) -> str | bytes:
        roll = rng.random()
        if roll < 0.5:
            return rng.choice(valid)
        if roll < 0.9:
            return rng.choice(NASTY) + rng.choice(["", rng.choice(valid)])
        return rng.choice(NOT_UTF8)

    if rng.random() < 0.2:
        return _random_review(rng, world, session, text)
    if rng.random() < 0.55:
        method = rng.choice(["CreateSession", "GetSession", "Chat", "Chat", "Submit", "GetReport", "RunVisibleTests"])
        if rng.random() < 0.03:
            return GrpcCall(method, (), raw=rng.randbytes(rng.randint(1, 40)))
        if method == "CreateSession":
            key = rng.choice([world.api_key, world.api_key, None, "vk_nope_secret", world.active[0][1]])
            return grpc_call(method, key, candidate_id=text(["cand-1", "Ada Lovelace"]), problem_id=text(PROBLEMS))
        sid, token = session()
        if method == "Chat":
            key = rng.choice(["", "", str(uuid.uuid4()), "k1", "bad key", "\x00"])
            return grpc_call(method, token, session_id=sid, message=text(VALID_MESSAGES), idempotency_key=key)
        if method == "Submit":
            if (sid, token) in world.active:  # a valid submit would grade a live session: spoil one field
                return grpc_call(method, token, session_id=sid, language=rng.choice(["cobol", "py\x00"]), code="x")
            return grpc_call(method, token, session_id=sid, language=text(LANGUAGES), code=text(["print(1)"]))
        if method == "RunVisibleTests":  # a valid one runs in the sandbox, within VIBE_LIMIT_RUNS_PER_MINUTE
            return grpc_call(method, token, session_id=sid, language=text(LANGUAGES), code=text(["print(1)"]))
        return grpc_call(method, token, session_id=sid)
    return _random_http(rng, world, session, text)


def _random_http(rng: random.Random, world: World, session: Any, text: Any) -> HttpCall:
    sid, token = session()
    quoted = _quote(sid) if rng.random() > 0.05 else "%FF%FE"  # or bytes that are not UTF-8
    route, allowed = rng.choice(
        [
            ("/api/problems", "GET"),
            ("/api/sessions", "POST"),
            ("/api/sessions/{id}", "GET"),
            ("/api/sessions/{id}/chat", "POST"),
            ("/api/sessions/{id}/submit", "POST"),
            ("/api/sessions/{id}/run", "POST"),
            ("/api/sessions/{id}/report", "GET"),
            ("/api/{id}", "GET"),
            ("/nowhere", "GET"),
        ]
    )
    path = route.replace("{id}", quoted)
    if route == "/api/sessions":  # a backend's call: a key (mostly the right one), not a session token
        token = rng.choice([world.api_key, world.api_key, None, "vk_nope_secret", token])
    method = allowed if rng.random() < 0.85 else rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH"])
    headers = [("Content-Type", rng.choice(["application/json", "application/json; charset=utf-8"]))]
    if rng.random() < 0.1:
        headers = [
            (
                "Content-Type",
                rng.choice(["application/json; charset=foo", "text/plain", "application/json; charset=latin-1"]),
            )
        ]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    if rng.random() < 0.2:
        headers.append(("Idempotency-Key", rng.choice([str(uuid.uuid4()), "k", "a b", "x" * 200])))
    if path.endswith("/submit") and (sid, token) in world.active:
        payload: Any = {"language": "cobol", "code": "x"}
    elif path.endswith(("/submit", "/run")):
        payload = {"language": text(LANGUAGES), "code": text(["print(1)"])}
    elif path.endswith("/chat"):
        payload = {"message": text(VALID_MESSAGES)}
    else:
        payload = {"candidate_id": text(["cand-1"]), "problem_id": text(PROBLEMS)}
    body = _json_body(rng, payload)
    return HttpCall(method, path, tuple(headers), body if method in ("POST", "PUT", "PATCH") else None, route)


def _random_review(rng: random.Random, world: World, session: Any, text: Any) -> Call:
    """A call of the reviewers' or admins' API (gRPC or HTTP), with the world's key (every
    scope) most of the time: forged page tokens, hostile filters and key ids, deep bodies."""
    key = rng.choice([world.api_key, world.api_key, world.api_key, None, "vk_nope_secret", world.active[0][1]])
    sid, _ = session()
    token = rng.choice(["", _forged_page_token(rng), text(["eyJ4IjogMX0"])])
    if rng.random() < 0.5:
        method = rng.choice(list(SERVICES))
        if method == "ListSessions":
            return grpc_call(
                method, key, candidate_id=text(["fuzz-1", ""]), problem_id=text(PROBLEMS), page_token=token
            )
        if method == "CreateApiKey":
            return grpc_call(method, key, name=text(["fuzz-key"]), scopes=text(["reports:read", "admin", "root"]))
        if method == "RevokeApiKey":
            return grpc_call(method, key, key_id=text(["000000000000", "a" * 100_000]))
        if method == "ListApiKeys":
            return grpc_call(method, key)
        return grpc_call(method, key, session_id=sid if isinstance(sid, str) else "x")
    headers = [("Content-Type", "application/json")]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    if rng.random() < 0.1:
        headers.append(("Content-Encoding", rng.choice(["gzip", "br", "deflate"])))
    roll = rng.random()
    if roll < 0.4:
        query = rng.choice(
            [
                f"page_token={_quote(token) if isinstance(token, str) else '%FF'}",
                f"candidate_id={_quote(rng.choice(NASTY))}",
                "candidate_id=%FF%FE",
                "status=graded&status=active",
                f"page_size={rng.choice(['-1', '0', '201', '1e309', '1_0', '%EF%BC%91', '9' * 40])}",
                f"created_after={rng.choice(['9999-12-31T23:59:59-23:59', '2025-01-01', '%00', '1' * 2000])}",
            ]
        )
        return HttpCall("GET", f"/api/review/sessions?{query}", tuple(headers), None, "/api/review/sessions")
    if roll < 0.6:
        action, method = rng.choice([("transcript", "GET"), ("export", "GET"), ("release", "POST")])
        path = f"/api/review/sessions/{_quote(sid)}/{action}"
        return HttpCall(method, path, tuple(headers), None, f"/api/review/sessions/{{id}}/{action}")
    if roll < 0.9:
        body = _json_body(rng, {"name": text(["fuzz-key"]), "scopes": text(["reports:read"])})
        if rng.random() < 0.5:  # scopes as the list it should be
            body = body.replace(b'"scopes": ', b'"scopes": [', 1)[:-1] + b"]}"
        return HttpCall("POST", "/api/keys", tuple(headers), body, "/api/keys")
    key_id = _quote(rng.choice(["000000000000", *NASTY]))
    return HttpCall("POST", f"/api/keys/{key_id}/revoke", tuple(headers), None, "/api/keys/{key_id}/revoke")


def _forged_page_token(rng: random.Random) -> str:
    """A page token as a caller could forge it: this API's shape, any time and id."""
    at = rng.choice(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2025-01-01T00:00:00+00:00", "x"])
    return base64.urlsafe_b64encode(json.dumps([at, rng.choice(NASTY)]).encode()).decode().rstrip("=")


def _quote(value: str) -> str:
    return "".join(
        ch
        if ch.isascii() and (ch.isalnum() or ch in "-_.~")
        else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in value
    )


def _json_body(rng: random.Random, payload: dict[str, Any]) -> bytes:
    # Strings: bytes become invalid UTF-8 inside the body; surrogates become \ud800 escapes.
    parts = []
    for key, value in payload.items():
        encoded = json.dumps(value).encode() if isinstance(value, str) else b'"' + value + b'"'
        parts.append(json.dumps(key).encode() + b": " + encoded)
    body = b"{" + b", ".join(parts) + b"}"
    roll = rng.random()
    if roll < 0.05:
        return b"[" * 50_000 + b"]" * 50_000
    if roll < 0.08:
        return rng.randbytes(rng.randint(0, 64))
    if roll < 0.1:
        return b'{"message": 5, "code": null, "language": ["x"]}'
    if roll < 0.12:
        return b"[" + body + b"]"
    return body


# ---------------------------------------------------------------------------------------
# The CLI
# ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fuzz_stack() -> AsyncIterator[tuple[Target, World]]:
    """The four services in process on a scratch schema and prefix, background
    evaluation off; a target on them, and a world of sessions (one graded)."""
    from vibe_dev.scratch import DATABASE_URL, drop_scratch, scratch_env
    from vibe_dev.stack import in_process_stack

    tag = f"fuzz_{uuid.uuid4().hex[:10]}"
    env = {**scratch_env(tag, f"{tag}:"), "EVALUATOR_WORKERS": "0", "VIBE_LOG_LEVEL": "error"}
    try:
        async with (
            in_process_stack(env) as addrs,
            grpc.aio.insecure_channel(addrs.gateway) as channel,
            aiohttp.ClientSession() as http,
        ):
            db = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": tag})
            try:
                target = Target(channel, f"http://{addrs.http}", http, db)
                yield target, await make_world(target, env["VIBE_API_KEY"])
            finally:
                await db.close()
    finally:
        await drop_scratch((tag,), f"{tag}:")


async def make_world(target: Target, api_key: str, active: int = 3) -> World:
    """Sessions to aim at: `active` live ones and one graded (submitted once, here),
    created with the backend key `api_key`."""
    from vibe.services.scoring.bank import DEFAULT_PROBLEMS_DIR

    stub = target.channel
    create = stub.unary_unary(
        "/vibe.gateway.v1.Gateway/CreateSession",
        request_serializer=gateway_pb2.CreateSessionRequest.SerializeToString,
        response_deserializer=gateway_pb2.CreateSessionResponse.FromString,
    )
    sessions = []
    for i in range(active + 1):
        reply = await create(
            gateway_pb2.CreateSessionRequest(candidate_id=f"fuzz-{i}", problem_id="two-sum"),
            metadata=(("authorization", f"Bearer {api_key}"),),
        )
        sessions.append((reply.session.session_id, reply.session_token))
    graded = sessions.pop()
    submit = stub.unary_stream(
        "/vibe.gateway.v1.Gateway/Submit",
        request_serializer=gateway_pb2.SubmitRequest.SerializeToString,
        response_deserializer=gateway_pb2.SubmitEvent.FromString,
    )
    code = (DEFAULT_PROBLEMS_DIR / "two-sum" / "reference.py").read_text()
    request = gateway_pb2.SubmitRequest(session_id=graded[0], language="python", code=code)
    async for _ in submit(request, metadata=(("authorization", f"Bearer {graded[1]}"),)):
        pass
    return World(sessions, graded, api_key)


async def run(requests: int, seed: int, out: Any = sys.stdout) -> int:
    rng = random.Random(seed)
    started = time.monotonic()
    statuses: Counter[str] = Counter()
    internal: list[Outcome] = []
    hangs: list[Outcome] = []
    stray: list[tuple[Outcome, list[str]]] = []
    async with fuzz_stack() as (target, world):
        for i in range(requests):
            outcome, changed = await checked(target, random_call(rng, world))
            statuses[f"{outcome.name} -> {outcome.status}"] += 1
            if outcome.internal:
                internal.append(outcome)
            if outcome.hung:
                hangs.append(outcome)
            if changed:
                stray.append((outcome, changed))
            if (i + 1) % 1000 == 0:
                print(f"... {i + 1} requests, {time.monotonic() - started:.0f}s", file=out, flush=True)
    print(f"{requests} requests (seed {seed}) in {time.monotonic() - started:.1f}s", file=out)
    for name, count in sorted(statuses.items()):
        print(f"  {count:6d}  {name}", file=out)
    for outcome in internal[:20]:
        print(f"INTERNAL {outcome.name}: {outcome.status} {outcome.detail[:200]} <- {outcome.call}", file=out)
    for outcome in hangs[:20]:
        print(f"HANG {outcome.name} <- {outcome.call}", file=out)
    for outcome, tables in stray[:20]:
        print(f"STRAY ROWS in {tables}: {outcome.name} {outcome.status} <- {outcome.call}", file=out)
    print(f"internal errors: {len(internal)}, hangs: {len(hangs)}, stray rows: {len(stray)}", file=out)
    return 0 if not (internal or hangs or stray) else 1


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vibe_dev.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    raise SystemExit(asyncio.run(run(args.requests, args.seed)))


if __name__ == "__main__":
    main()
