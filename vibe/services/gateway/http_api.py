"""The candidates' HTTP API and web pages: JSON requests, server-sent events for the
streamed chat reply and the submit progress. A thin translation of the gateway core (core.py),
like the gRPC servicer.

    GET  /                                   the candidate's page (web/index.html)
    GET  /review                             the reviewers' page (web/review.html)
    GET  /static/app.js, /static/style.css   their script (built by `make setup`) and style
    GET  /api/problems                       problems to choose from
    POST /api/sessions                       {"candidate_id", "problem_id"} -> session + token
    GET  /api/sessions/{id}                  session, problem and messages      (Bearer token)
    POST /api/sessions/{id}/chat             {"message"}  -> SSE turn_started, delta*, completed
    POST /api/sessions/{id}/submit           {"language", "code"} -> SSE progress*, report
                                             (both take an optional Idempotency-Key header)
    POST /api/sessions/{id}/run              {"language", "code"} -> the visible tests' verdicts
    GET  /api/sessions/{id}/report           the stored report
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from google.protobuf import json_format
from google.protobuf.message import Message

from vibe.platform.config import GatewaySettings
from vibe.platform.errors import (
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    Unavailable,
    bounded,
    translate,
)
from vibe.platform.validation import check_content_encoding, parse_json_object, shown
from vibe.services.gateway.access import Credential
from vibe.services.gateway.chat import ReplyDelta, TurnCompleted, TurnStarted
from vibe.services.gateway.core import Gateway
from vibe.services.gateway.servicer import message_to_pb, session_to_pb
from vibe.services.gateway.submit import Progress
from vibe.shared.convert import guardrail_to_pb

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1024 * 1024
GATEWAY_KEY = web.AppKey("gateway", Gateway)
# How long a request's head, and then its body, may take to arrive (GATEWAY_HTTP_REQUEST_TIMEOUT_S).
REQUEST_TIMEOUT_KEY = web.AppKey("request_timeout_s", float)
DEFAULT_REQUEST_TIMEOUT_S = GatewaySettings.http_request_timeout_s
WEB_DIR = resources.files(__package__).joinpath("web")
BUNDLE = "static/app.js"


def _pb(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _error(exc: ServiceError) -> web.Response:
    response = web.json_response({"error": {"code": exc.code.name, "message": exc.message}}, status=exc.http_status)
    if isinstance(exc, ResourceExhausted) and exc.retry_after_header is not None:
        response.headers["Retry-After"] = exc.retry_after_header
    return response


def credential_of(request: web.Request) -> Credential:
    """The request's API key or session token (`Authorization: Bearer ...`, or `X-API-Key`)."""
    return Credential.parse(request.headers.getall("Authorization", []), request.headers.getall("X-API-Key", []))


def _idempotency_key(request: web.Request) -> str:
    keys = set(request.headers.getall("Idempotency-Key", []))
    if len(keys) > 1:  # which one the retry means is not for us to guess
        raise InvalidArgument("the request carries more than one Idempotency-Key header; send one")
    return keys.pop() if keys else ""


async def json_object(request: web.Request, *fields: str) -> dict[str, Any]:
    """The request's body as a JSON object of at most `fields`: every route that takes a
    body reads it here (validation.parse_json_object: UTF-8, size, depth), uncompressed (the
    server does not inflate bodies: see serve_http)."""
    check_content_encoding(request.headers.get("Content-Encoding"))
    timeout_s = request.app.get(REQUEST_TIMEOUT_KEY, DEFAULT_REQUEST_TIMEOUT_S)
    try:
        async with asyncio.timeout(timeout_s):
            raw = await request.read()  # bounded by client_max_size: 413 beyond it
    except TimeoutError:
        raise _BodyTimeout(
            f"the request's body did not arrive within {timeout_s:g} s; send it whole, then wait for the answer"
        ) from None
    data = parse_json_object(raw, request.charset, MAX_BODY_BYTES, content_type=request.headers.get("Content-Type", ""))
    # A misspelt field was ignored: {"lang": "cpp", "code": ...} graded C++ as Python (the
    # language's default), once and for good.
    for name in data:
        if name not in fields:
            raise InvalidArgument(
                f"unknown field {shown(name, 40)} in the request body; its fields are: {', '.join(fields)}"
            )
    return data


