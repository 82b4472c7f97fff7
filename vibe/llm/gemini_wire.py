"""Gemini's REST request and response as plain JSON, sent through google-genai's own
HTTP layer.

The SDK's `generate_content[_stream]` validates the contents and config into pydantic
models and converts them to the wire form on every request (~0.3 ms per content of the
history), and validates every streamed chunk into a `GenerateContentResponse` (~0.3 ms a
chunk): a third of the tutor's CPU per chat turn. Here the request body is built with
dict work from what our prompts hold (text contents, a system instruction and the
generation settings we use) and the answer is read as the JSON it is (text parts,
finishReason, usageMetadata, promptFeedback). Anything else falls back to the SDK's own
conversion, so the body is always what the SDK would send (tests compare both).

The transport stays the client's: its `_build_request` (base URL, API version, API key
header, per-request timeout header), its `_async_request_once` (our aiohttp session,
the mapping of HTTP errors to `APIError`) and its SSE line reader. These are SDK
internals: `WireClient` checks at construction that they are there and look as this
code expects, and refuses to start with a clear error otherwise.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from google import genai
from google.genai import _api_client, _common, _transformers, errors, types
from google.genai import models as genai_models
from google.genai import version as genai_version

# The generation settings written as-is, by their wire (camelCase) names.
_PLAIN_SETTINGS = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_output_tokens": "maxOutputTokens",
    "seed": "seed",
    "response_mime_type": "responseMimeType",
    "response_json_schema": "responseJsonSchema",
}
# Config fields that are not part of the body.
_NOT_IN_BODY = {"http_options"}


class SdkChanged(RuntimeError):
    """google-genai no longer has the internals `WireClient` sends requests through."""


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    output_tokens: int = 0  # candidatesTokenCount
    thinking_tokens: int = 0  # thoughtsTokenCount
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Answer:
    """One generateContent response or one streamed chunk, as far as we read it."""

    text: str | None  # the first candidate's text parts that are not thoughts; None: none
    finish_reason: str  # the first candidate's, "" when it has none
    usage: Usage | None  # usageMetadata (a stream's comes with its last chunk)
    block_reason: str = ""  # promptFeedback.blockReason: the prompt itself was refused


def parse_answer(data: Any) -> Answer:
    """What `GenerateContentResponse` gives for `.text`, the first candidate's
    finish_reason and `.usage_metadata`, read from the response JSON without
    validating it into models."""
    if not isinstance(data, dict):
        return Answer(None, "", None)
    candidates = data.get("candidates")
    text: str | None = None
    finish = ""
    if candidates:
        first = candidates[0] or {}
        finish = str(first.get("finishReason") or "")
        parts = (first.get("content") or {}).get("parts")
        if parts:
            texts = [
                part["text"]
                for part in parts
                if isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("thought") is not True
            ]
            text = "".join(texts) if texts else None
    meta = data.get("usageMetadata")
    usage = (
        Usage(
            prompt_tokens=meta.get("promptTokenCount") or 0,
            output_tokens=meta.get("candidatesTokenCount") or 0,
            thinking_tokens=meta.get("thoughtsTokenCount") or 0,
            total_tokens=meta.get("totalTokenCount") or 0,
        )
        if isinstance(meta, dict)
        else None
    )
    feedback = data.get("promptFeedback")
    block = str(feedback.get("blockReason") or "") if isinstance(feedback, dict) else ""
    return Answer(text, finish, usage, block)


Contents = Sequence[types.Content] | Sequence[types.ContentDict]


def wire_contents(contents: Contents) -> list[dict[str, Any]] | None:
    """Text-only contents in their wire form (the same dicts as the SDK sends); None
    when a content holds anything else (the SDK converts those). Our prompts' contents
    are such dicts already (vibe/llm/prompts.py) and are sent as they are."""
    if all(isinstance(content, dict) and _text_only(content) for content in contents):
        return cast("list[dict[str, Any]]", list(contents))
    wire: list[dict[str, Any]] = []
    for content in contents:
        if isinstance(content, dict):
            return None
        parts: list[dict[str, Any]] = []
        for part in content.parts or ():
            if not part.model_fields_set <= {"text"} or not isinstance(part.text, str):
                return None
            parts.append({"text": part.text})
        wire.append({"parts": parts, "role": content.role} if content.role is not None else {"parts": parts})
    return wire


def _text_only(content: types.ContentDict) -> bool:
    role = content.get("role", "")
    return (
        content.keys() <= {"parts", "role"}
        and isinstance(role, str)
        and all(part.keys() == {"text"} and isinstance(part["text"], str) for part in content.get("parts") or ())
    )


def wire_config(config: types.GenerateContentConfig) -> dict[str, Any] | None:
    """systemInstruction and generationConfig as the SDK writes them, for the settings
    we use; None when the config holds anything else (the SDK converts those)."""
    body: dict[str, Any] = {}
    generation: dict[str, Any] = {}
    for name, value in config:
        if value is None or name in _NOT_IN_BODY:
            continue
        wire_name = _PLAIN_SETTINGS.get(name)
        if wire_name is not None:
            generation[wire_name] = value
        elif name == "system_instruction" and isinstance(value, str):
            body["systemInstruction"] = {"parts": [{"text": value}], "role": "user"}
        elif name == "thinking_config" and value.model_fields_set <= {"thinking_budget"}:
            # The SDK sends the proto field name here (the API accepts both spellings).
            generation["thinkingConfig"] = (
                {"thinking_budget": value.thinking_budget} if value.thinking_budget is not None else {}
            )
        else:
            return None
    if generation:
        body["generationConfig"] = generation
    return body


def sdk_request_body(
    client: genai.Client, model: str, contents: types.ContentListUnionDict, config: types.GenerateContentConfig
) -> dict[str, Any]:
    """The body google-genai itself sends for these contents and config (its
    `_generate_content` conversion, step by step)."""
    api = client._api_client
    parameters = types._GenerateContentParameters(model=model, contents=contents, config=config)
    body = genai_models._GenerateContentParameters_to_mldev(api, parameters, None, parameters)
    body.pop("config", None)
    body = _common.convert_to_dict(body)
    body = _common.encode_unserializable_types(body)
    return {key: value for key, value in body.items() if not key.startswith("_")}


class WireClient:
    """generateContent and streamGenerateContent with JSON bodies, through `client`'s
    HTTP layer."""

    def __init__(self, client: genai.Client, model: str):
        _check_sdk(client)
        self.client = client
        self.api: _api_client.BaseApiClient = client._api_client
        self.model = model
        model_path = _transformers.t_model(self.api, model)
        self._generate_path = f"{model_path}:generateContent"
        self._stream_path = f"{model_path}:streamGenerateContent?alt=sse"

    def body(
        self,
        contents: Contents,
        config: types.GenerateContentConfig,
        *,
        system: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The request body for `contents` and `config`; `system`: the system
        instruction when `config` has none (a config made once for many requests),
        `settings`: `wire_config(config)` when the caller keeps it."""
        wire = wire_contents(contents)
        if settings is None:
            settings = wire_config(config)
        if wire is None or settings is None or (system is not None and "systemInstruction" in settings):
            if system is not None:
                config = config.model_copy(update={"system_instruction": system})
            return sdk_request_body(self.client, self.model, list(contents), config)
        if system is None:
            return {"contents": wire, **settings}
        return {"contents": wire, "systemInstruction": {"parts": [{"text": system}], "role": "user"}, **settings}

    async def generate(self, body: dict[str, Any], http_options: types.HttpOptions) -> Answer:
        request = self.api._build_request("post", self._generate_path, body, http_options)
        response = await self._send(request, http_options, stream=False)
        raw = response.response_stream[0] if response.response_stream else ""
        return parse_answer(_api_client.HttpResponse._load_json_from_response(raw) if raw else {})

    async def stream(self, body: dict[str, Any], http_options: types.HttpOptions) -> AsyncGenerator[Answer, None]:
        """The chunks of one streamed answer. Close it (aclosing) to release the
        connection at once when the consumer stops early."""
        request = self.api._build_request("post", self._stream_path, body, http_options)
        response = await self._send(request, http_options, stream=True)
        # (annotated as an AsyncIterator; it is an async generator, and closing it
        # releases the connection)
        lines = cast("AsyncGenerator[str, None]", response._aiter_response_stream())
        async with contextlib.aclosing(lines) as events:
            async for event in events:
                data = _api_client.HttpResponse._load_json_from_response(event)
                if isinstance(data, dict) and "error" in data:  # an error sent inside the stream
                    await errors.APIError.raise_error_async(data["error"].get("code"), data, response)
                yield parse_answer(data)

    async def _send(
        self, request: _api_client.HttpRequest, http_options: types.HttpOptions, stream: bool
    ) -> _api_client.HttpResponse:
        retry = self.api._http_options.retry_options
        if retry is not None and retry.attempts == 1 and http_options.retry_options is None:
            # One attempt is what the client is configured for (make_client): the same
            # call without tenacity around it.
            return await self.api._async_request_once(request, stream, implicit_retry=False)
        return await self.api._async_request(http_request=request, http_options=http_options, stream=stream)


