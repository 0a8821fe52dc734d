"""One `AsyncEngine` per database, tuned per dialect, and the mapping of its failures onto
`BackendUnavailableError`.

Two views of the same engine (one connection pool) serve the store:

- `single`: one statement, committed by itself. PostgreSQL runs it in autocommit (no `BEGIN`/`COMMIT`
  round trips); SQLite runs it without an explicit transaction (the statement is its own).
- `tx`: several statements in one transaction. PostgreSQL: `READ COMMITTED`, and the store takes row locks
  where it reads before it writes. SQLite: `BEGIN IMMEDIATE`, which takes the database's write lock up front:
  a deferred transaction that reads and then writes fails at once (`SQLITE_BUSY`, no busy wait) when another
  connection wrote in between, while an immediate one waits its turn (`busy_timeout`).

SQLite connections are set to WAL (readers never wait for the writer), `synchronous=NORMAL` (durable at
each checkpoint, never corrupt), `foreign_keys=ON` (the cascades) and a busy timeout.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from chatstream.errors import BackendUnavailableError
from chatstream.store.sql import normalize_url, redact_url, sql_dialect

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Connection
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["Database", "open_database", "unavailable"]

_BEGIN = "chatstream_begin"  # execution option: what our SQLite `begin` hook emits


@dataclass(frozen=True, slots=True)
class Database:
    """An engine and its two views (see the module docstring)."""

    engine: AsyncEngine
    single: AsyncEngine
    tx: AsyncEngine
    dialect: str
    """`sqlite` or `postgresql`."""
    url: str

    async def aclose(self) -> None:
        await self.engine.dispose()


def open_database(
    url: str,
    *,
    schema: str | None = None,
    pool_size: int = 10,
    max_overflow: int = 20,
    busy_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    command_timeout: float = 30.0,
) -> Database:
    """An engine for `url` (`sqlite+aiosqlite:///path.db`, `postgresql+asyncpg://...`); nothing connects yet.

    Args:
        schema: PostgreSQL only: the `search_path` of every connection (tables, indexes and the version table
            live there). Tests use a schema each; production uses the role's default.
        pool_size, max_overflow: connections kept open, and opened beyond them under load.
        busy_timeout: SQLite: seconds a writer waits for another's lock before failing.
        connect_timeout, command_timeout: PostgreSQL: seconds to connect, and for one statement.
    """
    full = normalize_url(url)
    dialect = sql_dialect(full)
    assert dialect is not None  # normalize_url refused anything else
    if dialect == "postgresql":
        connect_args: dict[str, Any] = {"timeout": connect_timeout, "command_timeout": command_timeout}
        if schema is not None:
            connect_args["server_settings"] = {"search_path": schema}
        engine = create_async_engine(
            full,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=connect_timeout + 5,
            pool_recycle=1800,
            # No ROLLBACK call when an autocommit (`single`) connection goes back to the pool: nothing to undo.
            skip_autocommit_rollback=True,
            connect_args=connect_args,
        )
        single = engine.execution_options(isolation_level="AUTOCOMMIT")
        tx = engine
    else:
        engine = create_async_engine(full, pool_size=pool_size, max_overflow=max_overflow)
        _tune_sqlite(engine, busy_timeout)
        single = engine
        tx = engine.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
    return Database(engine=engine, single=single, tx=tx, dialect=dialect, url=full)


def _tune_sqlite(engine: AsyncEngine, busy_timeout: float) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # We emit BEGIN ourselves (below): the driver's implicit one is deferred, and comes before any read.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        begin = connection.get_execution_options().get(_BEGIN)
        if begin:
            connection.exec_driver_sql(begin)


@contextmanager
def unavailable(what: str = "conversation store") -> Iterator[None]:
    """Translate a lost or refused connection, a pool or statement timeout, or a locked SQLite database
    into `BackendUnavailableError` (503); anything else (a bug, a constraint) goes up as it is."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            raise BackendUnavailableError(f"{what} unavailable: {_reason(exc)}") from exc
        raise
    except (TimeoutError, sa_exc.TimeoutError, sa_exc.DisconnectionError, OSError) as exc:
        raise BackendUnavailableError(f"{what} unavailable: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return redact_url(text.splitlines()[0])
