"""Which LLM errors are worth another attempt, and how long to wait before it.

The SDK's own retries are switched off (see `gemini.py`): they ignore the server's
RetryInfo / Retry-After and know nothing of our deadline or the shared rate limiter.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from google.genai import errors as genai_errors

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")  # google.protobuf.Duration as JSON: "2s", "0.5s"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_s: float  # first backoff
    max_s: float  # cap of one backoff

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter" after the `attempt`-th failure (1-based):
        at least half the exponential step, so retries spread out but never bunch at 0."""
        step = min(self.max_s, self.base_s * 2 ** (attempt - 1))
        return float(step / 2 + random.uniform(0, step / 2))


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, genai_errors.APIError):
        return exc.code in RETRYABLE_STATUS
    # Connection refused/reset, a broken body, a stalled request.
    return isinstance(exc, (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError))


def server_retry_delay(exc: BaseException) -> float | None:
    """The wait the server asked for: RetryInfo.retryDelay in the error body, else a
    Retry-After header (seconds or an HTTP date)."""
    if not isinstance(exc, genai_errors.APIError):
        return None
    body: Any = exc.details
    details = body.get("error", body).get("details", []) if isinstance(body, dict) else []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    headers = getattr(exc.response, "headers", None)
    raw = headers.get("Retry-After") if headers is not None else None
    if not raw:
        return None
    if raw.strip().isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
