"""HTTP edge of the reviewer and admin APIs (the gRPC edge is review_servicer.py), and the
OpenAPI description of the whole HTTP API:

    GET  /api/openapi.json                       OpenAPI 3.1 (openapi.py)

    GET  /api/review/sessions                    ?candidate_id&problem_id&status&created_after&created_before
                                                 &page_size&page_token  -> {sessions, next_page_token}
    GET  /api/review/sessions/{id}/transcript    every turn with its evaluation, guardrail verdict, leak check
    GET  /api/review/sessions/{id}/export        the session as one JSON document (an attachment)
    POST /api/review/sessions/{id}/release       show the full report to the candidate
    GET  /api/keys                               the API keys (scope admin)
    POST /api/keys                               {"name", "scopes": [...]} -> the key, shown once
    POST /api/keys/{key_id}/revoke               revoke a key

Every route needs a key (`Authorization: Bearer vk_...` or `X-API-Key: vk_...`): of scope
`reports:read` under /api/review, `admin` under /api/keys.
"""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from vibe.platform.api_keys import Scope
from vibe.platform.errors import InvalidArgument
from vibe.platform.validation import shown
from vibe.services.gateway.http_api import GATEWAY_KEY, credential_of, json_object
from vibe.services.gateway.openapi import document
from vibe.services.gateway.review import ListFilter
from vibe.services.gateway.review_servicer import api_key_to_pb
from vibe.services.gateway.store import SessionStatus
from vibe_api.gateway.v1 import review_pb2


def pb_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


_STATUSES = {
    **{s.value: s for s in SessionStatus},
    **{f"SESSION_STATUS_{s.value.upper()}": s for s in SessionStatus},
}


def query_params(request: web.Request) -> dict[str, str]:
    """The query string's parameters, read strictly: percent-decoded as UTF-8 (aiohttp puts
    U+FFFD for bytes that are not, so a filter would silently match nothing), each given at
    most once (which of two would count is not for us to guess)."""
    try:
        pairs = urllib.parse.parse_qsl(
            request.rel_url.raw_query_string, keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError:
        raise InvalidArgument("the query string is not UTF-8: percent-encode the UTF-8 bytes of each value") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InvalidArgument(f"the query parameter {shown(name)} is given more than once; send it once")
        params[name] = value
    return params


_INTEGER = re.compile(r"-?[0-9]{1,12}")


def _time(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise InvalidArgument(f"{name}={shown(raw)} needs a time zone (e.g. Z or +09:00)")
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"{name}={shown(raw)} is not an RFC 3339 time (e.g. 2025-01-31T09:00:00Z)") from None


_FILTERS = ("candidate_id", "problem_id", "status", "created_after", "created_before", "page_size", "page_token")


def _filter(request: web.Request) -> ListFilter:
    params = query_params(request)
    # A misspelt filter (`candidate=ada`, `pagesize=5`) was ignored: the reviewer got every
    # session, or the default page, and took it for what was asked.
    for name in params:
        if name not in _FILTERS:
            raise InvalidArgument(
                f"unknown query parameter {shown(name, 40)}; the parameters are: {', '.join(_FILTERS)}"
            )
    status_raw = params.get("status", "").strip()
    if status_raw and status_raw not in _STATUSES:
        raise InvalidArgument(f"status={shown(status_raw)} must be one of: {', '.join(s.value for s in SessionStatus)}")
    size_raw = params.get("page_size", "").strip()
    if size_raw and not _INTEGER.fullmatch(size_raw):  # int() would also take '1_0', '+5', full-width digits
        raise InvalidArgument(f"page_size={shown(size_raw)} is not an integer (digits 0-9)")
    return ListFilter(
        candidate_id=params.get("candidate_id", "").strip() or None,
        problem_id=params.get("problem_id", "").strip() or None,
        status=_STATUSES.get(status_raw),
        created_after=_time(params, "created_after"),
        created_before=_time(params, "created_before"),
        page_size=int(size_raw) if size_raw else 0,
        page_token=params.get("page_token", ""),
    )


async def _reviewer(request: web.Request, operation: str) -> None:
    await request.app[GATEWAY_KEY].access.backend(credential_of(request), Scope.REPORTS_READ, operation)


async def list_sessions(request: web.Request) -> web.Response:
    await _reviewer(request, "ListSessions")
    page = await request.app[GATEWAY_KEY].review.list_sessions(_filter(request))
    return web.json_response(pb_json(page))


async def transcript(request: web.Request) -> web.Response:
    await _reviewer(request, "GetTranscript")
    return web.json_response(
        pb_json(await request.app[GATEWAY_KEY].review.transcript(request.match_info["session_id"]))
    )


async def export(request: web.Request) -> web.Response:
    await _reviewer(request, "ExportSession")
    document = await request.app[GATEWAY_KEY].review.export(request.match_info["session_id"])
    response = web.json_response(pb_json(document))
    response.headers["Content-Disposition"] = f'attachment; filename="session-{document.session.session_id}.json"'
    return response


async def release(request: web.Request) -> web.Response:
    await _reviewer(request, "ReleaseReport")
    return web.json_response(pb_json(await request.app[GATEWAY_KEY].review.release(request.match_info["session_id"])))


async def list_keys(request: web.Request) -> web.Response:
    keys = await request.app[GATEWAY_KEY].keys.list(credential_of(request))
    return web.json_response(pb_json(review_pb2.ListApiKeysResponse(keys=[api_key_to_pb(k) for k in keys])))


async def create_key(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY_KEY]
    cred = credential_of(request)
    await gateway.access.backend(cred, Scope.ADMIN, "CreateApiKey")  # before the body is read
    body = await json_object(request, "name", "scopes")
    name, scopes = body.get("name", ""), body.get("scopes", [])
    if not isinstance(name, str):
        raise InvalidArgument("name must be a string")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidArgument("scopes must be a list of strings")
    key, plaintext = await gateway.keys.create(cred, name, scopes)
    return web.json_response(
        pb_json(review_pb2.CreateApiKeyResponse(key=api_key_to_pb(key), api_key=plaintext)), status=201
    )


async def revoke_key(request: web.Request) -> web.Response:
    key = await request.app[GATEWAY_KEY].keys.revoke(credential_of(request), request.match_info["key_id"])
    return web.json_response(pb_json(review_pb2.RevokeApiKeyResponse(key=api_key_to_pb(key))))


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_review_routes(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/review/sessions", list_sessions)
    app.router.add_get("/api/review/sessions/{session_id}/transcript", transcript)
    app.router.add_get("/api/review/sessions/{session_id}/export", export)
    app.router.add_post("/api/review/sessions/{session_id}/release", release)
    app.router.add_get("/api/keys", list_keys)
    app.router.add_post("/api/keys", create_key)
    app.router.add_post("/api/keys/{key_id}/revoke", revoke_key)
