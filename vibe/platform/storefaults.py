"""Faults of our own stores (PostgreSQL, Redis), in one place: which errors they are, how
they are told to the caller, and how idempotent operations ride them out.

A store that is down, restarting, or that dropped a connection is never the caller's
fault: it is `Unavailable` (gRPC UNAVAILABLE, HTTP 503) with a retry hint, never
UNKNOWN or a 500. Operations that may safely run twice (reads, upserts, re-checks) are
retried here with a short bounded backoff, each attempt on a connection the pool hands
out afresh: a connection that broke is closed by asyncpg and replaced on the next
acquire, and after a connection fault every idle connection is expired too (a server
that restarted has dropped them all), so one broken connection never fails the next
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import ParamSpec, TypeVar

import asyncpg
import asyncpg.exceptions._base as asyncpg_base
import redis.exceptions as redis_errors

from vibe.platform.errors import Unavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# Bounded: an idempotent operation gets a few tries within about a second, then the
# caller is told to retry (a store that is down for longer is the caller's retry to ride).
RETRY_ATTEMPTS = 4
RETRY_BASE_S = 0.05
RETRY_MAX_S = 0.4

# PostgreSQL: connection classes (08), operator intervention (57: admin/crash shutdown,
# cannot connect now, query cancelled), insufficient resources (53: too many connections,
# out of memory, disk full), and transaction rollbacks a retry resolves (40: serialization
# failure, deadlock).
_PG_SERVER_FAULTS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
)
# asyncpg's client side: a connection that died under us ("connection was closed in the
# middle of operation", "cannot switch to state 11; another operation is in progress",
# "pool is closing"). Its InterfaceErrors that describe our own wrong input are not faults.
_PG_CLIENT_FAULTS: tuple[type[BaseException], ...] = (asyncpg.InterfaceError, asyncpg.InternalClientError)
_PG_OUR_MISTAKES: tuple[type[BaseException], ...] = (
    asyncpg_base.DataError,
    asyncpg_base.UnsupportedClientFeatureError,
    asyncpg_base.ClientConfigurationError,
)
# Redis: connection errors (refused, reset, LOADING after a restart: BusyLoadingError),
# timeouts, a replica that became read-only during a failover.
_REDIS_FAULTS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    redis_errors.MasterDownError,
)
# The socket layer under either driver: refused, reset, broken pipe, a name that does not
# resolve; and a connect that timed out (asyncpg raises the built-in TimeoutError).
_SOCKET_FAULTS: tuple[type[BaseException], ...] = (ConnectionError, socket.gaierror, TimeoutError)


def store_of(exc: BaseException) -> str | None:
    """ "PostgreSQL" or "Redis" when `exc` is a fault of that store (or of the network to
    it), None when it is anything else."""
    if isinstance(exc, _PG_OUR_MISTAKES):
        return None
    if isinstance(exc, _PG_SERVER_FAULTS + _PG_CLIENT_FAULTS):
        return "PostgreSQL"
    if isinstance(exc, _REDIS_FAULTS):
        return "Redis"
    if isinstance(exc, _SOCKET_FAULTS):
        return "a store"
    return None


def is_store_fault(exc: BaseException) -> bool:
    return store_of(exc) is not None


def unavailable(exc: BaseException) -> Unavailable:
    """The caller's view of a store fault: retryable, and not their doing."""
    store = store_of(exc) or "a store"
    return Unavailable(
        f"{store} is unavailable right now ({type(exc).__name__}); nothing was lost: please retry in a moment"
    )


def as_service_error(exc: BaseException) -> Unavailable | None:
    """`unavailable(exc)` for a store fault, None for anything else."""
    return unavailable(exc) if is_store_fault(exc) else None


async def retry_idempotent(
    operation: Callable[[], Awaitable[T]],
    what: str,
    *,
    pool: asyncpg.Pool | None = None,
    attempts: int = RETRY_ATTEMPTS,
) -> T:
    """Runs `operation` (which must be safe to run twice) up to `attempts` times while it
    fails with a store fault, backing off between tries; then raises `Unavailable`.
    With `pool`, a PostgreSQL fault also expires the pool's idle connections, so the
    next attempt connects afresh."""
    for attempt in range(1, attempts + 1):
        try:
            return await operation()
        except Exception as exc:
            store = store_of(exc)
            if store is None:
                raise
            if pool is not None and store == "PostgreSQL":
                await pool.expire_connections()
            if attempt == attempts:
                log.warning("store fault; giving up", extra={"operation": what, "error": repr(exc)})
                raise unavailable(exc) from exc
            delay = min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (attempt - 1)) * (0.5 + random.random())
            log.info(
                "store fault; retrying", extra={"operation": what, "attempt": attempt, "error": type(exc).__name__}
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


@contextlib.contextmanager
def hot_copy_optional(what: str) -> Iterator[None]:
    """Around Redis work on a copy of what PostgreSQL holds (a cache, a counter): when
    Redis is unreachable, the work is skipped with a log line instead of failing a
    request whose real work is done or can be done from PostgreSQL."""
    try:
        yield
    except Exception as exc:
        if store_of(exc) not in ("Redis", "a store"):
            raise
        log.warning("Redis unavailable; skipped", extra={"operation": what, "error": type(exc).__name__})


def idempotent(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Decorates a store method that is safe to run twice (a read, an upsert, a write
    fenced or keyed so that a repeat changes nothing) with `retry_idempotent`. The pool
    refreshed after a fault is the first argument when it is one (a function taking the
    pool), else the instance's `db` (a store's method)."""

    @functools.wraps(method)
    async def retried(*args: P.args, **kwargs: P.kwargs) -> T:
        owner = args[0] if args else None
        pool = owner if isinstance(owner, asyncpg.Pool) else getattr(owner, "db", None)
        return await retry_idempotent(
            lambda: method(*args, **kwargs),
            method.__qualname__,
            pool=pool if isinstance(pool, asyncpg.Pool) else None,
        )

    return retried
