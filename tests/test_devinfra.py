"""Real (no mocks) tests for ``vibe_dev.devinfra``: they start actual servers.

They need PostgreSQL binaries and ``redis-server`` on the machine (or root +
apt-get), like ``make test`` itself does.  Total runtime is a few seconds:
one private PostgreSQL start costs about 1-2 s.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from vibe_dev import devinfra

REPO_ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    """A port nothing listens on (free a moment ago; good enough for a probe)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gone(pid: int) -> bool:
    """True when *pid* no longer runs; a zombie left for init to reap counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return _gone(pid)


async def _postgres_facts(url: str) -> tuple[int, str, str]:
    """(SELECT 1 result, current database, data directory) of a live server."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        one = await conn.fetchval("SELECT 1")
        db = await conn.fetchval("SELECT current_database()")
        datadir = await conn.fetchval("SHOW data_directory")
    finally:
        await conn.close()
    return one, db, datadir


async def _redis_facts(url: str) -> tuple[bool, int, str | None]:
    """(PING result, server pid, working dir) of a live server."""
    client = aioredis.from_url(url, socket_connect_timeout=5)
    try:
        pong = await client.ping()
        pid = int((await client.info("server"))["process_id"])
        workdir = (await client.config_get("dir"))["dir"]
    finally:
        await client.aclose()
    return pong, pid, workdir


def _defaults_reachable() -> bool:
    pg = asyncio.run(devinfra.probe_postgres(devinfra.DEFAULT_DATABASE_URL))
    rd = asyncio.run(devinfra.probe_redis(devinfra.DEFAULT_REDIS_URL))
    return pg is None and rd is None


def test_reachable_defaults_start_nothing() -> None:
    if not _defaults_reachable():
        pytest.skip("default PostgreSQL/Redis are not running on this machine")
    lines: list[str] = []
    with devinfra.ensure_infrastructure({}, log=lines.append) as overrides:
        assert overrides == {}
    assert lines == [
        "PostgreSQL reachable at 127.0.0.1:5432",
        "Redis reachable at 127.0.0.1:6379",
    ]


def test_unreachable_urls_get_private_servers_that_are_cleaned_up() -> None:
    env = {
        # A password in the URL must never show up in the log.
        "DATABASE_URL": f"postgresql://postgres:s3cr3t-pw@127.0.0.1:{_closed_port()}/test",
        "REDIS_URL": f"redis://:s3cr3t-pw@127.0.0.1:{_closed_port()}/0",
    }
    lines: list[str] = []
    with devinfra.ensure_infrastructure(env, log=lines.append) as overrides:
        assert set(overrides) == {"DATABASE_URL", "REDIS_URL"}
        assert overrides["DATABASE_URL"] != env["DATABASE_URL"]
        assert overrides["REDIS_URL"] != env["REDIS_URL"]

        one, db, datadir = asyncio.run(_postgres_facts(overrides["DATABASE_URL"]))
        assert (one, db) == (1, "test")
        postmaster_pid = int(Path(datadir, "postmaster.pid").read_text().split()[0])
        pg_tmp = Path(datadir).parent

        pong, redis_pid, redis_tmp = asyncio.run(_redis_facts(overrides["REDIS_URL"]))
        assert pong is True and redis_tmp is not None
        assert not _gone(postmaster_pid) and not _gone(redis_pid)
        assert pg_tmp.is_dir() and Path(redis_tmp).is_dir()

    assert _wait_gone(postmaster_pid), "private PostgreSQL still running"
    assert _wait_gone(redis_pid), "private Redis still running"
    assert not pg_tmp.exists() and not Path(redis_tmp).exists()
    assert asyncio.run(devinfra.probe_postgres(overrides["DATABASE_URL"], timeout=1)) is not None
    assert asyncio.run(devinfra.probe_redis(overrides["REDIS_URL"], timeout=1)) is not None

    log = "\n".join(lines)
    assert "s3cr3t-pw" not in log
    assert "starting a private one" in log and "started private PostgreSQL" in log
    assert "started private Redis" in log and "stopped private Redis" in log


def _cli(*command: str) -> list[str]:
    return [sys.executable, "-m", "vibe_dev.devinfra", "run", "--", *command]


def _cli_env(**overrides: str) -> dict[str, str]:
    env = {**os.environ, **overrides}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _private_tmp_dirs(stderr: str) -> list[Path]:
    """Temp dirs announced in the devinfra log lines."""
    return [Path(p).parent for p in re.findall(r"data in (\S+),", stderr)]


def test_cli_exports_private_database_url_and_exits_zero() -> None:
    env = _cli_env(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    proc = subprocess.run(
        _cli(sys.executable, "-c", "import os,sys; print(os.environ['DATABASE_URL'])"),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.strip()
    assert re.fullmatch(r"postgresql://postgres@127\.0\.0\.1:\d+/test", printed), proc.stdout
    assert printed != env["DATABASE_URL"]
    assert "started private PostgreSQL" in proc.stderr
    assert all(line.startswith("devinfra: ") for line in proc.stderr.splitlines())
    dirs = _private_tmp_dirs(proc.stderr)
    assert dirs and not any(d.exists() for d in dirs)


def test_cli_propagates_nonzero_exit_code_and_still_cleans_up() -> None:
    env = _cli_env(DATABASE_URL=f"postgresql://postgres@127.0.0.1:{_closed_port()}/test")
    proc = subprocess.run(
        _cli(sys.executable, "-c", "import sys; sys.exit(7)"),
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 7, proc.stderr
    assert "stopped private PostgreSQL" in proc.stderr
    dirs = _private_tmp_dirs(proc.stderr)
    assert dirs and not any(d.exists() for d in dirs)


def test_cli_forwards_sigterm_and_cleans_up() -> None:
    env = _cli_env(REDIS_URL=f"redis://127.0.0.1:{_closed_port()}/0")
    child = (
        "import signal,sys,time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(42))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        _cli(sys.executable, "-c", child),
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 42, stderr
    assert "stopped private Redis" in stderr
    started = re.search(r"started private Redis on \S+ \(pid (\d+)", stderr)
    assert started, stderr
    pid = int(started.group(1))
    assert _wait_gone(pid)


def test_cli_usage_errors() -> None:
    assert devinfra.main([]) == 2
    assert devinfra.main(["run", "--"]) == 2
    assert devinfra.main(["frobnicate"]) == 2
