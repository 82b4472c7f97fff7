"""The deployment: the compose file's shape, and several gateway and evaluator
processes sharing one PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml

from tests.support.stack import REFERENCE, Candidate, key_auth
from vibe.platform.healthcheck import wait_serving
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc
from vibe_dev.scratch import DATABASE_URL
from vibe_dev.stack import free_port

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {
    "gateway": "vibe.services.gateway",
    "tutor": "vibe.services.tutor",
    "evaluator": "vibe.services.evaluator",
    "scoring": "vibe.services.scoring",
}


def test_compose_file_describes_a_deployable_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "jaeger", *SERVICES} <= set(services)
    assert "--appendonly" in services["redis"]["command"], "the queue survives a Redis restart"
    assert any(str(p).startswith("16686") for p in services["jaeger"]["ports"])
    for name, module in SERVICES.items():
        service = services[name]
        assert service["command"] == ["python", "-m", module]
        assert service["build"]["context"] == ".", "one Dockerfile for all four (its stages: test_container_image.py)"
        check = service["healthcheck"]["test"]
        assert check[:4] == ["CMD", "python", "-m", "vibe.platform.healthcheck"], name
        port = service["environment"][f"{name.upper()}_ADDR"].rpartition(":")[2]
        assert check[4].endswith(f":{port}"), f"{name} health check probes its own port"
        env = service["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317" and env["OTEL_SERVICE_NAME"] == name
        for dep in ("postgres", "redis"):
            assert service["depends_on"][dep]["condition"] == "service_healthy"
        # Every service signs and checks internal calls with the compose secret, mounted as a file.
        assert "vibe_service_secret" in service["secrets"], name
        assert env["VIBE_SERVICE_SECRET_FILE"] == "/run/secrets/vibe_service_secret", name
    for upstream in ("scoring", "tutor", "evaluator"):
        assert services["gateway"]["depends_on"][upstream]["condition"] == "service_healthy"
    evaluator = services["evaluator"]
    assert "ports" not in evaluator and "container_name" not in evaluator, (
        "--scale evaluator=3 needs no fixed port or name"
    )
    assert compose["secrets"]["vibe_service_secret"] == {"environment": "VIBE_SERVICE_SECRET"}
    assert (ROOT / "Dockerfile").exists()
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        result = subprocess.run(["docker", "compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


async def test_two_gateways_and_two_evaluators_share_the_work(isolated_env: dict[str, str]) -> None:
    addrs = {
        name: f"127.0.0.1:{free_port()}"
        for name in ("gateway_a", "gateway_b", "tutor", "evaluator_a", "evaluator_b", "scoring")
    }
    base = {
        **os.environ,
        **isolated_env,
        "GATEWAY_HTTP_ADDR": "",
        "VIBE_LOG_LEVEL": "warning",
        "TUTOR_ADDR": addrs["tutor"],
        "SCORING_ADDR": addrs["scoring"],
        "DATABASE_URL": DATABASE_URL,
    }
    plan = [
        ("vibe.services.scoring", {}, addrs["scoring"]),
        ("vibe.services.tutor", {}, addrs["tutor"]),
        ("vibe.services.evaluator", {"EVALUATOR_ADDR": addrs["evaluator_a"]}, addrs["evaluator_a"]),
        ("vibe.services.evaluator", {"EVALUATOR_ADDR": addrs["evaluator_b"]}, addrs["evaluator_b"]),
        (
            "vibe.services.gateway",
            {"GATEWAY_ADDR": addrs["gateway_a"], "EVALUATOR_ADDR": addrs["evaluator_a"]},
            addrs["gateway_a"],
        ),
        (
            "vibe.services.gateway",
            {"GATEWAY_ADDR": addrs["gateway_b"], "EVALUATOR_ADDR": addrs["evaluator_b"]},
            addrs["gateway_b"],
        ),
    ]
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", module, env={**base, **extra}, stdout=subprocess.DEVNULL
        )
        for module, extra, _ in plan
    ]
    try:
        await asyncio.gather(*(wait_serving(addr, 60) for _, _, addr in plan))

        async def one_session(gateway_addr: str, name: str) -> gateway_pb2.Report:
            async with grpc.aio.insecure_channel(gateway_addr) as channel:
                stub = gateway_pb2_grpc.GatewayStub(channel)
                created = await stub.CreateSession(
                    gateway_pb2.CreateSessionRequest(candidate_id=name, problem_id="two-sum"),
                    metadata=key_auth(isolated_env["VIBE_API_KEY"]),
                )
                candidate = Candidate(stub, created.session, created.session_token)
                for question in ("Which data structure helps here?", "You said a dict: how do I handle duplicates?"):
                    await candidate.chat(question)
                return (await candidate.submit(REFERENCE))[-1].report

        reports = await asyncio.gather(
            *(one_session(addrs[g], g) for g in ("gateway_a", "gateway_b") for _ in range(3))
        )
        assert len({r.session_id for r in reports}) == 6
        for report in reports:
            assert [t.turn for t in report.turns] == [1, 2] and report.scores.grade
        # A session created through one gateway can be read through the other: the state is shared.
        async with grpc.aio.insecure_channel(addrs["gateway_b"]) as channel:
            stub = gateway_pb2_grpc.GatewayStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetReport(gateway_pb2.GetReportRequest(session_id=reports[0].session_id))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, "found, but the token is required"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
        await asyncio.gather(*(p.wait() for p in procs))
