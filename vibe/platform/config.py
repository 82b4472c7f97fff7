"""Settings from environment variables: one frozen settings object per service.

Every variable has a documented default that works on a developer machine; a value
that is present but wrong (a port that is not a number, an unknown provider) stops
the service at start-up with one message listing every problem, instead of failing
later in the middle of a candidate's session.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from vibe.platform.api_keys import SettingsKey, parse_settings_keys

DEFAULT_ADDRS = {
    "gateway": "127.0.0.1:50051",
    "tutor": "127.0.0.1:50052",
    "evaluator": "127.0.0.1:50053",
    "scoring": "127.0.0.1:50054",
}
LLM_PROVIDERS = ("offline", "gemini")
# When the Gemini provider asks the model about a message the offline guardrail passed:
# only when the offline verdict is uncertain (or the reply trips the leak check), or always.
GUARDRAIL_ASK_MODEL = ("uncertain", "always")
_ADDR_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ConfigError(ValueError):
    """One or more environment variables are wrong; the message lists them all."""


class _Reader:
    """Reads typed values from a mapping and collects every error before failing."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.errors: list[str] = []

    def text(self, name: str, default: str) -> str:
        return self.env.get(name, default).strip()

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            self.errors.append(f"{name}={raw!r} is not an integer")
            return default
        if not lo <= value <= hi:
            self.errors.append(f"{name}={value} is out of range [{lo}, {hi}]")
        return value

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            self.errors.append(f"{name}={raw!r} is not a number")
            return default
        if not lo <= value <= hi:
            self.errors.append(f"{name}={value} is out of range [{lo}, {hi}]")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            self.errors.append(f"{name}={value!r} must be one of: {', '.join(choices)}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        self.errors.append(f"{name}={raw!r} must be true or false")
        return default

    def addr(self, name: str, default: str) -> str:
        value = self.text(name, default)
        match = _ADDR_RE.match(value)
        if not match or int(match.group(2)) > 65535:
            self.errors.append(f"{name}={value!r} is not host:port (e.g. 127.0.0.1:50051)")
            return default
        return value

    def optional_addr(self, name: str) -> str:
        """host:port, or "" (off) when unset or empty."""
        return self.addr(name, "") if self.text(name, "") else ""

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.text(name, default)
        if not value.startswith(tuple(f"{s}://" for s in schemes)):
            self.errors.append(f"{name} must start with {' or '.join(s + '://' for s in schemes)}")
        return value

    def ident(self, name: str, default: str) -> str:
        value = self.text(name, default)
        if not _IDENT_RE.match(value):
            self.errors.append(f"{name}={value!r} must be a lowercase SQL identifier")
            return default
        return value

    def secret(self, name: str, min_bytes: int, why: str) -> str:
        """A secret from `name`, or from the file named by `name`_FILE (how compose and
        Kubernetes hand out secrets); required, at least `min_bytes` long."""
        file_var = f"{name}_FILE"
        path = self.text(file_var, "")
        value = self.env.get(name, "")
        if path and value:
            self.errors.append(f"{name} and {file_var} are both set; set one")
            return ""
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    value = f.read().strip()
            except OSError as exc:
                self.errors.append(f"{file_var}={path!r} cannot be read: {exc.strerror}")
                return ""
        if not value:
            self.errors.append(f"{name} is not set: {why} (at least {min_bytes} bytes, e.g. `openssl rand -hex 32`)")
        elif len(value.encode()) < min_bytes:
            self.errors.append(f"{name} is {len(value.encode())} bytes; it must be at least {min_bytes}")
        return value

    def done(self, service: str) -> None:
        if self.errors:
            raise ConfigError(f"{service}: invalid configuration:\n  - " + "\n  - ".join(self.errors))


@dataclass(frozen=True)
class CommonSettings:
    """What every service needs: storage, the LLM, logging."""

    database_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    db_schema: str = "public"  # tests give each test its own schema
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "vibe:"  # tests give each test its own prefix
    llm_provider: str = "offline"
    gemini_api_key: str = field(default="", repr=False)
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str = ""
    # Pinned so request paths do not move under a new SDK default (v1beta has JSON-schema output).
    gemini_api_version: str = "v1beta"
    gemini_timeout_s: float = 30.0  # one HTTP request to Gemini
    # The shared rate limiter (all replicas, through Redis): the project's quota per window.
    llm_rpm: int = 15
    llm_tpm: int = 250_000
    llm_rate_window_s: float = 60.0  # "per minute"; tests shorten it
    # Retries of 429/5xx/connection errors, and the budget of one logical call
    # (limiter wait + attempts + backoff), further bounded by the caller's deadline.
    llm_max_attempts: int = 4
    llm_backoff_base_s: float = 0.5
    llm_backoff_max_s: float = 20.0
    llm_call_budget_s: float = 20.0
    # Circuit breaker: this many failed calls in a row open it for llm_breaker_reset_s.
    llm_breaker_failures: int = 5
    llm_breaker_reset_s: float = 30.0
    # Sampling of the judge (guardrail, per-turn and holistic calls): fixed for stable grades.
    llm_judge_temperature: float = 0.0
    llm_seed: int = 1234
    # Gemini's thinking budget (tokens) per kind of call: 0 = no thinking, -1 = the model
    # decides. Thinking delays a reply's first chunk and is billed as output (README, "Settings").
    gemini_thinking_budget_reply: int = 0
    gemini_thinking_budget_guardrail: int = 0
    gemini_thinking_budget_judge: int = 1024
    # The guardrail is decided offline first: a verdict whose confidence is at least this is
    # final; below it (or when the reply trips the leak check) the model is asked.
    # VIBE_GUARDRAIL_ASK_MODEL=always asks the model about every message the rules let through.
    guardrail_confident: float = 0.8
    guardrail_ask_model: str = "uncertain"
    # Few-shot anchors (labelled corpus examples) in the Gemini judge and guardrail prompts:
    # at most this many tokens each (vibe/llm/anchors.py); 0 = none.
    gemini_anchor_tokens: int = 1500
    # Simulated LLM latency of the offline provider (tests and benchmarks).
    offline_latency_ms: int = 0
    # The services' event loop: uvloop (less CPU per chat turn; bench/bench_chat.py) or asyncio's own.
    event_loop: str = "uvloop"
    log_level: str = "INFO"
    shutdown_grace_s: float = 5.0
    # Servers close a client's connection after this long (GOAWAY; calls in flight finish), so
    # that clients resolve the name again and spread over replicas added since: a gRPC channel
    # keeps its connections, and its round-robin only covers the addresses it resolved. 0 = never.
    grpc_max_connection_age_s: float = 0.0
    # Chat, submit and evaluation leases (vibe/platform/leases.py): renewed every third of
    # this while their holder lives, so a dead holder frees its lease within it.
    lease_ttl_s: float = 5.0
    # Telemetry (vibe/platform/telemetry.py): traces and metrics over OTLP when an
    # endpoint is set (the exporter reads the rest of OTEL_EXPORTER_OTLP_* itself), a
    # Prometheus scrape endpoint on metrics_addr when set; both off by default.
    otlp_endpoint: str = ""
    metrics_addr: str = ""
    otel_service_name: str = ""  # overrides the service's own name in the telemetry

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, who: str = "vibe") -> CommonSettings:
        """For tools that need storage and the LLM but are no service (`vibe problems
        load`, calibration, the test harness)."""
        r = _Reader(os.environ if env is None else env)
        settings = cls.read(r)
        r.done(who)
        return settings

    @classmethod
    def read(cls, r: _Reader) -> CommonSettings:
        provider = r.choice("VIBE_LLM_PROVIDER", "offline", LLM_PROVIDERS)
        api_key = r.text("GEMINI_API_KEY", "")
        if provider == "gemini" and not api_key:
            r.errors.append("VIBE_LLM_PROVIDER=gemini needs GEMINI_API_KEY")
        base_url = r.text("GEMINI_BASE_URL", "")
        if base_url:
            r.url("GEMINI_BASE_URL", base_url, ("http", "https"))
        return cls(
            database_url=r.url("DATABASE_URL", cls.database_url, ("postgresql", "postgres")),
            db_schema=r.ident("VIBE_DB_SCHEMA", cls.db_schema),
            redis_url=r.url("REDIS_URL", cls.redis_url, ("redis", "rediss", "unix")),
            redis_prefix=r.text("VIBE_REDIS_PREFIX", cls.redis_prefix),
            llm_provider=provider,
            gemini_api_key=api_key,
            gemini_model=r.text("GEMINI_MODEL", cls.gemini_model),
            gemini_base_url=base_url,
            gemini_api_version=r.choice("GEMINI_API_VERSION", cls.gemini_api_version, ("v1beta", "v1", "v1alpha")),
            gemini_timeout_s=r.number("GEMINI_TIMEOUT_S", cls.gemini_timeout_s, 0.1, 600.0),
            llm_rpm=r.integer("VIBE_LLM_RPM", cls.llm_rpm, 1, 1_000_000),
            llm_tpm=r.integer("VIBE_LLM_TPM", cls.llm_tpm, 1, 1_000_000_000),
            llm_rate_window_s=r.number("VIBE_LLM_RATE_WINDOW_S", cls.llm_rate_window_s, 0.1, 3600.0),
            llm_max_attempts=r.integer("VIBE_LLM_MAX_ATTEMPTS", cls.llm_max_attempts, 1, 20),
            llm_backoff_base_s=r.number("VIBE_LLM_BACKOFF_BASE_S", cls.llm_backoff_base_s, 0.0, 60.0),
            llm_backoff_max_s=r.number("VIBE_LLM_BACKOFF_MAX_S", cls.llm_backoff_max_s, 0.0, 600.0),
            llm_call_budget_s=r.number("VIBE_LLM_CALL_BUDGET_S", cls.llm_call_budget_s, 0.1, 600.0),
            llm_breaker_failures=r.integer("VIBE_LLM_BREAKER_FAILURES", cls.llm_breaker_failures, 1, 1000),
            llm_breaker_reset_s=r.number("VIBE_LLM_BREAKER_RESET_S", cls.llm_breaker_reset_s, 0.1, 3600.0),
            llm_judge_temperature=r.number("VIBE_LLM_JUDGE_TEMPERATURE", cls.llm_judge_temperature, 0.0, 2.0),
            llm_seed=r.integer("VIBE_LLM_SEED", cls.llm_seed, 0, 2**31 - 1),
            gemini_thinking_budget_reply=r.integer(
                "VIBE_GEMINI_THINKING_BUDGET_REPLY", cls.gemini_thinking_budget_reply, -1, 24576
            ),
            gemini_thinking_budget_guardrail=r.integer(
                "VIBE_GEMINI_THINKING_BUDGET_GUARDRAIL", cls.gemini_thinking_budget_guardrail, -1, 24576
            ),
            gemini_thinking_budget_judge=r.integer(
                "VIBE_GEMINI_THINKING_BUDGET_JUDGE", cls.gemini_thinking_budget_judge, -1, 24576
            ),
            guardrail_confident=r.number("VIBE_GUARDRAIL_CONFIDENT", cls.guardrail_confident, 0.0, 1.0),
            guardrail_ask_model=r.choice("VIBE_GUARDRAIL_ASK_MODEL", cls.guardrail_ask_model, GUARDRAIL_ASK_MODEL),
            gemini_anchor_tokens=r.integer("VIBE_GEMINI_ANCHOR_TOKENS", cls.gemini_anchor_tokens, 0, 20_000),
            offline_latency_ms=r.integer("VIBE_OFFLINE_LATENCY_MS", 0, 0, 600_000),
            event_loop=r.choice("VIBE_EVENT_LOOP", cls.event_loop, ("uvloop", "asyncio")),
            log_level=r.choice("VIBE_LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper(),
            shutdown_grace_s=r.number("VIBE_SHUTDOWN_GRACE_S", 5.0, 0.0, 300.0),
            grpc_max_connection_age_s=r.number("VIBE_GRPC_MAX_CONNECTION_AGE_S", 0.0, 0.0, 86400.0),
            lease_ttl_s=r.number("VIBE_LEASE_TTL_S", cls.lease_ttl_s, 0.5, 300.0),
            otlp_endpoint=r.text("OTEL_EXPORTER_OTLP_ENDPOINT", "") or r.text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", ""),
            metrics_addr=r.optional_addr("VIBE_METRICS_ADDR"),
            otel_service_name=r.text("OTEL_SERVICE_NAME", ""),
        )


@dataclass(frozen=True)
class TutorSettings:
    common: CommonSettings
    addr: str
    # A reply is cut when this share of a reference solution's fingerprints (winnowing)
    # shows up in what has been generated so far.
    leak_threshold: float
    # Tokens of conversation history sent to the model; older turns are summarised.
    history_token_budget: int
    # Low-effort requests in a row ("next hint", "just tell me") before the tutor asks
    # the candidate to try something first.
    low_effort_limit: int
    service_secret: str = field(repr=False)  # VIBE_SERVICE_SECRET: signs and checks calls between services
    # After a reply's first delta (sent at once), how long reply text may wait for more to
    # leave with it as one message: fewer gRPC messages per turn on every hop.
    stream_coalesce_s: float = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TutorSettings:
        r = _Reader(os.environ if env is None else env)
        s = cls(
            common=CommonSettings.read(r),
            addr=r.addr("TUTOR_ADDR", DEFAULT_ADDRS["tutor"]),
            leak_threshold=r.number("TUTOR_LEAK_THRESHOLD", 0.35, 0.01, 1.0),
            history_token_budget=r.integer("TUTOR_HISTORY_TOKEN_BUDGET", 3000, 200, 1_000_000),
            low_effort_limit=r.integer("TUTOR_LOW_EFFORT_LIMIT", 3, 1, 100),
            service_secret=_service_secret(r),
            stream_coalesce_s=r.number("TUTOR_STREAM_COALESCE_MS", 0.0, 0.0, 1000.0) / 1000,
        )
        r.done("tutor")
        return s


@dataclass(frozen=True)
class EvaluatorSettings:
    common: CommonSettings
    addr: str
    workers: int  # background evaluation workers in this process (0 = none)
    turn_log_ttl_s: int
    # A background job unanswered this long is presumed dead and claimed by another worker
    # (XAUTOCLAIM); one attempt gives up at 90% of it. The turn's lease is VIBE_LEASE_TTL_S.
    eval_lock_ttl_s: int
    job_max_attempts: int  # deliveries of one queued job before it goes to the dead-letter stream
    judge_samples: int  # score each turn k times and keep the median (1 = once)
    service_secret: str = field(repr=False)  # VIBE_SERVICE_SECRET: signs and checks calls between services

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EvaluatorSettings:
        r = _Reader(os.environ if env is None else env)
        s = cls(
            common=CommonSettings.read(r),
            addr=r.addr("EVALUATOR_ADDR", DEFAULT_ADDRS["evaluator"]),
            workers=r.integer("EVALUATOR_WORKERS", 2, 0, 64),
            turn_log_ttl_s=r.integer("VIBE_TURN_LOG_TTL_S", 7 * 24 * 3600, 60, 365 * 24 * 3600),
            eval_lock_ttl_s=r.integer("VIBE_EVAL_LOCK_TTL_S", 120, 1, 3600),
            job_max_attempts=r.integer("EVALUATOR_JOB_MAX_ATTEMPTS", 3, 1, 100),
            judge_samples=r.integer("EVALUATOR_JUDGE_SAMPLES", 1, 1, 9),
            service_secret=_service_secret(r),
        )
        r.done("evaluator")
        return s


@dataclass(frozen=True)
class GradeBands:
    """Lowest total score for each grade, best first; below the last band is F."""

    bands: tuple[tuple[str, float], ...] = (("A+", 95.0), ("A", 90.0), ("B", 80.0), ("C", 70.0), ("D", 60.0))

    def grade(self, total: float) -> str:
        for name, lowest in self.bands:
            if total >= lowest:
                return name
        return "F"

    def describe(self) -> str:
        return ", ".join(f"{name} >= {lowest:g}" for name, lowest in self.bands) + ", else F"


SANDBOX_ISOLATIONS = ("namespaces", "rlimits")


@dataclass(frozen=True)
class ScoringSettings:
    common: CommonSettings
    addr: str
    max_parallel_runs: int
    # How submitted code is isolated; the service refuses to start when it cannot provide it.
    isolation: str
    sandbox_helper: str  # path of the compiled vibe-box; empty: next to this Python, then PATH
    sandbox_uid_base: int  # runs of worker slot i run as uid base + i
    # After a test exceeds its time limit, tests not started yet are not run (they count as failed).
    stop_after_timeout: bool
    weight_prompt: float
    weight_performance: float
    weight_correctness: float
    bands: GradeBands
    service_secret: str = field(repr=False)  # VIBE_SERVICE_SECRET: signs and checks calls between services

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ScoringSettings:
        r = _Reader(os.environ if env is None else env)
        wp = r.number("VIBE_WEIGHT_PROMPT", 0.4, 0.0, 1.0)
        wperf = r.number("VIBE_WEIGHT_PERFORMANCE", 0.3, 0.0, 1.0)
        wc = r.number("VIBE_WEIGHT_CORRECTNESS", 0.3, 0.0, 1.0)
        if abs(wp + wperf + wc - 1.0) > 1e-6:
            r.errors.append(f"VIBE_WEIGHT_PROMPT + _PERFORMANCE + _CORRECTNESS must sum to 1 (got {wp + wperf + wc:g})")
        defaults = GradeBands()
        bands = tuple(
            (name, r.number(f"VIBE_GRADE_{_band_var(name)}", lowest, 0.0, 100.0)) for name, lowest in defaults.bands
        )
        if any(bands[i][1] < bands[i + 1][1] for i in range(len(bands) - 1)):
            r.errors.append("VIBE_GRADE_* thresholds must not increase from A+ down to D")
        isolation = r.text("SCORING_ISOLATION", "namespaces").lower()
        if isolation == "bubblewrap":  # the isolation's earlier name
            isolation = "namespaces"
        if isolation not in SANDBOX_ISOLATIONS:
            r.errors.append(f"SCORING_ISOLATION={isolation!r} must be one of: {', '.join(SANDBOX_ISOLATIONS)}")
            isolation = "namespaces"
        slots = r.integer("SCORING_MAX_PARALLEL_RUNS", os.cpu_count() or 2, 1, 256)
        s = cls(
            common=CommonSettings.read(r),
            addr=r.addr("SCORING_ADDR", DEFAULT_ADDRS["scoring"]),
            max_parallel_runs=slots,
            isolation=isolation,
            sandbox_helper=r.text("SCORING_SANDBOX_HELPER", ""),
            sandbox_uid_base=r.integer("SCORING_SANDBOX_UID_BASE", 60000, 1000, 2**31 - 1 - slots),
            stop_after_timeout=r.boolean("SCORING_STOP_AFTER_TIMEOUT", True),
            weight_prompt=wp,
            weight_performance=wperf,
            weight_correctness=wc,
            bands=GradeBands(bands),
            service_secret=_service_secret(r),
        )
        r.done("scoring")
        return s


# Service-to-service authentication (vibe/platform/service_auth.py).
SERVICE_SECRET_VAR = "VIBE_SERVICE_SECRET"
MIN_SERVICE_SECRET_BYTES = 32
_SERVICE_SECRET_WHY = "the services sign and check every call between them with it, and it must be the same in all four"


def _service_secret(r: _Reader) -> str:
    return r.secret(SERVICE_SECRET_VAR, MIN_SERVICE_SECRET_BYTES, _SERVICE_SECRET_WHY)


def _band_var(grade: str) -> str:
    return grade.replace("+", "_PLUS")


@dataclass(frozen=True)
class GatewaySettings:
    common: CommonSettings
    addr: str
    http_addr: str  # the candidates' web page and HTTP/JSON API; empty = off
    tutor_addr: str
    evaluator_addr: str
    scoring_addr: str
    max_message_chars: int
    max_code_bytes: int
    submit_guard_timeout_s: float  # bound on waiting for in-flight evaluations
    guard_concurrency: int  # missing turns evaluated at once by the guard
    service_secret: str = field(repr=False)  # VIBE_SERVICE_SECRET: signs and checks calls between services
    # Without an idempotency key, a chat message identical to the session's last stored
    # turn within this many seconds is that turn retried, not a new one (0: off).
    chat_dedup_window_s: float = 10.0
    access: AccessSettings = field(default_factory=lambda: AccessSettings())
    # The HTTP API's wait for a request's head (on a new connection, or on a kept-alive one
    # after its last answer) and, separately, for its body: a client that sends nothing, or
    # a byte now and then, does not hold a connection (and a file descriptor) for good.
    http_request_timeout_s: float = 15.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        r = _Reader(os.environ if env is None else env)
        http_addr = r.optional_addr("GATEWAY_HTTP_ADDR") if "GATEWAY_HTTP_ADDR" in r.env else "127.0.0.1:8080"
        if "VIBE_CHAT_LOCK_TTL_S" in r.env:
            r.errors.append(
                "VIBE_CHAT_LOCK_TTL_S is no longer read: the chat lease is renewed while its holder lives and "
                "expires after VIBE_LEASE_TTL_S (default 5); remove it"
            )
        common = CommonSettings.read(r)
        guard = r.number("VIBE_SUBMIT_GUARD_TIMEOUT_S", 60.0, 0.1, 3600.0)
        # The guard must outlive a dead evaluator's lease and then evaluate the turn itself
        # (an LLM call, bounded by its budget before the offline fallback answers).
        needed = common.lease_ttl_s + common.llm_call_budget_s + 1.0
        if guard < needed:
            r.errors.append(
                f"VIBE_SUBMIT_GUARD_TIMEOUT_S={guard:g} is too short for the lease and LLM timings: a submit must "
                f"outwait a dead holder's lease (VIBE_LEASE_TTL_S={common.lease_ttl_s:g}) and then evaluate a turn "
                f"(VIBE_LLM_CALL_BUDGET_S={common.llm_call_budget_s:g}); make it at least {needed:g}"
            )
        s = cls(
            common=common,
            addr=r.addr("GATEWAY_ADDR", DEFAULT_ADDRS["gateway"]),
            http_addr=http_addr,
            tutor_addr=r.addr("TUTOR_ADDR", DEFAULT_ADDRS["tutor"]),
            evaluator_addr=r.addr("EVALUATOR_ADDR", DEFAULT_ADDRS["evaluator"]),
            scoring_addr=r.addr("SCORING_ADDR", DEFAULT_ADDRS["scoring"]),
            max_message_chars=r.integer("VIBE_MAX_MESSAGE_CHARS", 4000, 1, 1_000_000),
            max_code_bytes=r.integer("VIBE_MAX_CODE_BYTES", 64 * 1024, 1, 16 * 1024 * 1024),
            submit_guard_timeout_s=guard,
            http_request_timeout_s=r.number("GATEWAY_HTTP_REQUEST_TIMEOUT_S", cls.http_request_timeout_s, 0.1, 600.0),
            guard_concurrency=r.integer("VIBE_GUARD_CONCURRENCY", 4, 1, 256),
            service_secret=_service_secret(r),
            access=AccessSettings.read(r),
            chat_dedup_window_s=r.number("VIBE_CHAT_DEDUP_WINDOW_S", 10.0, 0.0, 3600.0),
        )
        r.done("gateway")
        return s


CANDIDATE_REPORT_POLICIES = ("full", "scores", "released")


@dataclass(frozen=True)
class AccessSettings:
    """The gateway's access rules: backend keys from the settings, what a
    candidate sees of their report, the limits, and the graded-session webhook."""

    api_keys: tuple[SettingsKey, ...] = ()  # VIBE_API_KEYS (see vibe/platform/api_keys.py)
    # What the candidate sees of their report: everything, the scores only, or a receipt
    # until a reviewer releases the full report (reviewers always see it whole).
    candidate_report: str = "released"
    chats_per_minute: int = 20  # per session
    turns_per_session: int = 60
    sessions_per_key_per_hour: int = 500
    streams_per_key: int = 100  # chats and submits streaming at once, over the key's sessions
    runs_per_minute: int = 10  # visible-test runs per session (each is a sandbox job)
    # A session's time: chat and visible-test runs are refused this long after it was created
    # (a submit is still taken; the page submits by itself at the end). 0: no limit.
    session_time_limit_s: int = 0
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str = field(default="", repr=False)
    webhook_max_attempts: int = 10
    webhook_backoff_base_s: float = 2.0
    webhook_backoff_max_s: float = 600.0
    webhook_timeout_s: float = 10.0
    webhook_poll_s: float = 1.0

    @classmethod
    def read(cls, r: _Reader) -> AccessSettings:
        keys, errors = parse_settings_keys(r.text("VIBE_API_KEYS", ""))
        r.errors.extend(errors)
        urls = tuple(u.strip() for u in r.text("VIBE_WEBHOOK_URLS", "").split(",") if u.strip())
        for url in urls:
            if not url.startswith(("http://", "https://")):
                r.errors.append(f"VIBE_WEBHOOK_URLS: {url!r} must start with http:// or https://")
        secret = ""
        if urls:  # signed deliveries only: a webhook without its secret is not sent
            secret = r.secret(
                "VIBE_WEBHOOK_SECRET", 32, "VIBE_WEBHOOK_URLS is set, and every delivery is signed with it"
            )
        return cls(
            api_keys=keys,
            candidate_report=r.choice("VIBE_CANDIDATE_REPORT", cls.candidate_report, CANDIDATE_REPORT_POLICIES),
            chats_per_minute=r.integer("VIBE_LIMIT_CHATS_PER_MINUTE", cls.chats_per_minute, 1, 100_000),
            turns_per_session=r.integer("VIBE_LIMIT_TURNS_PER_SESSION", cls.turns_per_session, 1, 100_000),
            sessions_per_key_per_hour=r.integer(
                "VIBE_LIMIT_SESSIONS_PER_KEY_PER_HOUR", cls.sessions_per_key_per_hour, 1, 1_000_000
            ),
            streams_per_key=r.integer("VIBE_LIMIT_STREAMS_PER_KEY", cls.streams_per_key, 1, 1_000_000),
            runs_per_minute=r.integer("VIBE_LIMIT_RUNS_PER_MINUTE", cls.runs_per_minute, 1, 100_000),
            session_time_limit_s=r.integer("VIBE_SESSION_TIME_LIMIT_S", cls.session_time_limit_s, 0, 7 * 86_400),
            webhook_urls=urls,
            webhook_secret=secret,
            webhook_max_attempts=r.integer("VIBE_WEBHOOK_MAX_ATTEMPTS", cls.webhook_max_attempts, 1, 100),
            webhook_backoff_base_s=r.number("VIBE_WEBHOOK_BACKOFF_BASE_S", cls.webhook_backoff_base_s, 0.01, 3600.0),
            webhook_backoff_max_s=r.number("VIBE_WEBHOOK_BACKOFF_MAX_S", cls.webhook_backoff_max_s, 0.01, 86_400.0),
            webhook_timeout_s=r.number("VIBE_WEBHOOK_TIMEOUT_S", cls.webhook_timeout_s, 0.1, 300.0),
            webhook_poll_s=r.number("VIBE_WEBHOOK_POLL_S", cls.webhook_poll_s, 0.05, 60.0),
        )
