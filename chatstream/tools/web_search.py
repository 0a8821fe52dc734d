"""`web_search`: search the web through a pluggable backend.

The shipped backend is the Brave Search API (`CHAT_WEB_SEARCH_API_KEY`; `CHAT_WEB_SEARCH_URL` overrides the
endpoint). Without a key the tool is still offered, so the model can tell the user why it cannot search,
and every call is refused with a message naming the variable to set.
"""

from __future__ import annotations

import re
from html import unescape
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import httpx
import msgspec

from chatstream.tools.base import Source, Tool, ToolError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from chatstream.tools.base import ToolContext

__all__ = [
    "BRAVE_SEARCH_URL",
    "BraveSearch",
    "SearchBackend",
    "SearchResult",
    "UnconfiguredSearch",
    "WebSearchInput",
    "search_sources",
    "web_search_tool",
]

BRAVE_SEARCH_URL = "https://api.search.brave.com/res/v1/web/search"


class SearchResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    title: str
    url: str
    snippet: str = ""
    age: str | None = None


class SearchBackend(Protocol):
    async def search(self, query: str, *, count: int = 5) -> list[SearchResult]:
        """Up to `count` results, best first. Raises `ToolError` with a message for the model on failure."""
        ...


class UnconfiguredSearch:
    """Stands in when no search backend is configured: refuses clearly instead of failing obscurely."""

    async def search(self, query: str, *, count: int = 5) -> list[SearchResult]:
        raise ToolError("web search is not configured on this server (set CHAT_WEB_SEARCH_API_KEY)")


# -- Brave wire shapes: only the fields we read -----------------------------------------------------------


class _BraveResult(msgspec.Struct):
    title: str
    url: str
    description: str = ""
    age: str | None = None


class _BraveWeb(msgspec.Struct):
    results: list[_BraveResult] = []


class _BraveResponse(msgspec.Struct):
    web: _BraveWeb = msgspec.field(default_factory=_BraveWeb)


_brave = msgspec.json.Decoder(_BraveResponse)
_TAGS = re.compile(r"<[^>]+>")


def _plain(html: str) -> str:
    """Brave highlights matches with `<strong>`; the model wants plain text."""
    return unescape(_TAGS.sub("", html)).strip()


class BraveSearch:
    """The Brave Search web API (`X-Subscription-Token` auth)."""

    def __init__(
        self, client: httpx.AsyncClient, api_key: str, *, url: str = BRAVE_SEARCH_URL, timeout: float = 10.0
    ) -> None:
        self._client = client
        self._api_key = api_key
        self._url = url
        self._timeout = timeout

    async def search(self, query: str, *, count: int = 5) -> list[SearchResult]:
        try:
            response = await self._client.get(
                self._url,
                params={"q": query, "count": count},
                headers={"Accept": "application/json", "X-Subscription-Token": self._api_key},
                timeout=self._timeout,
            )
        except httpx.HTTPError as exc:
            raise ToolError(f"the search service is unreachable: {type(exc).__name__}") from exc
        if response.status_code in (401, 403):
            raise ToolError("the search service rejected the configured API key")
        if response.status_code == 429:
            raise ToolError("the search service's rate limit is exhausted; try again later")
        if response.status_code != 200:
            raise ToolError(f"the search service answered HTTP {response.status_code}")
        try:
            results = _brave.decode(response.content).web.results
        except msgspec.DecodeError as exc:
            raise ToolError("the search service sent an unreadable answer") from exc
        return [
            SearchResult(title=_plain(r.title), url=r.url, snippet=_plain(r.description), age=r.age)
            for r in results[:count]
        ]


class WebSearchInput(msgspec.Struct):
    query: Annotated[str, msgspec.Meta(min_length=1, description="What to search the web for.")]
    count: Annotated[int, msgspec.Meta(ge=1, le=10, description="How many results (1-10).")] = 5


def search_sources(output: Any) -> Iterator[Source]:
    """Every result the model receives is a citation: `{"results": [{"url", "title"}, ...]}`."""
    results = output.get("results") if isinstance(output, dict) else None
    for result in results if isinstance(results, list) else ():
        if isinstance(result, dict) and isinstance(url := result.get("url"), str) and url:
            title = result.get("title")
            yield Source(url, title if isinstance(title, str) and title else None)


def web_search_tool(backend: SearchBackend) -> Tool[WebSearchInput]:
    async def handler(data: WebSearchInput, ctx: ToolContext) -> dict[str, object]:
        results = await backend.search(data.query, count=data.count)
        return {"query": data.query, "results": results}

    return Tool(
        "web_search",
        "Search the web. Returns titles, URLs and snippets; use web_fetch to read a page.",
        WebSearchInput,
        handler,
        web=True,
        sources=search_sources,
    )
