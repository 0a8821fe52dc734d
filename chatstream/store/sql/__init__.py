"""`ConversationStore` on a SQL database (SQLite or PostgreSQL), through SQLAlchemy 2 async Core.

Selected by `DATABASE_URL` (`sqlite+aiosqlite:///path.db`, `postgresql+asyncpg://...`). This package's own
module imports nothing optional, so a core install can tell a SQL URL apart and name the missing extra;
`store`, `schema`, `engine` and `migrate` need `chatstream[sqlite]` or `chatstream[postgres]`.

- `schema`: the tables and indexes (the live definition; `migrations/` holds the Alembic history that builds it).
- `engine`: one `AsyncEngine` per URL, tuned per dialect (SQLite WAL, busy timeout, `BEGIN IMMEDIATE`).
- `store`: `SqlConversationStore`, the queries.
- `migrate`: `upgrade` (what `chatstream db upgrade` and `CHAT_DB_AUTO_MIGRATE` run) and the revision check.
"""

from __future__ import annotations

import importlib.util

from chatstream.errors import ConfigError

__all__ = [
    "MEMORY_URL",
    "check_database_url",
    "is_memory_url",
    "normalize_url",
    "redact_url",
    "require_sql",
    "sql_dialect",
]

MEMORY_URL = "memory://"

# What a URL may start with, and the driver we run it on: `postgres://` (Heroku, Render, ...) and plain
# `sqlite://` / `postgresql://` get our async driver.
_SCHEMES = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "sqlite+aiosqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgres": ("postgresql", "postgresql+asyncpg"),
    "postgresql": ("postgresql", "postgresql+asyncpg"),
    "postgresql+asyncpg": ("postgresql", "postgresql+asyncpg"),
}
# dialect -> (the extra that installs it, the modules it needs)
_EXTRAS = {
    "sqlite": ("sqlite", ("sqlalchemy", "greenlet", "alembic", "aiosqlite")),
    "postgresql": ("postgres", ("sqlalchemy", "greenlet", "alembic", "asyncpg")),
}


def is_memory_url(url: str) -> bool:
    return url.strip() == MEMORY_URL


def sql_dialect(url: str) -> str | None:
    """`sqlite` or `postgresql` for a URL we can serve, None for anything else (`memory://`, a typo)."""
    scheme, sep, _ = url.partition("://")
    found = _SCHEMES.get(scheme.lower()) if sep else None
    return found[0] if found else None


def normalize_url(url: str) -> str:
    """The URL with our async driver named (`postgres://` -> `postgresql+asyncpg://`)."""
    scheme, sep, rest = url.partition("://")
    found = _SCHEMES.get(scheme.lower()) if sep else None
    if found is None:
        raise ConfigError(f"DATABASE_URL: unsupported {redact_url(url)!r}: use {_EXAMPLES}")
    return f"{found[1]}://{rest}"


_EXAMPLES = "sqlite+aiosqlite:///path/to/chat.db, postgresql+asyncpg://user:password@host/db or memory://"


def check_database_url(url: str) -> None:
    """Raise `ConfigError` for a `DATABASE_URL` that is neither `memory://` nor a SQL URL we serve."""
    if not is_memory_url(url):
        normalize_url(url)


def require_sql(url: str) -> None:
    """Raise `ConfigError` naming the extra when SQLAlchemy, Alembic or the URL's driver is not installed."""
    dialect = sql_dialect(url)
    if dialect is None:
        normalize_url(url)  # raises
        return
    extra, modules = _EXTRAS[dialect]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"DATABASE_URL is a {dialect} URL but {', '.join(missing)} is not installed: "
            f"pip install 'chatstream[{extra}]'"
        )


def redact_url(url: str) -> str:
    """The URL with its password replaced by `***`, fit for a banner, an error or a log line."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
