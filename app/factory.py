"""`create_app()` and `ChatPlugin`: wiring settings, backends, providers and routes into Litestar.

Every external resource can be injected (Redis client, providers, tools, backends, authenticator), so
tests and embedding hosts decide what is real. Resources open in the lifespan and close in reverse order:
runs first (they still write their final frames), then providers, then backends.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
from litestar import Litestar
from litestar.di import Provide
from litestar.plugins import InitPlugin

from app.api import chat, conversations, health, models
from app.api.auth import TokenAuthenticator
from app.api.deps import PLUGIN_KEY, STATE_KEY, Services, provide_principal, provide_services
from app.api.errors import exception_handlers
from app.limits import build_limits
from app.providers.prompts import system_prompt
from app.providers.setup import build_registry
from app.providers.titles import generate_title
from app.runs.executor import RunDeps
from app.runs.memory import MemoryRunRegistry
from app.runs.service import RunService
from app.settings import Settings
from app.store.memory import MemoryConversationStore
from app.streams.memory import MemoryStreamBuffer
from app.tools.base import ToolRegistry
from app.tools.builtin import builtin_tools

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping

    from litestar.config.app import AppConfig

    from app.api.auth import Authenticate
    from app.providers.base import Provider
    from app.runs.registry import RunRegistry
    from app.store.base import ConversationStore
    from app.streams.base import StreamBuffer
    from app.tools.base import Tool

__all__ = ["ChatPlugin", "create_app"]

log = logging.getLogger("app")


class ChatPlugin(InitPlugin):
    """Mounts the chat server into a Litestar app: `Litestar(plugins=[ChatPlugin(settings)])`."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: Any = None,
        providers: Mapping[str, Provider] | None = None,
        tools: list[Tool[Any]] | None = None,
        authenticate: Authenticate | None = None,
        buffer: StreamBuffer | None = None,
        store: ConversationStore | None = None,
        registry: RunRegistry | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self._redis = redis
        self._providers = providers
        self._tools = tools
        self._authenticate = authenticate
        self._buffer = buffer
        self._store = store
        self._registry = registry
        self._lazy_lock = asyncio.Lock()

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.extend([*chat.routes, *conversations.routes, *models.routes, *health.routes])
        app_config.dependencies.update({"services": Provide(provide_services), "principal": Provide(provide_principal)})
        app_config.state[PLUGIN_KEY] = self
        app_config.exception_handlers.update(exception_handlers)  # type: ignore[arg-type]
        app_config.lifespan.append(self.lifespan)
        return app_config

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        services, closers = await self._open()
        app.state[STATE_KEY] = services
        try:
            yield
        finally:
            await services.runs.aclose()
            for close in reversed(closers):
                try:
                    await close()
                except Exception:  # shutdown continues whatever one resource does
                    log.exception("error while closing a resource")

    async def open_lazily(self, state: Any) -> Services:
        """Open the services on first use when the host never ran the lifespan (they live until exit)."""
        async with self._lazy_lock:
            if STATE_KEY not in state:
                state[STATE_KEY], _ = await self._open()
            services: Services = state[STATE_KEY]
            return services

    async def _open(self) -> tuple[Services, list[Any]]:
        settings = self.settings
        closers: list[Any] = []
        redis = self._redis
        if redis is None and settings.redis_url:
            from app.redis_client import connect_redis

            redis = connect_redis(settings.redis_url)
            closers.append(redis.aclose)
        buffer, store, registry = self._buffer, self._store, self._registry
        if redis is not None:
            from app.runs.redis import RedisRunRegistry
            from app.store.redis import RedisConversationStore
            from app.streams.redis import RedisStreamBuffer

            prefix = settings.redis_prefix
            buffer = buffer or RedisStreamBuffer(redis, prefix=prefix, ttl=settings.stream_ttl_seconds)
            store = store or RedisConversationStore(redis, prefix=prefix)
            registry = registry or RedisRunRegistry(redis, prefix=prefix)
        buffer = buffer or MemoryStreamBuffer(ttl=settings.stream_ttl_seconds)
        store = store or MemoryConversationStore()
        registry = registry or MemoryRunRegistry()
        closers += [buffer.aclose, store.aclose, registry.aclose]

        # The providers' SDKs bring their own (httpx2) client, owned by the registry; this one is the tools'.
        tools_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.provider_read_timeout, connect=settings.provider_connect_timeout)
        )
        closers.append(tools_http.aclose)
        providers = build_registry(settings, injected=self._providers)
        closers.append(providers.aclose)
        tools = ToolRegistry(self._tools if self._tools is not None else builtin_tools(settings, tools_http))

        limits = build_limits(settings, redis)
        closers.append(limits.aclose)
        deps = RunDeps(
            settings=settings,
            buffer=buffer,
            batched=not isinstance(buffer, MemoryStreamBuffer),
            store=store,
            registry=registry,
            tools=tools,
            system_prompt=system_prompt,
        )
        runs = RunService(deps, providers, limits=limits, titler=generate_title)
        services = Services(
            settings=settings,
            buffer=buffer,
            store=store,
            registry=registry,
            providers=providers,
            tools=tools,
            runs=runs,
            authenticate=self._authenticate or TokenAuthenticator(settings),
            limits=limits,
            redis=redis,
        )
        return services, closers


def create_app(settings: Settings | None = None, **injected: Any) -> Litestar:
    """The chat server as a standalone Litestar app. `injected`: see `ChatPlugin`."""
    return Litestar(plugins=[ChatPlugin(settings, **injected)], debug=False)
