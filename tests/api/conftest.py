"""In-process API tests: the real app over ASGI, with injected providers and a clock-free memory backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from chatstream import Settings, create_app
from chatstream.providers.mock import MockProvider
from tests.support.settings import ALICE, BOB, make_settings

__all__ = ["ALICE", "BOB", "make_settings"]


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