async def _body(request: web.Request, *fields: str) -> dict[str, str]:
    data = await json_object(request, *fields)
    out = {}
    for name in fields:
        value = data.get(name, "")
        if not isinstance(value, str):
            raise InvalidArgument(f"{name} must be a string")
        out[name] = value
    return out


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is the JSON error model: ours, aiohttp's own (unknown route 404, wrong
    method 405, body too large 413), and store faults (503, retryable)."""
    connection = request.protocol
    if isinstance(connection, _Connection):
        connection.busy()
    try:
        return await handler(request)
    except _BodyTimeout as exc:
        response = _error(exc)
        response.force_close()
        return response
    except ServiceError as exc:
        return _error(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return web.json_response(
            {"error": {"code": _HTTP_CODES.get(exc.status, "INVALID_ARGUMENT"), "message": exc.reason}},
            status=exc.status,
            headers={"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None,
        )
    except Exception as exc:
        fault = translate(exc)
        if fault is None:
            raise
        return _error(fault)
    finally:
        if isinstance(connection, _Connection):
            connection.idle()


_HTTP_CODES = {404: "NOT_FOUND", 405: "UNIMPLEMENTED", 413: "INVALID_ARGUMENT", 415: "INVALID_ARGUMENT"}


async def _sse(request: web.Request, events: AsyncGenerator[tuple[str, dict[str, Any]], None]) -> web.StreamResponse:
    """Streams `events` as server-sent events. The first event is awaited before the
    response starts, so that bad input still gets a plain JSON error and status."""
    async with contextlib.aclosing(events):
        try:
            first = await anext(events)
        except StopAsyncIteration:
            first = None
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(_sse_line(*first))
            async for name, data in events:
                await response.write(_sse_line(name, data))
        except Exception as exc:  # the stream has started: the error is its last event
            err = exc if isinstance(exc, ServiceError) else translate(exc)
            if err is None:
                raise
            await response.write(_sse_line("error", {"code": err.code.name, "message": err.message}))
        await response.write_eof()
        return response


def _sse_line(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    gzipped: bytes  # compressed once at start (the bundle is ~720 kB, ~255 kB gzipped)


_CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def load_asset(web_dir: Traversable, name: str) -> Asset | None:
    """A file of the pages, read once when the app starts (restart the gateway after `make web`)."""
    path = web_dir.joinpath(name)
    if not path.is_file():
        return None
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, _CONTENT_TYPES[name[name.rindex(".") :]], etag, gzip.compress(body, mtime=0))


_BUNDLE_MISSING = (
    "The web page's script bundle ({path}) was not built, so the page cannot work. Build it with `make setup` "
    "(or `make web`; it needs Node.js and npm), or install a wheel or image that was built with it, then restart "
    "the gateway. The HTTP API itself works without it."
)
ASSETS_KEY = web.AppKey("assets", dict[str, Asset | None])


def _serve(name: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        assets = request.app[ASSETS_KEY]
        if assets[BUNDLE] is None and name in (BUNDLE, "index.html", "review.html"):
            # A page without its script would be a blank form that does nothing: say why instead.
            message = _BUNDLE_MISSING.format(path=f"vibe/services/gateway/web/{BUNDLE}")
            if name == BUNDLE:
                raise Unavailable(message)
            return web.Response(
                text=f"<!doctype html><meta charset=utf-8><title>Page not built</title><p>{message}</p>",
                content_type="text/html",
                status=503,
            )
        asset = assets[name]
        if asset is None:
            raise NotFound(f"{name} is missing from the gateway's package")
        # Revalidated on every load (no-cache) and answered 304 when unchanged: a rebuilt bundle
        # is never mixed with a cached page.
        headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if request.headers.get("If-None-Match") == asset.etag:
            return web.Response(status=304, headers=headers)
        body = asset.body
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            body, headers["Content-Encoding"] = asset.gzipped, "gzip"
        return web.Response(body=body, content_type=asset.content_type, charset="utf-8", headers=headers)

    return handler


async def list_problems(request: web.Request) -> web.Response:
    problems = await request.app[GATEWAY_KEY].sessions.list_problems()
    return web.json_response({"problems": [_pb(p) for p in problems]})


async def create_session(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    body = await _body(request, "candidate_id", "problem_id")
    session, token, problem = await gateway.guarded.create_session(
        credential_of(request), body["candidate_id"], body["problem_id"]
    )
    return web.json_response(
        {"session": _pb(session_to_pb(session, problem=problem, clock=gateway.clock)), "session_token": token},
        status=201,
    )


async def get_session(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    session, messages = await gateway.guarded.get_session(credential_of(request), request.match_info["session_id"])
    problem = await gateway.sessions.problem(session.problem_id)
    return web.json_response(_pb(session_to_pb(session, messages, problem, gateway.clock)))


async def chat(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    body = await _body(request, "message")

    async def events() -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        core_events = gateway.guarded.chat(
            credential_of(request), request.match_info["session_id"], body["message"], _idempotency_key(request)
        )
        async with contextlib.aclosing(core_events):
            async for event in core_events:
                if isinstance(event, TurnStarted):
                    yield "turn_started", {"turn": event.turn}
                elif isinstance(event, ReplyDelta):
                    yield "delta", {"turn": event.turn, "text": event.text}
                elif isinstance(event, TurnCompleted):
                    yield (
                        "completed",
                        {
                            "turn": event.turn,
                            "guardrail": _pb(guardrail_to_pb(event.guardrail)),
                            "provider": event.provider,
                            "user_message": _pb(message_to_pb(event.user)),
                            "assistant_message": _pb(message_to_pb(event.assistant)),
                            "leak_cut": event.assistant.leak_cut,
                        },
                    )

    return await _sse(request, events())


async def submit(request: web.Request) -> web.StreamResponse:
    gateway = request.app[GATEWAY_KEY]
    body = await _body(request, "language", "code")

    async def events() -> AsyncGenerator[tuple[str, dict[str, Any]], None]:
        core_events = gateway.guarded.submit(
            credential_of(request),
            request.match_info["session_id"],
            body["language"],
            body["code"],
            _idempotency_key(request),
        )
        async with contextlib.aclosing(core_events):
            async for event in core_events:
                if isinstance(event, Progress):
                    yield (
                        "progress",
                        {"stage": event.stage, "done": event.done, "total": event.total, "message": event.message},
                    )
                else:
                    yield "report", _pb(event)

    return await _sse(request, events())


async def run_visible_tests(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    body = await _body(request, "language", "code")
    result = await gateway.guarded.run_visible_tests(
        credential_of(request), request.match_info["session_id"], body["language"], body["code"]
    )
    return web.json_response(_pb(result))


async def report(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    return web.json_response(
        _pb(await gateway.guarded.report(credential_of(request), request.match_info["session_id"]))
    )


class _BodyTimeout(InvalidArgument):
    """The body stopped short of its length: the client's doing, answered 408 (and the
    connection closed: what was left unread cannot start the next request)."""

    http_status = 408


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_http_app(gateway: Gateway, web_dir: Traversable = WEB_DIR) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY_BYTES)
    app[GATEWAY_KEY] = gateway
    app[ASSETS_KEY] = {name: load_asset(web_dir, name) for name in ("index.html", "review.html", "style.css", BUNDLE)}
    if app[ASSETS_KEY][BUNDLE] is None:
        log.warning("web page not built", extra={"detail": _BUNDLE_MISSING.format(path=str(web_dir.joinpath(BUNDLE)))})
    app.router.add_get("/", _serve("index.html"))
    app.router.add_get("/review", _serve("review.html"))
    app.router.add_get("/static/app.js", _serve(BUNDLE))
    app.router.add_get("/static/style.css", _serve("style.css"))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/problems", list_problems)
    app.router.add_post("/api/sessions", create_session)
    app.router.add_get("/api/sessions/{session_id}", get_session)
    app.router.add_post("/api/sessions/{session_id}/chat", chat)
    app.router.add_post("/api/sessions/{session_id}/submit", submit)
    app.router.add_post("/api/sessions/{session_id}/run", run_visible_tests)
    app.router.add_get("/api/sessions/{session_id}/report", report)
    from vibe.services.gateway.review_http import add_review_routes  # it imports this module's helpers

    add_review_routes(app)
    return app


class _Connection(RequestHandler):
    """One HTTP connection, with two things aiohttp's own does not do.

    A request aiohttp's parser refuses never reaches a route or the middleware: it was
    answered in plain text with the parser's internals ("Invalid method encountered", "Got
    more than 8190 bytes when reading: bytearray(b'/api/..."), 400 for a header or URL too
    long as for anything else. Now the JSON error model, with the status that says which.

    A connection with no request in a handler is closed after `request_timeout_s`: one
    whose head never completes (it was held for good: a few thousand such connections, a
    byte now and then, would use up the process's file descriptors) is answered 408 first,
    an idle kept-alive one is just closed (aiohttp keeps those 75 s). The middleware marks
    the time in a handler (`busy` / `idle`); a body is bounded in `json_object`."""

    request_timeout_s = DEFAULT_REQUEST_TIMEOUT_S

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._handling = 0
        self._heard = False  # bytes of a request arrived since the last one was handled
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self._handling:
            self._heard = True
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def busy(self) -> None:
        self._handling += 1
        self._heard = False
        self._disarm()

    def idle(self) -> None:
        self._handling -= 1
        if not self._handling:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = asyncio.get_running_loop().call_later(self.request_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        transport = self.transport
        if self._handling or transport is None or transport.is_closing():
            return
        if self._heard:
            body = json.dumps(
                {
                    "error": {
                        "code": "INVALID_ARGUMENT",
                        "message": f"the request's head did not arrive within {self.request_timeout_s:g} s; "
                        "send it whole",
                    }
                }
            ).encode()
            transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
        transport.close()

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs it; raises once an answer has started
        status, code, text = _protocol_error(status, exc, message or "")
        response = web.json_response({"error": {"code": code, "message": bounded(text)}}, status=status)
        response.force_close()  # what follows on the connection cannot be trusted to parse either
        return response


def _protocol_error(status: int, exc: BaseException | None, message: str) -> tuple[int, str, str]:
    if status >= 500:  # a handler's own failure (the middleware passes on only real bugs)
        return status, "INTERNAL", "the gateway failed to answer this request; it is a fault of ours, please retry"
    if isinstance(exc, http_exceptions.BadHttpMethod) and "HTTPS" not in message:
        return (
            501,
            "UNIMPLEMENTED",
            "the request's method is not one this server implements: the API takes GET and POST",
        )
    if isinstance(exc, http_exceptions.LineTooLong):
        # The parser gives the URL it was reading as a bytearray, a header's name or value as bytes.
        what, status = ("a header", 431) if isinstance(exc.args[0], bytes) else ("the URL", 414)
        return status, "INVALID_ARGUMENT", f"{what} of the request is over {exc.args[1]} bytes: check what was sent"
    if message == "Too many headers received":
        return 431, "INVALID_ARGUMENT", "the request has too many headers: send only the ones the API reads"
    # The parser's message is a reason, then the raw line and a caret under the fault: keep the reason.
    lines = [ln.strip().rstrip(":") for ln in message.splitlines()]
    reason = ": ".join(ln for ln in lines if ln and not ln.startswith(("b'", 'b"', "^")))
    return status, "INVALID_ARGUMENT", f"the request is not valid HTTP/1.1: {reason or 'it does not parse'}"


class _Server(web.Server):
    request_timeout_s = DEFAULT_REQUEST_TIMEOUT_S

    def __call__(self) -> RequestHandler:
        connection = _Connection(self, loop=self._loop, **self._kwargs)
        connection.request_timeout_s = self.request_timeout_s
        return connection


class _AppRunner(web.AppRunner):
    """An AppRunner whose connections are `_Connection`s."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The same server (handler, request factory, settings), with our connection class.
        ours = _Server(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )
        ours.request_timeout_s = self.app.get(REQUEST_TIMEOUT_KEY, DEFAULT_REQUEST_TIMEOUT_S)
        return ours


@contextlib.asynccontextmanager
async def serve_http(
    gateway: Gateway, addr: str, request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
) -> AsyncIterator[int]:
    """Serves the HTTP API on `addr` (port 0 picks one); yields the bound port."""
    host, _, port = addr.rpartition(":")
    app = make_http_app(gateway)
    app[REQUEST_TIMEOUT_KEY] = request_timeout_s
    # auto_decompress off: a compressed body is refused as such (json_object), never inflated
    # by aiohttp, whose failures on a corrupt or unknown encoding were a 500 or a plain-text 400.
    runner = _AppRunner(app, access_log=None, auto_decompress=False)
    await runner.setup()
    try:
        # reuse_port off for the same reason as the gRPC server: fail, don't share.
        site = web.TCPSite(runner, host.strip("[]"), int(port), reuse_port=False)
        try:
            await site.start()
        except OSError as exc:
            from vibe.platform.server import PortUnavailable

            raise PortUnavailable(f"gateway: cannot listen for HTTP on {addr}: {exc.strerror}") from exc
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("serving http", extra={"addr": addr, "port": bound})
        yield bound
    finally:
        await runner.cleanup()
