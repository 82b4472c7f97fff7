"""Service-to-service authentication: every call between our services carries a signed,
short-lived token, and every internal service answers only the callers it declares.

Why tokens and not mutual TLS: orchestrators' gRPC probes (Kubernetes `grpc:` probes,
the compose health check) cannot present client certificates, and grpc.health.v1 must
stay open to them; a token in the call's metadata leaves the health service alone.

A token is `v2:<caller>:<audience>:<expiry>:<nonce>:<signature>`, sent as the
`x-vibe-service-token` metadata of each call (one client interceptor adds it), where
the signature is HMAC-SHA256, keyed with VIBE_SERVICE_SECRET, over the caller, the
audience service, the full method path, the expiry (a Unix time `TOKEN_TTL_S` ahead), a
random nonce and the SHA-256 of the request's bytes. The server interceptor recomputes it
for the method actually called and the request actually received, so a token is good for
one request of one method of one service for a minute: a token seen on the wire cannot
carry another body (GradeSession with other scores, a CheckCode of other code).

What it does not do: the secret is shared, so a service holding it could sign as another
(the caller check is least privilege between honest services, not a boundary against a
compromised one); and the transport is plaintext inside the deployment's network, so a
call seen on the wire can be sent again, unchanged, until its token expires (our
internal calls are idempotent or fenced, so a repeat changes nothing). Both are the
network's to prevent (a private network, a NetworkPolicy, a mesh with TLS).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError

METADATA_KEY = "x-vibe-service-token"
TOKEN_TTL_S = 60
# Clocks of two hosts may disagree a little: a token is accepted this much after its
# expiry, and refused when its expiry is further ahead than a fresh token's would be.
CLOCK_SKEW_S = 5
_VERSION = "v2"  # v2: the request's bytes are signed too
# Always open: orchestrators probe health without credentials; reflection describes the
# API, which the protos in the repository describe anyway.
OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
# The one shape `sign` produces, checked whole before any part is used: the parts come
# from whoever reached the port, so nothing is parsed that this pattern did not bound (an
# expiry of thousands of digits made int() raise, and the call end UNKNOWN).
_TOKEN_RE = re.compile(
    r"v2:(?P<caller>[a-z][a-z0-9_-]{0,31}):(?P<audience>[a-z][a-z0-9_-]{0,31}):(?P<expiry>[0-9]{1,12})"
    r":(?P<nonce>[0-9a-f]{1,64}):(?P<signature>[0-9a-f]{64})",
    re.ASCII,
)


def _signature(secret: bytes, caller: str, audience: str, method: str, expiry: int, nonce: str, body: bytes) -> str:
    digest = hashlib.sha256(body).hexdigest()
    message = "\n".join((_VERSION, caller, audience, method, str(expiry), nonce, digest)).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, caller: str, audience: str, method: str, body: bytes, now: float | None = None) -> str:
    """A token for one call of `method` (e.g. "/vibe.tutor.v1.Tutor/StreamReply") with the
    serialised request `body`."""
    expiry = int(now if now is not None else time.time()) + TOKEN_TTL_S
    nonce = secrets.token_hex(8)
    signature = _signature(secret, caller, audience, method, expiry, nonce, body)
    return ":".join((_VERSION, caller, audience, str(expiry), nonce, signature))


class ServiceAuthError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CallPolicy:
    """Who may call what on one service: `allowed[full method path]` are the callers."""

    audience: str  # this service's name, as callers address it: "tutor", "evaluator", "scoring"
    secret: bytes
    allowed: Mapping[str, frozenset[str]]

    @classmethod
    def declare(
        cls, audience: str, secret: str, service: ServiceDescriptor, callers: Mapping[str, Iterable[str]]
    ) -> CallPolicy:
        """The policy of `service`, whose every method must be listed in `callers` (method
        name -> caller names): a method added to the proto is refused to everyone until it
        is declared, and a name that is no method of the service is a mistake caught at start."""
        methods = {m.name for m in service.methods}
        unknown = set(callers) - methods
        if unknown:
            raise ValueError(f"{service.full_name} has no method(s) {sorted(unknown)}")
        return cls(
            audience=audience,
            secret=secret.encode(),
            allowed={f"/{service.full_name}/{name}": frozenset(who) for name, who in callers.items()},
        )

    def _parse(self, token: str | None) -> re.Match[str]:
        """The token's parts, if it has the one shape `sign` produces."""
        service = self.audience
        if not token:
            raise ServiceAuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the {service} service answers only the other services of this deployment: this call carries no "
                f"service token ({METADATA_KEY}); use the gateway's API instead",
            )
        parsed = _TOKEN_RE.fullmatch(token)
        if parsed is None:
            raise ServiceAuthError(
                grpc.StatusCode.UNAUTHENTICATED, f"malformed service token for the {service} service"
            )
        return parsed

    def check(self, method: str, token: str | None, body: bytes, now: float | None = None) -> str:
        """The caller, if `token` proves it may call `method` with the serialised request
        `body`; else ServiceAuthError."""
        now = time.time() if now is None else now
        service = self.audience
        parsed = self._parse(token)
        caller, audience, nonce, signature = parsed["caller"], parsed["audience"], parsed["nonce"], parsed["signature"]
        expiry = int(parsed["expiry"])
        expected = _signature(self.secret, caller, audience, method, expiry, nonce, body)
        if not hmac.compare_digest(signature, expected):
            raise ServiceAuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"invalid service token for {method}: the signature does not match the call and its request "
                "(do all services have the same VIBE_SERVICE_SECRET?)",
            )
        if audience != service:
            raise ServiceAuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"this service token is for the {audience} service, not the {service} service",
            )
        if now > expiry + CLOCK_SKEW_S:
            raise ServiceAuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"expired service token ({now - expiry:.0f} s past its expiry): check the clocks of {caller} and {service}",
            )
        if expiry > now + TOKEN_TTL_S + CLOCK_SKEW_S:
            raise ServiceAuthError(
                grpc.StatusCode.UNAUTHENTICATED,
                f"service token valid too far ahead ({expiry - now:.0f} s; at most {TOKEN_TTL_S} s)",
            )
        callers = self.allowed.get(method)
        if callers is None or caller not in callers:
            who = ", ".join(sorted(callers)) if callers else "no caller"
            raise ServiceAuthError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method} of the {service} service answers only: {who} (this call comes from {caller})",
            )
        return caller


