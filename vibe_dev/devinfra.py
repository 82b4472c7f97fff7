"""Make sure PostgreSQL and Redis are available for ``make demo`` / ``make test``.

The README promises that its commands work on a fresh Debian machine.  CI and
most developer machines already run PostgreSQL on 127.0.0.1:5432 and Redis on
127.0.0.1:6379, but a newcomer may have neither (or have them stopped).  Rather
than asking people to set up services by hand, the Makefile wraps its commands::

    python -m vibe_dev.devinfra run [--] COMMAND [ARGS...]

which probes ``DATABASE_URL`` / ``REDIS_URL`` with a real connection, uses them
unchanged when they answer, and otherwise starts a *private*, throw-away
instance (on a free port, in a temp directory) for the duration of COMMAND.
Everything that was started is stopped and deleted afterwards, also on errors
and Ctrl-C, so the machine is left exactly as it was found.

The same logic is available programmatically through :func:`ensure_infrastructure`,
:func:`start_private_postgres` and :func:`start_private_redis`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from vibe.platform.config import CommonSettings

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "DevInfraError",
    "PrivatePostgres",
    "PrivateRedis",
    "ensure_infrastructure",
    "main",
    "private_postgres",
    "private_redis",
    "probe_postgres",
    "probe_redis",
    "start_private_postgres",
    "start_private_redis",
]

DEFAULT_DATABASE_URL = CommonSettings.database_url  # the services' defaults: one place
DEFAULT_REDIS_URL = CommonSettings.redis_url

#: Probes must be quick: they run before every ``make test``.
PROBE_TIMEOUT_S = 2.0
#: How often we retry a start when the free port we picked got taken meanwhile.
_START_ATTEMPTS = 3

_T = TypeVar("_T")
Log = Callable[[str], None]


class DevInfraError(RuntimeError):
    """A service is needed but can neither be reached nor started."""


def _say(message: str) -> None:
    """Report one decision on stderr; stdout belongs to the wrapped command."""
    print(f"devinfra: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# URL helpers (never leak passwords into logs)
# --------------------------------------------------------------------------


def _where(url: str, default_port: int) -> str:
    """``host:port`` of a URL, for log lines: no user, no password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or default_port
    except ValueError:
        return "<unparsable URL>"
    return f"{host}:{port}"


