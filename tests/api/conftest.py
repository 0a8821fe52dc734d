"""In-process API tests: the real app over ASGI, with injected providers and a clock-free memory backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app import Settings, create_app
from app.providers.mock import MockProvider
from app.settings import AuthToken, Secret

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "auth_tokens": (
            AuthToken(token=Secret("alice-token"), user_id="alice", tier="premium"),
            AuthToken(token=Secret("bob-token"), user_id="bob", tier="premium"),
        ),
        "demo_token": False,
        "rate_ip_per_minute": 100_000,
        "title_generation": True,
        "ping_interval_seconds": 15.0,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture
def mock() -> MockProvider:
    return MockProvider()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def client(settings: Settings, mock: MockProvider) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, providers={"mock": mock})
    async with AsyncTestClient(app) as c:
        yield c