def _metadata_value(metadata: Iterable[tuple[str, str | bytes]] | None, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode(errors="replace")
    return None


class ServiceAuthServerInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call but health and reflection that does not carry a valid token of a
    caller the policy allows for the method."""

    def __init__(self, policy: CallPolicy):
        self.policy = policy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_PREFIXES):
            return handler
        token = _metadata_value(details.invocation_metadata, METADATA_KEY)
        try:
            self.policy._parse(token)  # refused before the request is read when there is no token at all
        except ServiceAuthError as exc:
            return _refusal(handler, exc)
        if handler.request_streaming or handler.request_deserializer is None:
            # No single request to sign: none of our methods streams its requests.
            return _refusal(
                handler, ServiceAuthError(grpc.StatusCode.UNIMPLEMENTED, "streamed requests are not signed")
            )
        return _verified(handler, self.policy, details.method, token)


class _Raw:
    """A request's bytes, kept for the signature check before they are parsed."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


def _verified(
    handler: grpc.RpcMethodHandler[Any, Any], policy: CallPolicy, method: str, token: str | None
) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` that checks the token against the request's bytes, then parses them."""
    deserialize: Any = handler.request_deserializer

    async def request_of(raw: _Raw, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            policy.check(method, token, raw.data)
        except ServiceAuthError as exc:
            await context.abort(exc.code, exc.message)
        try:
            return deserialize(raw.data)
        except (DecodeError, UnicodeDecodeError, ValueError) as exc:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request does not parse as its protobuf message ({exc or type(exc).__name__}); "
                "string fields must be UTF-8",
            )

    named: Any = handler
    if handler.unary_stream is not None:
        stream: Any = handler.unary_stream

        async def unary_stream(raw: _Raw, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            request = await request_of(raw, context)
            async for item in stream(request, context):
                yield item

        replaced = named._replace(request_deserializer=_Raw, unary_stream=unary_stream)
    else:
        unary: Any = handler.unary_unary

        async def unary_unary(raw: _Raw, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await unary(await request_of(raw, context), context)

        replaced = named._replace(request_deserializer=_Raw, unary_unary=unary_unary)
    return cast("grpc.RpcMethodHandler[Any, Any]", replaced)


def _refusal(handler: grpc.RpcMethodHandler[Any, Any], exc: ServiceAuthError) -> grpc.RpcMethodHandler[Any, Any]:
    """`handler` with its behaviour replaced by the refusal (same shape, so grpc still
    (de)serialises as the method expects)."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(exc.code, exc.message)

    # Streaming handlers stay async generators: wrappers around them (the metrics
    # interceptor) iterate them.
    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        yield await refuse(request, context)  # never yields: refuse raises

    # grpc's handlers are named tuples (typeshed describes only their fields).
    replaced: Any = handler
    if handler.unary_unary:
        replaced = replaced._replace(unary_unary=refuse)
    elif handler.unary_stream:
        replaced = replaced._replace(unary_stream=refuse_stream)
    elif handler.stream_unary:
        replaced = replaced._replace(stream_unary=refuse)
    else:
        replaced = replaced._replace(stream_stream=refuse_stream)
    return cast("grpc.RpcMethodHandler[Any, Any]", replaced)


class ServiceAuthClientInterceptor:
    """Signs every call on a channel to the `audience` service as `caller`.

    grpc.aio files a channel's interceptor under the first of the four call kinds it
    implements, so this one signer is installed as four adapters (`for_channel`)."""

    def __init__(self, secret: str, caller: str, audience: str):
        self.secret = secret.encode()
        self.caller = caller
        self.audience = audience

    def details(self, details: grpc.aio.ClientCallDetails, request: Any) -> grpc.aio.ClientCallDetails:
        raw: Any = details.method  # bytes in grpc.aio's calls, str in some wrappers
        method = raw.decode() if isinstance(raw, bytes) else str(raw)
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        # The bytes grpc will send: our stubs serialise with the message's SerializeToString.
        body = request.SerializeToString()
        metadata.add(METADATA_KEY, sign(self.secret, self.caller, self.audience, method, body))
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    def for_channel(self) -> list[grpc.aio.ClientInterceptor]:
        # Request-streaming calls are not signed (a token signs one request): none of our
        # internal methods streams its requests, and the services refuse them.
        return [_UnaryUnary(self), _UnaryStream(self)]


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, signer: ServiceAuthClientInterceptor):
        self.signer = signer

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self.signer.details(client_call_details, request), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, signer: ServiceAuthClientInterceptor):
        self.signer = signer

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self.signer.details(client_call_details, request), request)


def service_channel(addr: str, secret: str, caller: str, audience: str, **options: Any) -> grpc.aio.Channel:
    """A channel to an internal service whose every call is signed as `caller`."""
    return grpc.aio.insecure_channel(
        addr, interceptors=ServiceAuthClientInterceptor(secret, caller, audience).for_channel(), **options
    )
