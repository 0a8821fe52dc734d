"""Settings, banner and app of the standalone server (the library's `create_app` plus dev conveniences)."""

from __future__ import annotations

import gc
import ipaddress
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from chatstream import Settings, create_app
from chatstream.errors import ConfigError
from chatstream.settings import AuthToken, Secret
from chatstream.store.sql import redact_url, sql_dialect

if TYPE_CHECKING:
    from collections.abc import Mapping

    from litestar import Litestar

__all__ = [
    "DEFAULT_DATABASE",
    "DEMO_TOKEN",
    "JsonFormatter",
    "TextFormatter",
    "banner",
    "build_app",
    "configure_logging",
    "standalone_settings",
    "store_description",
]

DEMO_TOKEN = "demo-token"  # noqa: S105 - announced at start-up; only on loopback unless explicitly allowed
# Premium, so someone trying the demo is not stopped by the free tier's 20 messages a day.
_DEMO = AuthToken(token=Secret(DEMO_TOKEN), user_id="demo", tier="premium")
DEFAULT_DATABASE = "chatstream.db"
"""The standalone server's store when neither DATABASE_URL nor REDIS_URL is set (in the working directory)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def standalone_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """`Settings.from_env()`, plus the demo token when no auth is configured, the mock provider when no
    provider is, and SQLite in `./chatstream.db` when neither DATABASE_URL nor REDIS_URL is set. The demo token
    is refused on a non-loopback address unless CHAT_ALLOW_DEMO_TOKEN=true."""
    settings = Settings.from_env(os.environ if environ is None else environ)
    changes: dict[str, object] = {}
    if not settings.auth_configured:
        if not is_loopback(settings.host) and not settings.allow_demo_token:
            raise ConfigError(
                f"refusing to serve the demo token on {settings.host}: anyone who can reach it would spend your "
                "provider keys. Set CHAT_AUTH_TOKENS (token:user_id[:tier],...) or CHAT_JWT_SECRET, "
                "or CHAT_ALLOW_DEMO_TOKEN=true for a throwaway demo"
            )
        changes["auth_tokens"] = (_DEMO,)
    if not settings.providers and not settings.mock_provider:
        changes["mock_provider"] = True
    if settings.database_url is None and settings.redis_url is None:
        # Conversations outlive a restart of `make run`: SQLite in the working directory (the banner names it).
        changes["database_url"] = f"sqlite+aiosqlite:///{Path(DEFAULT_DATABASE).resolve()}"
    return msgspec.structs.replace(settings, **changes) if changes else settings


def uses_demo_token(settings: Settings) -> bool:
    return any(t.token.get() == DEMO_TOKEN for t in settings.auth_tokens)


def store_description(settings: Settings) -> str:
    """Where conversations are stored, for the banner (a password in a URL is masked)."""
    url = settings.database_url
    if url is None:
        return "Redis" if settings.redis_url else "memory (lost at exit)"
    dialect = sql_dialect(url)
    if dialect == "sqlite":
        return f"SQLite ({url.partition(':///')[2] or url})"
    if dialect == "postgresql":
        return f"PostgreSQL ({redact_url(url)})"
    return "memory (lost at exit)"


def banner(settings: Settings) -> str:
    backends = f"Redis ({settings.redis_url})" if settings.redis_url else "memory (set REDIS_URL for Redis)"
    configured = ", ".join(settings.providers) or "none"
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        f"chatstream on {url}",
        f"  backends: {backends}",
        f"  conversations: {store_description(settings)}",
        f"  providers: {configured}",
        f"  playground: {url}/ (a chat page); api docs: {url}/schema (OpenAPI: {url}/schema/openapi.json)",
    ]
    if settings.mock_provider and not settings.providers:
        lines.append("  the mock provider answers: set OPENAI_API_KEY, ANTHROPIC_API_KEY, ... for real models")
    if uses_demo_token(settings):
        lines += [
            f"  auth: demo token {DEMO_TOKEN!r} (user 'demo', tier premium); set CHAT_AUTH_TOKENS for real tokens",
            f"  try: curl -N {url}/api/chat -H 'Authorization: Bearer {DEMO_TOKEN}'"
            ' -H \'Content-Type: application/json\' -d \'{"parts":[{"type":"text","text":"Hello"}]}\'',
        ]
    return "\n".join(lines)


# Every attribute a bare LogRecord has; anything else on a record came in through `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_JSON = msgspec.json.Encoder(enc_hook=repr)  # a field msgspec cannot encode is logged, not lost


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts`, `level`, `logger`, `msg`, then the record's structured fields (its
    `extra=`), and `exc` with the traceback text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _JSON.encode(out).decode()


class TextFormatter(logging.Formatter):
    """`asctime level logger: message`, with the time's text made once per second (formatting it was a tenth of
    a log line's cost, and a run start writes two: the access line and the run's end)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


def configure_logging(level: str = "info", fmt: str = "text") -> None:
    """The standalone server's logging (CHAT_LOG_LEVEL, CHAT_LOG_FORMAT) on the root logger, to stderr. A
    host that embeds the library configures its own; the library only logs to its `chatstream.*` loggers."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    # The HTTP clients log every request at INFO: one line per relayed answer is noise, and costly.
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "anthropic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def build_app(environ: Mapping[str, str] | None = None) -> Litestar:
    """The standalone app, with the standalone logging (`configure_logging`).

    Logging is configured here, where every process that serves builds its app (`python -m app`'s workers,
    `uvicorn app.main:app --workers N`, `uvicorn --factory app.server:build_app`), not only in the process that
    parsed the command line: a worker is a fresh interpreter, and one that skipped it logged every SDK request
    at INFO through the root logger uvicorn configured."""
    from app.playground import add_playground

    settings = standalone_settings(environ)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    add_playground(app)
    return app


def tune_gc() -> None:
    """After start-up, leave what start-up built out of the garbage collector's work, and collect young
    objects less often.

    Everything imported and built by then (Litestar, the SDKs, pydantic's models: ~140,000 objects) lives as
    long as the process, yet every full collection walked it again, a quarter of a second each on these
    machines, and a streamed frame's short-lived objects (coroutines, futures, buffers: freed by reference
    counting) triggered a young collection every 700 of them (`bench/frame_cost.py`). Only the standalone
    server's processes do this (`app.main`, what `python -m app` and its workers serve): an embedding host,
    or a test building the app in its own process, owns its process's collector."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


GC_THRESHOLD = 10_000
"""Net allocations of tracked objects between young collections (CPython's default is 700)."""
