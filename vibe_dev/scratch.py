"""Where a test or benchmark run keeps its data: its own PostgreSQL schemas and Redis key
prefix on the real servers, dropped when the run ends."""

from __future__ import annotations

import os

import asyncpg
import redis.asyncio as aioredis

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


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
