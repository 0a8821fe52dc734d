from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Real-Redis tests run only where `REDIS_URL` points at a redis-server (CI sets it)."""
    if os.environ.get("REDIS_URL"):
        return
    skip = pytest.mark.skip(reason="REDIS_URL is not set")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)
