"""The Gemini wire form we build (vibe/llm/gemini_wire.py) against google-genai's own:
the request body equals what the SDK sends for the same contents and config, and a
response reads the same as the SDK's `GenerateContentResponse` reads it. When a new SDK
version changes either, these fail."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from google.genai import models as genai_models

from vibe.llm.base import EvaluatedTurn, Exchange, GuardrailVerdict, Intent, ProblemContext
from vibe.llm.gemini import GeminiProvider, GuardrailPolicy, ThinkingBudgets, close_client, make_client
from vibe.llm.gemini_wire import Answer, Usage, WireClient, parse_answer, sdk_request_body, wire_config, wire_contents
from vibe.llm.judge_output import GUARDRAIL_SCHEMA, HOLISTIC_SCHEMA, TURN_SCHEMA, TURN_WITH_HOLISTIC_SCHEMA
from vibe.llm.prompts import (
    SUMMARY_SCHEMA,
    Prompt,
    guardrail_prompt,
    holistic_prompt,
    schema_config,
    summary_prompt,
    turn_prompt,
    tutor_prompt,
)
from vibe.llm.ratelimit import SharedRateLimiter
from vibe.llm.retry import RetryPolicy
from vibe.platform.hot_state import connect_redis
from vibe_dev.fake_gemini import FakeGemini, Reply
from vibe_dev.scratch import REDIS_URL

MODEL = "gemini-2.5-flash"
PROBLEM = ProblemContext(
    "two-sum", "Two Sum", "Return the indices of the two numbers that add up to target.", ("Think of a dictionary.",)
)
HISTORY = [Exchange(t, f"question {t} about the pairs, with 'quotes' and ünïcode", f"answer {t}?") for t in (1, 2, 3)]


@contextlib.asynccontextmanager
async def client_for(url: str = "http://127.0.0.1:9") -> AsyncIterator[genai.Client]:
    client = make_client("test-key", url, "v1beta", 30)
    try:
        yield client
    finally:
        await close_client(client)


def reply_config(budget: int) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        system_instruction="be brief",
        temperature=0.7,
        max_output_tokens=1024,
        thinking_config=types.ThinkingConfig(thinking_budget=budget),
    )


def judge_config(seed: int | None, budget: int) -> types.GenerateContentConfig:
    config = schema_config(turn_prompt(PROBLEM, HISTORY, HISTORY[-1], GuardrailVerdict.ok()), TURN_SCHEMA, 2048)
    config.seed = seed
    config.thinking_config = types.ThinkingConfig(thinking_budget=budget)
    return config


# ----- the request body ----------------------------------------------------------------


@pytest.mark.parametrize("budget", [0, -1, 1024])
async def test_the_tutor_reply_body_is_the_sdks(budget: int) -> None:
    prompt = tutor_prompt(PROBLEM, HISTORY, "and now?", GuardrailVerdict.ok())
    config = reply_config(budget)
    config.system_instruction = prompt.system
    async with client_for() as client:
        ours = WireClient(client, MODEL).body(prompt.contents, config)
        assert wire_contents(prompt.contents) is not None and wire_config(config) is not None  # not the fallback
        assert ours == sdk_request_body(client, MODEL, prompt.contents, config)
    assert ours["generationConfig"]["thinkingConfig"] == {"thinking_budget": budget}


@pytest.mark.parametrize(("seed", "budget"), [(None, 1024), (7, 0)])
async def test_the_structured_bodies_are_the_sdks(seed: int | None, budget: int) -> None:
    """Every structured call's prompt and schema (guardrail, turn, turn with the
    conversation, holistic, summary)."""
    turns = [EvaluatedTurn(e.turn, e.user, e.assistant, Intent.HINT_QUERY, 70.0) for e in HISTORY]
    calls = [
        (guardrail_prompt(PROBLEM, "give me the code"), GUARDRAIL_SCHEMA),
        (turn_prompt(PROBLEM, HISTORY, HISTORY[-1], GuardrailVerdict.ok()), TURN_SCHEMA),
        (turn_prompt(PROBLEM, HISTORY, HISTORY[-1], GuardrailVerdict.ok(), turns[:-1]), TURN_WITH_HOLISTIC_SCHEMA),
        (holistic_prompt(PROBLEM, turns), HOLISTIC_SCHEMA),
        (summary_prompt(PROBLEM, HISTORY, "earlier: asked about pairs"), SUMMARY_SCHEMA),
    ]
    async with client_for() as client:
        wire = WireClient(client, MODEL)
        for prompt, schema in calls:
            config = schema_config(prompt, schema, 2048, temperature=0.0, seed=seed)
            config.thinking_config = types.ThinkingConfig(thinking_budget=budget)
            assert wire_config(config) is not None
            assert wire.body(prompt.contents, config) == sdk_request_body(client, MODEL, prompt.contents, config)


async def test_what_we_do_not_build_is_left_to_the_sdk() -> None:
    """A non-text part, or a setting we do not write ourselves: the SDK's conversion."""
    image = types.Content(role="user", parts=[types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")])
    contents = [types.Content(role="user", parts=[types.Part(text="look")]), image]
    safety = reply_config(0)
    safety.safety_settings = [
        types.SafetySetting(
            category=types.HarmCategory.HARM_CATEGORY_HARASSMENT, threshold=types.HarmBlockThreshold.BLOCK_NONE
        )
    ]
    assert wire_contents(contents) is None and wire_config(safety) is None
    async with client_for() as client:
        wire = WireClient(client, MODEL)
        body = wire.body(contents, reply_config(0))
        assert body == sdk_request_body(client, MODEL, contents, reply_config(0))
        assert "inlineData" in body["contents"][1]["parts"][0]
        text_only = contents[:1]
        assert wire.body(text_only, safety) == sdk_request_body(client, MODEL, text_only, safety)
        assert "safetySettings" in wire.body(text_only, safety)


# ----- the response --------------------------------------------------------------------

USAGE = {"promptTokenCount": 12, "candidatesTokenCount": 5, "thoughtsTokenCount": 7, "totalTokenCount": 24}
RESPONSES: dict[str, dict[str, Any]] = {
    "text": {"candidates": [{"content": {"role": "model", "parts": [{"text": "What do you "}]}, "index": 0}]},
    "several parts and a thought": {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "hm", "thought": True}, {"text": "a"}, {"text": "b"}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": USAGE,
    },
    "an empty text part": {"candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}}]},
    "only a thought": {"candidates": [{"content": {"parts": [{"text": "thinking", "thought": True}]}}]},
    "last chunk with usage": {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "end."}]}, "finishReason": "STOP"}],
        "usageMetadata": USAGE,
        "modelVersion": MODEL,
    },
    "usage only": {"usageMetadata": USAGE, "modelVersion": MODEL},
    "empty": {},
    "candidate without content": {"candidates": [{"finishReason": "SAFETY", "index": 0}], "usageMetadata": USAGE},
    "content without parts": {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]},
    "blocked prompt": {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
    },
    "two candidates": {
        "candidates": [
            {"content": {"parts": [{"text": "first"}]}, "finishReason": "STOP"},
            {"content": {"parts": [{"text": "second"}]}, "finishReason": "STOP"},
        ]
    },
    "unknown finish reason": {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "NEW_REASON"}]},
}


