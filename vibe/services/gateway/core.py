"""The gateway's decisions, one module per concern, shared by its two edges (the gRPC
servicer and the HTTP API, both thin translations):

- `sessions.py`: creating a session and its token, authorising every later call;
- `chat.py`: one chat turn, numbered, streamed, stored and queued for evaluation;
- `submit.py`: the submit guard of docs/DESIGN.md §5 and the stored report.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from vibe.platform.config import GatewaySettings
from vibe.platform.hot_state import Keys
from vibe.services.gateway.chat import Chat
from vibe.services.gateway.clients import Upstreams
from vibe.services.gateway.sessions import GatewayParts, Sessions
from vibe.services.gateway.store import GatewayStore
from vibe.services.gateway.submit import SubmitGuard


@dataclass(frozen=True)
class Gateway:
    sessions: Sessions
    chat: Chat
    submit: SubmitGuard

    @classmethod
    def create(
        cls, settings: GatewaySettings, store: GatewayStore, redis: aioredis.Redis, keys: Keys, upstreams: Upstreams
    ) -> Gateway:
        sessions = Sessions(store, upstreams)
        parts = GatewayParts(settings, store, redis, keys, upstreams, sessions)
        return cls(sessions=sessions, chat=Chat(**vars(parts)), submit=SubmitGuard(**vars(parts)))
