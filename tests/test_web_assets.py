"""How the gateway serves the pages' files: the built bundle with a validator (a reload costs a
304), everything from the gateway itself (no CDN), and a clear 503 instead of a page that cannot
work when the bundle was never built."""

from __future__ import annotations

import gzip
import re
import shutil
from pathlib import Path
from typing import cast

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from tests.support.stack import Stack
from vibe.services.gateway.core import Gateway
from vibe.services.gateway.http_api import WEB_DIR, make_http_app


async def test_the_pages_and_their_bundle_are_served_from_the_gateway(stack: Stack) -> None:
    base = f"http://{stack.addrs.http}"
    async with aiohttp.ClientSession() as http:
        for page, marker in (("/", 'data-page="candidate"'), ("/review", 'data-page="reviewer"')):
            async with http.get(base + page) as r:
                html = await r.text()
            assert r.status == 200 and r.content_type == "text/html" and marker in html
            # Every script, style and image the page loads is the gateway's own (or inline data).
            for url in re.findall(r'(?:src|href)="([^"]*)"', html):
                assert url.startswith(("/", "#", "data:")), f"{page} loads {url} from elsewhere"
        async with http.get(base + "/static/app.js") as r:
            bundle = await r.read()
            etag = r.headers["ETag"]
        assert r.status == 200 and r.content_type == "text/javascript" and len(bundle) > 100_000
        assert bundle == (Path(str(WEB_DIR)) / "static" / "app.js").read_bytes()
        async with http.get(base + "/static/app.js", headers={"If-None-Match": etag}) as r:
            assert r.status == 304 and not await r.read()
        async with http.get(base + "/static/app.js", headers={"Accept-Encoding": "gzip"}, auto_decompress=False) as r:
            compressed = await r.read()
        assert r.headers["Content-Encoding"] == "gzip" and gzip.decompress(compressed) == bundle
        assert len(compressed) < len(bundle) / 2
        async with http.get(base + "/static/style.css") as r:
            assert r.status == 200 and r.content_type == "text/css" and "@media print" in await r.text()


async def test_a_gateway_without_the_bundle_says_so(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    for name in ("index.html", "review.html", "style.css"):
        shutil.copy(Path(str(WEB_DIR)) / name, web / name)
    # The page routes never reach the gateway's core, so none is needed to serve them.
    app = make_http_app(cast(Gateway, None), web)
    async with TestClient(TestServer(app)) as client:
        for page in ("/", "/review"):
            r = await client.get(page)
            text = await r.text()
            assert r.status == 503 and "was not built" in text and "make setup" in text, text
        r = await client.get("/static/app.js")
        error = (await r.json())["error"]
        assert r.status == 503 and error["code"] == "UNAVAILABLE" and "make setup" in error["message"]
        r = await client.get("/static/style.css")
        assert r.status == 200
