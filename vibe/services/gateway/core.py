"""The gateway's decisions, one module per concern, shared by its two edges (the gRPC
servicer and the HTTP API, both thin translations):

- `sessions.py`: creating a session and its token, authorising every later call;
- `chat.py`: one chat turn, numbered, streamed, stored and queued for evaluation;
- `submit.py`: the submit guard of docs/DESIGN.md §5 and the stored report;
- `visible.py`: the candidate's run of the visible tests before a submit; `timing.py`: the
  session's time limit;
- `access.py`: who may call what (backend keys, session tokens), in front of the above
  with the limits (`limits.py`) and the report views (`views.py`); the edges call it;
- `review.py`: the reviewer API; `webhooks.py`: the graded-session webhook.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from vibe.platform.api_keys import ApiKeyStore, KeyRing
from vibe.platform.config import GatewaySettings
from vibe.platform.hot_state import Keys
from vibe.services.gateway.access import Access, GuardedGateway, KeyAdmin
from vibe.services.gateway.chat import Chat
from vibe.services.gateway.clients import Upstreams
from vibe.services.gateway.limits import Limits
from vibe.services.gateway.review import Review, ReviewStore
from vibe.services.gateway.sessions import GatewayParts, Sessions
from vibe.services.gateway.store import GatewayStore
from vibe.services.gateway.submit import SubmitGuard
from vibe.services.gateway.timing import SessionClock
from vibe.services.gateway.views import CandidateReport
from vibe.services.gateway.visible import VisibleTests


@dataclass(frozen=True)
class Gateway:
    sessions: Sessions
    chat: Chat
    submit: SubmitGuard
    guarded: GuardedGateway  # what the edges call
    access: Access
    review: Review
    keys: KeyAdmin
    clock: SessionClock

    @classmethod
    def create(
        cls, settings: GatewaySettings, store: GatewayStore, redis: aioredis.Redis, keys: Keys, upstreams: Upstreams
    ) -> Gateway:
        sessions = Sessions(store, upstreams)
        parts = GatewayParts(settings, store, redis, keys, upstreams, sessions)
        chat, submit = Chat(**vars(parts)), SubmitGuard(**vars(parts))
        key_store = ApiKeyStore(store.db)
        keyring = KeyRing(key_store, settings.access.api_keys)
        access = Access(keyring, sessions)
        review_store = ReviewStore(store.db)
        clock = SessionClock(store, settings.access.session_time_limit_s)
        guarded = GuardedGateway(
            access=access,
            limits=Limits(redis, keys, settings.access),
            sessions=sessions,
            store=store,
            chat_core=chat,
            submit_core=submit,
            review_store=review_store,
            candidate_report=CandidateReport(settings.access.candidate_report),
            visible=VisibleTests(**vars(parts)),
            clock=clock,
        )
        return cls(
            sessions=sessions,
            chat=chat,
            submit=submit,
            guarded=guarded,
            access=access,
            review=Review(review_store, upstreams),
            keys=KeyAdmin(access, key_store, keyring),
            clock=clock,
        )
