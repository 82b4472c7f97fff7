"""The OpenAPI description of the HTTP API: a valid OpenAPI 3.1 document, served by the
gateway, listing exactly the routes the gateway serves; and a property-based test that
sends it a few hundred generated requests (schemathesis, from the document) and finds
no 5xx."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import hypothesis
import requests
import schemathesis
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.core.result import Err

from tests.support.stack import REFERENCE, Stack, new_candidate
from vibe.services.gateway.core import Gateway
from vibe.services.gateway.http_api import make_http_app
from vibe.services.gateway.openapi import document

EXAMPLES_PER_OPERATION = 25
HOSTILE = st.one_of(
    st.just(""),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=3),
    st.sampled_from(["\x00", "\ud800", "\udfff", "\x7f"]),
)
BUDGET_S = 240  # the whole run stops generating after this, whatever is left


def test_the_document_is_valid_openapi_31() -> None:
    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_the_document_lists_exactly_the_served_routes() -> None:
    app = make_http_app(Gateway.__new__(Gateway))  # routes only; no request is served
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(method, path) for path, ops in document()["paths"].items() for method in ops}
    assert served == documented, f"served only: {served - documented}; documented only: {documented - served}"


async def test_the_gateway_serves_its_document(stack: Stack) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"http://{stack.addrs.http}/api/openapi.json") as r:
        assert r.status == 200 and await r.json() == document()


def _fuzz(base_url: str, api_key: str, session_ids: list[str], tokens: list[str]) -> tuple[int, list[str]]:
    """Generated requests to every operation (synchronous: schemathesis calls with requests,
    so this runs in a thread while the stack serves in the event loop)."""
    schema = schemathesis.openapi.from_dict(document())
    failures: list[str] = []
    sent = 0
    deadline = time.monotonic() + BUDGET_S
    session = requests.Session()
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()  # the document itself is wrong: fail, never fuzz less
        operation = result.ok()

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy(), credential=st.integers(0, 3), real=st.booleans(), noise=HOSTILE)
        def one(case: Any, credential: int, real: bool, noise: str) -> None:
            nonlocal sent
            if time.monotonic() > deadline:
                return
            # Text no field may hold (NUL, other control characters, lone surrogates), which the
            # generator seldom draws by itself, appended to every string of the body.
            if noise and isinstance(case.body, dict):
                case.body = {k: v + noise if isinstance(v, str) else v for k, v in case.body.items()}
            # Half the requests aim at a real session (path ids would never match by chance),
            # with each kind of credential: none, the backend key, its session token, a wrong one.
            if real and "session_id" in (case.path_parameters or {}):
                case.path_parameters["session_id"] = random.Random(sent).choice(session_ids)
            headers = [
                {},
                {"X-API-Key": api_key},
                {"Authorization": f"Bearer {random.Random(sent).choice(tokens)}"},
                {"Authorization": "Bearer vk_000000000000_wrongwrongwrongwrong"},
            ][credential]
            response = case.call(base_url=base_url, headers=headers, session=session, timeout=60)
            sent += 1
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {case.method} {case.formatted_path}: {response.text[:300]}")

        one()
    return sent, failures


async def test_generated_requests_find_no_server_error(stack: Stack) -> None:
    candidates = [await new_candidate(stack, candidate_id=f"fuzz-{i}") for i in range(3)]
    graded = candidates[0]
    await graded.chat("Which data structure helps?")
    await graded.submit(REFERENCE)
    sent, failures = await asyncio.to_thread(
        _fuzz,
        f"http://{stack.addrs.http}",
        stack.api_key,
        [c.session_id for c in candidates],
        [c.token for c in candidates],
    )
    print(f"{sent} generated requests")
    assert sent >= 200, f"only {sent} requests were generated"
    assert not failures, "\n".join(failures)
