"""A local HTTP server that speaks enough of the Gemini REST API for the real
google-genai SDK: `POST /{version}/models/{model}:generateContent`,
`:streamGenerateContent?alt=sse` and `:countTokens`, with Gemini's error bodies.

Tests run it in process and script it: queued replies (`script`), a default judge that
answers every structured request with valid JSON for its schema, latency, 429 storms,
503s, streams that break in the middle, fenced or truncated JSON, a tutor reply that
repeats its system instruction verbatim (`Reply(leak_system=...)`). It records every
request (arrival time, path, body) and every stream the client closed before the end.

`python -m vibe_dev.fake_gemini --latency-ms 50` runs it alone with its default replies
and prints its URL: for the benchmark (its own process, so its work does not load the
services' event loop) and for a demo without a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from vibe.llm.base import CRITERIA, HOLISTIC_CRITERIA

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
THOUGHTS_TOKENS = 7  # every successful reply "thought" this much, so thinking tokens show up


@dataclass
class Reply:
    """One scripted answer. For streams, `chunks` are sent one SSE event each."""

    status: int = 200
    text: str = ""
    chunks: tuple[str, ...] = ()
    finish_reason: str = "STOP"
    retry_delay_s: float | None = None  # RetryInfo in the error body
    retry_after_s: float | None = None  # Retry-After header
    break_after: int | None = None  # stream: drop the connection after this many chunks
    latency_s: float | None = None  # overrides the server's latency for this reply
    # A model that gives its instructions away: the stream is this text with "{system}"
    # replaced by the request's system instruction, verbatim, in 40-character chunks.
    leak_system: str = ""


@dataclass
class Recorded:
    at: float  # time.monotonic() on arrival
    version: str
    model: str
    action: str  # generateContent | streamGenerateContent | countTokens
    body: dict[str, Any]
    headers: dict[str, str]
    first_chunk_at: float | None = None  # time.monotonic() when a stream's first chunk was written

    @property
    def system(self) -> str:
        parts = (self.body.get("systemInstruction") or {}).get("parts", [])
        return "".join(p.get("text", "") for p in parts)

    @property
    def prompt(self) -> str:
        return "\n".join(p.get("text", "") for c in self.body.get("contents", []) for p in c.get("parts", []))

    @property
    def schema(self) -> dict[str, Any]:
        return (self.body.get("generationConfig") or {}).get("responseJsonSchema") or {}

    @property
    def thinking_budget(self) -> int | None:
        """generationConfig.thinkingConfig.thinkingBudget; the SDK sends the proto field
        name (thinking_budget), which the API's JSON parsing accepts as well."""
        config = (self.body.get("generationConfig") or {}).get("thinkingConfig") or {}
        budget = config.get("thinkingBudget", config.get("thinking_budget"))
        return int(budget) if budget is not None else None

    @property
    def purpose(self) -> str:
        props = self.schema.get("properties", {})
        if "intent" in props:
            return "turn_evaluation"
        if "criteria" in props:
            return "holistic_evaluation"
        if "violation" in props:
            return "guardrail"
        if "summary" in props:
            return "conversation_summary"
        return "tutor_reply" if self.action == "streamGenerateContent" else "other"


def default_turn_judgement(request: Recorded | None = None) -> dict[str, Any]:
    """A turn judgement; with the conversation's holistic judgement too when the request's
    schema asks for it (one call judging both, vibe/llm/judge_output.py)."""
    answer: dict[str, Any] = {
        "intent": "hint_query",
        "rubrics": [{"criterion": c, "score": 72, "reason": f"{c} is fine"} for c in CRITERIA],
        "user_prompt_summary": "asks for a hint",
        "llm_answer_summary": "a guiding question",
        "llm_answer_reasoning": "stayed Socratic",
        "final_reasoning": "a clear, focused request",
    }
    if request is not None and "holistic" in request.schema.get("properties", {}):
        answer["holistic"] = default_holistic(request)
    return answer


def default_holistic(request: Recorded | None = None) -> dict[str, Any]:
    return {
        "criteria": [{"criterion": c, "score": 70, "evidence": "turns 1 and 2"} for c in HOLISTIC_CRITERIA],
        "summary": "A reasonable strategy.",
    }