def _check_sdk(client: genai.Client) -> None:
    """The SDK internals this module relies on, as they are in google-genai 3.x."""
    where = f"google-genai {genai_version.__version__}"
    api = getattr(client, "_api_client", None)
    problems = []
    if not isinstance(api, _api_client.BaseApiClient):
        problems.append("Client._api_client is not a BaseApiClient")
    else:
        if api._http_options.extra_body:
            # (bodies share their generationConfig; extra_body is merged into them in place)
            problems.append("a client with extra_body is not supported")
        if api.vertexai:
            problems.append("Vertex AI clients are not supported (the body and paths are the Gemini API's)")
        for name, params in (
            ("_build_request", ["http_method", "path", "request_dict", "http_options"]),
            ("_async_request_once", ["http_request", "stream", "implicit_retry"]),
            ("_async_request", ["http_request", "http_options", "stream"]),
        ):
            method = getattr(api, name, None)
            if method is None or list(inspect.signature(method).parameters)[: len(params)] != params:
                problems.append(f"BaseApiClient.{name}({', '.join(params)}) is missing or changed")
    for module, name in (
        (_api_client.HttpResponse, "_aiter_response_stream"),
        (_api_client.HttpResponse, "_load_json_from_response"),
        (genai_models, "_GenerateContentParameters_to_mldev"),
        (types, "_GenerateContentParameters"),
        (_common, "convert_to_dict"),
        (_common, "encode_unserializable_types"),
        (_transformers, "t_model"),
        (errors.APIError, "raise_error_async"),
    ):
        if not hasattr(module, name):
            problems.append(f"{getattr(module, '__name__', module)}.{name} is missing")
    if problems:
        raise SdkChanged(
            f"{where}: vibe/llm/gemini_wire.py cannot send requests through this SDK: "
            + "; ".join(problems)
            + ". Pin google-genai to a version that has them or update gemini_wire.py."
        )
