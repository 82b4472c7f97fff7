"""Wiring of the gateway: storage, channels to the other services, the gRPC API and
the candidates' HTTP API and page."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vibe.platform.config import GatewaySettings
from vibe.platform.db import connect_pool
from vibe.platform.hot_state import Keys, connect_redis
from vibe.platform.server import Registration, ServiceBundle
from vibe.services.gateway.clients import Upstreams
from vibe.services.gateway.core import Gateway
from vibe.services.gateway.http_api import serve_http
from vibe.services.gateway.servicer import GatewayServicer
from vibe.services.gateway.store import GatewayStore
from vibe_api.gateway.v1 import gateway_pb2, gateway_pb2_grpc

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["Gateway"].full_name


@contextlib.asynccontextmanager
async def gateway_app(settings: GatewaySettings) -> AsyncIterator[ServiceBundle]:
    common = settings.common
    db = await connect_pool(common.database_url, common.db_schema)
    redis = connect_redis(common.redis_url)
    keys = Keys(common.redis_prefix)
    upstreams = Upstreams.connect(settings.tutor_addr, settings.evaluator_addr, settings.scoring_addr)
    gateway = Gateway(settings, GatewayStore(db, redis, keys), redis, keys, upstreams)
    try:
        endpoints = {}
        async with contextlib.AsyncExitStack() as http:
            if settings.http_addr:
                port = await http.enter_async_context(serve_http(gateway, settings.http_addr))
                endpoints["http"] = f"{settings.http_addr.rpartition(':')[0]}:{port}"
            yield ServiceBundle(
                name="gateway",
                addr=settings.addr,
                registrations=[
                    Registration(SERVICE_NAME, gateway_pb2_grpc.add_GatewayServicer_to_server, GatewayServicer(gateway))
                ],
                grace_s=common.shutdown_grace_s,
                endpoints=endpoints,
            )
    finally:
        await upstreams.close()
        await redis.aclose()
        await db.close()
