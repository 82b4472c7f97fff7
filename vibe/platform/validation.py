"""Input checked at the edge, before it reaches a store, a log line or another service.

Every string a caller sends is checked here, by the servicers and the HTTP API alike:
text that PostgreSQL cannot store or that makes no sense in its field (NUL, lone
surrogates, control characters) and malformed or oversized ids are INVALID_ARGUMENT
(HTTP 400) with a message naming the field, so nothing half-valid gets further.

The formats (README "Input formats"):

- ids (`session_id`, `problem_id`): 1-64 characters, letters, digits, `-` and `_`,
  starting with a letter or digit (the gateway issues UUIDs as session ids; the problem
  bank's ids are lowercase slugs);
- `candidate_id`: 1-200 characters of printable text (no control characters);
- `language`: 1-32 characters of `a-z 0-9 + # . _ -` (case-insensitive);
- `idempotency_key`: 1-128 printable ASCII characters without spaces;
- messages and code: any text but NUL, lone surrogates and control characters other
  than newline, carriage return and tab, within their size limits.

Also the guard of gRPC requests that do not even parse (a string field that is not
UTF-8): INVALID_ARGUMENT, where grpc would answer INTERNAL.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from google.protobuf.message import DecodeError

from vibe.platform.errors import InvalidArgument

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
LANGUAGE_RE = re.compile(r"[a-z0-9+#._-]{1,32}")
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,128}")
MAX_CANDIDATE_ID_CHARS = 200
_MULTILINE_CONTROLS = frozenset("\n\r\t")


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X}" + (f" ({unicodedata.name(ch)})" if unicodedata.name(ch, "") else "")


def check_text(name: str, value: str, *, multiline: bool = False) -> str:
    """`value` unchanged, or InvalidArgument naming the first character that cannot be
    in it: NUL, a lone surrogate (not UTF-8 at all), or a control character (newline,
    carriage return and tab allowed where `multiline`)."""
    for index, ch in enumerate(value):
        category = unicodedata.category(ch)
        if category == "Cs":
            raise InvalidArgument(f"{name} holds a lone surrogate ({_describe(ch)}) at {index}: send valid UTF-8 text")
        if category == "Cc" and not (multiline and ch in _MULTILINE_CONTROLS):
            allowed = " (only newline, carriage return and tab are allowed)" if multiline else ""
            raise InvalidArgument(f"{name} holds the control character {_describe(ch)} at {index}{allowed}")
    return value


def shown(value: str, limit: int = 80) -> str:
    """A caller's value quoted in an error message: its repr, cut to about `limit`
    characters (enough to recognise it; a megabyte quoted back helps nobody)."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def check_id(name: str, value: str) -> str:
    """An id (session, problem): required, 1-64 of letters, digits, '-', '_'."""
    value = value.strip()
    if not value:
        raise InvalidArgument(f"{name} is required")
    if not ID_RE.fullmatch(value):
        check_text(name, value)  # the more precise message when a character is the problem
        raise InvalidArgument(
            f"{name} {shown(value)} is malformed: 1-64 letters, digits, '-' or '_', starting with a letter or digit"
        )
    return value


def check_candidate_id(value: str) -> str:
    value = check_text("candidate_id", value.strip())
    if not value:
        raise InvalidArgument("candidate_id is required")
    if len(value) > MAX_CANDIDATE_ID_CHARS:
        raise InvalidArgument(f"candidate_id is {len(value)} characters; the limit is {MAX_CANDIDATE_ID_CHARS}")
    return value


def check_language(value: str, default: str = "") -> str:
    """The language name, lowercased; `default` when empty."""
    value = value.strip().lower() or default
    if not LANGUAGE_RE.fullmatch(value):
        check_text("language", value)
        raise InvalidArgument(f"language {shown(value, 40)} is malformed: 1-32 of a-z, 0-9, '+', '#', '.', '_', '-'")
    return value