def sdk_answer(data: dict[str, Any]) -> Answer:
    """The same response through the SDK: converted and validated as
    `generate_content[_stream]` does, then read through its models."""
    response = types.GenerateContentResponse._from_response(
        response=genai_models._GenerateContentResponse_from_mldev(data, None, None), kwargs={}
    )
    candidates = response.candidates or []
    reason = candidates[0].finish_reason if candidates else None
    usage = response.usage_metadata
    feedback = response.prompt_feedback
    return Answer(
        response.text,
        str(getattr(reason, "value", reason or "")),
        None
        if usage is None
        else Usage(
            usage.prompt_token_count or 0,
            usage.candidates_token_count or 0,
            usage.thoughts_token_count or 0,
            usage.total_token_count or 0,
        ),
        str(getattr(feedback.block_reason, "value", "")) if feedback and feedback.block_reason else "",
    )


@pytest.mark.filterwarnings("ignore:NEW_REASON is not a valid FinishReason")
@pytest.mark.parametrize("name", list(RESPONSES))
def test_a_response_reads_as_the_sdk_reads_it(name: str) -> None:
    assert parse_answer(RESPONSES[name]) == sdk_answer(RESPONSES[name])


# ----- through the fake server, side by side with the SDK ----------------------------


async def test_a_stream_and_its_request_are_the_sdks(fake: FakeGemini) -> None:
    prompt = tutor_prompt(PROBLEM, HISTORY, "and now?", GuardrailVerdict.ok())
    config = reply_config(0)
    config.system_instruction = prompt.system
    http = types.HttpOptions(timeout=10_000)
    async with client_for(fake.url) as client:
        wire = WireClient(client, MODEL)
        ours = [chunk async for chunk in wire.stream(wire.body(prompt.contents, config), http)]
        stream = await client.aio.models.generate_content_stream(
            model=MODEL, contents=prompt.contents, config=config.model_copy(update={"http_options": http})
        )
        theirs = [sdk_answer(chunk.model_dump(by_alias=True, exclude_none=True, mode="json")) async for chunk in stream]
    mine, sdk = fake.requests
    assert (
        (mine.action, mine.version, mine.model)
        == (sdk.action, sdk.version, sdk.model)
        == (
            "streamGenerateContent",
            "v1beta",
            MODEL,
        )
    )
    assert mine.body == sdk.body
    assert {k: v for k, v in mine.headers.items() if k.lower() in {"x-goog-api-key", "x-server-timeout"}} == {
        k: v for k, v in sdk.headers.items() if k.lower() in {"x-goog-api-key", "x-server-timeout"}
    }
    assert [(a.text, a.finish_reason) for a in ours] == [(a.text, a.finish_reason) for a in theirs]
    assert (
        "".join(a.text or "" for a in ours) == "What do you already know about the inputs? Which step is the hard one?"
    )
    assert ours[-1].usage is not None and ours[-1].usage.thinking_tokens == 7
    assert ours[-1].usage == theirs[-1].usage


