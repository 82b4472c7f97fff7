"""The candidates' HTTP API and page, over a real HTTP connection to the gateway."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.support.stack import REFERENCE, Stack


async def read_sse(response: aiohttp.ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events: list[tuple[str, dict[str, Any]]] = []
    name = ""
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


async def test_candidate_flow_over_http(stack: Stack) -> None:
    base = f"http://{stack.addrs.http}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as page:
            assert page.status == 200 and "Vibe coding test" in await page.text()
        async with http.get(base + "/api/problems") as r:
            problems = (await r.json())["problems"]
        assert {"two-sum", "valid-parentheses"} <= {p["problem_id"] for p in problems}
        assert all("reference" not in json.dumps(p) for p in problems)

        async with http.post(
            base + "/api/sessions",
            json={"candidate_id": "web-1", "problem_id": "two-sum"},
            headers={"X-API-Key": stack.api_key},
        ) as r:
            assert r.status == 201
            created = await r.json()
        sid, auth = created["session"]["session_id"], {"Authorization": f"Bearer {created['session_token']}"}

        async with http.post(
            f"{base}/api/sessions/{sid}/chat", json={"message": "Can you give me a hint?"}, headers=auth
        ) as r:
            events = await read_sse(r)
        names = [n for n, _ in events]
        assert names[0] == "turn_started" and names[-1] == "completed" and names.count("delta") >= 2
        assert "".join(d["text"] for n, d in events if n == "delta") == events[-1][1]["assistant_message"]["content"]

        async with http.post(
            f"{base}/api/sessions/{sid}/submit", json={"language": "python", "code": REFERENCE}, headers=auth
        ) as r:
            events = await read_sse(r)
        assert events[-1][0] == "report"
        report = events[-1][1]
        assert report["scores"]["grade"] in {"A+", "A", "B", "C", "D", "F"}
        async with http.get(f"{base}/api/sessions/{sid}/report", headers=auth) as r:
            assert await r.json() == report
        async with http.get(f"{base}/api/sessions/{sid}", headers=auth) as r:
            session = await r.json()
        assert session["status"] == "SESSION_STATUS_GRADED" and [m["turn"] for m in session["messages"]] == [1, 1]


async def test_http_errors_are_json_with_the_right_status(stack: Stack) -> None:
    base = f"http://{stack.addrs.http}"
    async with aiohttp.ClientSession() as http:
        key = {"Authorization": f"Bearer {stack.api_key}"}
        async with http.post(base + "/api/sessions", data="not json", headers=key) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "INVALID_ARGUMENT"
        async with http.post(
            base + "/api/sessions", json={"candidate_id": "x", "problem_id": "nope"}, headers=key
        ) as r:
            assert r.status == 404 and "nope" in (await r.json())["error"]["message"]
        async with http.post(
            base + "/api/sessions", json={"candidate_id": "x", "problem_id": "two-sum"}, headers=key
        ) as r:
            created = await r.json()
        sid = created["session"]["session_id"]
        async with http.post(f"{base}/api/sessions/{sid}/chat", json={"message": "hi"}) as r:
            assert r.status == 401
        auth = {"Authorization": f"Bearer {created['session_token']}"}
        async with http.post(f"{base}/api/sessions/{sid}/chat", json={"message": ""}, headers=auth) as r:
            assert r.status == 400 and "empty" in (await r.json())["error"]["message"]
        async with http.get(f"{base}/api/sessions/{sid}/report", headers=auth) as r:
            assert r.status == 409
        async with http.get(f"{base}/api/sessions/unknown", headers=auth) as r:
            assert r.status == 404
