from __future__ import annotations

import os

import pytest

# A DATABASE_URL given to the test run (CI's throwaway PostgreSQL) is the server the `postgres` tests make their
# own schemas and databases in. No other test may pick it up from the environment (`Settings.from_env()`, the
# README examples): each test chooses its store itself.
_database_url = os.environ.pop("DATABASE_URL", None)
if _database_url and _database_url.startswith(("postgres://", "postgresql://", "postgresql+asyncpg://")):
    os.environ.setdefault("CHAT_TEST_POSTGRES_URL", _database_url)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Real-Redis tests run only where `REDIS_URL` points at a redis-server, real-PostgreSQL tests only where
    `CHAT_TEST_POSTGRES_URL` (or `DATABASE_URL`) points at a PostgreSQL server (CI sets both)."""
    needs = {"redis": "REDIS_URL", "postgres": "CHAT_TEST_POSTGRES_URL", "redis_cluster": "REDIS_CLUSTER_URL"}
    for marker, var in needs.items():
        if os.environ.get(var):
            continue
        skip = pytest.mark.skip(reason=f"{var} is not set")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
