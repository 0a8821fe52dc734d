"""The shipped backends against recorded response shapes (httpx.MockTransport; no network), and the
built-in tool set as a run sees it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient

from chatstream import create_app
from chatstream.providers.mock import MockProvider
from chatstream.settings import Secret
from chatstream.tools.base import ToolError
from chatstream.tools.builtin import builtin_tools, search_backend
from chatstream.tools.weather import OpenMeteoWeather
from chatstream.tools.web_search import BraveSearch, UnconfiguredSearch
from tests.tools.conftest import chat, frames_of, make_settings, of_type

# Recorded from the real APIs (trimmed to a few results).
GEOCODING_PARIS = {
    "results": [
        {
            "id": 2988507,
            "name": "Paris",
            "latitude": 48.85341,
            "longitude": 2.3488,
            "elevation": 42.0,
            "feature_code": "PPLC",
            "country_code": "FR",
            "admin1_id": 3012874,
            "timezone": "Europe/Paris",
            "population": 2138551,
            "country_id": 3017382,
            "country": "France",
            "admin1": "Île-de-France",
            "admin2": "Paris",
        },
        {
            "id": 4717560,
            "name": "Paris",
            "latitude": 33.66094,
            "longitude": -95.55551,
            "elevation": 183.0,
            "feature_code": "PPLA2",
            "country_code": "US",
            "timezone": "America/Chicago",
            "population": 24782,
            "country": "United States",
            "admin1": "Texas",
        },
    ],
    "generationtime_ms": 0.93,
}
GEOCODING_NONE = {"generationtime_ms": 0.41}
FORECAST = {
    "latitude": 48.86,
    "longitude": 2.3399997,
    "generationtime_ms": 0.05,
    "utc_offset_seconds": 3600,
    "timezone": "Europe/Paris",
    "timezone_abbreviation": "GMT+1",
    "elevation": 43.0,
    "current_units": {
        "time": "iso8601",
        "interval": "seconds",
        "temperature_2m": "°C",
        "relative_humidity_2m": "%",
        "apparent_temperature": "°C",
        "weather_code": "wmo code",
        "wind_speed_10m": "km/h",
    },
    "current": {
        "time": "2026-11-23T14:00",
        "interval": 900,
        "temperature_2m": 8.4,
        "relative_humidity_2m": 71,
        "apparent_temperature": 5.2,
        "weather_code": 3,
        "wind_speed_10m": 14.3,
    },
}
BRAVE = {
    "type": "search",
    "query": {"original": "litestar sse", "more_results_available": True},
    "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": False}]},
    "web": {
        "type": "search",
        "results": [
            {
                "title": "Responses - <strong>Litestar</strong> Framework",
                "url": "https://docs.litestar.dev/2/usage/responses.html",
                "is_source_local": False,
                "description": "Server Sent Event Responses &amp; <strong>streams</strong> in Litestar.",
                "page_age": "2025-01-10T00:00:00",
                "profile": {"name": "Litestar", "url": "https://docs.litestar.dev"},
                "language": "en",
                "family_friendly": True,
                "type": "search_result",
                "age": "January 10, 2025",
            },
            {
                "title": "sse-starlette",
                "url": "https://pypi.org/project/sse-starlette/",
                "description": "SSE for Starlette",
            },
        ],
        "family_friendly": True,
    },
}


def client_for(answer: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def open_meteo(request: httpx.Request) -> httpx.Response:
    if request.url.host == "geo.test":
        if request.url.params["name"] == "Paris":
            return httpx.Response(200, json=GEOCODING_PARIS)
        return httpx.Response(200, json=GEOCODING_NONE)
    return httpx.Response(200, json=FORECAST)


def weather_backend(seen: list[httpx.Request], answer: Any = open_meteo) -> OpenMeteoWeather:
    return OpenMeteoWeather(
        client_for(answer, seen), geocoding_url="http://geo.test/v1/search", forecast_url="http://wx.test/v1/forecast"
    )


async def test_open_meteo_current_weather() -> None:
    seen: list[httpx.Request] = []
    report = await weather_backend(seen).current("Paris")
    assert report.location == "Paris, Île-de-France, France"
    assert (report.temperature, report.temperature_unit, report.conditions) == (8.4, "°C", "overcast")
    assert report.humidity_percent == 71 and report.wind_speed == 14.3 and report.timezone == "Europe/Paris"
    geo, forecast = seen
    assert geo.url.params["count"] == "1"
    assert forecast.url.params["latitude"] == "48.85341" and forecast.url.params["temperature_unit"] == "celsius"
    assert "weather_code" in forecast.url.params["current"]


async def test_open_meteo_qualified_place_and_unit() -> None:
    seen: list[httpx.Request] = []
    report = await weather_backend(seen).current("Paris, Texas", unit="fahrenheit")
    assert report.location == "Paris, Texas, United States"
    assert seen[0].url.params["name"] == "Paris" and seen[0].url.params["count"] == "10"
    assert seen[1].url.params["temperature_unit"] == "fahrenheit"
    with pytest.raises(ToolError, match="no place called"):
        await weather_backend([]).current("Paris, Narnia")


async def test_open_meteo_failures_are_tool_errors() -> None:
    with pytest.raises(ToolError, match="no place called 'Atlantis'"):
        await weather_backend([]).current("Atlantis")
    with pytest.raises(ToolError, match="HTTP 503"):
        await weather_backend([], lambda r: httpx.Response(503)).current("Paris")
    with pytest.raises(ToolError, match="unreadable"):
        await weather_backend([], lambda r: httpx.Response(200, text="<html>")).current("Paris")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    with pytest.raises(ToolError, match="unreachable"):
        await weather_backend([], down).current("Paris")


async def test_brave_search() -> None:
    seen: list[httpx.Request] = []
    backend = BraveSearch(client_for(lambda r: httpx.Response(200, json=BRAVE), seen), "brave-key")
    results = await backend.search("litestar sse", count=2)
    assert [r.title for r in results] == ["Responses - Litestar Framework", "sse-starlette"]
    assert results[0].snippet == "Server Sent Event Responses & streams in Litestar."
    assert results[0].age == "January 10, 2025"
    (request,) = seen
    assert request.url.host == "api.search.brave.com"
    assert request.headers["x-subscription-token"] == "brave-key"
    assert request.url.params["q"] == "litestar sse" and request.url.params["count"] == "2"


@pytest.mark.parametrize(
    ("status", "message"), [(401, "rejected the configured API key"), (429, "rate limit"), (500, "HTTP 500")]
)
async def test_brave_errors(status: int, message: str) -> None:
    backend = BraveSearch(client_for(lambda r: httpx.Response(status, json={"type": "ErrorResponse"}), []), "k")
    with pytest.raises(ToolError, match=message):
        await backend.search("x")


async def test_search_backend_choice() -> None:
    http = httpx.AsyncClient()
    assert isinstance(search_backend(make_settings(), http), UnconfiguredSearch)
    brave = search_backend(make_settings(web_search_api_key=Secret("k"), web_search_url="http://s.test/q"), http)
    assert isinstance(brave, BraveSearch)
    with pytest.raises(ToolError, match="CHAT_WEB_SEARCH_API_KEY"):
        await UnconfiguredSearch().search("x")
    await http.aclose()


async def test_builtin_tool_set() -> None:
    async with httpx.AsyncClient() as http:
        tools = {t.name: t for t in builtin_tools(make_settings(), http)}
    documents = {"createDocument", "updateDocument", "requestSuggestions"}
    assert set(tools) == {"web_search", "web_fetch", "getWeather", *documents}
    assert not any(tools[name].web for name in documents)
    assert tools["createDocument"].parameters["required"] == ["title", "kind"]
    assert set(tools["createDocument"].parameters["properties"]["kind"]["enum"]) == {"text", "code", "sheet", "image"}
    assert tools["updateDocument"].parameters["required"] == ["id", "description"]
    assert tools["requestSuggestions"].parameters["required"] == ["documentId"]
    async with httpx.AsyncClient() as http:
        assert {t.name for t in builtin_tools(make_settings(), http, documents=False)} == set(tools) - documents
    assert tools["web_search"].web and tools["web_fetch"].web and not tools["getWeather"].web
    assert not any(t.needs_approval for t in tools.values())
    assert tools["getWeather"].parameters["required"] == ["city"]
    assert tools["web_fetch"].parameters["properties"]["url"]["type"] == "string"


async def test_builtins_through_a_run() -> None:
    """The default app offers the built-ins: unconfigured search refuses clearly, fetch refuses loopback,
    and getWeather uses the configured Open-Meteo URLs (a fake here)."""
    mock = MockProvider()
    settings = make_settings(
        weather_geocoding_url="http://127.0.0.1:9/geo", weather_forecast_url="http://127.0.0.1:9/forecast"
    )
    async with AsyncTestClient(create_app(settings, providers={"mock": mock})) as client:
        frames = frames_of(await chat(client, 'mock:tool=web_search mock:args={"query":"x"}', webSearch=True))
        assert "CHAT_WEB_SEARCH_API_KEY" in of_type(frames, "tool-output-error")[0]["errorText"]
        documents = ["createDocument", "updateDocument", "requestSuggestions"]
        assert [t.name for t in mock.requests[0].tools] == ["web_search", "web_fetch", "getWeather", *documents]
        args = json.dumps({"url": "http://169.254.169.254/latest/meta-data/"}, separators=(",", ":"))
        frames = frames_of(await chat(client, f"mock:tool=web_fetch mock:args={args}", webSearch=True))
        assert "refused" in of_type(frames, "tool-output-error")[0]["errorText"]
        frames = frames_of(await chat(client, 'mock:tool=getWeather mock:args={"city":"Paris"}'))
        assert "weather service is unreachable" in of_type(frames, "tool-output-error")[0]["errorText"]
        assert [t.name for t in mock.requests[-1].tools] == ["getWeather", *documents]
