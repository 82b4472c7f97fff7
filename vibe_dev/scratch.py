"""Where a test or benchmark run keeps its data: its own PostgreSQL schemas and Redis key
prefix on the real servers, dropped when the run ends."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from vibe.platform.config import CommonSettings

# The servers the services would use (DATABASE_URL, REDIS_URL or their defaults).
_SERVERS = CommonSettings.from_env(who="tests and benchmarks")
DATABASE_URL = _SERVERS.database_url
REDIS_URL = _SERVERS.redis_url


def scratch_env(schema: str, prefix: str) -> dict[str, str]:
    """Environment for services that only touches `schema` and the keys under `prefix`
    (dropped with `drop_scratch`), on ephemeral ports, offline."""
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
