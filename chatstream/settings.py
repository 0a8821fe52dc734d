"""Configuration: one frozen `Settings` Struct, read from the environment in one place.

This is the only module that reads `os.environ`. Tests and embedding hosts build `Settings(...)` directly.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from chatstream.errors import ConfigError
from chatstream.store.sql import check_database_url, sql_dialect

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["FILE_MEDIA_TYPES", "PROVIDER_ENV", "AuthToken", "ProviderSettings", "Secret", "Settings"]


class Secret:
    """A string that never shows itself in a repr or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'**********'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class AuthToken(msgspec.Struct, frozen=True, kw_only=True):
    """One static bearer token and the principal it stands for."""

    token: Secret
    user_id: str
    tier: str = "free"


class ProviderSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Access to one upstream provider."""

    api_key: Secret | None = None
    base_url: str | None = None
    default_model: str | None = None


# Provider name -> the environment prefixes that configure it, first match wins (SPEC §5, §6).
PROVIDER_ENV: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI",),
    "claude": ("ANTHROPIC", "CLAUDE"),
    "groq": ("GROQ",),
    "openrouter": ("OPENROUTER",),
    "google": ("GOOGLE", "GEMINI"),
    "ollama": ("OLLAMA",),
}


FILE_MEDIA_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
)
"""The default `file_media_types`. No audio or video (no adapter maps them) and no `image/svg+xml` (a script
carrier, and no model reads it as an image)."""


_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""A cookie name is an RFC 6265 `token` (RFC 7230 `tchar`s)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the server can be told.

    The library has no development conveniences: no demo token, no silent mock provider. Those belong to
    the standalone server (`python -m app`), which adds them to these settings when nothing is configured.
    """

    host: str = "127.0.0.1"
    """Where the standalone server (`python -m app`) listens."""
    port: int = 8000
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Standalone server only (`--log-level`): the level of its log output. The library only logs to its own
    loggers (`chatstream.*`); a host configures logging itself."""
    log_format: Literal["text", "json"] = "text"
    """Standalone server only: `json` writes each log line as one JSON object (`ts`, `level`, `logger`, `msg`
    and the line's structured fields, e.g. those of the `chatstream.access` request lines)."""
    redis_url: str | None = None
    """Redis for streams, runs and limits, and for the store unless `database_url` names another; unset means
    in-memory backends."""
    database_url: str | None = None
    """The conversation store: `sqlite+aiosqlite:///path.db` or `postgresql+asyncpg://...` (conversations,
    messages, votes, suspended runs, preferences in SQL), or `memory://`. Unset: Redis when `redis_url` is set,
    else memory (the standalone server: SQLite in `./chatstream.db`)."""
    db_auto_migrate: bool | None = None
    """Apply the schema migrations at start-up. Unset: on for SQLite, off for PostgreSQL (run
    `chatstream db upgrade` when deploying; start-up then refuses a schema that is behind)."""
    redis_cluster: bool = False
    """`redis_url` names a node of a Redis Cluster (as does a `redis+cluster://` URL whatever this says)."""
    redis_prefix: str = "chat"
    """Prefix of every Redis key (`{prefix}:{<scope>:<id>}:<kind>`, see `chatstream.keys`); no braces."""
    auth_tokens: tuple[AuthToken, ...] = ()
    """Static bearer tokens. With none, no JWT secret and no `authenticate=`, the library refuses to start."""
    allow_demo_token: bool = False
    """Standalone server only: keep its demo token when binding a non-loopback address (never in production)."""
    jwt_secret: Secret | None = None
    """Accept HS256 JWTs with `sub` and `tier` claims signed with this secret."""
    jwt_require_exp: bool = True
    """Refuse JWTs without an `exp` claim: a token that never expires is a credential that can never be revoked."""
    default_provider: str | None = None
    default_model: str | None = None
    providers: dict[str, ProviderSettings] = msgspec.field(default_factory=dict)
    """Configured upstream providers by name (`openai`, `claude`, ...)."""
    provider_connect_timeout: float = 10.0
    provider_read_timeout: float = 60.0
    rate_ip_per_minute: int = 60
    quota_per_day: dict[str, int] = msgspec.field(default_factory=lambda: {"free": 20, "premium": 1000})
    """Messages per user per UTC day, by tier."""
    tokens_per_day: dict[str, int] = msgspec.field(default_factory=dict)
    """Optional output tokens per user per UTC day, by tier."""
    max_concurrent_runs: int = 3
    token_estimate: int = 1024
    """Output tokens reserved against `tokens_per_day` when a run starts, settled to real usage at its end."""
    trusted_proxies: tuple[str, ...] = ()
    """Peers whose `X-Forwarded-For` is believed (IPs or CIDRs)."""
    limits_fail_open: bool = False
    """When Redis is down: False answers 503 for writes, True lets requests through unlimited."""
    stream_ttl_seconds: float = 60.0
    resumable_streams: bool = True
    """False is serverless mode: nothing outlives a request, so `GET /api/chat/{id}/stream` is always 204."""
    run_timeout_seconds: float = 60.0
    busy_policy: Literal["supersede", "reject"] = "supersede"
    """A send into a conversation whose answer is still generating: `supersede` stops that run (on whichever
    instance runs it; its partial answer is stored as interrupted) and starts the new one; `reject` is a 409."""
    supersede_wait_seconds: float = 10.0
    """How long a superseding send waits for the stopped run to store its answer and let go (then 409)."""
    abandon_after_seconds: float = 0.0
    """Stop a run nobody has read for this long (a closed tab), to save provider tokens; 0 never does. A resume
    within the window keeps it going."""
    shutdown_grace_seconds: float = 30.0
    """On SIGTERM, how long running runs get to finish before they are stopped like a user stop (stored with
    finishReason "interrupted"). Meanwhile the instance starts no run (503 with Retry-After) and `/readyz` says
    unavailable. Keep the orchestrator's own grace period above it, with a margin for the stop and the last
    frames: Kubernetes `terminationGracePeriodSeconds` >= this + 15 (the standalone server gives uvicorn this
    + 10 for its `timeout_graceful_shutdown`)."""
    shutdown_signals: bool = True
    """Install SIGTERM/SIGINT handlers at start-up (main thread only) that drain this instance before passing
    the signal on to the server's own handler (uvicorn's). Off: the host calls `ChatPlugin.drain()` itself."""
    store_retry_seconds: float = 60.0
    """How long a run keeps retrying the final write of its answer while the store (Redis) is unreachable,
    holding the answer in memory meanwhile; after that it gives up and logs the loss."""
    max_steps: int = 5
    max_body_bytes: int = 20 * 1024 * 1024
    file_media_types: tuple[str, ...] = FILE_MEDIA_TYPES
    """Media types a file part (a base64 data URL) may declare; anything else is a 400. The default is what the
    provider adapters can pass on: images, PDF, and text the models read as text."""
    ping_interval_seconds: float = 15.0
    heartbeat_seconds: float = 1.0
    """How often a process renews its runs' liveness (all of them in one Redis call). Readers on other
    instances take a producer for dead after 3 missed beats, and a new send may then claim its conversation."""
    run_lease_seconds: float = 60.0
    """How long a run keeps its concurrency slot and its claim on its conversation without a renewal; renewed
    every quarter of it, so an event loop stalled (or a process paused) for less than ~3/4 of it loses neither.
    The trade-off: a crashed instance's runs keep their users' concurrency slots for up to this long."""
    coalesce_ms: float = 2.0
    """Window in which a Redis stream buffer batches frames into one write."""
    mock_provider: bool = False
    """Serve the `mock` provider (tests, demos). The standalone server turns it on when no provider is set."""
    cors_origins: tuple[str, ...] = ()
    """Origins allowed to call the API from a browser (`*` for any, without credentials); empty is off."""
    session_cookie: str | None = None
    """The name of a cookie that may carry the token instead of `Authorization: Bearer` (the header wins when both
    are sent). A write (POST, PUT, PATCH, DELETE) authenticated by it must send `Content-Type: application/json`
    and, when `cors_origins` lists origins, an `Origin` among them; else 403 (CSRF)."""
    workflows_path: str | None = None
    """A JSON file of seed-003 workflow presets `[{id, name, system, tools, provider?, model?, maxSteps?}]`, read
    once at start-up (`chatstream.workflows`); a message's `workflowId` picks one."""
    health_path: str | None = "/healthz"
    """Where the liveness route is served, relative to the mount path; None turns it off."""
    ready_path: str | None = "/readyz"
    metrics_path: str | None = "/metrics"
    models_path: str | None = "/api/models"
    mock_delay_ms: float = 0.0
    """Per-token delay of the mock provider (demos)."""
    web_search_api_key: Secret | None = None
    """Key of the web search backend (Brave Search API); without it `web_search` refuses clearly."""
    web_search_url: str | None = None
    """Override of the search endpoint (a proxy, or a fake in tests)."""
    web_fetch_allow_private: bool = False
    """Let `web_fetch` reach private, loopback and link-local addresses (never on a shared server)."""
    web_fetch_allowlist: tuple[str, ...] = ()
    """Hosts or CIDRs `web_fetch` may reach even when they resolve to private addresses."""
    web_fetch_max_bytes: int = 2_000_000
    """Largest response body `web_fetch` reads; the rest is cut off."""
    web_fetch_timeout_seconds: float = 10.0
    """Whole-fetch time cap, redirects included."""
    weather_geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search"
    weather_forecast_url: str = "https://api.open-meteo.com/v1/forecast"
    approval_tools: tuple[str, ...] = ()
    """Tools that need a human's approval on top of those registered with `needs_approval=True`."""
    title_generation: bool = True

    def __post_init__(self) -> None:
        for name, var in (
            ("shutdown_grace_seconds", "CHAT_SHUTDOWN_GRACE_SECONDS"),
            ("store_retry_seconds", "CHAT_STORE_RETRY_SECONDS"),
            ("supersede_wait_seconds", "CHAT_SUPERSEDE_WAIT_SECONDS"),
            ("abandon_after_seconds", "CHAT_ABANDON_AFTER_SECONDS"),
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{var} must not be negative")
        if self.heartbeat_seconds <= 0:
            raise ConfigError("CHAT_HEARTBEAT_SECONDS must be positive")
        # Holding outlasts liveness, or a stalled producer would lose its slot before readers even miss it.
        if self.run_lease_seconds <= 3 * self.heartbeat_seconds:
            raise ConfigError(
                f"CHAT_RUN_LEASE_SECONDS ({self.run_lease_seconds:g}) must exceed 3 x CHAT_HEARTBEAT_SECONDS"
                f" ({3 * self.heartbeat_seconds:g})"
            )
        if self.database_url is not None:
            check_database_url(self.database_url)
        if "*" in self.cors_origins and len(self.cors_origins) > 1:
            raise ConfigError("CHAT_CORS_ORIGINS: '*' allows every origin and cannot be combined with others")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigError(f"CHAT_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com")
        if self.session_cookie is not None and not _COOKIE_NAME.fullmatch(self.session_cookie):
            raise ConfigError(f"CHAT_SESSION_COOKIE: {self.session_cookie!r} is not a cookie name (RFC 6265 token)")
        for name in ("health_path", "ready_path", "metrics_path", "models_path"):
            path = getattr(self, name)
            if path is not None and not path.startswith("/"):
                raise ConfigError(f"{name} must start with '/', got {path!r}")
        for media_type in self.file_media_types:
            kind, slash, subtype = media_type.partition("/")
            if not (kind and slash and subtype) or media_type != media_type.strip().lower() or ";" in media_type:
                raise ConfigError(
                    f"CHAT_FILE_MEDIA_TYPES: {media_type!r} is not a lower-case type/subtype like image/png"
                )

    @property
    def sql_url(self) -> str | None:
        """`database_url` when it names a SQL database (not `memory://`)."""
        url = self.database_url
        return url if url is not None and sql_dialect(url) is not None else None

    @property
    def auto_migrate(self) -> bool:
        """`db_auto_migrate`, or its default for the database: on for SQLite, off otherwise."""
        if self.db_auto_migrate is not None:
            return self.db_auto_migrate
        return self.sql_url is not None and sql_dialect(self.sql_url) == "sqlite"

    @property
    def auth_configured(self) -> bool:
        """Whether static tokens or a JWT secret are set (a host's `authenticate=` is the third way)."""
        return bool(self.auth_tokens) or self.jwt_secret is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables (SPEC §6 names), coercing strings leniently."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        simple = {
            "HOST": "host",
            "PORT": "port",
            "CHAT_LOG_LEVEL": "log_level",
            "CHAT_LOG_FORMAT": "log_format",
            "REDIS_URL": "redis_url",
            "DATABASE_URL": "database_url",
            "CHAT_DB_AUTO_MIGRATE": "db_auto_migrate",
            "CHAT_REDIS_PREFIX": "redis_prefix",
            "CHAT_REDIS_CLUSTER": "redis_cluster",
            "CHAT_DEFAULT_PROVIDER": "default_provider",
            "CHAT_DEFAULT_MODEL": "default_model",
            "CHAT_PROVIDER_CONNECT_TIMEOUT": "provider_connect_timeout",
            "CHAT_PROVIDER_READ_TIMEOUT": "provider_read_timeout",
            "CHAT_RATE_IP_PER_MINUTE": "rate_ip_per_minute",
            "CHAT_MAX_CONCURRENT_RUNS": "max_concurrent_runs",
            "CHAT_TOKEN_ESTIMATE": "token_estimate",
            "CHAT_LIMITS_FAIL_OPEN": "limits_fail_open",
            "CHAT_STREAM_TTL_SECONDS": "stream_ttl_seconds",
            "CHAT_RESUMABLE_STREAMS": "resumable_streams",
            "CHAT_RUN_TIMEOUT_SECONDS": "run_timeout_seconds",
            "CHAT_BUSY_POLICY": "busy_policy",
            "CHAT_SUPERSEDE_WAIT_SECONDS": "supersede_wait_seconds",
            "CHAT_ABANDON_AFTER_SECONDS": "abandon_after_seconds",
            "CHAT_SHUTDOWN_GRACE_SECONDS": "shutdown_grace_seconds",
            "CHAT_SHUTDOWN_SIGNALS": "shutdown_signals",
            "CHAT_STORE_RETRY_SECONDS": "store_retry_seconds",
            "CHAT_MAX_STEPS": "max_steps",
            "CHAT_MAX_BODY_BYTES": "max_body_bytes",
            "CHAT_PING_INTERVAL_SECONDS": "ping_interval_seconds",
            "CHAT_HEARTBEAT_SECONDS": "heartbeat_seconds",
            "CHAT_RUN_LEASE_SECONDS": "run_lease_seconds",
            "CHAT_COALESCE_MS": "coalesce_ms",
            "CHAT_MOCK_DELAY_MS": "mock_delay_ms",
            "CHAT_WEB_SEARCH_URL": "web_search_url",
            "CHAT_WEB_FETCH_ALLOW_PRIVATE": "web_fetch_allow_private",
            "CHAT_WEB_FETCH_MAX_BYTES": "web_fetch_max_bytes",
            "CHAT_WEB_FETCH_TIMEOUT_SECONDS": "web_fetch_timeout_seconds",
            "CHAT_WEATHER_GEOCODING_URL": "weather_geocoding_url",
            "CHAT_WEATHER_FORECAST_URL": "weather_forecast_url",
            "CHAT_TITLE_GENERATION": "title_generation",
            "CHAT_MOCK_PROVIDER": "mock_provider",
            "CHAT_ALLOW_DEMO_TOKEN": "allow_demo_token",
            "CHAT_JWT_REQUIRE_EXP": "jwt_require_exp",
            "CHAT_SESSION_COOKIE": "session_cookie",
            "CHAT_WORKFLOWS": "workflows_path",
        }
        for var, field in simple.items():
            if env.get(var, "") != "":
                raw[field] = env[var]
        for field in ("log_level", "log_format"):  # `INFO` means `info`
            if field in raw:
                raw[field] = raw[field].strip().lower()
        lists = {
            "CHAT_TRUSTED_PROXIES": "trusted_proxies",
            "CHAT_WEB_FETCH_ALLOWLIST": "web_fetch_allowlist",
            "CHAT_APPROVAL_TOOLS": "approval_tools",
            "CHAT_CORS_ORIGINS": "cors_origins",
            "CHAT_FILE_MEDIA_TYPES": "file_media_types",
        }
        for var, field in lists.items():
            if env.get(var):
                raw[field] = [p.strip() for p in env[var].split(",") if p.strip()]
        # An ops route is moved with a path, or turned off with an empty value or "off".
        ops = {
            "CHAT_HEALTH_PATH": "health_path",
            "CHAT_READY_PATH": "ready_path",
            "CHAT_METRICS_PATH": "metrics_path",
            "CHAT_MODELS_PATH": "models_path",
        }
        for var, field in ops.items():
            if var in env:
                value = env[var].strip()
                raw[field] = None if value.lower() in ("", "off", "false", "none") else value
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"invalid configuration: {exc}") from exc
        return msgspec.structs.replace(
            settings,
            auth_tokens=_parse_tokens(env.get("CHAT_AUTH_TOKENS", "")),
            jwt_secret=Secret(env["CHAT_JWT_SECRET"]) if env.get("CHAT_JWT_SECRET") else None,
            web_search_api_key=Secret(env["CHAT_WEB_SEARCH_API_KEY"]) if env.get("CHAT_WEB_SEARCH_API_KEY") else None,
            providers=_parse_providers(env),
            quota_per_day=_parse_tiers(env, "CHAT_QUOTA_", "_PER_DAY", settings.quota_per_day),
            tokens_per_day=_parse_tiers(env, "CHAT_TOKENS_", "_PER_DAY", settings.tokens_per_day),
        )