def default_guardrail(request: Recorded) -> dict[str, Any]:
    return {"violation": "none", "reason": "asks for help with the problem"}


def default_summary(request: Recorded) -> dict[str, Any]:
    """Names the turns it was given, so a test can tell which turns a summary covers."""
    turns = sorted({int(t) for t in re.findall(r"Turn (\d+), candidate", request.prompt)})
    covered = f"turns {turns[0]}-{turns[-1]}" if turns else "no turns"
    return {
        "summary": f"Summary of {covered}: the candidate asked about the approach; the tutor asked guiding questions."
    }


DEFAULT_REPLY_CHUNKS = ("What do you ", "already know about ", "the inputs? ", "Which step is ", "the hard one?")


@dataclass
class FakeGemini:
    latency_s: float = 0.0  # before the first byte of every answer
    chunk_delay_s: float = 0.0  # between stream chunks
    reply_chunks: tuple[str, ...] = DEFAULT_REPLY_CHUNKS
    judges: dict[str, Callable[[Recorded], dict[str, Any]]] = field(
        default_factory=lambda: {
            "turn_evaluation": default_turn_judgement,
            "holistic_evaluation": default_holistic,
            "guardrail": default_guardrail,
            "conversation_summary": default_summary,
        }
    )
    storm: Reply | None = None  # when set, every request gets this error
    requests: list[Recorded] = field(default_factory=list)
    closed_by_client: list[float] = field(default_factory=list)  # when a client left a stream early
    _client_left: asyncio.Event = field(default_factory=asyncio.Event)
    stream_ends: list[float] = field(default_factory=list)  # when a stream was fully written
    first_chunk_at: list[float] = field(default_factory=list)  # when each stream's first chunk was written
    chunk_written_at: list[float] = field(default_factory=list)  # when each stream chunk was written (all streams)
    _scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    url: str = ""

    def script(self, purpose: str, *replies: Reply) -> None:
        """Answers the next requests of `purpose` (see Recorded.purpose) with these."""
        self._scripts.setdefault(purpose, deque()).extend(replies)

    async def closed_by_client_within(self, seconds: float = 2.0) -> bool:
        """Whether a client left a stream early, waiting up to `seconds`: the server notices
        a closed connection at its next write or pause, a moment after the client closed it."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._client_left.wait(), seconds)
        return bool(self.closed_by_client)

    def of(self, purpose: str) -> list[Recorded]:
        return [r for r in self.requests if r.purpose == purpose]

    async def start(self, port: int = 0) -> str:
        app = web.Application()
        app.router.add_post("/{version}/models/{target}", self._handle)
        app.router.add_get("/_fake/streams", self._streams)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].partition(":")
        body = await request.json()
        rec = Recorded(time.monotonic(), request.match_info["version"], model, action, body, dict(request.headers))
        self.requests.append(rec)
        if action == "countTokens":
            return web.json_response({"totalTokens": _tokens(rec.prompt)})
        reply = self.storm or self._next(rec)
        await asyncio.sleep(self.latency_s if reply.latency_s is None else reply.latency_s)
        if reply.status != 200:
            return _error(reply)
        if action == "streamGenerateContent":
            return await self._stream(request, rec, reply)
        if action != "generateContent":
            return _error(Reply(status=400, text=f"unknown action {action}"))
        return web.json_response(_response(reply.text, reply.finish_reason, rec, final=True))

    async def _streams(self, request: web.Request) -> web.StreamResponse:
        """Not Gemini's: each streamed answer's arrival and first chunk (time.monotonic(),
        which every process of the machine shares) and the end of its last message, so
        that a benchmark can take this server's own time out of each request it timed."""
        return web.json_response(
            [
                {"at": r.at, "first_chunk_at": r.first_chunk_at, "message_tail": _last_text(r)[-200:]}
                for r in self.requests
                if r.action == "streamGenerateContent"
            ]
        )

    def _next(self, rec: Recorded) -> Reply:
        queue = self._scripts.get(rec.purpose)
        if queue:
            return queue.popleft()
        if rec.action == "streamGenerateContent":
            return Reply(chunks=self.reply_chunks)
        judge = self.judges.get(rec.purpose)
        return Reply(text=json.dumps(judge(rec)) if judge else "ok")

    async def _stream(self, request: web.Request, rec: Recorded, reply: Reply) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        chunks = reply.chunks or (reply.text,)
        if reply.leak_system:
            text = reply.leak_system.replace("{system}", rec.system)
            chunks = tuple(text[i : i + 40] for i in range(0, len(text), 40))
        try:
            # (a client gone during the latency is noticed here, when the headers go out)
            await response.prepare(request)
            for i, chunk in enumerate(chunks):
                if i:
                    await self._pause(request, self.chunk_delay_s)
                if reply.break_after is not None and i >= reply.break_after:
                    # A stream that dies in the middle: no final chunk, connection dropped.
                    request.transport.close()  # type: ignore[union-attr]
                    return response
                last = i == len(chunks) - 1
                # The whole text only for the last chunk: joining every prefix is quadratic on long replies.
                event = _response(
                    chunk,
                    reply.finish_reason if last else None,
                    rec,
                    final=last,
                    text_so_far="".join(chunks) if last else "",
                )
                await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
                self.chunk_written_at.append(time.monotonic())
                if i == 0:
                    rec.first_chunk_at = time.monotonic()
                    self.first_chunk_at.append(rec.first_chunk_at)
            await response.write_eof()
            self.stream_ends.append(time.monotonic())
        except (ConnectionResetError, ClientGone):
            self.closed_by_client.append(time.monotonic())
            self._client_left.set()
        return response

    async def _pause(self, request: web.Request, seconds: float) -> None:
        """Sleeps, noticing within 5 ms if the client went away."""
        end = time.monotonic() + seconds
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                raise ClientGone
            left = end - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.005))


