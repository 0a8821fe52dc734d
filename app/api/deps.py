"""The services handlers use, kept on `app.state` and handed to handlers through `Provide`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request  # noqa: TC002
from litestar.datastructures import State  # noqa: TC002
from litestar.di import NamedDependency

from app.api.auth import require_principal
from app.errors import PayloadTooLargeError
from app.models import Principal

if TYPE_CHECKING:
    from app.api.auth import Authenticate
    from app.providers.registry import ProviderRegistry
    from app.runs.registry import RunRegistry
    from app.runs.service import RunService
    from app.settings import Settings
    from app.store.base import ConversationStore
    from app.streams.base import StreamBuffer
    from app.tools.base import ToolRegistry

__all__ = [
    "PLUGIN_KEY",
    "STATE_KEY",
    "PrincipalDep",
    "Services",
    "ServicesDep",
    "provide_principal",
    "provide_services",
]

STATE_KEY = "chat_services"


class Services:
    """A plain class on purpose: Litestar validates dependency values, and an opaque class is only
    isinstance-checked, where a dataclass would have its fields inspected on every request."""

    def __init__(
        self,
        *,
        settings: Settings,
        buffer: StreamBuffer,
        store: ConversationStore,
        registry: RunRegistry,
        providers: ProviderRegistry,
        tools: ToolRegistry,
        runs: RunService,
        authenticate: Authenticate,
        limits: Any = None,
        redis: Any = None,
    ) -> None:
        self.settings = settings
        self.buffer = buffer
        self.store = store
        self.registry = registry
        self.providers = providers
        self.tools = tools
        self.runs = runs
        self.authenticate = authenticate
        self.limits = limits
        self.redis = redis
        self.metrics = runs.deps.metrics

    def count(self, name: str, n: int = 1) -> None:
        self.metrics.requests[name] += n


ServicesDep = NamedDependency[Services]
PrincipalDep = NamedDependency[Principal]


PLUGIN_KEY = "chat_plugin"


async def provide_services(state: State) -> Services:
    """The app's services. Hosts that do not run our lifespan (a Starlette mount, a WSGI adapter) get them
    opened on first use instead."""
    services: Services | None = state.get(STATE_KEY)
    if services is None:
        services = await state[PLUGIN_KEY].open_lazily(state)
    return services


async def provide_principal(request: Request[Any, Any, Any], services: ServicesDep) -> Principal:
    return await require_principal(services.authenticate, request)


async def read_body(request: Request[Any, Any, Any], services: Services) -> bytes:
    """The request body, refused with 413 past `max_body_bytes` (checked on the header, then while reading,
    so an oversized upload is never held in memory whole)."""
    limit = services.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