def _parse_tokens(value: str) -> tuple[AuthToken, ...]:
    tokens = []
    for entry in filter(None, (e.strip() for e in value.split(","))):
        token, _, rest = entry.partition(":")
        user_id, _, tier = rest.partition(":")
        if not token or not user_id:
            raise ConfigError("CHAT_AUTH_TOKENS entries must look like token:user_id[:tier]")
        tokens.append(AuthToken(token=Secret(token), user_id=user_id, tier=tier or "free"))
    return tuple(tokens)


def _parse_tiers(env: Mapping[str, str], prefix: str, suffix: str, defaults: dict[str, int]) -> dict[str, int]:
    tiers = dict(defaults)
    for var, value in env.items():
        if var.startswith(prefix) and var.endswith(suffix) and len(var) > len(prefix) + len(suffix):
            tier = var[len(prefix) : -len(suffix)].lower()
            try:
                tiers[tier] = int(value)
            except ValueError as exc:
                raise ConfigError(f"{var} must be an integer, got {value!r}") from exc
    return tiers


def _parse_providers(env: Mapping[str, str]) -> dict[str, ProviderSettings]:
    providers: dict[str, ProviderSettings] = {}
    for name, prefixes in PROVIDER_ENV.items():
        key = next((env[f"{p}_API_KEY"] for p in prefixes if env.get(f"{p}_API_KEY")), None)
        base_url = next((env[f"{p}_BASE_URL"] for p in prefixes if env.get(f"{p}_BASE_URL")), None)
        model = next((env[f"{p}_MODEL"] for p in prefixes if env.get(f"{p}_MODEL")), None)
        # Ollama needs no key: a base URL configures it. Everything else needs a key, or a base URL
        # pointing at a compatible server (a local gateway often needs none).
        if key is None and base_url is None:
            continue
        providers[name] = ProviderSettings(api_key=Secret(key) if key else None, base_url=base_url, default_model=model)
    return providers
