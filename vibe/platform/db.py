"""PostgreSQL: the connection pool and the versioned migrations applied at start-up."""

from __future__ import annotations

import logging
import zlib
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_PACKAGE = "vibe.platform.migrations"


async def connect_pool(database_url: str, schema: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections all work inside `schema`, with migrations applied."""
    await apply_migrations(database_url, schema)
    pool = await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": "vibe"},
        reset=_nothing_to_reset,
    )
    assert pool is not None
    return pool


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """What the pool runs when a connection comes back, instead of asyncpg's default reset
    (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), a round trip on every
    release, a fifth of a chat turn's queries. Our code leaves no session state behind:
    advisory locks are transaction-scoped (pg_advisory_xact_lock), settings SET LOCAL, no
    LISTEN, no cursors outside a transaction; and asyncpg still rolls back a transaction
    left open before calling this."""


def _migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every `NNN_name.sql` file, in version order."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


async def apply_migrations(database_url: str, schema: str) -> list[str]:
    """Bring `schema` up to the newest migration; returns the names applied now.

    Safe when several services start at once: everything happens in one transaction
    holding an advisory lock keyed on the schema, so exactly one of them migrates and
    the others then see the versions already recorded.
    """
    conn = await asyncpg.connect(database_url)
    try:
        lock_key = zlib.crc32(f"vibe-migrations:{schema}".encode())
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key)
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for version, name, sql in _migrations():
                if version in done:
                    continue
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
                applied.append(name)
        if applied:
            log.info("applied migrations", extra={"schema": schema, "migrations": applied})
        return applied
    finally:
        await conn.close()
