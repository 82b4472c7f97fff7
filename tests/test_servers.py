"""What every service does the same way: health, reflection, refusing a taken port,
graceful stop on SIGTERM, and failing fast on bad configuration."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.stack import Stack
from vibe.platform.config import ScoringSettings
from vibe.platform.healthcheck import wait_serving
from vibe.platform.server import GrpcServer
from vibe_dev.stack import free_port

SERVICE_NAMES = {
    "gateway": "vibe.gateway.v1.Gateway",
    "tutor": "vibe.tutor.v1.Tutor",
    "evaluator": "vibe.evaluator.v1.Evaluator",
    "scoring": "vibe.scoring.v1.Scoring",
}
MODULES = {
    "gateway": "vibe.services.gateway",
    "tutor": "vibe.services.tutor",
    "evaluator": "vibe.services.evaluator",
    "scoring": "vibe.services.scoring",
}


async def test_health_and_reflection_on_every_service(stack: Stack) -> None:
    for name, full_name in SERVICE_NAMES.items():
        async with grpc.aio.insecure_channel(getattr(stack.addrs, name)) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lists no methods
            for service in ("", full_name):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, (name, service)
            reflection: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]  # typeshed: sync channels only
            responses = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            listed = {s.name async for r in responses for s in r.list_services_response.service}
            assert {full_name, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= listed, name


async def test_stopping_flips_health_to_not_serving_first(isolated_env: dict[str, str]) -> None:
    from vibe.services.scoring.app import scoring_app

    async with scoring_app(ScoringSettings.from_env(isolated_env)) as bundle:
        server = GrpcServer(bundle)
        port = await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lists no methods
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
            stopping = asyncio.create_task(server.stop(grace_s=1.0))
            assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
            await stopping


@pytest.mark.parametrize("max_age", ["1", "0"])
async def test_connections_are_closed_at_their_maximum_age_calls_in_flight_go_on(
    isolated_env: dict[str, str], max_age: str
) -> None:
    """With VIBE_GRPC_MAX_CONNECTION_AGE_S the server ends each connection after that age, so a
    client reconnects (and resolves the name again, finding replicas added since): its channel
    leaves READY. A stream open across that moment goes on. Without it (0) the connection stays."""
    from vibe.platform.config import TutorSettings
    from vibe.services.tutor.app import tutor_app

    env = {**isolated_env, "TUTOR_ADDR": "127.0.0.1:0", "VIBE_GRPC_MAX_CONNECTION_AGE_S": max_age}
    async with tutor_app(TutorSettings.from_env(env)) as bundle:
        server = GrpcServer(bundle)
        port = await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                health: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lists no methods
                watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
                assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
                states = set()
                for _ in range(60):  # 3 s: the age, plus its jitter (up to +10%), plus margin
                    states.add(channel.get_state())
                    await asyncio.sleep(0.05)
                await server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
                update = await asyncio.wait_for(watch.read(), 5)
                assert update.status == health_pb2.HealthCheckResponse.NOT_SERVING, "the stream outlived the age"
        finally:
            await server.stop(grace_s=0)
    if max_age == "0":
        assert states == {grpc.ChannelConnectivity.READY}
    else:
        assert grpc.ChannelConnectivity.READY in states and len(states) > 1, states


def _service_env(isolated_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**os.environ, **isolated_env, "GATEWAY_HTTP_ADDR": "", **extra}


@pytest.mark.parametrize("service", sorted(MODULES))
async def test_second_instance_on_a_taken_port_fails(stack: Stack, isolated_env: dict[str, str], service: str) -> None:
    taken = getattr(stack.addrs, service)
    env = _service_env(isolated_env, **{f"{service.upper()}_ADDR": taken})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        MODULES[service],
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert f"cannot listen on {taken}" in stderr.decode()
    assert "already in use" in stderr.decode()


async def test_sigterm_stops_a_service_gracefully(isolated_env: dict[str, str]) -> None:
    addr = f"127.0.0.1:{free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vibe.services.scoring",
        env=_service_env(isolated_env, SCORING_ADDR=addr),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_serving(addr, 60)
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert proc.returncode == 0
    assert '"msg": "stopped"' in stderr.decode()


@pytest.mark.parametrize(
    ("module", "env", "needle"),
    [
        ("vibe.services.gateway", {"GATEWAY_ADDR": "not-an-address"}, "GATEWAY_ADDR='not-an-address' is not host:port"),
        (
            "vibe.services.tutor",
            {"VIBE_LLM_PROVIDER": "gpt"},
            "VIBE_LLM_PROVIDER='gpt' must be one of: offline, gemini",
        ),
        ("vibe.services.evaluator", {"EVALUATOR_WORKERS": "many"}, "EVALUATOR_WORKERS='many' is not an integer"),
        ("vibe.services.scoring", {"VIBE_WEIGHT_PROMPT": "0.9"}, "must sum to 1"),
        (
            "vibe.services.tutor",
            {"VIBE_GRPC_MAX_CONNECTION_AGE_S": "-1"},
            "VIBE_GRPC_MAX_CONNECTION_AGE_S=-1.0 is out of range",
        ),
        ("vibe.services.tutor", {"VIBE_LLM_PROVIDER": "gemini", "GEMINI_API_KEY": ""}, "needs GEMINI_API_KEY"),
        # Read before logging and telemetry are set up, so they too stop with the message.
        (
            "vibe.services.evaluator",
            {"VIBE_LOG_LEVEL": "verbose"},
            "VIBE_LOG_LEVEL='verbose' must be one of: debug, info, warning, error",
        ),
        ("vibe.services.scoring", {"VIBE_METRICS_ADDR": "nonsense"}, "VIBE_METRICS_ADDR='nonsense' is not host:port"),
    ],
)
def test_bad_configuration_fails_fast_with_a_readable_message(
    isolated_env: dict[str, str], module: str, env: dict[str, str], needle: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module],
        env=_service_env(isolated_env, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


async def test_evaluator_stops_promptly_wherever_the_stop_lands(isolated_env: dict[str, str]) -> None:
    """Workers block on the queue for up to a second at a time; a stop that lands at any
    point of that wait (including as the read times out) must still end them."""
    from vibe.platform.config import EvaluatorSettings
    from vibe.services.evaluator.app import evaluator_app

    settings = EvaluatorSettings.from_env({**isolated_env, "EVALUATOR_WORKERS": "3"})

    async def start_then_stop(after_s: float) -> None:
        async with evaluator_app(settings) as bundle:
            server = GrpcServer(bundle)
            await server.start()
            await asyncio.sleep(after_s)
            await server.stop(grace_s=0.1)

    for i in range(24):
        await asyncio.wait_for(start_then_stop(0.05 + (i * 0.0479) % 1.1), timeout=10)