def check_idempotency_key(value: str) -> str:
    """The key, or "" when none was sent."""
    if not value:
        return ""
    if not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InvalidArgument(
            "idempotency key is malformed: 1-128 printable ASCII characters without spaces (e.g. a UUID)"
        )
    return value


def is_blank(value: str) -> bool:
    """Nothing a person could read: whitespace and invisible format characters only (zero-width
    spaces, a BOM, bidi marks, soft hyphens: Unicode category Cf), which str.strip() keeps."""
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in value)


def check_body_text(name: str, value: str, max_chars: int | None = None, max_bytes: int | None = None) -> str:
    """A message or code: not blank, within its limit, no character that makes no sense."""
    if is_blank(value):
        what = "a question or a request for the tutor" if name == "message" else "the program to grade"
        raise InvalidArgument(f"{name} is empty; write {what}")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidArgument(f"{name} is {len(value)} characters; the limit is {max_chars}")
    check_text(name, value, multiline=True)
    if max_bytes is not None and (size := len(value.encode())) > max_bytes:
        raise InvalidArgument(f"{name} is {size} bytes; the limit is {max_bytes}")
    return value


class MalformedRequestInterceptor(grpc.aio.ServerInterceptor):
    """A request whose bytes do not parse (e.g. a string field that is not UTF-8) is
    answered INVALID_ARGUMENT: grpc itself would answer INTERNAL ("Exception
    deserializing request"), as if the fault were ours.

    The deserializer is wrapped to return a marker instead of raising, and the handler
    to abort on the marker, for the request-unary methods our services have."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if (
            handler is None
            or handler.request_streaming
            or details.method.startswith(("/grpc.health", "/grpc.reflection"))
        ):
            return handler
        deserialize = handler.request_deserializer
        if deserialize is None:
            return handler

        def tolerant(raw: bytes) -> Any:
            try:
                return deserialize(raw)
            except (DecodeError, UnicodeDecodeError, ValueError) as exc:
                return _Malformed(str(exc) or type(exc).__name__)

        # grpc's handlers are named tuples (typeshed describes only their fields).
        named: Any = handler
        if handler.unary_stream is not None:
            stream: Any = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                if isinstance(request, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                async for item in stream(request, context):
                    yield item

            return cast(
                "grpc.RpcMethodHandler[Any, Any]",
                named._replace(request_deserializer=tolerant, unary_stream=unary_stream),
            )
        if handler.unary_unary is not None:
            unary: Any = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                if isinstance(request, _Malformed):
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message)
                return await unary(request, context)

            return cast(
                "grpc.RpcMethodHandler[Any, Any]",
                named._replace(request_deserializer=tolerant, unary_unary=unary_unary),
            )
        return handler


class _Malformed:
    def __init__(self, detail: str):
        self.message = f"the request does not parse as its protobuf message ({detail}); string fields must be UTF-8"


MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_NESTING = re.compile(r"[\[\]{}]")


class UnsupportedCharset(InvalidArgument):
    """A body declared in a charset other than UTF-8, or compressed (HTTP 415)."""

    http_status = 415


class BodyTooLarge(InvalidArgument):
    """A body over the size bound (HTTP 413)."""

    http_status = 413


def check_content_encoding(encoding: str | None) -> None:
    """A body must come as it is (no Content-Encoding, or `identity`): a compressed one is
    refused (HTTP 415), never inflated, so that no body is larger inside than on the wire
    and no decoder's failure is ours to explain."""
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        raise UnsupportedCharset(
            f"the body's Content-Encoding {shown(encoding, 40)} is not supported: send the JSON uncompressed"
        )


