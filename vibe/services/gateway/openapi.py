"""The OpenAPI 3.1 description of the gateway's HTTP API, served at GET /api/openapi.json.

Written by hand next to the routes (http_api.py, review_http.py); tests/test_openapi.py
checks that both list the same operations, and fuzzes the API from this document.
Response bodies of the candidate's and reviewer's calls are the proto3 JSON of the
messages in protos/vibe/gateway/v1/ (field names as in the protos)."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_OBJECT = {"type": "object"}  # a proto3 JSON message (see the protos)


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "invalid input (the message names the field)",
        401: "no credential, or an invalid or revoked API key",
        403: "a credential of the wrong kind, a key without the scope, or another session's token",
        404: "no such session, problem or key",
        409: "not now: no report yet, chat after submit or past the session's time limit, another chat of the "
        "session still streaming",
        429: "a limit was reached (the message names it)",
        503: "a backend service is unavailable; retry",
    }
    out: dict[str, Any] = {}
    for status in statuses:
        out[str(status)] = _json(_ERROR, text[status])
        if status == 429:
            out["429"]["headers"] = {
                "Retry-After": {
                    "description": "seconds after which a retry may pass (absent when waiting does not help)",
                    "schema": {"type": "integer"},
                }
            }
    return out


_SESSION_ID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
_KEY_ID = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
_BACKEND: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]  # a backend API key, in either header
_CANDIDATE: list[dict[str, list[str]]] = [{"bearer": []}]  # the session token
_READER: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]  # the session token, or a key with reports:read
_SSE = {
    "description": "server-sent events (`event: <name>` and `data: <JSON>`); an error after the first event is an "
    "`error` event with {code, message}",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def _body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": False,  # an unknown field is 400 (http_api.json_object)
                }
            }
        },
    }


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def document() -> dict[str, Any]:
    string = {"type": "string"}
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "operationId": "page",
                "summary": "The candidate's web page",
                "security": [],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": string}}}},
            }
        },
        "/review": {
            "get": {
                "operationId": "reviewPage",
                "summary": "The reviewers' web page (it asks for an API key with reports:read)",
                "security": [],
                "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": string}}}},
            }
        },
        "/static/app.js": {
            "get": {
                "operationId": "pageScript",
                "summary": "The pages' script (CodeMirror, markdown-it, DOMPurify and ours, bundled by make setup)",
                "security": [],
                "responses": {
                    "200": {"description": "JavaScript", "content": {"text/javascript": {"schema": string}}},
                    **_errors(503),
                },
            }
        },
        "/static/style.css": {
            "get": {
                "operationId": "pageStyle",
                "summary": "The pages' style sheet",
                "security": [],
                "responses": {"200": {"description": "CSS", "content": {"text/css": {"schema": string}}}},
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness of the HTTP server",
                "security": [],
                "responses": {"200": _json(_OBJECT, "{status: ok}")},
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json(_OBJECT, "OpenAPI 3.1")},
            }
        },
        "/api/problems": {
            "get": {
                "operationId": "listProblems",
                "security": [],
                "summary": "The problems, as candidates see them (statement, visible examples)",
                "responses": {"200": _json(_OBJECT, "{problems: [Problem]}"), **_errors(503)},
            }
        },
        "/api/sessions": {
            "post": {
                "operationId": "createSession",
                "security": _BACKEND,
                "summary": "Create a session (API key with sessions:create); the session token is returned once",
                "requestBody": _body({"candidate_id": string, "problem_id": string}, ["candidate_id", "problem_id"]),
                "responses": {
                    "201": _json(_OBJECT, "{session: Session, session_token}"),
                    **_errors(400, 401, 403, 404, 429, 503),
                },
            }
        },
        "/api/sessions/{session_id}": {
            "get": {
                "operationId": "getSession",
                "security": _READER,
                "parameters": [_SESSION_ID],
                "summary": "The session, its problem and messages (its token, or a key with reports:read)",
                "responses": {"200": _json(_OBJECT, "Session"), **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/api/sessions/{session_id}/chat": {
            "post": {
                "operationId": "chat",
                "security": _CANDIDATE,
                "parameters": [_SESSION_ID],
                "summary": "One chat turn (the session token): events turn_started, delta..., completed",
                "requestBody": _body({"message": string}, ["message"]),
                "responses": {"200": _SSE, **_errors(400, 401, 403, 404, 409, 429, 503)},
            }
        },
        "/api/sessions/{session_id}/submit": {
            "post": {
                "operationId": "submit",
                "security": _CANDIDATE,
                "parameters": [_SESSION_ID],
                "summary": "Submit the code (the session token): events progress..., report (the candidate's view)",
                "requestBody": _body({"language": string, "code": string}, ["code"]),
                "responses": {"200": _SSE, **_errors(400, 401, 403, 404, 409, 429, 503)},
            }
        },
        "/api/sessions/{session_id}/run": {
            "post": {
                "operationId": "runVisibleTests",
                "security": _CANDIDATE,
                "parameters": [_SESSION_ID],
                "summary": "Run the code against the visible tests (the session token); never graded or stored",
                "requestBody": _body({"language": string, "code": string}, ["code"]),
                "responses": {
                    "200": _json(_OBJECT, "RunVisibleTestsResponse (vibe.scoring.v1)"),
                    **_errors(400, 401, 403, 404, 409, 429, 503),
                },
            }
        },
        "/api/sessions/{session_id}/report": {
            "get": {
                "operationId": "getReport",
                "security": _READER,
                "parameters": [_SESSION_ID],
                "summary": "The report: the candidate's view (VIBE_CANDIDATE_REPORT) with the token, all of it with a key",
                "responses": {"200": _json(_OBJECT, "Report"), **_errors(400, 401, 403, 404, 409, 503)},
            }
        },
        "/api/review/sessions": {
            "get": {
                "operationId": "listSessions",
                "security": _BACKEND,
                "summary": "Sessions, newest first (key with reports:read)",
                "parameters": [
                    _query("candidate_id", "only this candidate's"),
                    _query("problem_id", "only this problem's"),
                    _query(
                        "status",
                        "active, submitted or graded",
                        {"type": "string", "enum": ["active", "submitted", "graded"]},
                    ),
                    _query("created_after", "RFC 3339 time, inclusive", {"type": "string", "format": "date-time"}),
                    _query("created_before", "RFC 3339 time, exclusive", {"type": "string", "format": "date-time"}),
                    _query("page_size", "1..200 (default 50)", {"type": "integer"}),
                    _query("page_token", "next_page_token of the previous page"),
                ],
                "responses": {
                    "200": _json(_OBJECT, "{sessions: [SessionSummary], next_page_token}"),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/api/review/sessions/{session_id}/transcript": {
            "get": {
                "operationId": "getTranscript",
                "security": _BACKEND,
                "parameters": [_SESSION_ID],
                "summary": "Every turn with its evaluation, guardrail verdict and leak check (key with reports:read)",
                "responses": {"200": _json(_OBJECT, "GetTranscriptResponse"), **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/api/review/sessions/{session_id}/export": {
            "get": {
                "operationId": "exportSession",
                "security": _BACKEND,
                "parameters": [_SESSION_ID],
                "summary": "The session as one JSON document (key with reports:read)",
                "responses": {"200": _json(_OBJECT, "ExportSessionResponse"), **_errors(400, 401, 403, 404, 503)},
            }
        },
        "/api/review/sessions/{session_id}/release": {
            "post": {
                "operationId": "releaseReport",
                "security": _BACKEND,
                "parameters": [_SESSION_ID],
                "summary": "Show the full report to the candidate (key with reports:read)",
                "responses": {"200": _json(_OBJECT, "{session_id, released_at}"), **_errors(400, 401, 403, 404, 409)},
            }
        },
        "/api/keys": {
            "get": {
                "operationId": "listApiKeys",
                "security": _BACKEND,
                "summary": "The API keys (key with admin)",
                "responses": {"200": _json(_OBJECT, "{keys: [ApiKey]}"), **_errors(401, 403)},
            },
            "post": {
                "operationId": "createApiKey",
                "security": _BACKEND,
                "summary": "Create a key (key with admin); the key is returned once",
                "requestBody": _body(
                    {
                        "name": string,
                        "scopes": {
                            "type": "array",
                            "items": {"type": "string", "enum": ["sessions:create", "reports:read", "admin"]},
                        },
                    },
                    ["name", "scopes"],
                ),
                "responses": {"201": _json(_OBJECT, "{key: ApiKey, api_key}"), **_errors(400, 401, 403)},
            },
        },
        "/api/keys/{key_id}/revoke": {
            "post": {
                "operationId": "revokeApiKey",
                "security": _BACKEND,
                "parameters": [_KEY_ID],
                "summary": "Revoke a key (key with admin): refused from the next call",
                "responses": {"200": _json(_OBJECT, "{key: ApiKey}"), **_errors(400, 401, 403, 404)},
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vibe coding test: gateway HTTP API",
            "version": "1",
            "description": "Candidates call with their session token; backends with an API key (vk_...). "
            "Errors are {error: {code, message}} with the gRPC code's name.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a backend API key (vk_<id>_<secret>) or a session token",
                },
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "a backend API key (vk_<id>_<secret>)",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": string, "message": string},
                        }
                    },
                }
            },
        },
    }
