"""Tool tests run the real app in-process with the mock provider and test tools that record their calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from chatstream import Settings, create_app
from chatstream.providers.mock import MockProvider
from chatstream.tools.base import Tool, ToolContext
from chatstream.tools.weather import WeatherReport, weather_tool
from tests.support.settings import (  # re-exported for the tool tests
    ALICE as ALICE,
    BOB as BOB,
    make_settings as shared_settings,
    services_of,
)
from tests.support.sse import Frame, parse_frames


def make_settings(**overrides: Any) -> Settings:
    """The shared test settings, without title generation (tool tests count the model's requests)."""
    return shared_settings(**{"title_generation": False, **overrides})


class FakeWeather:
    """A weather backend that answers at once and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def current(self, location: str, *, unit: str = "celsius") -> WeatherReport:
        self.asked.append(location)
        return WeatherReport(
            location=location,
            latitude=48.85,
            longitude=2.35,
            time="2026-01-01T12:00",
            temperature=21.5,
            temperature_unit="°C",
            conditions="clear sky",
        )


class TransferInput(msgspec.Struct):
    to: str
    amount: int


class Ledger:
    """Backs the `transfer` tool, which needs a human's approval."""

    def __init__(self) -> None:
        self.transfers: list[tuple[str, int, ToolContext]] = []

    def tool(self) -> Tool[TransferInput]:
        async def handler(data: TransferInput, ctx: ToolContext) -> dict[str, Any]:
            self.transfers.append((data.to, data.amount, ctx))
            return {"ok": True, "to": data.to, "amount": data.amount}

        return Tool("transfer", "Send money.", TransferInput, handler, needs_approval=True)


class SleepInput(msgspec.Struct):
    seconds: float


async def _sleep(data: SleepInput, ctx: ToolContext) -> str:
    await asyncio.sleep(data.seconds)
    return "slept"


SLEEP_TOOL = Tool("sleep", "Wait.", SleepInput, _sleep)


@pytest.fixture
def mock() -> MockProvider:
    return MockProvider()


@pytest.fixture
def weather() -> FakeWeather:
    return FakeWeather()


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def tools(weather: FakeWeather, ledger: Ledger) -> list[Tool[Any]]:
    return [weather_tool(weather), ledger.tool(), SLEEP_TOOL]


@pytest.fixture
async def client(settings: Settings, mock: MockProvider, tools: list[Tool[Any]]) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, providers={"mock": mock}, tools=tools)
    async with AsyncTestClient(app) as c:
        yield c


async def chat(client: AsyncTestClient[Any], text: str, headers: dict[str, str] | None = None, **extra: Any) -> Any:
    return await client.post(
        "/api/chat", json={"parts": [{"type": "text", "text": text}], **extra}, headers=headers or ALICE
    )


def frames_of(response: Any) -> list[Frame]:
    frames = parse_frames(response.text)
    assert frames and frames[-1].data == "[DONE]", response.text
    return frames[:-1]


def types(frames: list[Frame]) -> list[str | None]:
    return [f.type for f in frames]


def of_type(frames: list[Frame], kind: str) -> list[dict[str, Any]]:
    return [f.data for f in frames if f.type == kind]


async def wait_idle(client: AsyncTestClient[Any], thread: str) -> None:
    """Until the conversation's run has released it (its final frames are written just before)."""
    services = services_of(client.app)
    for _ in range(500):
        if await services.registry.active(thread) is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("run did not end")