def parse_json_object(
    raw: bytes, charset: str | None, max_bytes: int, max_depth: int = MAX_JSON_DEPTH, content_type: str = ""
) -> dict[str, Any]:
    """A JSON object from a request body: UTF-8 only (a declared other charset is
    refused, never looked up), at most `max_bytes`, nested at most `max_depth` deep (the
    depth is measured before parsing, so no input can exhaust the parser's recursion).
    `content_type` (as declared) is named when the body does not parse and it is not JSON's:
    the Content-Type is not required (curl -d sends a form's), but a form or a multipart
    body was only "Expecting value at line 1, column 1"."""
    if charset is not None and charset.strip().lower().replace("-", "").replace("_", "") != "utf8":
        raise UnsupportedCharset(f"the body's charset {shown(charset, 40)} is not supported: send UTF-8 JSON")
    if len(raw) > max_bytes:
        raise BodyTooLarge(f"the body is {len(raw)} bytes; the limit is {max_bytes}")
    if (other := _other_unicode(raw)) is not None:
        raise UnsupportedCharset(f"the request body is {other}, not UTF-8: send UTF-8 JSON")
    # A UTF-8 byte order mark is still UTF-8 (RFC 8259 section 8.1 lets a parser ignore it;
    # some Windows tools write one): it was "Unexpected UTF-8 BOM (decode using utf-8-sig)".
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument("the request body is not UTF-8: send a UTF-8 JSON object") from None
    depth = deepest = 0
    for bracket in _JSON_NESTING.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > max_depth:
        raise InvalidArgument(f"the request body is nested {deepest} levels deep; the limit is {max_depth}")
    if not text.strip():
        raise InvalidArgument("the request body is empty: send a JSON object")
    try:
        data = json.loads(text, parse_constant=_not_json, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:  # where it stops parsing, so the sender can find it
        sent_as = ""
        if content_type.strip() and "json" not in content_type.lower():
            sent_as = f" (it was sent as {shown(content_type, 60)}: send JSON, as Content-Type: application/json)"
        raise InvalidArgument(f"the request body is not JSON: {_json_error(exc)}{sent_as}") from None
    except _NotJson as exc:
        raise InvalidArgument(f"the request body is not JSON: {exc} is not a JSON number") from None
    except _DuplicateKey as exc:
        raise InvalidArgument(
            f"the request body gives the key {shown(str(exc), 40)} more than once in one object; send it once"
        ) from None
    except ValueError:  # Python refuses integers of more than 4300 digits
        raise InvalidArgument("the request body holds a number too long to read (over 4300 digits)") from None
    except RecursionError:  # not reached after the depth check above; never a 500 if it were
        raise InvalidArgument(f"the request body is nested too deep; the limit is {max_depth}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"the request body must be a JSON object, not {_JSON_KIND.get(type(data), 'a value')}")
    return data


class _NotJson(ValueError):
    pass


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different. json.loads keeps the last of two equal
    keys; another reader (a proxy, a log, a validator in front of us) may keep the first, so
    which one counts is not for us to guess (as with a query parameter given twice)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def _json_error(exc: json.JSONDecodeError) -> str:
    """json's reason and where, in words a sender can act on."""
    where = f"at line {exc.lineno}, column {exc.colno}"
    reason = exc.msg.removesuffix(" at")  # "Invalid control character at" read "... at at line 1"
    if reason.startswith("Invalid control character") and exc.pos < len(exc.doc):
        ch = exc.doc[exc.pos]
        return f"the control character {_describe(ch)} {where} is inside a string unescaped: write \\u{ord(ch):04x}"
    return f"{reason} {where}"


def _other_unicode(raw: bytes) -> str | None:
    """'UTF-16' or 'UTF-32' when the body is plainly one of them (a byte order mark, or the
    zero bytes ASCII has in them, RFC 4627 section 3), so the refusal can say so; else None."""
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    head = raw[:4]
    if head[:3] == b"\0\0\0" or head[1:4] == b"\0\0\0":
        return "UTF-32"
    if len(head) >= 2 and (head[0] == 0) != (head[1] == 0):
        return "UTF-16"
    return None


def _not_json(constant: str) -> Any:
    """json.loads takes NaN, Infinity and -Infinity, which JSON (RFC 8259) does not have."""
    raise _NotJson(constant)


_JSON_KIND = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}