async def test_a_generate_answer_is_the_sdks(fake: FakeGemini) -> None:
    prompt = turn_prompt(PROBLEM, HISTORY, HISTORY[-1], GuardrailVerdict.ok())
    config = judge_config(None, 1024)
    http = types.HttpOptions(timeout=10_000)
    async with client_for(fake.url) as client:
        ours = await WireClient(client, MODEL).generate(WireClient(client, MODEL).body(prompt.contents, config), http)
        response = await client.aio.models.generate_content(
            model=MODEL, contents=prompt.contents, config=config.model_copy(update={"http_options": http})
        )
    assert fake.requests[0].body == fake.requests[1].body
    assert ours.text == response.text and ours.text is not None and '"intent"' in ours.text
    assert ours.finish_reason == "STOP" and ours.usage is not None
    assert ours.usage.total_tokens == (response.usage_metadata.total_token_count if response.usage_metadata else 0)


@pytest.mark.parametrize("status", [429, 503, 400])
async def test_http_errors_are_the_sdks_api_errors(fake: FakeGemini, status: int) -> None:
    fake.storm = Reply(status=status, retry_delay_s=1.5)
    prompt = guardrail_prompt(PROBLEM, "hello")
    config = schema_config(prompt, GUARDRAIL_SCHEMA, 256)
    http = types.HttpOptions(timeout=10_000)
    async with client_for(fake.url) as client:
        wire = WireClient(client, MODEL)
        with pytest.raises(errors.APIError) as ours:
            await wire.generate(wire.body(prompt.contents, config), http)
        with pytest.raises(errors.APIError) as stream_error:
            async for _ in wire.stream(wire.body(prompt.contents, reply_config(0)), http):
                pass
        with pytest.raises(errors.APIError) as theirs:
            await client.aio.models.generate_content(model=MODEL, contents=prompt.contents, config=config)
    for got in (ours.value, stream_error.value):
        assert type(got) is type(theirs.value)
        assert (got.code, got.status, got.details) == (theirs.value.code, theirs.value.status, theirs.value.details)


# ----- what the provider sends ---------------------------------------------------------


async def test_the_provider_sends_what_the_sdk_would(fake: FakeGemini) -> None:
    """The tutor's reply and a guardrail call as GeminiProvider sends them (a reply's
    settings made once, the prompt's dict contents as they are), against the SDK's body
    for the same prompt and the config the provider used to build per request."""
    thinking = ThinkingBudgets(reply=0, guardrail=-1, judge=1024)
    limiter = SharedRateLimiter(
        connect_redis(REDIS_URL), f"wire:{uuid.uuid4().hex[:8]}:", MODEL, rpm=10_000, tpm=10**9, window_s=60
    )
    gemini = GeminiProvider(
        make_client("test-key", fake.url, "v1beta", 10),
        MODEL,
        limiter,
        RetryPolicy(1, 0.01, 0.01),
        budget_s=10,
        request_timeout_s=10,
        thinking=thinking,
        guardrail=GuardrailPolicy(confident=1.1),  # the model decides every message
    )
    try:
        reply = "".join(
            [c async for c in gemini.stream_tutor_reply(PROBLEM, HISTORY, "and now?", GuardrailVerdict.ok())]
        )
        await gemini.check_guardrail(PROBLEM, HISTORY, "give me the code")
        sent_reply, sent_guardrail = fake.requests
        reply_prompt = tutor_prompt(PROBLEM, HISTORY, "and now?", GuardrailVerdict.ok())
        config = reply_config(0)
        config.system_instruction = reply_prompt.system
        assert sent_reply.body == sdk_request_body(gemini.client, MODEL, reply_prompt.contents, config)
        # The guardrail prompt has a fresh nonce: the SDK converts the one that was sent.
        prompt = Prompt(sent_guardrail.system, [{"parts": [{"text": sent_guardrail.prompt}], "role": "user"}])
        guardrail_config = schema_config(prompt, GUARDRAIL_SCHEMA, 256, temperature=0.0)
        guardrail_config.thinking_config = types.ThinkingConfig(thinking_budget=-1)
        assert sent_guardrail.body == sdk_request_body(gemini.client, MODEL, prompt.contents, guardrail_config)
        assert reply.startswith("What do you ")
    finally:
        await gemini.aclose()
