"""The SQL store's wiring: settings, which store the factory builds, start-up migration and schema checks, the
shipped migrations against the live schema, the `chatstream db` command, and the missing-extra error."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from litestar.testing import TestClient

from app.server import banner, standalone_settings
from chatstream import Settings, create_app
from chatstream.cli import main as cli
from chatstream.errors import ConfigError
from chatstream.store.memory import MemoryConversationStore
from chatstream.store.redis import RedisConversationStore
from chatstream.store.sql import normalize_url, redact_url, require_sql
from chatstream.store.sql.engine import open_database
from chatstream.store.sql.migrate import alembic_config, current_revision, downgrade, upgrade
from chatstream.store.sql.schema import HEAD, VERSION_TABLE, metadata
from chatstream.store.sql.store import SqlConversationStore
from tests.support import sql
from tests.support.settings import ALICE, make_settings, services_of

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Connection

_OPTS = {"version_table": VERSION_TABLE}
CHAT = {"parts": [{"type": "text", "text": "mock:tokens=2"}]}


def test_settings_read_the_database_url_and_the_migration_default() -> None:
    sqlite = Settings.from_env({"DATABASE_URL": "sqlite+aiosqlite:///x.db"})
    assert (sqlite.database_url, sqlite.sql_url, sqlite.auto_migrate) == (
        "sqlite+aiosqlite:///x.db",
        "sqlite+aiosqlite:///x.db",
        True,
    )
    pg = Settings.from_env({"DATABASE_URL": "postgresql+asyncpg://u:p@db/chat"})
    assert pg.auto_migrate is False
    assert Settings.from_env({"DATABASE_URL": "postgres://db/chat", "CHAT_DB_AUTO_MIGRATE": "true"}).auto_migrate
    assert Settings.from_env({"DATABASE_URL": "sqlite:///x.db", "CHAT_DB_AUTO_MIGRATE": "false"}).auto_migrate is False
    memory = Settings.from_env({"DATABASE_URL": "memory://"})
    assert (memory.sql_url, memory.auto_migrate) == (None, False)
    assert Settings.from_env({}).database_url is None


@pytest.mark.parametrize("url", ["mysql://db/chat", "chat.db", "redis://localhost/0"])
def test_an_unsupported_database_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL: unsupported"):
        Settings.from_env({"DATABASE_URL": url})


def test_urls_get_the_async_driver_and_lose_the_password_in_messages() -> None:
    assert normalize_url("postgres://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    assert normalize_url("sqlite:///a.db") == "sqlite+aiosqlite:///a.db"
    assert redact_url("postgresql+asyncpg://chat:s3cret@db:5432/chat") == "postgresql+asyncpg://chat:***@db:5432/chat"
    assert redact_url("sqlite+aiosqlite:///a.db") == "sqlite+aiosqlite:///a.db"


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "asyncpg" else real(name, *a))
    with pytest.raises(ConfigError, match=r"asyncpg is not installed: pip install 'chatstream\[postgres\]'"):
        require_sql("postgresql+asyncpg://db/chat")
    with pytest.raises(ConfigError, match=r"pip install 'chatstream\[postgres\]'"):
        create_app(make_settings(database_url="postgresql+asyncpg://db/chat"))
    require_sql("sqlite+aiosqlite:///x.db")


def test_the_standalone_server_defaults_to_sqlite_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    s = standalone_settings({})
    assert s.database_url == f"sqlite+aiosqlite:///{tmp_path / 'chatstream.db'}"
    assert f"conversations: SQLite ({tmp_path / 'chatstream.db'})" in banner(s)
    # REDIS_URL alone keeps the store in Redis; DATABASE_URL is taken as it is.
    redis_only = standalone_settings({"REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert redis_only.database_url is None
    assert "conversations: Redis" in banner(redis_only)
    memory = standalone_settings({"DATABASE_URL": "memory://"})
    assert "conversations: memory" in banner(memory)
    pg = standalone_settings({"DATABASE_URL": "postgresql+asyncpg://chat:pw@db/chat"})
    assert "conversations: PostgreSQL (postgresql+asyncpg://chat:***@db/chat)" in banner(pg)


def _chat_and_store(app: Any) -> tuple[int, Any]:
    with TestClient(app) as client:
        status = client.post("/api/chat", json=CHAT, headers=ALICE).status_code
        return status, services_of(app).store


def test_the_factory_picks_the_store(tmp_path: Path) -> None:
    url = sql.sqlite_url(tmp_path / "chat.db")
    status, store = _chat_and_store(create_app(make_settings(database_url=url)))
    assert status == 200
    assert isinstance(store, SqlConversationStore)  # migrated at start-up (SQLite's default)
    assert isinstance(_chat_and_store(create_app(make_settings(database_url="memory://")))[1], MemoryConversationStore)
    assert isinstance(_chat_and_store(create_app(make_settings()))[1], MemoryConversationStore)
    # Redis and SQL: Redis for streams, runs and limits, SQL for the store.
    redis = fakeredis.FakeAsyncRedis()
    app = create_app(make_settings(database_url=url, redis_url="redis://unused:1/0"), redis=redis)
    with TestClient(app) as client:
        assert client.post("/api/chat", json=CHAT, headers=ALICE).status_code == 200
        services = services_of(app)
        assert isinstance(services.store, SqlConversationStore)
        assert type(services.buffer).__name__ == "RedisStreamBuffer"
    app = create_app(make_settings(redis_url="redis://unused:1/0"), redis=fakeredis.FakeAsyncRedis())
    assert isinstance(_chat_and_store(app)[1], RedisConversationStore)


def test_conversations_outlive_the_app(tmp_path: Path) -> None:
    settings = make_settings(database_url=sql.sqlite_url(tmp_path / "chat.db"))
    with TestClient(create_app(settings)) as client:
        thread = client.post("/api/chat", json=CHAT, headers=ALICE).headers["x-thread-id"]
    with TestClient(create_app(settings)) as client:
        listed = client.get("/api/chat/conversations", headers=ALICE).json()["conversations"]
        assert [c["id"] for c in listed] == [thread]
        messages = client.get(f"/api/chat/messages?conversationId={thread}", headers=ALICE).json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]


def test_without_auto_migrate_an_empty_database_stops_the_start_up(tmp_path: Path) -> None:
    settings = make_settings(database_url=sql.sqlite_url(tmp_path / "chat.db"), db_auto_migrate=False)
    with pytest.raises(Exception) as failed, TestClient(create_app(settings)):
        pass
    assert "has no chatstream tables: run `chatstream db upgrade`" in repr(failed.value) + repr(
        getattr(failed.value, "exceptions", "")
    )


async def test_migrations_build_exactly_the_live_schema_and_revert(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert script.get_current_head() == HEAD
    database = open_database(sql.sqlite_url(tmp_path / "chat.db"))
    try:
        assert await current_revision(database) is None
        await upgrade(database)
        assert await current_revision(database) == HEAD
        await upgrade(database)  # again: nothing to do

        def diff(connection: Connection) -> list[Any]:
            return list(compare_metadata(MigrationContext.configure(connection, opts=_OPTS), metadata))

        async with database.single.connect() as conn:
            assert await conn.run_sync(diff) == []
        await downgrade(database, "base")
        async with database.single.connect() as conn:
            tables = await conn.run_sync(lambda c: c.dialect.get_table_names(c))
        assert [t for t in tables if t.startswith("chatstream_") and t != "chatstream_alembic_version"] == []
    finally:
        await database.aclose()


@pytest.mark.postgres
async def test_migrations_match_the_live_schema_on_postgres() -> None:
    url = sql.postgres_url()
    assert url is not None
    schema = await sql.create_schema(url)
    database = open_database(url, schema=schema)
    try:

        def diff(connection: Connection) -> list[Any]:
            return list(compare_metadata(MigrationContext.configure(connection, opts=_OPTS), metadata))

        async with database.single.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await database.aclose()
        await sql.drop_schema(url, schema)


def test_the_db_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = sql.sqlite_url(tmp_path / "chat.db")
    assert cli(["db", "current", "--url", url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema empty (this chatstream needs {HEAD})")
    assert cli(["db", "upgrade", "--url", url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema empty -> {HEAD}")
    assert cli(["db", "downgrade", "base", "--url", url]) == 0
    assert capsys.readouterr().out.strip().endswith(f"schema {HEAD} -> empty")
    assert cli(["db", "upgrade", "--url", "memory://"]) == 2
    assert "error: no SQL database: set DATABASE_URL" in capsys.readouterr().err
