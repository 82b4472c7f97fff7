"""gRPC edge of the reviewer and admin APIs (protos/vibe/gateway/v1/review.proto): the
caller's key is checked (access.py), then the core answers (review.py, access.KeyAdmin)."""

from __future__ import annotations

from typing import Any

import grpc

from vibe.platform.api_keys import ApiKey, Scope
from vibe.platform.errors import grpc_errors
from vibe.services.gateway.core import Gateway
from vibe.services.gateway.review import ListFilter
from vibe.services.gateway.servicer import credential
from vibe_api.gateway.v1 import review_pb2, review_pb2_grpc


def api_key_to_pb(key: ApiKey) -> review_pb2.ApiKey:
    pb = review_pb2.ApiKey(
        key_id=key.key_id, name=key.name, scopes=sorted(s.value for s in key.scopes), from_settings=key.from_settings
    )
    if key.created_at is not None:
        pb.created_at.FromDatetime(key.created_at)
    if key.revoked_at is not None:
        pb.revoked_at.FromDatetime(key.revoked_at)
    return pb


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def _reviewer(self, context: grpc.aio.ServicerContext[Any, Any], operation: str) -> None:
        await self.gateway.access.backend(credential(context), Scope.REPORTS_READ, operation)

    async def ListSessions(
        self, request: review_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> review_pb2.ListSessionsResponse:
        async with grpc_errors(context):
            await self._reviewer(context, "ListSessions")
            return await self.gateway.review.list_sessions(ListFilter.from_pb(request))

    async def GetTranscript(
        self, request: review_pb2.GetTranscriptRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> review_pb2.GetTranscriptResponse:
        async with grpc_errors(context):
            await self._reviewer(context, "GetTranscript")
            return await self.gateway.review.transcript(request.session_id)

    async def ExportSession(
        self, request: review_pb2.ExportSessionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> review_pb2.ExportSessionResponse:
        async with grpc_errors(context):
            await self._reviewer(context, "ExportSession")
            return await self.gateway.review.export(request.session_id)

    async def ReleaseReport(
        self, request: review_pb2.ReleaseReportRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> review_pb2.ReleaseReportResponse:
        async with grpc_errors(context):
            await self._reviewer(context, "ReleaseReport")
            return await self.gateway.review.release(request.session_id)


class ApiKeyServicer(review_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, gateway: Gateway):
        self.gateway = gateway

    async def CreateApiKey(
        self, request: review_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> review_pb2.CreateApiKeyResponse:
        async with grpc_errors(context):
            key, plaintext = await self.gateway.keys.create(credential(context), request.name, list(request.scopes))
            return review_pb2.CreateApiKeyResponse(key=api_key_to_pb(key), api_key=plaintext)

    async def ListApiKeys(
        self, request: review_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> review_pb2.ListApiKeysResponse:
        async with grpc_errors(context):
            keys = await self.gateway.keys.list(credential(context))
            return review_pb2.ListApiKeysResponse(keys=[api_key_to_pb(k) for k in keys])

    async def RevokeApiKey(
        self, request: review_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> review_pb2.RevokeApiKeyResponse:
        async with grpc_errors(context):
            key = await self.gateway.keys.revoke(credential(context), request.key_id)
            return review_pb2.RevokeApiKeyResponse(key=api_key_to_pb(key))
