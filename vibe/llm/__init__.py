"""The LLM behind one interface (`LLMProvider`), chosen by VIBE_LLM_PROVIDER."""

from __future__ import annotations

from vibe.llm.base import LLMProvider
from vibe.llm.offline import OfflineProvider
from vibe.platform.config import CommonSettings


def make_provider(settings: CommonSettings) -> LLMProvider:
    """The configured provider; create it inside the running event loop (the Gemini
    client and the Redis connection belong to it) and `aclose()` it at stop."""
    offline = OfflineProvider(latency_s=settings.offline_latency_ms / 1000)
    if settings.llm_provider == "offline":
        return offline

    # Imported here so that offline runs never load google-genai (a slow import).
    from vibe.llm.breaker import CircuitBreaker
    from vibe.llm.gemini import GeminiProvider, GuardrailPolicy, ThinkingBudgets, make_client
    from vibe.llm.ratelimit import SharedRateLimiter
    from vibe.llm.resilient import ResilientProvider
    from vibe.llm.retry import RetryPolicy
    from vibe.platform.hot_state import connect_redis

    limiter = SharedRateLimiter(
        connect_redis(settings.redis_url),
        settings.redis_prefix,
        settings.gemini_model,
        rpm=settings.llm_rpm,
        tpm=settings.llm_tpm,
        window_s=settings.llm_rate_window_s,
    )
    gemini = GeminiProvider(
        make_client(
            settings.gemini_api_key, settings.gemini_base_url, settings.gemini_api_version, settings.gemini_timeout_s
        ),
        settings.gemini_model,
        limiter,
        RetryPolicy(settings.llm_max_attempts, settings.llm_backoff_base_s, settings.llm_backoff_max_s),
        budget_s=settings.llm_call_budget_s,
        request_timeout_s=settings.gemini_timeout_s,
        judge_temperature=settings.llm_judge_temperature,
        seed=settings.llm_seed,
        thinking=ThinkingBudgets(
            reply=settings.gemini_thinking_budget_reply,
            guardrail=settings.gemini_thinking_budget_guardrail,
            judge=settings.gemini_thinking_budget_judge,
        ),
        guardrail=GuardrailPolicy(
            confident=settings.guardrail_confident, always_ask=settings.guardrail_ask_model == "always"
        ),
        anchor_tokens=settings.gemini_anchor_tokens,
    )
    breaker = CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_reset_s)
    return ResilientProvider(gemini, offline, breaker)
