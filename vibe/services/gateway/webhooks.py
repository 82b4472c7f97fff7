"""The "session graded" webhook (VIBE_WEBHOOK_URLS): signed, retried, durable.

Durable: the deliveries are rows of `webhook_outbox`, written in the transaction that
stores the report (`outbox_graded`, the store's `on_graded` hook), so a graded session
always has its deliveries and a delivery never announces a report that was not stored.
A background task of the gateway (`WebhookDeliverer`) posts them; any gateway replica
may, each claiming rows with a lease (`FOR UPDATE SKIP LOCKED`, then `next_attempt_at`
pushed past the request's timeout), so a gateway that dies mid-delivery leaves the row
to another after the lease.

Retried: anything but a 2xx (or no answer within VIBE_WEBHOOK_TIMEOUT_S) is tried again
after an exponential backoff with jitter (VIBE_WEBHOOK_BACKOFF_BASE_S doubling up to
VIBE_WEBHOOK_BACKOFF_MAX_S), until VIBE_WEBHOOK_MAX_ATTEMPTS; then the row is marked
`gave_up_at`, with the last error. A receiver may see an event twice (its 2xx lost):
`X-Vibe-Event-Id` is the same on every attempt.

Signed: `X-Vibe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>` keyed
with VIBE_WEBHOOK_SECRET. A receiver recomputes it over the raw body and rejects a
mismatch or a `t` far from its clock (`verify_signature` does both).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from vibe.platform.config import AccessSettings

log = logging.getLogger(__name__)

EVENT_GRADED = "session.graded"
SIGNATURE_HEADER = "X-Vibe-Signature"
SIGNATURE_TOLERANCE_S = 300
_CLAIM_BATCH = 16


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """What a receiver does: the header's MAC matches the body, and its time is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > SIGNATURE_TOLERANCE_S:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, header.strip())


async def outbox_graded(
    conn: PoolConnectionProxy[asyncpg.Record], session_id: str, report: dict[str, Any], urls: tuple[str, ...]
) -> None:
    """Queues the "session graded" event for every URL, on the report's transaction."""
    if not urls:
        return
    session = await conn.fetchrow(
        "SELECT candidate_id, problem_id, api_key_id FROM sessions WHERE session_id = $1", session_id
    )
    assert session is not None
    scores = report.get("scores", {})
    event_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "id": event_id,
            "type": EVENT_GRADED,
            "created_at": datetime.now(UTC).isoformat(),
            "data": {
                "session_id": session_id,
                "candidate_id": session["candidate_id"],
                "problem_id": session["problem_id"],
                "api_key_id": session["api_key_id"] or "",
                "grade": scores.get("grade", ""),
                "total_score": scores.get("total_score", 0.0),
                "graded_at": report.get("graded_at", ""),
            },
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    await conn.executemany(
        "INSERT INTO webhook_outbox (event_id, url, body) VALUES ($1, $2, $3)",
        [(event_id, url, body) for url in urls],
    )


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: str
    url: str
    body: str
    attempt: int


class WebhookDeliverer:
    """Posts the outbox's due deliveries until stopped."""

    def __init__(self, db: asyncpg.Pool, settings: AccessSettings):
        self.db = db
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look at the outbox now (a report was just stored) rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    due = await self._claim()
                    await asyncio.gather(*(self._deliver(http, d) for d in due))
                except (OSError, asyncpg.PostgresError) as exc:  # PostgreSQL away: the rows wait for the next poll
                    log.warning("webhook outbox unavailable: %s", exc)
                    due = []
                if len(due) < _CLAIM_BATCH:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.settings.webhook_poll_s)
                    self._wake.clear()

    async def _claim(self) -> list[Delivery]:
        lease_s = self.settings.webhook_timeout_s + 5
        rows = await self.db.fetch(
            """
            UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
            WHERE id IN (SELECT id FROM webhook_outbox
                         WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
                         ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING id, event_id, url, body, attempts
            """,
            _CLAIM_BATCH,
            lease_s,
        )
        return [Delivery(r["id"], r["event_id"], r["url"], r["body"], r["attempts"]) for r in rows]

    async def _deliver(self, http: aiohttp.ClientSession, d: Delivery) -> None:
        body = d.body.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "vibe-webhooks/1",
            "X-Vibe-Event": EVENT_GRADED,
            "X-Vibe-Event-Id": d.event_id,
            "X-Vibe-Delivery-Attempt": str(d.attempt),
            SIGNATURE_HEADER: signature(self.settings.webhook_secret, int(time.time()), body),
        }
        try:
            async with http.post(d.url, data=body, headers=headers) as response:
                if 200 <= response.status < 300:
                    await self.db.execute(
                        "UPDATE webhook_outbox SET delivered_at = now(), last_error = '' WHERE id = $1", d.id
                    )
                    log.info("webhook delivered", extra={"event_id": d.event_id, "attempt": d.attempt})
                    return
                error = f"HTTP {response.status} from {d.url}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__} posting to {d.url}: {exc}"
        await self._failed(d, error)

    async def _failed(self, d: Delivery, error: str) -> None:
        s = self.settings
        if d.attempt >= s.webhook_max_attempts:
            await self.db.execute(
                "UPDATE webhook_outbox SET gave_up_at = now(), last_error = $2 WHERE id = $1", d.id, error
            )
            log.error("webhook given up", extra={"event_id": d.event_id, "attempts": d.attempt, "error": error})
            return
        delay = min(s.webhook_backoff_max_s, s.webhook_backoff_base_s * 2 ** (d.attempt - 1))
        delay *= random.uniform(0.75, 1.0)  # replicas and events failing together do not retry together
        await self.db.execute(
            "UPDATE webhook_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3"
            " WHERE id = $1",
            d.id,
            delay,
            error,
        )
        log.warning("webhook failed; will retry", extra={"event_id": d.event_id, "attempt": d.attempt, "error": error})
