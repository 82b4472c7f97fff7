"""The LLM quota as one shared budget: requests and tokens per window, in Redis.

Gemini's quota belongs to the API key, not to a process, so every replica of every
service takes its requests from the same sliding window (a sorted set of admitted
requests and a hash of their token counts). Admission is one Lua script: atomic across
replicas, timed by the Redis server's clock (replicas' clocks may disagree). When the
server answers 429 with a retry delay, `cool_down` pauses every replica for that long
instead of each one finding out for itself.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time

import redis.asyncio as aioredis

from vibe.llm.base import LLMUnavailable

# KEYS: requests (zset id -> admitted at, ms), tokens (hash id -> tokens), cooldown,
# used (the sum of the hash's tokens, kept beside it: summing the hash on every request
# cost the Redis server 2 ms per admission with 5,000 requests in the window, and every
# replica's admissions queue behind one another there).
# ARGV: window_ms, max_requests, max_tokens, id, tokens.
# Returns 0 when admitted, else how many ms to wait before asking again.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cool = redis.call('PTTL', KEYS[3])
if cool > 0 then return cool end
local window = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #expired > 0 then
  local freed = 0
  for _, v in ipairs(redis.call('HMGET', KEYS[2], unpack(expired))) do
    if v then freed = freed + tonumber(v) end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  redis.call('HDEL', KEYS[2], unpack(expired))
  redis.call('DECRBY', KEYS[4], freed)
end
local count = redis.call('ZCARD', KEYS[1])
local used = 0
if count == 0 then
  redis.call('DEL', KEYS[4])  -- an empty window uses nothing, whatever was left over
else
  used = tonumber(redis.call('GET', KEYS[4]) or '0')
end
local tokens = tonumber(ARGV[5])
if count < tonumber(ARGV[2]) and (count == 0 or used + tokens <= tonumber(ARGV[3])) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('HSET', KEYS[2], ARGV[4], tokens)
  redis.call('INCRBY', KEYS[4], tokens)
  redis.call('PEXPIRE', KEYS[1], window)
  redis.call('PEXPIRE', KEYS[2], window)
  redis.call('PEXPIRE', KEYS[4], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""
# The real token count replaces the estimate, if the request is still in the window.
# KEYS: tokens, used.
_SETTLE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('INCRBY', KEYS[2], tonumber(ARGV[2]) - tonumber(old))
end
return 0
"""
# Extend the shared pause, never shorten it.
_COOL_DOWN = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 0
"""


class RateLimitWait(LLMUnavailable):
    """No slot in the shared quota before the call's deadline."""


class SharedRateLimiter:
    def __init__(self, redis: aioredis.Redis, prefix: str, model: str, rpm: int, tpm: int, window_s: float):
        self.redis = redis
        base = f"{prefix}llm:rate:{model}"
        self.keys = (f"{base}:requests", f"{base}:tokens", f"{base}:cooldown", f"{base}:used")
        self.rpm, self.tpm = rpm, tpm
        self.window_ms = max(1, int(window_s * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._settle = redis.register_script(_SETTLE)
        self._cool_down = redis.register_script(_COOL_DOWN)

    async def acquire(self, tokens: int, deadline: float) -> str:
        """Waits for a slot for one request of about `tokens` tokens; returns its ticket
        (for `settle`). Raises RateLimitWait when the slot would come after `deadline`."""
        ticket = secrets.token_hex(8)
        tokens = max(1, min(tokens, self.tpm))  # a huge prompt still goes, alone in its window
        while True:
            wait_ms = int(
                await self._acquire(keys=list(self.keys), args=[self.window_ms, self.rpm, self.tpm, ticket, tokens])
            )
            if wait_ms == 0:
                return ticket
            # A little jitter, so replicas woken by the same expiry do not all ask at once.
            wait_s = wait_ms / 1000 + random.uniform(0, 0.02)
            if time.monotonic() + wait_s >= deadline:
                raise RateLimitWait("the assistant is over its request quota right now; please try again in a minute")
            await asyncio.sleep(wait_s)

    async def settle(self, ticket: str, tokens: int) -> None:
        await self._settle(keys=[self.keys[1], self.keys[3]], args=[ticket, max(0, tokens)])

    async def cool_down(self, seconds: float) -> None:
        """Every replica waits `seconds` before its next request (the server said so)."""
        await self._cool_down(keys=[self.keys[2]], args=[max(1, int(seconds * 1000))])