def _scrub(text: str, url: str) -> str:
    """Remove the URL's password from an error message and keep it short."""
    with contextlib.suppress(ValueError):
        password = urlsplit(url).password
        if password:
            text = text.replace(password, "***")
    text = " ".join(text.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _reason(exc: BaseException, url: str) -> str:
    detail = str(exc) or "no details"
    return _scrub(f"{type(exc).__name__}: {detail}", url)


# --------------------------------------------------------------------------
# Probes (the only asyncio in this module: the drivers are async)
# --------------------------------------------------------------------------


async def probe_postgres(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:  # noqa: ASYNC109 (per-step timeouts of the driver)
    """Return ``None`` when ``SELECT 1`` works on *url*, else the reason why not.

    A real query (not just a TCP connect) is used because a listening server
    with the wrong database or auth setup is just as useless to the tests.
    """
    import asyncpg  # imported lazily: `--help` should not need the drivers

    try:
        conn = await asyncio.wait_for(asyncpg.connect(url, timeout=timeout), timeout + 1)
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout)
        finally:
            await conn.close(timeout=timeout)
    except Exception as exc:
        return _reason(exc, url)
    return None


async def probe_redis(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:  # noqa: ASYNC109 (per-step timeouts of the driver)
    """Return ``None`` when Redis at *url* answers ``PING``, else the reason why not."""
    import redis.asyncio as aioredis

    try:
        client = aioredis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except Exception as exc:
        return _reason(exc, url)
    try:
        # wait_for bounds redis-py's own connection retries as well.
        await asyncio.wait_for(client.ping(), timeout + 1)
    except Exception as exc:
        return _reason(exc, url)
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()
    return None


def _run_async(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run *coro* to completion, even when called from inside a running loop.

    ``ensure_infrastructure`` is synchronous, but may be used from async test
    fixtures; there ``asyncio.run`` would refuse, so use a helper thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _probe_both(db_url: str, redis_url: str) -> tuple[str | None, str | None]:
    """Probe both services concurrently so a double miss costs one timeout, not two."""
    pg, rd = await asyncio.gather(probe_postgres(db_url), probe_redis(redis_url))
    return pg, rd


# --------------------------------------------------------------------------
# Small process / OS helpers
# --------------------------------------------------------------------------


def _free_port() -> int:
    """Ask the kernel for an unused port (bind to port 0), then release it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_root() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def _sigint_shielded() -> Iterator[None]:
    """Ignore Ctrl-C while cleaning up, so a second Ctrl-C cannot leak a server.

    Only the main thread may change signal handlers; elsewhere this is a no-op.
    """
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _tail(path: str, lines: int = 15) -> str:
    """Last lines of a server log, to make start failures self-explaining."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:]).rstrip()
    except OSError:
        return "(no log)"


_apt_updated = False


def _apt_install(package: str, what: str, log: Log) -> None:
    """Install a Debian package, or explain how to get *what* when we cannot.

    Only done as root with apt-get present: we never prompt for sudo from a
    Makefile.  apt's chatter goes to stderr so the command's stdout stays clean.
    """
    global _apt_updated
    if not (_is_root() and shutil.which("apt-get")):
        how = f"sudo apt-get install -y {package}" if shutil.which("apt-get") else f"install {package}"
        raise DevInfraError(
            f"{what} is not reachable and no {what} binaries were found; "
            f"run `{how}` or point the environment at a running server"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        if not _apt_updated:
            log("running apt-get update")
            subprocess.run(["apt-get", "update"], env=env, check=True, stdout=sys.stderr)
            _apt_updated = True
        log(f"{what} binaries not found; running apt-get install -y {package}")
        subprocess.run(
            ["apt-get", "install", "-y", package],
            env=env,
            check=True,
            stdout=sys.stderr,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DevInfraError(f"installing {package} failed: {exc}") from exc


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def _version_key(path: str) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` (numeric, not lexical)."""
    version = os.path.basename(os.path.dirname(path))
    return tuple(int(n) for n in re.findall(r"\d+", version)) or (0,)


def _has_pg_tools(bindir: str) -> bool:
    return all(os.access(os.path.join(bindir, tool), os.X_OK) for tool in ("initdb", "pg_ctl"))


def find_postgres_bindir() -> str | None:
    """Directory holding ``initdb`` and ``pg_ctl``, or ``None``.

    Debian keeps the server binaries off PATH (``/usr/lib/postgresql/N/bin``),
    so PATH alone is not enough; ``pg_config`` may also belong to libpq-dev
    without a server, hence the check that the tools really exist.
    """
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(out)
    candidates.extend(sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        # /usr/local/bin/initdb may be a symlink into the real bindir (pg_ctl lives there).
        candidates.append(os.path.dirname(os.path.realpath(initdb)))
        candidates.append(os.path.dirname(initdb))
    return next((c for c in candidates if _has_pg_tools(c)), None)


def _postgres_major(bindir: str) -> str:
    """``"15"`` from ``initdb (PostgreSQL) 15.20``; only used for the log line."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [os.path.join(bindir, "initdb"), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if match:
            return match.group(1)
    return "?"


def _ensure_postgres_os_user(log: Log) -> pwd.struct_passwd:
    """The ``postgres`` OS user, created as a system user if the package did not.

    Needed because initdb/postgres refuse to run as root.
    """
    with contextlib.suppress(KeyError):
        return pwd.getpwnam("postgres")
    log("creating system user postgres (initdb refuses to run as root)")
    if shutil.which("useradd"):
        cmd = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "postgres",
        ]
    elif shutil.which("adduser"):
        cmd = ["adduser", "--system", "--group", "--no-create-home", "postgres"]
    else:
        raise DevInfraError("running as root, no postgres user, and neither useradd nor adduser exists")
    try:
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        return pwd.getpwnam("postgres")
    except (OSError, subprocess.CalledProcessError, KeyError) as exc:
        raise DevInfraError(f"could not create the postgres OS user: {exc}") from exc


def _as_postgres_user(cmd: Sequence[str]) -> list[str]:
    """Wrap *cmd* so it runs as the ``postgres`` OS user when we are root."""
    if not _is_root():
        return list(cmd)
    if shutil.which("runuser"):
        return ["runuser", "-u", "postgres", "--", *cmd]
    if shutil.which("su"):
        return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]
    raise DevInfraError("running as root but neither runuser nor su is available to drop privileges")


def _run_checked(cmd: Sequence[str], cwd: str, what: str) -> None:
    """Run a setup step; on failure raise with its output (which explains why)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DevInfraError(f"{what} failed: {exc}") from exc
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        raise DevInfraError(f"{what} failed (exit {proc.returncode}):\n{output}")


def _postmaster_pid(datadir: str) -> int | None:
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open(os.path.join(datadir, "postmaster.pid"), encoding="ascii") as fh,
    ):
        return int(fh.readline().strip())
    return None


def _stop_postgres(bindir: str, datadir: str, workdir: str, log: Log) -> None:
    """``pg_ctl stop -m fast``; if that fails, signal the postmaster directly."""
    if not os.path.exists(os.path.join(datadir, "postmaster.pid")):
        return
    cmd = _as_postgres_user([os.path.join(bindir, "pg_ctl"), "-D", datadir, "-m", "fast", "-w", "-t", "30", "stop"])
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        if subprocess.run(cmd, cwd=workdir, capture_output=True, timeout=60).returncode == 0:
            return
    pid = _postmaster_pid(datadir)
    if pid is None:
        return
    log(f"pg_ctl stop failed; sending SIGQUIT to postmaster {pid}")
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGQUIT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and os.path.exists(os.path.join(datadir, "postmaster.pid")):
            time.sleep(0.1)


def _resolve_postgres_bindir(log: Log) -> str:
    bindir = find_postgres_bindir()
    if bindir is None:
        _apt_install("postgresql", "PostgreSQL", log)
        bindir = find_postgres_bindir()
        if bindir is None:
            raise DevInfraError("installed postgresql, but still cannot find initdb/pg_ctl")
    return bindir


@contextlib.contextmanager
def start_private_postgres(database: str = "test", *, log: Log = _say) -> Iterator[str]:
    """Run a throw-away PostgreSQL cluster and yield its URL.

    The cluster uses trust auth for the ``postgres`` role, listens on
    127.0.0.1 only, on a free port, with fsync off (its data is discarded
    anyway), and contains the database *database*.  It is stopped and its
    directory deleted when the context exits.
    """
    with private_postgres(database, log=log) as cluster:
        yield cluster.url


class PrivatePostgres:
    """A private cluster (see :func:`private_postgres`) that fault tests may stop and
    start again on the same port and data, or strike from inside."""

    def __init__(self, bindir: str, workdir: str, datadir: str, logfile: str, port: int, database: str):
        self.bindir, self.workdir, self.datadir, self.logfile = bindir, workdir, datadir, logfile
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m MODE`` (immediate: like a crash, every backend dropped)."""
        _run_checked(
            _as_postgres_user([os.path.join(self.bindir, "pg_ctl"), "-D", self.datadir, "-m", mode, "-w", "stop"]),
            cwd=self.workdir,
            what="pg_ctl stop",
        )

    def start(self) -> None:
        """Starts the stopped cluster again, on its port, with its data."""
        _start_postmaster(self.bindir, self.datadir, self.workdir, self.logfile, port=self.port)

    async def terminate_backends(self) -> int:
        """``pg_terminate_backend`` on every other client backend; how many there were."""
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
                )
            )
        finally:
            await conn.close()


@contextlib.contextmanager
def private_postgres(database: str = "test", *, log: Log = _say) -> Iterator[PrivatePostgres]:
    """:func:`start_private_postgres`, yielding the cluster itself."""
    started = time.monotonic()
    bindir = _resolve_postgres_bindir(log)
    owner = _ensure_postgres_os_user(log) if _is_root() else None

    workdir = tempfile.mkdtemp(prefix="vibe-pg-")
    datadir = os.path.join(workdir, "data")
    port: int | None = None
    try:
        if owner is not None:
            # Everything under workdir (data, socket, log) must belong to postgres.
            os.chown(workdir, owner.pw_uid, owner.pw_gid)
        os.chmod(workdir, 0o700)
        logfile = os.path.join(workdir, "postgres.log")
        _run_checked(
            _as_postgres_user(
                [
                    os.path.join(bindir, "initdb"),
                    "-D",
                    datadir,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ]
            ),
            cwd=workdir,
            what="initdb",
        )
        port = _start_postmaster(bindir, datadir, workdir, logfile)
        _run_checked(
            [os.path.join(bindir, "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", database],
            cwd=workdir,
            what=f"createdb {database}",
        )
        log(
            f"started private PostgreSQL {_postgres_major(bindir)} on 127.0.0.1:{port} "
            f"(data in {datadir}, {time.monotonic() - started:.1f}s)"
        )
        yield PrivatePostgres(bindir, workdir, datadir, logfile, port, database)
    finally:
        with _sigint_shielded():
            # Also after a failed start: pg_ctl may have left a postmaster behind.
            _stop_postgres(bindir, datadir, workdir, log)
            if port is not None:
                log(f"stopped private PostgreSQL on 127.0.0.1:{port}")
            shutil.rmtree(workdir, ignore_errors=True)


def _start_postmaster(bindir: str, datadir: str, workdir: str, logfile: str, port: int | None = None) -> int:
    """``pg_ctl start`` on a free port (or on `port`); return the port.

    Retried a few times because the port from :func:`_free_port` is only
    free at the moment we looked.  pg_ctl puts the postmaster in its own
    session, so a terminal Ctrl-C aimed at the command does not kill it.
    """
    last_error = ""
    for _ in range(_START_ATTEMPTS if port is None else 1):
        port = port or _free_port()
        options = (
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        cmd = _as_postgres_user(
            [
                os.path.join(bindir, "pg_ctl"),
                "-D",
                datadir,
                "-l",
                logfile,
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        try:
            proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=90)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DevInfraError(f"pg_ctl start failed: {exc}") from exc
        if proc.returncode == 0:
            return port
        last_error = _tail(logfile)
        if "already in use" not in last_error:
            break
    raise DevInfraError(f"pg_ctl start failed; server log:\n{last_error}")


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------


def find_redis_server() -> str | None:
    """Path of ``redis-server``; /usr/sbin etc. are checked for non-root PATHs."""
    found = shutil.which("redis-server")
    if found:
        return found
    for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"):
        if os.access(path, os.X_OK):
            return path
    return None


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _wait_for_redis(proc: subprocess.Popen[bytes], url: str, timeout: float = 15) -> bool:
    """Poll with PING until the server answers; ``False`` if it died first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _run_async(probe_redis(url, timeout=0.5)) is None:
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def start_private_redis(*, log: Log = _say) -> Iterator[str]:
    """Run a throw-away, non-persistent ``redis-server`` child and yield its URL."""
    with private_redis(log=log) as server:
        yield server.url


class PrivateRedis:
    """A private ``redis-server`` (see :func:`private_redis`) that fault tests may kill
    and start again on the same port and directory (with its append-only file, if on)."""

    def __init__(self, binary: str, workdir: str, logfile: str, appendonly: bool):
        self.binary, self.workdir, self.logfile, self.appendonly = binary, workdir, logfile, appendonly
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int | None = None) -> bool:
        """Starts the server (on its port when it ran before); False if it did not answer."""
        self.port = port or self.port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        with open(self.logfile, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    *persistence,
                    "--dir",
                    self.workdir,
                    "--daemonize",
                    "no",
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Own session: a terminal Ctrl-C must reach the command, not
                # kill Redis while the command is still shutting down.
                start_new_session=True,
            )
        if _wait_for_redis(self.proc, self.url):
            return True
        _stop_process(self.proc)
        self.proc = None
        return False

    def kill(self) -> None:
        """SIGKILL: every connection dropped, nothing flushed but what is already on disk."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            _stop_process(self.proc)
        self.proc = None


@contextlib.contextmanager
def private_redis(*, appendonly: bool = False, log: Log = _say) -> Iterator[PrivateRedis]:
    """A private ``redis-server`` child on a free port in a temp directory, yielded
    running; stopped and deleted afterwards."""
    started = time.monotonic()
    binary = find_redis_server()
    if binary is None:
        _apt_install("redis-server", "Redis", log)
        binary = find_redis_server()
        if binary is None:
            raise DevInfraError("installed redis-server, but still cannot find the binary")

    workdir = tempfile.mkdtemp(prefix="vibe-redis-")
    server = PrivateRedis(binary, workdir, os.path.join(workdir, "redis.log"), appendonly)
    try:
        if not any(server.start(_free_port()) for _ in range(_START_ATTEMPTS)):
            raise DevInfraError(f"redis-server did not start; log:\n{_tail(server.logfile)}")
        assert server.proc is not None
        log(
            f"started private Redis on 127.0.0.1:{server.port} "
            f"(pid {server.proc.pid}, {time.monotonic() - started:.1f}s)"
        )
        yield server
    finally:
        with _sigint_shielded():
            if server.proc is not None:
                server.stop()
                log(f"stopped private Redis on 127.0.0.1:{server.port}")
            shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------


@contextlib.contextmanager
def ensure_infrastructure(env: Mapping[str, str] | None = None, *, log: Log = _say) -> Iterator[dict[str, str]]:
    """Make PostgreSQL and Redis reachable; yield the env vars that must change.

    Reachable services are used as they are (the yielded dict then lacks their
    variable); unreachable ones are replaced by private instances that live
    until the context exits.  *env* defaults to ``os.environ``.
    """
    servers = CommonSettings.from_env(env, who="devinfra")  # read as the services will read them
    db_url, redis_url = servers.database_url, servers.redis_url
    pg_problem, redis_problem = _run_async(_probe_both(db_url, redis_url))

    overrides: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if pg_problem is None:
            log(f"PostgreSQL reachable at {_where(db_url, 5432)}")
        else:
            log(f"PostgreSQL not reachable at {_where(db_url, 5432)} ({pg_problem}); starting a private one")
            overrides["DATABASE_URL"] = stack.enter_context(start_private_postgres(log=log))
        if redis_problem is None:
            log(f"Redis reachable at {_where(redis_url, 6379)}")
        else:
            log(f"Redis not reachable at {_where(redis_url, 6379)} ({redis_problem}); starting a private one")
            overrides["REDIS_URL"] = stack.enter_context(start_private_redis(log=log))
        yield overrides


def _terminal_already_signalled() -> bool:
    """True when a Ctrl-C typed in our terminal also reached the child.

    The child shares our process group; if that group is the terminal's
    foreground group, the kernel sent SIGINT to the child already and
    forwarding it again would make it see two interrupts.
    """
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _exit_code(returncode: int) -> int:
    """Shell convention: death by signal N becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def run_command(cmd: Sequence[str], env: Mapping[str, str]) -> int:
    """Run *cmd* with inherited stdio, forwarding SIGINT/SIGTERM; return its exit code."""
    proc: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and _terminal_already_signalled():
            return
        if proc is None:
            pending.append(signum)  # arrived before the child existed
        else:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signum)

    forwarded = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, forward) for sig in forwarded}
    try:
        try:
            proc = subprocess.Popen(list(cmd), env=dict(env))
        except FileNotFoundError:
            _say(f"command not found: {cmd[0]}")
            return 127
        except PermissionError:
            _say(f"permission denied: {cmd[0]}")
            return 126
        for signum in pending:
            proc.send_signal(signum)
        return _exit_code(proc.wait())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _usage() -> str:
    return "usage: python -m vibe_dev.devinfra run [--] COMMAND [ARGS...]"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(_usage())
        print(__doc__)
        return 0
    if not args or args[0] != "run":
        print(_usage(), file=sys.stderr)
        return 2
    cmd = args[1:]
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print(_usage(), file=sys.stderr)
        return 2

    def terminate(signum: int, _frame: object) -> None:
        # Before the command runs, SIGTERM must still unwind the context
        # managers (default action would leak the private servers).
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        with ensure_infrastructure(os.environ) as overrides:
            return run_command(cmd, {**os.environ, **overrides})
    except DevInfraError as exc:
        _say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
