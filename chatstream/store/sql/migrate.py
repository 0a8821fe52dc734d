"""Schema migrations (Alembic, shipped in the package under `migrations/`): what `chatstream db upgrade` runs,
and the start-up check that runs them when `CHAT_DB_AUTO_MIGRATE` is on.

Several instances may start at once on one PostgreSQL: each migrates under a transaction-scoped advisory
lock, so the first applies the migrations and the others, once it commits, find the schema at head. On
SQLite the migration's `BEGIN IMMEDIATE` does the same. DDL is transactional on both: a failed migration
leaves the schema as it was.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from chatstream.errors import ConfigError
from chatstream.store.sql import redact_url
from chatstream.store.sql.engine import unavailable
from chatstream.store.sql.schema import HEAD, VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

    from chatstream.store.sql.engine import Database

__all__ = ["HEAD", "MIGRATIONS", "alembic_config", "current_revision", "downgrade", "prepare", "upgrade"]

log = logging.getLogger("chatstream.store")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK = 0x63_68_61_74_73_74_72  # pg_advisory_xact_lock key: "chatstr"


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for our migrations, with `connection` for `env.py` to run on."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def current_revision(database: Database) -> str | None:
    """The schema's Alembic revision; None when chatstream's tables were never created there."""

    def read(connection: Connection) -> str | None:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608 - ours
        return None if found is None else str(found)

    with unavailable("database"):
        async with database.single.connect() as conn:
            return await conn.run_sync(read)


async def upgrade(database: Database, revision: str = "head") -> None:
    """Apply the migrations up to `revision`, under the migration lock."""
    await _run(database, "upgrade", revision)


async def downgrade(database: Database, revision: str) -> None:
    """Revert the migrations down to `revision` (`base`: drop every chatstream table)."""
    await _run(database, "downgrade", revision)


async def _run(database: Database, direction: str, revision: str) -> None:
    from alembic import command

    def run(connection: Connection) -> None:
        step = command.upgrade if direction == "upgrade" else command.downgrade
        step(alembic_config(connection), revision)

    with unavailable("database"):
        async with database.tx.begin() as conn:
            if database.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            await conn.run_sync(run)


async def prepare(database: Database, *, auto_migrate: bool) -> None:
    """At start-up: migrate when `auto_migrate`, else make sure the schema is the one this code needs.

    Raises:
        ConfigError: the schema is missing or older and `auto_migrate` is off (the message says what to run).
    """
    found = await current_revision(database)
    if found == HEAD:
        return
    where = redact_url(database.url)
    if auto_migrate:
        log.info("migrating the database %s from %s to %s", where, found or "nothing", HEAD)
        await upgrade(database)
        return
    if found is None:
        raise ConfigError(
            f"the database {where} has no chatstream tables: run `chatstream db upgrade` "
            "(or set CHAT_DB_AUTO_MIGRATE=true)"
        )
    if _is_known(found):
        raise ConfigError(
            f"the database {where} is at schema revision {found}, this chatstream needs {HEAD}: run "
            "`chatstream db upgrade` (or set CHAT_DB_AUTO_MIGRATE=true)"
        )
    # A revision we do not know: a newer chatstream migrated it (a rolling deploy). Its migrations only add.
    log.warning("the database %s is at schema revision %s, newer than this chatstream's %s", where, found, HEAD)


def _is_known(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False
