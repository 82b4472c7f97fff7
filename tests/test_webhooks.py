"""The graded-session webhook, received by a real HTTP server: signed (the receiver checks
the HMAC and its timestamp), retried with backoff when the receiver fails, given up after
VIBE_WEBHOOK_MAX_ATTEMPTS, and durable across a gateway restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.support.stack import REFERENCE, Stack, StartStack, new_candidate
from vibe.platform.config import ConfigError, GatewaySettings
from vibe.services.gateway.webhooks import SIGNATURE_HEADER, verify_signature
from vibe_dev.stack import free_port

SECRET = secrets.token_hex(32)


@dataclass
class Receiver:
    """Answers `fail_first` deliveries with 500, then 200; keeps what it received."""

    fail_first: int = 0
    received: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)
    got_one: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = verify_signature(SECRET, request.headers.get(SIGNATURE_HEADER, ""), body)
        self.received.append((dict(request.headers), body, valid))
        if not valid:
            return web.Response(status=401)
        if len(self.received) <= self.fail_first:
            return web.Response(status=500)
        self.got_one.set()
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver, port: int = 0) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{bound}/hook"
    finally:
        await runner.cleanup()


def _webhook_env(url: str, **extra: str) -> dict[str, str]:
    return {
        "VIBE_WEBHOOK_URLS": url,
        "VIBE_WEBHOOK_SECRET": SECRET,
        "VIBE_WEBHOOK_BACKOFF_BASE_S": "0.1",
        "VIBE_WEBHOOK_POLL_S": "0.1",
        **extra,
    }


async def _outbox(stack: Stack) -> list[dict[str, object]]:
    conn = await stack.db()
    try:
        return [dict(r) for r in await conn.fetch("SELECT * FROM webhook_outbox ORDER BY id")]
    finally:
        await conn.close()


async def _until(condition: object, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_graded_session_is_announced_signed_and_retried(start_stack: StartStack) -> None:
    receiver = Receiver(fail_first=2)
    async with receiving(receiver) as url, start_stack(**_webhook_env(url)) as stack:
        candidate = await new_candidate(stack)
        await candidate.chat("Which data structure helps here?")
        report = (await candidate.submit(REFERENCE))[-1].report
        await asyncio.wait_for(receiver.got_one.wait(), 30)
        assert len(receiver.received) == 3 and all(valid for _, _, valid in receiver.received)
        headers = [h for h, _, _ in receiver.received]
        assert [h["X-Vibe-Delivery-Attempt"] for h in headers] == ["1", "2", "3"]
        assert len({h["X-Vibe-Event-Id"] for h in headers}) == 1, "one event, retried"
        event = json.loads(receiver.received[-1][1])
        assert event["type"] == "session.graded" and event["id"] == headers[0]["X-Vibe-Event-Id"]
        data = event["data"]
        assert data["session_id"] == candidate.session_id and data["candidate_id"] == "cand-1"
        assert data["grade"] == report.scores.grade and data["total_score"] == pytest.approx(report.scores.total_score)
        assert data["api_key_id"] == stack.api_key.split("_")[1]

        async def delivered() -> bool:
            rows = await _outbox(stack)
            return bool(rows) and rows[0]["delivered_at"] is not None

        await _until(delivered)
        (row,) = await _outbox(stack)
        assert row["attempts"] == 3 and row["last_error"] == "" and row["gave_up_at"] is None
        # A tampered body or an old signature does not verify: what the receiver relies on.
        header, body, _ = receiver.received[-1]
        assert not verify_signature(SECRET, header[SIGNATURE_HEADER], body.replace(b"cand-1", b"cand-2"))
        assert not verify_signature(SECRET, header[SIGNATURE_HEADER], body, now=time.time() + 3600)
        # A second submit returns the stored report and announces nothing new.
        await candidate.submit(REFERENCE)
        await asyncio.sleep(0.5)
        assert len(await _outbox(stack)) == 1 and len(receiver.received) == 3


async def test_deliveries_are_given_up_after_the_last_attempt(start_stack: StartStack) -> None:
    receiver = Receiver(fail_first=1000)
    async with receiving(receiver) as url, start_stack(**_webhook_env(url, VIBE_WEBHOOK_MAX_ATTEMPTS="3")) as stack:
        candidate = await new_candidate(stack)
        await candidate.submit(REFERENCE)

        async def given_up() -> bool:
            rows = await _outbox(stack)
            return bool(rows) and rows[0]["gave_up_at"] is not None

        await _until(given_up)
        (row,) = await _outbox(stack)
        assert row["attempts"] == 3 and row["delivered_at"] is None and "HTTP 500" in str(row["last_error"])
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 3, "no attempt after giving up"


async def test_a_delivery_survives_a_gateway_restart(start_stack: StartStack) -> None:
    """The receiver is down while the first gateway runs (connection refused, retried with
    backoff); a new gateway on the same database delivers the stored event."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    env = _webhook_env(url, VIBE_WEBHOOK_BACKOFF_BASE_S="0.2")
    async with start_stack(**env) as stack:
        candidate = await new_candidate(stack)
        await candidate.submit(REFERENCE)

        async def tried() -> bool:
            rows = await _outbox(stack)
            return bool(rows) and int(rows[0]["attempts"]) >= 1  # type: ignore[call-overload]

        await _until(tried)
        (row,) = await _outbox(stack)
        assert row["delivered_at"] is None and "127.0.0.1" in str(row["last_error"])
    receiver = Receiver()
    async with receiving(receiver, port), start_stack(**env) as stack:
        await asyncio.wait_for(receiver.got_one.wait(), 30)
        event = json.loads(receiver.received[-1][1])
        assert event["data"]["session_id"] == candidate.session_id and receiver.received[-1][2]


def test_webhook_urls_need_the_secret() -> None:
    base = {"VIBE_SERVICE_SECRET": "s" * 32, "VIBE_WEBHOOK_URLS": "http://127.0.0.1:9/hook"}
    with pytest.raises(ConfigError, match="VIBE_WEBHOOK_SECRET is not set"):
        GatewaySettings.from_env(base)
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        GatewaySettings.from_env({**base, "VIBE_WEBHOOK_URLS": "ftp://x/y", "VIBE_WEBHOOK_SECRET": SECRET})
    assert GatewaySettings.from_env({**base, "VIBE_WEBHOOK_SECRET": SECRET}).access.webhook_urls == (
        "http://127.0.0.1:9/hook",
    )
