"""Start the four services together: in this process (tests, on ephemeral ports) or
as four child processes (`vibe up`, `vibe demo`)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from vibe.platform.api_keys import ALL_SCOPES, new_key, settings_entry
from vibe.platform.config import EvaluatorSettings, GatewaySettings, ScoringSettings, TutorSettings
from vibe.platform.healthcheck import wait_serving
from vibe.platform.server import GrpcServer, ServiceBundle

SERVICES = ("scoring", "tutor", "evaluator", "gateway")
MODULES = {
    "gateway": "vibe.services.gateway",
    "tutor": "vibe.services.tutor",
    "evaluator": "vibe.services.evaluator",
    "scoring": "vibe.services.scoring",
}


# The editable install's import finder comes before sys.path: drop it so `code_dir` wins.
_RUN_FROM = (
    "import runpy, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(type(f), '__module__', '')]; "
    "sys.path.insert(0, {code_dir!r}); runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
)


@dataclass
class StackAddrs:
    gateway: str
    tutor: str
    evaluator: str
    scoring: str
    http: str = ""  # the gateway's web page and HTTP API, when enabled
    api_key: str = ""  # a key the launcher generated or was given (VIBE_API_KEY), for its clients
    pids: dict[str, int] = field(default_factory=dict)  # process_stack: each service's process id

    def env(self) -> dict[str, str]:
        return {
            "GATEWAY_ADDR": self.gateway,
            "TUTOR_ADDR": self.tutor,
            "EVALUATOR_ADDR": self.evaluator,
            "SCORING_ADDR": self.scoring,
        }


def with_dev_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env`, plus what a development stack generates when it is not set, so that `make
    demo` needs no setup (a deployment sets its own, see the README):

    - a random VIBE_SERVICE_SECRET shared by the four services;
    - without VIBE_API_KEYS, a development API key with every scope: its hash goes to the
      gateway in VIBE_API_KEYS, the key itself to the launcher's clients in VIBE_API_KEY.
    """
    env = dict(env)
    if not env.get("VIBE_SERVICE_SECRET") and not env.get("VIBE_SERVICE_SECRET_FILE"):
        env["VIBE_SERVICE_SECRET"] = secrets.token_hex(32)
    if not env.get("VIBE_API_KEYS", "").strip():
        key_id, secret, plaintext = new_key()
        env["VIBE_API_KEYS"] = settings_entry("development", key_id, secret, ALL_SCOPES)
        env["VIBE_API_KEY"] = plaintext
    return env


@contextlib.asynccontextmanager
async def in_process_stack(env: Mapping[str, str]) -> AsyncIterator[StackAddrs]:
    """All four services in this event loop, each on its own real gRPC port.

    Addresses in `env` may use port 0; the gateway is started last, with the ports
    the others actually bound.
    """
    from vibe.services.evaluator.app import evaluator_app
    from vibe.services.gateway.app import gateway_app
    from vibe.services.scoring.app import scoring_app
    from vibe.services.tutor.app import tutor_app

    env = with_dev_secrets(env)
    async with contextlib.AsyncExitStack() as stack:
        bound: dict[str, str] = {}
        apps: list[tuple[str, Callable[[], AbstractAsyncContextManager[ServiceBundle]]]] = [
            ("scoring", lambda: scoring_app(ScoringSettings.from_env(env))),
            ("tutor", lambda: tutor_app(TutorSettings.from_env(env))),
            ("evaluator", lambda: evaluator_app(EvaluatorSettings.from_env(env))),
        ]
        for name, app in apps:
            bundle = await stack.enter_async_context(app())
            server = GrpcServer(bundle)
            port = await server.start()
            stack.push_async_callback(server.stop, 0.5)
            bound[name] = f"127.0.0.1:{port}"
            env[f"{name.upper()}_ADDR"] = bound[name]
        bundle = await stack.enter_async_context(gateway_app(GatewaySettings.from_env(env)))
        server = GrpcServer(bundle)
        port = await server.start()
        stack.push_async_callback(server.stop, 0.5)
        bound["gateway"] = f"127.0.0.1:{port}"
        yield StackAddrs(
            gateway=bound["gateway"],
            tutor=bound["tutor"],
            evaluator=bound["evaluator"],
            scoring=bound["scoring"],
            http=bundle.endpoints.get("http", ""),
            api_key=env.get("VIBE_API_KEY", ""),
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _all_serving(addrs: StackAddrs, timeout_s: float) -> None:
    await asyncio.gather(*(wait_serving(getattr(addrs, name), timeout_s) for name in SERVICES))


@contextlib.asynccontextmanager
async def process_stack(
    env: Mapping[str, str],
    addrs: StackAddrs | None = None,
    quiet: bool = False,
    start_timeout_s: float = 60,
    per_service: Mapping[str, Mapping[str, str]] | None = None,
    code_dir: str = "",
) -> AsyncIterator[StackAddrs]:
    """The four services as child processes; SIGTERM to each on the way out.

    `per_service` adds settings to one service's environment only (a benchmark's tutor on
    another LLM provider, say). `code_dir`: run the services from that source tree (e.g. an
    export of another branch, with its generated stubs) instead of the installed one: a
    benchmark's baseline."""
    if addrs is None:
        gateway, tutor, evaluator, scoring = (f"127.0.0.1:{free_port()}" for _ in range(4))
        addrs = StackAddrs(gateway, tutor, evaluator, scoring)
    child_env = {**with_dev_secrets(env), **addrs.env()}
    addrs.api_key = child_env.get("VIBE_API_KEY", "")
    procs: dict[str, asyncio.subprocess.Process] = {}
    try:
        for name in SERVICES:
            procs[name] = await asyncio.create_subprocess_exec(
                sys.executable,
                *(
                    ("-c", _RUN_FROM.format(code_dir=code_dir, module=MODULES[name]))
                    if code_dir
                    else ("-m", MODULES[name])
                ),
                env={**child_env, **(per_service or {}).get(name, {})},
                stdout=asyncio.subprocess.DEVNULL if quiet else None,
                stderr=asyncio.subprocess.DEVNULL if quiet else None,
            )
        ready = asyncio.create_task(_all_serving(addrs, start_timeout_s))
        exits = [asyncio.create_task(p.wait()) for p in procs.values()]
        done, _ = await asyncio.wait([ready, *exits], return_when=asyncio.FIRST_COMPLETED)
        for task in exits:
            task.cancel()
        if ready not in done:
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
            dead = [name for name, p in procs.items() if p.returncode is not None]
            raise RuntimeError(f"service(s) exited during start-up: {', '.join(dead)} (see their errors above)")
        ready.result()
        addrs.pids = {name: proc.pid for name, proc in procs.items()}
        yield addrs
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
