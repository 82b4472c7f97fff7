"""Wiring of the gateway: storage, channels to the other services, the gRPC API and
the candidates' HTTP API and page."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from vibe.platform.config import GatewaySettings
from vibe.platform.server import Registration, ServiceBundle, serving
from vibe.platform.storage import open_storage
from vibe.services.gateway.clients import Upstreams
from vibe.services.gateway.core import Gateway
from vibe.services.gateway.http_api import serve_http
from vibe.services.gateway.review_servicer import ApiKeyServicer, ReviewServicer
from vibe.services.gateway.servicer import GatewayServicer
from vibe.services.gateway.store import GatewayStore
from vibe.services.gateway.webhooks import WebhookDeliverer, outbox_graded
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc, review_pb2, review_pb2_grpc

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name
REVIEW_NAME = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name
KEYS_NAME = review_pb2.DESCRIPTOR.services_by_name["ApiKeyService"].full_name


@contextlib.asynccontextmanager
async def gateway_app(settings: GatewaySettings) -> AsyncIterator[ServiceBundle]:
    upstreams = Upstreams.connect(
        settings.tutor_addr, settings.evaluator_addr, settings.scoring_addr, settings.service_secret
    )
    try:
        async with open_storage(settings.common) as storage, contextlib.AsyncExitStack() as http:
            webhooks = WebhookDeliverer(storage.db, settings.access)

            async def on_graded(
                conn: PoolConnectionProxy[asyncpg.Record], session_id: str, report: dict[str, Any]
            ) -> None:
                await outbox_graded(conn, session_id, report, settings.access.webhook_urls)
                webhooks.wake()

            store = GatewayStore(storage.db, storage.redis, storage.keys, on_graded=on_graded)
            if settings.access.webhook_urls:
                webhooks.start()
                http.push_async_callback(webhooks.stop)
            gateway = Gateway.create(settings, store, storage.redis, storage.keys, upstreams)
            endpoints = {}
            if settings.http_addr:
                port = await http.enter_async_context(
                    serve_http(gateway, settings.http_addr, settings.http_request_timeout_s)
                )
                endpoints["http"] = f"{settings.http_addr.rpartition(':')[0]}:{port}"
            yield serving(
                "gateway",
                settings,
                Registration(SERVICE_NAME, gateway_pb2_grpc.add_GatewayServicer_to_server, GatewayServicer(gateway)),
                Registration(REVIEW_NAME, review_pb2_grpc.add_ReviewServiceServicer_to_server, ReviewServicer(gateway)),
                Registration(KEYS_NAME, review_pb2_grpc.add_ApiKeyServiceServicer_to_server, ApiKeyServicer(gateway)),
                endpoints=endpoints,
            )
    finally:
        await upstreams.close()
