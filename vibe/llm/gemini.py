"""The `gemini` provider: google-genai's async client, one structured call per judgement,
streamed tutor replies, the shared rate limiter and our own retries.

It either answers or raises `LLMUnavailable`; choosing the offline fallback and
breaking the circuit is `resilient.py`'s job. Every request sent, including failed
ones, is recorded for usage accounting (`usage.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import urllib.request
import weakref
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from vibe.llm.anchors import guardrail_anchors, judge_anchors
from vibe.llm.base import (
    EvaluatedTurn,
    Exchange,
    GuardrailVerdict,
    HolisticJudgement,
    LLMUnavailable,
    ProblemContext,
    TurnJudgement,
    TutorGuidance,
)
from vibe.llm.deadline import call_deadline
from vibe.llm.gemini_wire import Answer, WireClient, wire_config
from vibe.llm.injection import penalized, split_grader_text
from vibe.llm.judge_output import (
    GUARDRAIL_SCHEMA,
    HOLISTIC_SCHEMA,
    TURN_SCHEMA,
    TURN_WITH_HOLISTIC_SCHEMA,
    InvalidModelOutput,
    load_object,
    parse_guardrail,
    parse_holistic,
    parse_turn,
    parse_turn_with_holistic,
)
from vibe.llm.offline import check_guardrail_in_context, compose_reply, off_loop
from vibe.llm.offline.tutor import word_chunks
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
from vibe.llm.retry import RetryPolicy, is_retryable, server_retry_delay
from vibe.llm.usage import CallUsage, record

log = logging.getLogger(__name__)
T = TypeVar("T")
J = TypeVar("J", TurnJudgement, HolisticJudgement)

# What a failed request can raise: the API's answer, the connection, our own timeout.
_REQUEST_ERRORS = (genai_errors.APIError, aiohttp.ClientError, ConnectionError, asyncio.TimeoutError)
# Output budgets: a judgement is ~300-600 tokens of JSON; a truncated one gets double once.
_TURN_TOKENS, _HOLISTIC_TOKENS, _GUARDRAIL_TOKENS, _REPLY_TOKENS = 2048, 2048, 256, 1024
_SUMMARY_TOKENS = 1024  # the conversation summary (~250 words)
_CHARS_PER_TOKEN = 4  # estimate for the rate limiter before the real count is known


def _describe(exc: BaseException) -> str:
    if isinstance(exc, genai_errors.APIError):
        return f"{exc.code} {exc.status or ''}".strip()
    return type(exc).__name__


OfflineGuardrail = Callable[[ProblemContext, Sequence[Exchange], str], GuardrailVerdict]


@dataclass(frozen=True)
class ThinkingBudgets:
    """Gemini's thinking budget (tokens) of each kind of call: 0 = none, -1 = the model
    decides (VIBE_GEMINI_THINKING_BUDGET_*; the README says why the defaults)."""

    reply: int = 0
    guardrail: int = 0
    judge: int = 1024  # turn and holistic evaluation, conversation summary

    def config(self, purpose: str) -> types.ThinkingConfig:
        budget = {"tutor_reply": self.reply, "guardrail": self.guardrail}.get(purpose, self.judge)
        return types.ThinkingConfig(thinking_budget=budget)


@dataclass(frozen=True)
class GuardrailPolicy:
    """When the model is asked about a message (VIBE_GUARDRAIL_CONFIDENT,
    VIBE_GUARDRAIL_ASK_MODEL): the offline classifier decides first, and its verdict is
    final when its confidence is at least `confident`; otherwise, or when the caller asks
    for a second opinion (the reply tripped the leak check), the model decides.
    `always_ask`: the model is asked about every message the offline rules let through
    (the behaviour before the offline-first decision; two LLM requests per chat turn)."""

    confident: float = 0.8
    always_ask: bool = False

    def offline_is_final(self, verdict: GuardrailVerdict, second_opinion: bool) -> bool:
        if second_opinion:
            return False
        if self.always_ask:
            return verdict.violated
        return verdict.confidence >= self.confident


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        client: genai.Client,
        model: str,
        limiter: SharedRateLimiter,
        retry: RetryPolicy,
        budget_s: float,
        request_timeout_s: float,
        judge_temperature: float = 0.0,
        seed: int | None = None,
        thinking: ThinkingBudgets | None = None,
        guardrail: GuardrailPolicy | None = None,
        offline_guardrail: OfflineGuardrail = check_guardrail_in_context,
        anchor_tokens: int = 0,
    ):
        self.client = client
        self.model = model
        # Requests go out as JSON we build, through the client's HTTP layer (gemini_wire).
        self.wire = WireClient(client, model)
        self.limiter = limiter
        self.retry = retry
        self.budget_s = budget_s  # one logical call: limiter waits + attempts + backoff
        self.request_timeout_s = request_timeout_s  # one HTTP request (a whole stream included)
        self._stream_http = self._http(request_timeout_s)
        # The judge's sampling (guardrail, turn, holistic): fixed so a grade is repeatable.
        self.judge_temperature = judge_temperature
        self.seed = seed
        self.thinking = thinking or ThinkingBudgets()
        # A reply's settings and their wire form, made once (the system instruction is per prompt).
        self._reply_config = types.GenerateContentConfig(
            temperature=0.7, max_output_tokens=_REPLY_TOKENS, thinking_config=self.thinking.config("tutor_reply")
        )
        self._reply_settings = wire_config(self._reply_config)
        self._structured_configs: dict[
            tuple[str, int, int], tuple[dict[str, Any], types.GenerateContentConfig, dict[str, Any] | None]
        ] = {}
        self.guardrail = guardrail or GuardrailPolicy()
        self.offline_guardrail = (
            offline_guardrail  # the classifier asked first (tests give verdicts of chosen confidence)
        )
        # Few-shot anchors (VIBE_GEMINI_ANCHOR_TOKENS): fixed per process, so every judge
        # and guardrail prompt starts with the same text (cacheable).
        self.judge_anchors = judge_anchors(anchor_tokens)
        self.guardrail_anchors = guardrail_anchors(anchor_tokens)

    # ----- the LLMProvider interface -----------------------------------------------

    async def check_guardrail(
        self, problem: ProblemContext, history: Sequence[Exchange], message: str, *, second_opinion: bool = False
    ) -> GuardrailVerdict:
        # The offline classifier is free: its confident verdicts stand (about one LLM
        # request per chat turn, the reply's); the model decides what it is unsure of.
        verdict = await off_loop(lambda: self.offline_guardrail(problem, history, message))
        if self.guardrail.offline_is_final(verdict, second_opinion):
            return verdict
        return await self._structured(
            "guardrail",
            guardrail_prompt(problem, message, anchors=self.guardrail_anchors),
            GUARDRAIL_SCHEMA,
            parse_guardrail,
            _GUARDRAIL_TOKENS,
        )

    async def stream_tutor_reply(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        message: str,
        guardrail: GuardrailVerdict,
        guidance: TutorGuidance | None = None,
    ) -> AsyncGenerator[str, None]:
        if guardrail.violated:
            # An educational refusal needs no model: the offline tutor's says what was
            # refused and why, that the turn scores 0, and offers the next rung or a guiding
            # question. Asking the model for it would make every refused turn cost a second
            # request (and a third when the model's guardrail found the violation after the
            # speculative reply had started): refusals are most of an attack-heavy session.
            for piece in word_chunks(compose_reply(problem, history, message, guardrail, guidance)):
                yield piece
            return
        prompt = tutor_prompt(problem, history, message, guardrail, guidance)
        body = self.wire.body(prompt.contents, self._reply_config, system=prompt.system, settings=self._reply_settings)
        deadline = call_deadline(self.budget_s)  # bounds the wait for the first text
        attempt = 0
        while True:
            attempt += 1
            ticket = await self.limiter.acquire(self._estimate(prompt), deadline)
            last: Answer | None = None  # usage comes with the last chunk
            sent = False
            try:
                # aclosing: when our consumer goes away mid-reply, the HTTP response is
                # closed right here, not whenever the generator is garbage-collected.
                # The request is sent at the first anext, within the call's deadline.
                async with contextlib.aclosing(self.wire.stream(body, self._stream_http)) as stream:
                    while True:
                        try:
                            # Until the first text, the call's deadline; after it, the
                            # request timeout (no retry can replace text already shown),
                            # so no timer of ours per chunk.
                            if sent:
                                chunk = await anext(stream)
                            else:
                                async with asyncio.timeout(deadline - time.monotonic()):
                                    chunk = await anext(stream)
                        except StopAsyncIteration:
                            break
                        last = chunk
                        text = chunk.text
                        if text:
                            sent = True
                            yield text
            except _REQUEST_ERRORS as exc:
                self._record("tutor_reply", last, ok=False)
                if sent:
                    raise LLMUnavailable(
                        "the assistant's reply broke off; please send your message again", upstream_failed=True
                    ) from exc
                await self._wait_before_retry(exc, attempt, deadline)
                continue
            except BaseException:
                self._record("tutor_reply", last, ok=False)  # cancelled mid-reply: the request still counts
                raise
            self._record("tutor_reply", last, ok=sent)
            await self.limiter.settle(ticket, self._tokens(last))
            if not sent:
                reason = last.finish_reason if last is not None else "none"
                raise LLMUnavailable(f"the assistant returned no text (finish reason {reason}); please try again")
            return

    async def evaluate_turn(
        self,
        problem: ProblemContext,
        history: Sequence[Exchange],
        exchange: Exchange,
        guardrail: GuardrailVerdict,
        conversation: Sequence[EvaluatedTurn] | None = None,
    ) -> TurnJudgement:
        # Text addressed to the grader is never sent: one call on the turn without it,
        # told only what kinds of text were removed, then the same penalty as offline
        # (vibe/llm/injection.py), so the score is at most what the stripped turn earns.
        split = split_grader_text(exchange.user)
        shown = replace(exchange, user=split.marked()) if split.found else exchange
        prompt = turn_prompt(
            problem,
            history,
            shown,
            guardrail,
            conversation,
            removed_kinds=split.kinds,
            anchors=self.judge_anchors,
        )
        if conversation is None:
            judgement = await self._structured("turn_evaluation", prompt, TURN_SCHEMA, parse_turn, _TURN_TOKENS)
            return _attributed(penalized(judgement, split), self.name, self.model)
        # One call, one answer: the turn and the conversation through it (its output is
        # about twice a turn's, hence the budget).
        judgement = await self._structured(
            "turn_evaluation",
            prompt,
            TURN_WITH_HOLISTIC_SCHEMA,
            parse_turn_with_holistic,
            _TURN_TOKENS + _HOLISTIC_TOKENS,
        )
        holistic = judgement.holistic
        return replace(
            _attributed(penalized(judgement, split), self.name, self.model),
            holistic=_attributed(holistic, self.name, self.model) if holistic is not None else None,
        )

    async def evaluate_holistic(self, problem: ProblemContext, turns: Sequence[EvaluatedTurn]) -> HolisticJudgement:
        judgement = await self._structured(
            "holistic_evaluation", holistic_prompt(problem, turns), HOLISTIC_SCHEMA, parse_holistic, _HOLISTIC_TOKENS
        )
        return _attributed(judgement, self.name, self.model)

    async def summarize_conversation(
        self, problem: ProblemContext, exchanges: Sequence[Exchange], previous_summary: str
    ) -> str:
        """One structured call: the previous summary extended with `exchanges`."""

        def parse(data: dict[str, Any]) -> str:
            summary = data.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                raise InvalidModelOutput("the summary is missing or empty")
            return summary.strip()

        prompt = summary_prompt(problem, exchanges, previous_summary)
        return await self._structured("conversation_summary", prompt, SUMMARY_SCHEMA, parse, _SUMMARY_TOKENS)

    async def aclose(self) -> None:
        # make_provider gave this provider its client and the limiter's Redis connection.
        await close_client(self.client)
        await self.limiter.redis.aclose()

    # ----- one structured call -----------------------------------------------------

    async def _structured(
        self,
        purpose: str,
        prompt: Prompt,
        schema: dict[str, Any],
        parse: Callable[[dict[str, Any]], T],
        max_tokens: int,
    ) -> T:
        """One call whose JSON answer is validated by `parse`; an unusable answer is
        retried once (with twice the output budget when it was cut off)."""
        deadline = call_deadline(self.budget_s)
        for output_attempt in (1, 2):
            config, settings = self._structured_settings(purpose, schema, max_tokens)
            body = self.wire.body(prompt.contents, config, system=prompt.system, settings=settings)
            response = await self._generate(purpose, prompt, body, deadline)
            try:
                result = parse(load_object(response.text, response.finish_reason))
            except InvalidModelOutput as exc:
                self._record(purpose, response, ok=False)
                log.warning("unusable %s answer from %s (attempt %d): %s", purpose, self.model, output_attempt, exc)
                if output_attempt == 2:
                    raise LLMUnavailable(f"the model's {purpose} answer was unusable twice: {exc}") from exc
                if exc.truncated:
                    max_tokens *= 2
                continue
            self._record(purpose, response, ok=True)
            return result
        raise AssertionError("unreachable")

    def _structured_settings(
        self, purpose: str, schema: dict[str, Any], max_tokens: int
    ) -> tuple[types.GenerateContentConfig, dict[str, Any] | None]:
        """A structured call's config (without the system instruction, which is the
        prompt's) and its wire form, made once per kind of call: building them (a copy
        of the schema, the config model) was most of a judge request's own cost."""
        key = (purpose, id(schema), max_tokens)
        made = self._structured_configs.get(key)
        if made is None or made[0] is not schema:
            config = schema_config(
                Prompt("", []), schema, max_tokens, temperature=self.judge_temperature, seed=self.seed
            )
            config.system_instruction = None
            config.thinking_config = self.thinking.config(purpose)
            made = self._structured_configs[key] = (schema, config, wire_config(config))
        return made[1], made[2]

    async def _generate(self, purpose: str, prompt: Prompt, body: dict[str, Any], deadline: float) -> Answer:
        """One successful HTTP answer, after as many retries as the policy and the
        deadline allow."""
        attempt = 0
        while True:
            attempt += 1
            ticket = await self.limiter.acquire(self._estimate(prompt), deadline)
            remaining = deadline - time.monotonic()
            try:
                async with asyncio.timeout(remaining):
                    response = await self.wire.generate(body, self._http(min(remaining, self.request_timeout_s)))
            except _REQUEST_ERRORS as exc:
                self._record(purpose, None, ok=False)
                await self._wait_before_retry(exc, attempt, deadline)
                continue
            await self.limiter.settle(ticket, self._tokens(response))
            return response

    async def _wait_before_retry(self, exc: BaseException, attempt: int, deadline: float) -> None:
        """Sleeps until the next attempt may go, or raises LLMUnavailable when there is
        none: not retryable, attempts used up, or the wait would pass the deadline."""
        what = _describe(exc)
        if not is_retryable(exc) or attempt >= self.retry.max_attempts:
            raise LLMUnavailable(
                f"the assistant is unavailable right now (Gemini: {what}); please try again in a minute",
                upstream_failed=True,
            ) from exc
        asked = server_retry_delay(exc)
        wait = max(asked or 0.0, self.retry.backoff(attempt))
        if time.monotonic() + wait >= deadline:
            raise LLMUnavailable(
                f"the assistant is unavailable right now (Gemini: {what}, retry in {wait:.1f}s is past the deadline); "
                "please try again in a minute",
                upstream_failed=True,
            ) from exc
        if asked:
            await self.limiter.cool_down(asked)  # every replica holds off, not just us
        log.info("gemini %s, attempt %d; retrying in %.2fs", what, attempt, wait)
        await asyncio.sleep(wait)

    # ----- bookkeeping -------------------------------------------------------------

    @staticmethod
    def _http(timeout_s: float) -> types.HttpOptions:
        return types.HttpOptions(timeout=max(1, int(timeout_s * 1000)))

    @staticmethod
    def _estimate(prompt: Prompt) -> int:
        return prompt.chars() // _CHARS_PER_TOKEN + 1

    @staticmethod
    def _tokens(response: Answer | None) -> int:
        usage = response.usage if response is not None else None
        return usage.total_tokens if usage is not None else 0

    def _record(self, purpose: str, response: Answer | None, ok: bool) -> None:
        usage = response.usage if response is not None else None
        record(
            CallUsage(
                purpose=purpose,
                provider=self.name,
                model=self.model,
                prompt_tokens=usage.prompt_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                thinking_tokens=usage.thinking_tokens if usage else 0,
                ok=ok,
            )
        )


