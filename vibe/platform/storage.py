"""The storage every service opens the same way: the PostgreSQL pool in the configured
schema (migrations applied) and the Redis client with the configured key prefix,
closed together when the service stops."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from vibe.platform.config import CommonSettings
from vibe.platform.db import connect_pool
from vibe.platform.hot_state import Keys, connect_redis


@dataclass(frozen=True)
class Storage:
    db: asyncpg.Pool
    redis: aioredis.Redis  # connects on first use: a service that never uses it costs nothing
    keys: Keys


@contextlib.asynccontextmanager
async def open_storage(common: CommonSettings) -> AsyncIterator[Storage]:
    db = await connect_pool(common.database_url, common.db_schema)
    redis = connect_redis(common.redis_url)
    try:
        yield Storage(db, redis, Keys(common.redis_prefix))
    finally:
        await redis.aclose()
        await db.close()
