"""The shared limiter's token budget (vibe/llm/ratelimit.py), against Redis: the
running total of the window's tokens follows admissions, settlements and expiry, and
stays cheap however many requests the window holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from vibe.llm.ratelimit import RateLimitWait, SharedRateLimiter
from vibe.platform.hot_state import connect_redis
from vibe_dev.scratch import REDIS_URL


@pytest.fixture
async def limiter() -> AsyncIterator[SharedRateLimiter]:
    redis = connect_redis(REDIS_URL)
    limiter = SharedRateLimiter(redis, f"t:{uuid.uuid4().hex[:8]}:", "m", rpm=1000, tpm=1000, window_s=1.0)
    try:
        yield limiter
    finally:
        await redis.delete(*limiter.keys)
        await redis.aclose()


def soon(seconds: float = 0.3) -> float:
    return time.monotonic() + seconds


async def used(limiter: SharedRateLimiter) -> int:
    return int(await limiter.redis.get(limiter.keys[3]) or 0)


async def test_admissions_settlements_and_expiry_keep_the_total(limiter: SharedRateLimiter) -> None:
    first = await limiter.acquire(600, soon())
    with pytest.raises(RateLimitWait):  # 600 + 600 > 1000 tokens in the window
        await limiter.acquire(600, soon())
    await limiter.settle(first, 100)  # the real count replaces the estimate
    assert await used(limiter) == 100
    second = await limiter.acquire(600, soon())
    assert await used(limiter) == 700
    await limiter.settle(second, 900)
    assert await used(limiter) == 1000
    with pytest.raises(RateLimitWait):
        await limiter.acquire(1, soon())
    # Both leave the window: the next request finds it empty.
    await limiter.acquire(800, soon(3.0))
    assert await used(limiter) == 800
    await limiter.settle("not-a-ticket", 500)  # unknown or expired: changes nothing
    assert await used(limiter) == 800


async def test_a_request_alone_in_its_window_goes_whatever_its_size(limiter: SharedRateLimiter) -> None:
    await limiter.acquire(5000, soon())
    assert await used(limiter) == 1000  # counted as the whole budget, as before
    await asyncio.sleep(1.05)
    await limiter.acquire(10, soon())
    assert await used(limiter) == 10


async def test_admission_does_not_grow_with_the_window() -> None:
    redis = connect_redis(REDIS_URL)
    limiter = SharedRateLimiter(redis, f"t:{uuid.uuid4().hex[:8]}:", "m", rpm=10**6, tpm=10**12, window_s=60)
    try:
        # 10,000 requests already in the window (written directly: admitting them one by
        # one would take seconds).
        now_ms = int(time.time() * 1000)
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zadd(limiter.keys[0], {f"r{i}": now_ms for i in range(10_000)})
            pipe.hset(limiter.keys[1], mapping={f"r{i}": 500 for i in range(10_000)})
            pipe.set(limiter.keys[3], 10_000 * 500)
            await pipe.execute()
        times = []
        for _ in range(21):
            started = time.perf_counter()
            await limiter.acquire(500, soon(5.0))
            times.append(time.perf_counter() - started)
        assert await used(limiter) == 10_021 * 500
        median = sorted(times)[10]
        # ~0.25 ms, the round trip; summing the hash on every admission took ~4 ms here.
        assert median < 0.002, f"{median * 1000:.2f} ms per admission"
    finally:
        await redis.delete(*limiter.keys)
        await redis.aclose()
