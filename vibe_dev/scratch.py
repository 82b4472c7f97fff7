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
