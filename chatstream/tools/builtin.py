"""The built-in tool set: `web_search` and `web_fetch` (offered when a request asks for `webSearch: true`),
`getWeather`, and seed 002's document tools `createDocument`, `updateDocument` and `requestSuggestions`
(`chatstream.tools.documents`). Backends are arguments so a host can swap them (its own search index, a paid
weather service) while keeping the tools' names and schemas; a host that lists its own `tools=` picks the
ones it wants (`document_tools()` is the three document tools).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatstream.tools.documents import document_tools
from chatstream.tools.weather import OpenMeteoWeather, weather_tool
from chatstream.tools.web_fetch import AddressPolicy, WebFetcher, web_fetch_tool
from chatstream.tools.web_search import BRAVE_SEARCH_URL, BraveSearch, UnconfiguredSearch, web_search_tool

if TYPE_CHECKING:
    import httpx

    from chatstream.settings import Settings
    from chatstream.tools.base import Tool
    from chatstream.tools.weather import WeatherBackend
    from chatstream.tools.web_search import SearchBackend

__all__ = ["builtin_tools", "search_backend"]


def search_backend(settings: Settings, http_client: httpx.AsyncClient) -> SearchBackend:
    """Brave Search when a key is configured; otherwise a backend that refuses with a clear message."""
    if settings.web_search_api_key is None:
        return UnconfiguredSearch()
    return BraveSearch(http_client, settings.web_search_api_key.get(), url=settings.web_search_url or BRAVE_SEARCH_URL)


def builtin_tools(
    settings: Settings,
    http_client: httpx.AsyncClient,
    *,
    search: SearchBackend | None = None,
    weather: WeatherBackend | None = None,
    fetcher: WebFetcher | None = None,
    documents: bool = True,
) -> list[Tool[Any]]:
    """The built-in tools, configured from `settings`. `http_client` is the app's shared client (search and
    weather APIs); `web_fetch` opens its own per fetch so arbitrary sites share nothing with it. `documents`:
    include the document tools (they write to the app's `DocumentStore`)."""
    fetcher = fetcher or WebFetcher(
        policy=AddressPolicy(allow_private=settings.web_fetch_allow_private, allowlist=settings.web_fetch_allowlist),
        max_bytes=settings.web_fetch_max_bytes,
        timeout=settings.web_fetch_timeout_seconds,
    )
    weather = weather or OpenMeteoWeather(
        http_client, geocoding_url=settings.weather_geocoding_url, forecast_url=settings.weather_forecast_url
    )
    return [
        web_search_tool(search or search_backend(settings, http_client)),
        web_fetch_tool(fetcher),
        weather_tool(weather),
        *(document_tools() if documents else ()),
    ]