def _attributed(judgement: J, provider: str, model: str) -> J:
    return replace(judgement, provider=provider, model=model)


def make_client(api_key: str, base_url: str, api_version: str, timeout_s: float) -> genai.Client:
    """The async-capable client, created inside the running loop (its aiohttp session
    belongs to that loop). The API version is explicit so request paths do not move
    under a new SDK default; the SDK's retries are off because ours honour the
    server's retry delay, the shared limiter and the caller's deadline.

    The aiohttp session is ours, not the SDK's: the SDK's reads the proxy settings and
    ~/.netrc on every request, in a worker thread (`trust_env`), a tenth of the tutor's
    CPU per chat turn; ours reads them only when a proxy is configured at all. Close the
    client with `close_client`."""
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),  # as the SDK's: no cap on concurrent requests
        trust_env=bool(urllib.request.getproxies()),
        read_bufsize=_READ_BUFFER_SIZE,
    )
    client = genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(
            base_url=base_url or None,
            api_version=api_version,
            timeout=int(timeout_s * 1000),
            retry_options=types.HttpRetryOptions(attempts=1),
            aiohttp_client=session,
        ),
    )
    _SESSIONS[client] = session
    return client


async def close_client(client: genai.Client) -> None:
    """Closes the client and the aiohttp session make_client gave it."""
    try:
        await client.aio.aclose()
    finally:
        session = _SESSIONS.pop(client, None)
        if session is not None:
            await session.close()


# The SDK's own read buffer (a whole streamed event must fit in it).
_READ_BUFFER_SIZE = 2**22
_SESSIONS: weakref.WeakKeyDictionary[genai.Client, aiohttp.ClientSession] = weakref.WeakKeyDictionary()