class ClientGone(Exception):
    pass


def _last_text(rec: Recorded) -> str:
    """The text of the request's last content (the message being answered)."""
    contents = rec.body.get("contents") or [{}]
    last = contents[-1] if isinstance(contents, list) else {}
    return "".join(p.get("text", "") for p in last.get("parts", [])) if isinstance(last, dict) else ""


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _response(
    text: str, finish_reason: str | None, rec: Recorded, *, final: bool, text_so_far: str = ""
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    event: dict[str, Any] = {"candidates": [candidate], "modelVersion": rec.model}
    if final:  # like Gemini: the usage totals come with the last chunk
        output = _tokens(text_so_far or text)
        prompt = _tokens(rec.system + rec.prompt)
        event["usageMetadata"] = {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "thoughtsTokenCount": THOUGHTS_TOKENS,
            "totalTokenCount": prompt + output + THOUGHTS_TOKENS,
        }
    return event


def _error(reply: Reply) -> web.Response:
    details: list[dict[str, Any]] = []
    if reply.retry_delay_s is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{reply.retry_delay_s:g}s"})
    body = {
        "error": {
            "code": reply.status,
            "message": reply.text or "scripted error",
            "status": STATUS_NAMES.get(reply.status, "UNKNOWN"),
            "details": details,
        }
    }
    headers = {"Retry-After": f"{reply.retry_after_s:g}"} if reply.retry_after_s is not None else None
    return web.json_response(body, status=reply.status, headers=headers)


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeGemini]:
    server = FakeGemini(**options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def fenced(data: dict[str, Any]) -> str:
    return "```json\n" + json.dumps(data, indent=2) + "\n```"


def truncated(data: dict[str, Any]) -> str:
    text = json.dumps(data)
    return text[: len(text) // 2]


async def _serve(port: int, latency_s: float, chunk_delay_s: float) -> None:
    server = FakeGemini(latency_s=latency_s, chunk_delay_s=chunk_delay_s)
    print(await server.start(port), flush=True)  # the URL, for whoever started us
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="A fake Gemini REST server (default replies), for benchmarks and demos."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.latency_ms / 1000, args.chunk_delay_ms / 1000))
