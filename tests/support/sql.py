"""SQL databases for tests: a migrated SQLite file, or a PostgreSQL schema or database of the test's own.

The PostgreSQL server is the one `CHAT_TEST_POSTGRES_URL` names (CI's throwaway cluster; a `DATABASE_URL`
given to the test run is moved there by `tests/conftest.py`). Every test makes its own schema (contract
tests: the store's `search_path`) or database (end-to-end tests: servers take a URL only) and drops it
afterwards; nothing is ever dropped that a test did not create.
"""

from __future__ import annotations

import asyncio
import os
from uuid import uuid4

from sqlalchemy.engine import make_url

from chatstream.store.sql.engine import open_database
from chatstream.store.sql.migrate import upgrade

POSTGRES_ENV = "CHAT_TEST_POSTGRES_URL"


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def sqlite_url(path: os.PathLike[str] | str) -> str:
    return f"sqlite+aiosqlite:///{os.fspath(path)}"


async def migrate(url: str, *, schema: str | None = None) -> None:
    database = open_database(url, schema=schema)
    try:
        await upgrade(database)
    finally:
        await database.aclose()


async def _admin(url: str, *statements: str) -> None:
    database = open_database(url)
    try:
        async with database.single.connect() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)
    finally:
        await database.aclose()


async def create_schema(url: str) -> str:
    """A new empty schema in the database of `url`, migrated; its name."""
    schema = f"test_{uuid4().hex}"
    await _admin(url, f'CREATE SCHEMA "{schema}"')
    await migrate(url, schema=schema)
    return schema


async def drop_schema(url: str, schema: str) -> None:
    await _admin(url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def create_database(url: str) -> str:
    """A new empty database on the server of `url` (not migrated); the URL of it."""
    name = f"test_{uuid4().hex}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    """Drop the database of `url` (made by `create_database`), from the server's `postgres` database."""
    parsed = make_url(url)
    name = parsed.database
    assert name and name.startswith("test_"), name
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
