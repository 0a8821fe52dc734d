"""Helpers for tests that drive the app through httpx's ASGI transport (`tests.api.test_lifecycle.serve`),
which runs requests concurrently on the test's own event loop."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tests.support.settings import services_of

if TYPE_CHECKING:
    import httpx
    from litestar import Litestar

    from chatstream.api.deps import Services

__all__ = ["idle", "services"]


def services(client: httpx.AsyncClient) -> Services:
    """The open services of the app `client` talks to (`serve` hangs the app on the client)."""
    app: Litestar = client.app  # type: ignore[attr-defined]
    return services_of(app)


async def idle(client: httpx.AsyncClient, thread: str, *, seconds: float = 10.0) -> None:
    """Until the conversation's run has let it go (its answer stored and its stream ended)."""
    registry = services(client).registry
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while await registry.active(thread) is not None:
        if loop.time() > deadline:
            raise AssertionError(f"the run of {thread} did not end within {seconds} s")
        await asyncio.sleep(0.01)
