"""Provider tests run the real SDKs against the fake upstream process (`tests/fakes/upstream.py`).

One fake serves the whole session; each test talks to it under its own namespace, so the fake's queue and
request log are per test. Providers are built through `build_registry`, i.e. through their catalog rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2
import pytest

from chatstream.errors import ProviderError
from chatstream.models import Message, MessagePart
from chatstream.providers._retry import RetryPolicy
from chatstream.providers.base import ModelEvent, Provider, ProviderRequest
from chatstream.providers.catalog import CATALOG
from chatstream.providers.setup import build_registry, new_http_client
from chatstream.settings import ProviderSettings, Secret, Settings
from tests.fakes.upstream import FakeUpstream

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from chatstream.providers.registry import ProviderRegistry

KEY = "sk-test-key"
FAST_RETRY = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05, max_retry_after=1.0)


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream.start() as upstream:
        yield upstream


@pytest.fixture
def ns(fake: FakeUpstream) -> str:
    return fake.namespace()


@pytest.fixture(params=["httpx2", "aiohttp"])
async def http_client(request: pytest.FixtureRequest) -> AsyncIterator[httpx2.AsyncClient]:
    """Both ways a request goes out (`providers/_sdk_post.py`): through httpx2's own transport (a host's
    client), and straight to aiohttp through the SDKs' aiohttp client (the production one)."""
    client = httpx2.AsyncClient() if request.param == "httpx2" else new_http_client(Settings())
    async with client:
        yield client


class Upstream:
    """One test's view of the fake: build providers pointed at it, queue responses, read what it received."""

    def __init__(self, fake: FakeUpstream, ns: str, http_client: httpx2.AsyncClient) -> None:
        self.fake = fake
        self.ns = ns
        self.http_client = http_client

    def base_url(self, name: str) -> str:
        # The OpenAI SDK appends `/chat/completions` to a base URL ending in `/v1`; Anthropic's appends `/v1/messages`.
        suffix = "/v1" if CATALOG[name].kind == "openai_compat" else ""
        return f"{self.fake.url}/{self.ns}{suffix}"

    def registry(
        self, *names: str, key: str | None = KEY, retry: RetryPolicy = FAST_RETRY, **settings: Any
    ) -> ProviderRegistry:
        providers = {
            n: ProviderSettings(api_key=Secret(key) if key else None, base_url=self.base_url(n)) for n in names
        }
        return build_registry(Settings(providers=providers, **settings), http_client=self.http_client, retry=retry)

    def provider(self, name: str, **kw: Any) -> Provider:
        return self.registry(name, **kw).get(name)

    def enqueue(self, *specs: dict[str, Any]) -> None:
        self.fake.enqueue(self.ns, *specs)

    def requests(self) -> list[dict[str, Any]]:
        return self.fake.requests(self.ns)


@pytest.fixture
def upstream(fake: FakeUpstream, ns: str, http_client: httpx2.AsyncClient) -> Upstream:
    return Upstream(fake, ns, http_client)


def user(text: str, *files: MessagePart, id: str = "u1") -> Message:
    return Message(id=id, conversation_id="c1", role="user", parts=(MessagePart(type="text", text=text), *files))


def request(*messages: Message, model: str = "gpt-4o", **kw: Any) -> ProviderRequest:
    return ProviderRequest(model=model, messages=messages or (user("hi"),), **kw)


async def collect(provider: Provider, req: ProviderRequest) -> list[ModelEvent]:
    return [event async for event in provider.stream(req)]


async def collect_until_error(provider: Provider, req: ProviderRequest) -> tuple[list[ModelEvent], ProviderError]:
    """The events relayed before the stream failed, and the error it failed with."""
    events: list[ModelEvent] = []
    try:
        async for event in provider.stream(req):
            events.append(event)
    except ProviderError as exc:
        return events, exc
    raise AssertionError(f"the stream did not fail; events: {events}")
