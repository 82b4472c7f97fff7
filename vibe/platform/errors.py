"""Domain errors raised by service cores, and their translation at the edges.

Cores raise `ServiceError`s with a message a person can act on; servicers turn them
into gRPC status codes and the HTTP API into status codes, in one place each.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc

log = logging.getLogger(__name__)

# A status message travels as gRPC's `grpc-message` trailer, percent-encoded (up to 3 bytes
# per byte), and clients refuse metadata beyond 8-16 KiB: a longer message would reach the
# caller as its own transport's RESOURCE_EXHAUSTED instead of our answer. Nothing a person
# acts on needs more; quote a caller's value with validation.shown().
MAX_MESSAGE_BYTES = 2048


def bounded(message: str) -> str:
    """`message`, cut to MAX_MESSAGE_BYTES of UTF-8 (ending in an ellipsis when cut)."""
    raw = message.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_MESSAGE_BYTES:
        return message
    return raw[: MAX_MESSAGE_BYTES - 3].decode("utf-8", "ignore") + "…"


class ServiceError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    http_status: int = 500

    def __init__(self, message: str):
        message = bounded(message)
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    code, http_status = grpc.StatusCode.INVALID_ARGUMENT, 400


class NotFound(ServiceError):
    code, http_status = grpc.StatusCode.NOT_FOUND, 404


class FailedPrecondition(ServiceError):
    code, http_status = grpc.StatusCode.FAILED_PRECONDITION, 409


class Aborted(ServiceError):
    """A concurrency conflict; the caller may retry shortly."""

    code, http_status = grpc.StatusCode.ABORTED, 409


class Unauthenticated(ServiceError):
    code, http_status = grpc.StatusCode.UNAUTHENTICATED, 401


class PermissionDenied(ServiceError):
    code, http_status = grpc.StatusCode.PERMISSION_DENIED, 403


class ResourceExhausted(ServiceError):
    """A limit was reached; the message names it. `retry_after_s`: when a retry may pass
    (None when waiting does not help, e.g. a session's last turn)."""

    code, http_status = grpc.StatusCode.RESOURCE_EXHAUSTED, 429

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def retry_after_header(self) -> str | None:
        """Whole seconds, rounded up, as HTTP's Retry-After and the gRPC `retry-after` trailer."""
        return None if self.retry_after_s is None else str(max(1, math.ceil(self.retry_after_s)))


class Unavailable(ServiceError):
    code, http_status = grpc.StatusCode.UNAVAILABLE, 503


class DeadlineExceeded(ServiceError):
    code, http_status = grpc.StatusCode.DEADLINE_EXCEEDED, 504


_HTTP_BY_CODE = {cls.code: cls.http_status for cls in ServiceError.__subclasses__()}


# What an internal service answers about the caller itself, which is always one of our
# services: never the end caller's doing.
_REFUSED_OUR_CALL = frozenset(
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNIMPLEMENTED}
)


def from_rpc_error(exc: grpc.aio.AioRpcError, upstream: str) -> ServiceError:
    """An error from a service we called, restated for our own caller."""
    code = exc.code()
    if code in _REFUSED_OUR_CALL:
        # The upstream refused *our* call (its service token, or a method it lacks: a
        # VIBE_SERVICE_SECRET or a version that differs between services). Passed on, the
        # caller would read a 401/403 about its own credential, and the message would show
        # our internals: it is our fault, for operators to fix, and retryable (a rolling
        # change of the secret or of a version settles).
        log.error(
            "an internal service refused the call",
            extra={"upstream": upstream, "code": code.name, "detail": exc.details()},
        )
        err: ServiceError = Unavailable(f"the {upstream} service is unavailable right now; please retry")
    elif code == grpc.StatusCode.UNAVAILABLE:
        err = Unavailable(f"the {upstream} service is unavailable right now; please retry")
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        err = DeadlineExceeded(f"the {upstream} service did not answer in time; please retry")
    else:
        err = ServiceError(f"{upstream}: {exc.details()}")
        err.code = code
        err.http_status = _HTTP_BY_CODE.get(code, 500)
    return err


@contextlib.asynccontextmanager
async def grpc_errors(context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """Wrap a handler body: domain errors become the matching gRPC status."""
    try:
        yield
    except ServiceError as exc:
        if isinstance(exc, ResourceExhausted) and exc.retry_after_header is not None:
            context.set_trailing_metadata((("retry-after", exc.retry_after_header),))
        await _abort(context, exc.code, exc.message)
    except grpc.aio.AbortError:
        raise
    except grpc.aio.AioRpcError as exc:  # an upstream call failed and nobody translated it
        err = from_rpc_error(exc, "upstream")
        await _abort(context, err.code, err.message)
    except Exception as exc:
        fault = translate(exc)
        if fault is None:
            raise
        await _abort(context, fault.code, fault.message)


def translate(exc: BaseException) -> ServiceError | None:
    """What an exception that is no ServiceError means to the caller: a fault of our own
    stores is UNAVAILABLE (retryable, never their fault); None for a real bug."""
    # Imported here: storefaults raises the errors defined in this module.
    from vibe.platform.storefaults import as_service_error

    fault = as_service_error(exc)
    if fault is not None:
        log.warning("store fault answered UNAVAILABLE", extra={"error": repr(exc)})
    return fault


async def _abort(context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, message: str) -> NoReturn:
    await context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises
