"""The gRPC server runner shared by all four services.

Each service describes itself as a `ServiceApp`: an async context manager that opens
its resources (pools, clients, workers) and yields the servicers to register. This
module does the rest the same way everywhere: health and reflection, no port
sharing, a clear error when the port is taken, and on SIGTERM/SIGINT health flips
to NOT_SERVING before a graceful stop.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from vibe.platform.config import CommonSettings, ConfigError
from vibe.platform.logs import setup_logging
from vibe.platform.metrics import RpcMetricsInterceptor
from vibe.platform.service_auth import CallPolicy, ServiceAuthServerInterceptor
from vibe.platform.telemetry import setup_telemetry, shutdown_telemetry
from vibe.platform.validation import MalformedRequestInterceptor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    """One gRPC service implemented by a servicer."""

    full_name: str  # e.g. "vibe.tutor.v1.Tutor"
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


class StartupRefused(RuntimeError):
    """The service cannot run as configured on this machine (the message says why and what to
    do): it exits with status 2 instead of serving with less than it was asked for."""


class Readiness:
    """A service's own view of whether it can do its work (e.g. its code sandbox works), which
    the server mirrors into grpc.health.v1: NOT_SERVING while it cannot."""

    def __init__(self) -> None:
        self.serving = True
        self.reason = ""
        self._listeners: list[Callable[[bool], None]] = []

    def set(self, serving: bool, reason: str = "") -> None:
        if serving == self.serving:
            return
        self.serving, self.reason = serving, reason
        log.warning("readiness changed", extra={"serving": serving, "reason": reason})
        for listener in self._listeners:
            listener(serving)

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        self._listeners.append(listener)


@dataclass
class ServiceBundle:
    """What a running service offers: where to listen and what to serve."""

    name: str
    addr: str
    registrations: Sequence[Registration]
    grace_s: float = 5.0
    on_stopping: list[Callable[[], Any]] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)  # other listeners, e.g. {"http": "127.0.0.1:8080"}
    readiness: Readiness | None = None
    # Who may call which method (vibe/platform/service_auth.py); None: anyone (the gateway,
    # whose callers are authenticated by its own API keys and session tokens).
    call_policy: CallPolicy | None = None
    max_connection_age_s: float = 0.0  # 0: connections are never closed for their age


#: After a connection's maximum age, how long calls still running on it may go on: longer than any
#: call takes (a submit is bounded by VIBE_SUBMIT_GUARD_TIMEOUT_S plus the grading), so no stream
#: is ever cut for its connection's age.
MAX_CONNECTION_AGE_GRACE_S = 900.0


def serving(name: str, settings: ServiceSettings, *registrations: Registration, **extra: Any) -> ServiceBundle:
    """The bundle of a service that serves its gRPC services on its configured address,
    with the configured shutdown grace (`extra`: on_stopping, endpoints, call_policy)."""
    return ServiceBundle(
        name=name,
        addr=settings.addr,
        registrations=list(registrations),
        grace_s=settings.common.shutdown_grace_s,
        max_connection_age_s=settings.common.grpc_max_connection_age_s,
        **extra,
    )


class PortUnavailable(RuntimeError):
    """The listening address cannot be bound (usually: another instance has it)."""


class GrpcServer:
    def __init__(self, bundle: ServiceBundle):
        self.bundle = bundle
        self.health = health.aio.HealthServicer()
        # No SO_REUSEPORT: a second instance on the same port must fail, not share
        # the traffic (the prototype's two servers took each other's requests).
        options: list[tuple[str, int]] = [("grpc.so_reuseport", 0)]
        if bundle.max_connection_age_s > 0:
            # Clients then reconnect and resolve again: new replicas get their share of the calls.
            options += [
                ("grpc.max_connection_age_ms", int(bundle.max_connection_age_s * 1000)),
                ("grpc.max_connection_age_grace_ms", int(MAX_CONNECTION_AGE_GRACE_S * 1000)),
            ]
        interceptors: list[grpc.aio.ServerInterceptor] = [RpcMetricsInterceptor(), MalformedRequestInterceptor()]
        if bundle.call_policy is not None:
            interceptors.append(ServiceAuthServerInterceptor(bundle.call_policy))
        self.server = grpc.aio.server(options=options, interceptors=interceptors)
        self.port = 0
        self._stopping = False
        self._tasks: set[asyncio.Future[None]] = set()

    async def start(self) -> int:
        """Binds and starts serving; returns the bound port (useful with port 0)."""
        names = [r.full_name for r in self.bundle.registrations]
        for r in self.bundle.registrations:
            r.add_to_server(r.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self.server,
        )
        try:
            self.port = self.server.add_insecure_port(self.bundle.addr)
        except RuntimeError as exc:
            raise PortUnavailable(
                f"{self.bundle.name}: cannot listen on {self.bundle.addr}: the address is already in use "
                f"(is another instance running?) or not available on this host"
            ) from exc
        if self.port == 0:  # older grpcio reports failure this way
            raise PortUnavailable(f"{self.bundle.name}: cannot listen on {self.bundle.addr}")
        await self.server.start()
        ready = self.bundle.readiness is None or self.bundle.readiness.serving
        for name in ["", *names]:
            await self.health.set(
                name, health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
            )
        if self.bundle.readiness is not None:
            self.bundle.readiness.subscribe(lambda serving: self._mirror(serving, ["", *names]))
        log.info("serving", extra={"service": self.bundle.name, "addr": self.bundle.addr, "port": self.port})
        return self.port

    def _mirror(self, serving: bool, names: list[str]) -> None:
        if self._stopping:
            return
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING

        async def apply() -> None:
            for name in names:
                await self.health.set(name, status)

        task = asyncio.ensure_future(apply())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING first, so load balancers stop sending; then drain and stop."""
        self._stopping = True
        await self.health.enter_graceful_shutdown()
        for callback in self.bundle.on_stopping:
            result = callback()
            if asyncio.iscoroutine(result):
                await result
        await self.server.stop(self.bundle.grace_s if grace_s is None else grace_s)


ServiceApp = Callable[[], AbstractAsyncContextManager[ServiceBundle]]


async def serve_until_signalled(app: ServiceApp) -> None:
    """Runs one service until SIGTERM or SIGINT, then shuts it down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app() as bundle:
        server = GrpcServer(bundle)
        await server.start()
        # What start-up allocated (modules, stubs, the judge's tables) lives as long as the
        # process: out of the collector's sight, so a full collection under load does not
        # walk it again and again (gc.freeze, as CPython's documentation advises for servers).
        gc.collect()
        gc.freeze()
        await stop.wait()
        log.info("stopping", extra={"service": bundle.name, "grace_s": bundle.grace_s})
        await server.stop()
    log.info("stopped", extra={"service": bundle.name})


class ServiceSettings(Protocol):
    """What the runner needs of a service's settings object."""

    @property
    def common(self) -> CommonSettings: ...

    @property
    def addr(self) -> str: ...


S = TypeVar("S", bound=ServiceSettings)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop a service runs on (VIBE_EVENT_LOOP): uvloop's costs less CPU per
    request than asyncio's own (libuv does the socket work in C); None = asyncio's."""
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(
    service: str, load_settings: Callable[[], S], app: Callable[[S], AbstractAsyncContextManager[ServiceBundle]]
) -> None:
    """Entry point of `python -m vibe.services.<name>`: settings, logging, telemetry,
    serve until signalled.

    Exits with status 2 and the reason on stderr when the configuration is wrong or
    the port is taken, so a supervisor shows why instead of a traceback.
    """
    try:
        settings = load_settings()
        setup_logging(service, settings.common.log_level)
        # Before any server or channel exists: the gRPC instrumentors patch their creation.
        setup_telemetry(service, settings.common)
        with asyncio.Runner(loop_factory=loop_factory(settings.common.event_loop)) as runner:
            runner.run(serve_until_signalled(lambda: app(settings)))
    except (ConfigError, PortUnavailable, StartupRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        shutdown_telemetry()
