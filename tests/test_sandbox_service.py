"""The scoring service and its sandbox as an operator meets them: it refuses to start when the
configured isolation cannot run (exit 2, the cause named), a sandbox failure during a run is a
retryable UNAVAILABLE (never a verdict) that health reflects until the sandbox works again, and
it works wherever the project is installed (a checkout and a TMPDIR under 0700 directories)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.stack import internal_channel
from vibe.platform.config import ScoringSettings
from vibe.platform.healthcheck import wait_serving
from vibe.platform.server import GrpcServer
from vibe.services.scoring.isolation import find_helper
from vibe_api.scoring.v1 import scoring_pb2, scoring_pb2_grpc
from vibe_dev.stack import free_port

ROOT = Path(__file__).resolve().parents[1]
TWO_SUM_RIGHT = (
    "n = int(input())\nnums = list(map(int, input().split()))\nt = int(input())\nseen = {}\n"
    "for j, x in enumerate(nums):\n    if t - x in seen:\n        print(seen[t - x], j)\n        break\n    seen[x] = j\n"
)
TWO_SUM_WRONG = "print(0, 1)\n"


def _env(isolated_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**os.environ, **isolated_env, "GATEWAY_HTTP_ADDR": "", "SCORING_MAX_PARALLEL_RUNS": "2", **extra}


def _start_refused(env: dict[str, str], *prefix: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "vibe.services.scoring"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def test_missing_helper_refuses_to_start(isolated_env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "vibe-box"
    result = _start_refused(_env(isolated_env, SCORING_SANDBOX_HELPER=str(missing)))
    assert result.returncode == 2, result.stderr
    assert f"the sandbox helper vibe-box is not built (looked for {missing})" in result.stderr
    assert "Traceback" not in result.stderr


def test_helper_writable_by_others_refuses_to_start(isolated_env: dict[str, str], tmp_path: Path) -> None:
    helper = tmp_path / "vibe-box"
    shutil.copy(find_helper(), helper)
    helper.chmod(0o777)
    result = _start_refused(_env(isolated_env, SCORING_SANDBOX_HELPER=str(helper)))
    assert result.returncode == 2 and "must be owned by root and writable by nobody else" in result.stderr, (
        result.stderr
    )


def test_without_cgroups_the_isolated_mode_refuses_to_start(isolated_env: dict[str, str]) -> None:
    """cgroupfs hidden (a private mount namespace with an empty /sys/fs/cgroup): no whole-run
    limits, so no isolated runs, so no service; the rlimits mode was not chosen, so not used."""
    hide = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs none /sys/fs/cgroup && exec "$@"',
        "sh",
    ]
    result = _start_refused(_env(isolated_env), *hide)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "SCORING_ISOLATION=namespaces cannot set up its cgroups" in result.stderr
    assert "whole-run limits need cgroups with memory, pids and CPU accounting" in result.stderr
    assert "/sys/fs/cgroup/memory" in result.stderr and "does not exist" in result.stderr


def test_installed_under_usr_the_bank_would_be_readable_so_it_refuses_to_start(isolated_env: dict[str, str]) -> None:
    """The package installed where every run sees it (the system Python's site-packages under
    /usr/local, say): a submitted program could read the hidden tests' expected output, so the
    isolated mode refuses to start, saying what to do, rather than grade such runs. Made
    readable by its owner only, the same installation starts."""
    install = Path(tempfile.mkdtemp(prefix="vibe-test-", dir="/usr/local/lib"))
    try:
        for name in ("vibe", "vibe_api"):
            shutil.copytree(ROOT / name, install / name, ignore=shutil.ignore_patterns("__pycache__"))
        install.chmod(0o755)
        env = _env(isolated_env, PYTHONPATH=str(install))
        result = _start_refused(env, cwd=install)
        assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
        bank = install / "vibe" / "services" / "scoring" / "problems"
        assert "readable inside a run" in result.stderr and str(bank) in result.stderr, result.stderr[-2000:]
        assert "install the package outside /usr" in result.stderr and "chmod -R go-rwx" in result.stderr
        assert "Traceback" not in result.stderr

        subprocess.run(["chmod", "-R", "go-rwx", str(bank)], check=True)
        addr = f"127.0.0.1:{free_port()}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "vibe.services.scoring"],
            env={**env, "SCORING_ADDR": addr},
            cwd=install,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            asyncio.run(wait_serving(addr, 60))
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        assert "readable inside a run" not in err
    finally:
        shutil.rmtree(install, ignore_errors=True)


def test_unknown_isolation_is_a_configuration_error(isolated_env: dict[str, str]) -> None:
    result = _start_refused(_env(isolated_env, SCORING_ISOLATION="chroot"))
    assert result.returncode == 2 and "SCORING_ISOLATION='chroot' must be one of: namespaces, rlimits" in result.stderr


async def test_a_sandbox_failure_is_retryable_and_shows_in_health(isolated_env: dict[str, str], tmp_path: Path) -> None:
    """A broken deployment (the helper gone, its servers dead): CheckCode answers UNAVAILABLE
    naming the cause, nothing is graded, health is NOT_SERVING; once the helper is back, the
    service recovers by itself."""
    from vibe.services.scoring.app import scoring_app

    helper = tmp_path / "bin" / "vibe-box"
    helper.parent.mkdir()
    shutil.copy(find_helper(), helper)
    settings_env = _env(isolated_env, SCORING_SANDBOX_HELPER=str(helper))
    settings = ScoringSettings.from_env(settings_env)
    async with scoring_app(settings) as bundle:
        server = GrpcServer(bundle)
        port = await server.start()
        try:
            async with internal_channel(settings_env, f"127.0.0.1:{port}", "scoring") as channel:
                scoring = scoring_pb2_grpc.ScoringStub(channel)
                health: Any = health_pb2_grpc.HealthStub(channel)  # typeshed's stub lists no methods
                request = scoring_pb2.CheckCodeRequest(problem_id="two-sum", language="python", code=TWO_SUM_RIGHT)
                assert (await scoring.CheckCode(request, timeout=120)).verdict == scoring_pb2.VERDICT_ACCEPTED

                helper.rename(helper.with_name("gone"))
                for proc in _slot_servers(helper):
                    proc.kill()
                # Every attempt is a retryable UNAVAILABLE, never a verdict; the first may meet a
                # server dying under it, the next ones name the missing helper.
                messages = []
                for _ in range(3):
                    with pytest.raises(grpc.aio.AioRpcError) as failed:
                        await scoring.CheckCode(request, timeout=60)
                    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
                    details = failed.value.details() or ""
                    assert "the code sandbox failed" in details and "please retry" in details, details
                    messages.append(details)
                assert any(str(helper) in m for m in messages), messages
                status = await health.Check(health_pb2.HealthCheckRequest(service="vibe.scoring.v1.Scoring"))
                assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING

                helper.with_name("gone").rename(helper)
                await wait_serving(f"127.0.0.1:{port}", 30)
                assert (await scoring.CheckCode(request, timeout=120)).verdict == scoring_pb2.VERDICT_ACCEPTED
        finally:
            await server.stop(grace_s=0.5)


class _Proc:
    def __init__(self, pid: int) -> None:
        self.pid = pid

    def kill(self) -> None:
        os.kill(self.pid, 9)


def _slot_servers(helper: Path) -> list[_Proc]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline and cmdline[0] == str(helper).encode() and b"serve" in cmdline:
                found.append(_Proc(int(entry)))
    assert found, "no slot server found"
    return found


def _private_clone(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """This working tree cloned into a 0700 directory, its stubs and sandbox helper built there,
    and a TMPDIR under another 0700 directory."""
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    outer = tmp_path / "tmp"
    outer.mkdir(mode=0o700)
    tmpdir = outer / "inner"
    tmpdir.mkdir(mode=0o700)
    clone = private / "vibe"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=120)
    for name in ("vibe", "vibe_dev", "protos"):  # this working tree, committed or not
        shutil.rmtree(clone / name, ignore_errors=True)
        shutil.copytree(ROOT / name, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "vibe_dev.protos", str(clone)], cwd=clone, check=True, timeout=120)
    helper = clone / "vibe-box"
    subprocess.run(
        ["cc", "-O2", "-static", "-o", str(helper), "vibe/services/scoring/vibe-box.c"],
        cwd=clone,
        check=True,
        timeout=120,
    )
    return private, tmpdir, clone, helper


async def test_a_checkout_under_a_private_directory_runs_isolated(isolated_env: dict[str, str], tmp_path: Path) -> None:
    """A clone in a 0700 directory (as under /root), TMPDIR under another 0700 directory: the
    service runs code in the isolated mode, a right answer is accepted, a wrong one is wrong."""
    private, tmpdir, clone, helper = await asyncio.to_thread(_private_clone, tmp_path)
    addr = f"127.0.0.1:{free_port()}"
    env = _env(
        isolated_env,
        SCORING_ADDR=addr,
        SCORING_SANDBOX_HELPER=str(helper),
        TMPDIR=str(tmpdir / "inner"),
        PYTHONPATH=str(clone),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vibe.services.scoring",
        env=env,
        cwd=clone,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_serving(addr, 60)
        async with internal_channel(env, addr, "scoring") as channel:
            scoring = scoring_pb2_grpc.ScoringStub(channel)
            right = await scoring.CheckCode(
                scoring_pb2.CheckCodeRequest(problem_id="two-sum", language="python", code=TWO_SUM_RIGHT), timeout=120
            )
            wrong = await scoring.CheckCode(
                scoring_pb2.CheckCodeRequest(problem_id="two-sum", language="python", code=TWO_SUM_WRONG), timeout=120
            )
        assert right.isolation_mode == "namespaces" and right.verdict == scoring_pb2.VERDICT_ACCEPTED, right.tests
        assert wrong.verdict == scoring_pb2.VERDICT_WRONG_ANSWER
        assert clone.stat().st_mode & 0o777 == 0o755 and private.stat().st_mode & 0o777 == 0o700
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
