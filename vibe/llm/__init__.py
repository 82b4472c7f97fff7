"""The LLM behind one interface (`LLMProvider`), chosen by VIBE_LLM_PROVIDER."""

from __future__ import annotations

from vibe.config import CommonSettings, ConfigError
from vibe.llm.base import LLMProvider


def make_provider(settings: CommonSettings) -> LLMProvider:
    """The configured provider; create it inside the running event loop."""
    if settings.llm_provider == "offline":
        from vibe.llm.offline import OfflineProvider

        return OfflineProvider(latency_s=settings.offline_latency_ms / 1000)
    # The Gemini provider (google-genai, rate limiting, retries, fallback) is the
    # subject of its own issue; until it lands, refuse to start rather than pretend.
    raise ConfigError(
        f"VIBE_LLM_PROVIDER={settings.llm_provider!r} is not available in this build yet; use 'offline'"
    )
