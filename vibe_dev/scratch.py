"""Where a test or benchmark run keeps its data: its own PostgreSQL schemas and Redis key
prefix on the real servers, dropped when the run ends."""

from __future__ import annotations

import secrets

import asyncpg
import redis.asyncio as aioredis

from vibe.platform.api_keys import ALL_SCOPES, new_key, settings_entry
from vibe.platform.config import CommonSettings

# The servers the services would use (DATABASE_URL, REDIS_URL or their defaults).
_SERVERS = CommonSettings.from_env(who="tests and benchmarks")
DATABASE_URL = _SERVERS.database_url
REDIS_URL = _SERVERS.redis_url


# Benchmarks and most tests drive many chats through one session and one key as fast as
# they can: the product's limits would measure the limits, not the system. (The limits
# themselves are tested with their own small values, tests/test_limits.py.)
LIFTED_LIMITS = {
    "VIBE_LIMIT_CHATS_PER_MINUTE": "100000",
    "VIBE_LIMIT_TURNS_PER_SESSION": "100000",
    "VIBE_LIMIT_SESSIONS_PER_KEY_PER_HOUR": "1000000",
    "VIBE_LIMIT_STREAMS_PER_KEY": "100000",
}


def scratch_env(schema: str, prefix: str) -> dict[str, str]:
    """Environment for services that only touches `schema` and the keys under `prefix`
    (dropped with `drop_scratch`), on ephemeral ports, offline; with a service secret and a
    backend key of every scope that the caller knows (VIBE_API_KEY), the candidates' full
    report view, and the limits lifted (tests of them set their own)."""
    key_id, secret, plaintext = new_key()
    return {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "VIBE_DB_SCHEMA": schema,
        "VIBE_REDIS_PREFIX": prefix,
        "VIBE_LLM_PROVIDER": "offline",
        "GATEWAY_ADDR": "127.0.0.1:0",
        "TUTOR_ADDR": "127.0.0.1:0",
        "EVALUATOR_ADDR": "127.0.0.1:0",
        "SCORING_ADDR": "127.0.0.1:0",
        "GATEWAY_HTTP_ADDR": "127.0.0.1:0",
        "VIBE_SHUTDOWN_GRACE_S": "0.5",
        # Known to the caller, so that it can call the internal services as the gateway does.
        "VIBE_SERVICE_SECRET": secrets.token_hex(32),
        # A backend key with every scope (the gateway gets its hash; callers send VIBE_API_KEY).
        "VIBE_API_KEYS": settings_entry("scratch", key_id, secret, ALL_SCOPES),
        "VIBE_API_KEY": plaintext,
        # Most callers read the graded report through the candidate's own calls; the policies
        # themselves (the default is `released`) are tested in tests/test_access.py.
        "VIBE_CANDIDATE_REPORT": "full",
        **LIFTED_LIMITS,
    }


async def drop_scratch(schemas: tuple[str, ...], prefix: str) -> None:
    """Drops the run's schemas and every Redis key under its prefix."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        for schema in schemas:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
