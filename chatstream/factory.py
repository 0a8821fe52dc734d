"""`create_app()` and `ChatPlugin`: wiring settings, backends, providers and routes into Litestar.

Every external resource can be injected (Redis client, providers, tools, backends, authenticator), so
tests and embedding hosts decide what is real. Resources open in the lifespan and close in reverse order:
runs first (they still write their final frames), then providers, then backends. A graceful shutdown starts
earlier than the lifespan's end, on SIGTERM itself (`ChatPlugin.drain`, `chatstream.shutdown`): by the time
uvicorn runs the lifespan shutdown it has already cut every open stream.

The plugin leaves its host alone: our routes, dependencies, exception handlers and CORS live on one
`Router` under `path`; the host's app config gains only that router and our lifespan.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins import InitPlugin

from chatstream.api import chat, chats, conversations, documents, preferences, votes
from chatstream.api.access_log import AccessLogMiddleware
from chatstream.api.auth import TokenAuthenticator
from chatstream.api.cors import CORSMiddleware
from chatstream.api.deps import Services, provide_principal
from chatstream.api.errors import exception_handlers
from chatstream.api.health import ops_routes
from chatstream.api.models import models_route
from chatstream.api.openapi import add_security_scheme, openapi_config
from chatstream.api.options import options_handlers
from chatstream.errors import ConfigError
from chatstream.limits import build_limits
from chatstream.metrics import sample_loop_lag
from chatstream.providers.prompts import system_prompt
from chatstream.providers.setup import build_registry, check_providers
from chatstream.providers.titles import generate_title
from chatstream.runs.executor import RunDeps
from chatstream.runs.memory import MemoryRunRegistry
from chatstream.runs.service import RunService
from chatstream.settings import Settings
from chatstream.shutdown import drain_on_signals
from chatstream.store.memory import MemoryConversationStore, MemoryDocumentStore
from chatstream.store.sql import require_sql
from chatstream.streams.memory import MemoryStreamBuffer
from chatstream.tools.base import ToolRegistry
from chatstream.tools.builtin import builtin_tools
from chatstream.workflows import check_workflows, load_workflows

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

    from litestar.config.app import AppConfig
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from chatstream.api.auth import Authenticate, BotCheck
    from chatstream.providers.base import Provider
    from chatstream.runs.registry import RunRegistry
    from chatstream.store.base import ConversationStore, DocumentStore
    from chatstream.streams.base import StreamBuffer
    from chatstream.tools.base import Tool

__all__ = ["ChatPlugin", "create_app"]

log = logging.getLogger("chatstream")


_UNSET: Any = object()  # "not given": None is a real value for the ops paths (turned off)


class ChatPlugin(InitPlugin):
    """Mounts the chat server into a Litestar app: `Litestar(plugins=[ChatPlugin(settings, path="/chat")])`.

    Args:
        settings: what to serve; `Settings.from_env()` when omitted.
        path: where our routes go (`"/chat"` gives `/chat/api/chat`); `""` is the root.
        redis: a `redis.asyncio.Redis` (or `RedisCluster`) client to use instead of one opened from
            `settings.redis_url`.
        providers: providers by name, served before the configured ones.
        tools: the tools models may call, instead of the built-in ones.
        authenticate: the host's own authentication (the principal, or None for 401), instead of tokens.
        bot_check: the host's bot detection, `(request) -> bool` (or an awaitable bool): True refuses a request
            that would start a run (send, approve, regenerate, the seed-003 stream) with
            `401 {"error": "bot detected"}`, before anything is stored or charged. Default: none.
        buffer, store, registry: backends to use instead of those `settings` selects.
        documents: the document store (the versions the document tools write) instead of the one that follows
            the conversation store: SQL on its database, Redis beside it, else memory (also for a host's own
            `store`: pass `documents=` with it).
        health_path, ready_path, metrics_path, models_path: where each ops route goes, relative to `path`;
            None turns it off. The defaults come from `settings`.
        tags: the OpenAPI tags of our routes.

    Raises:
        ConfigError: no way to authenticate is configured (no tokens, JWT secret or `authenticate`), no
            provider is, or a configured provider's SDK is not installed.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        path: str = "",
        redis: Redis | RedisCluster | None = None,
        providers: Mapping[str, Provider] | None = None,
        tools: Sequence[Tool[Any]] | None = None,
        authenticate: Authenticate | None = None,
        bot_check: BotCheck | None = None,
        buffer: StreamBuffer | None = None,
        store: ConversationStore | None = None,
        registry: RunRegistry | None = None,
        documents: DocumentStore | None = None,
        health_path: str | None = _UNSET,
        ready_path: str | None = _UNSET,
        metrics_path: str | None = _UNSET,
        models_path: str | None = _UNSET,
        tags: Sequence[str] = ("chat",),
    ) -> None:
        self.settings = settings = settings or Settings.from_env()
        if authenticate is None and not settings.auth_configured:
            raise ConfigError(
                "chatstream: no authentication configured. Set CHAT_AUTH_TOKENS (token:user_id[:tier],...) or "
                "CHAT_JWT_SECRET, or pass authenticate= to ChatPlugin/create_app"
            )
        check_providers(settings, providers)
        if redis is None and settings.redis_url:
            _require_redis()
        if store is None and settings.sql_url:
            require_sql(settings.sql_url)
        if path and (not path.startswith("/") or path.endswith("/")):
            raise ConfigError(f"path must start with '/' and not end with one, got {path!r}")
        self.path = path or "/"
        self._redis = redis
        self._providers = providers
        self._tools = list(tools) if tools is not None else None
        self._authenticate = authenticate
        self._bot_check = bot_check
        # Read once, here: a bad file stops the start-up (its tools and models are checked in `_open`).
        self._workflows = load_workflows(settings.workflows_path) if settings.workflows_path else {}
        self._buffer = buffer
        self._store = store
        self._registry = registry
        self._documents = documents
        self._ops = {
            "health": settings.health_path if health_path is _UNSET else health_path,
            "ready": settings.ready_path if ready_path is _UNSET else ready_path,
            "metrics": settings.metrics_path if metrics_path is _UNSET else metrics_path,
            "models": settings.models_path if models_path is _UNSET else models_path,
        }
        self._tags = list(tags)
        self._services: Services | None = None
        self._lazy_lock = asyncio.Lock()

    @property
    def services(self) -> Services | None:
        """The open services (None before start-up)."""
        return self._services

    def router(self) -> Router:
        """Our routes on one router, with everything they need attached to it and nothing to the app."""
        ops = self._ops
        handlers: list[Any] = [*chat.routes, *chats.routes, *conversations.routes, *preferences.routes, *votes.routes]
        handlers += documents.routes
        handlers += ops_routes(health=ops["health"], ready=ops["ready"], metrics_path=ops["metrics"])
        if ops["models"] is not None:
            handlers.append(models_route(ops["models"]))
        # Before the handlers they answer for: a path whose first handler is not OPTIONS gets Litestar's own.
        handlers = [*options_handlers(handlers), *handlers]
        # First, so it is the outermost: CORS preflights answered below it are logged too.
        middleware: list[Any] = [AccessLogMiddleware]
        if self.settings.cors_origins:
            middleware.append(DefineMiddleware(CORSMiddleware, origins=self.settings.cors_origins))
        return Router(
            self.path,
            route_handlers=handlers,
            dependencies={
                "chat_services": Provide(self._services_provider()),
                "chat_principal": Provide(provide_principal),
            },
            exception_handlers=exception_handlers(self._count),
            middleware=middleware,
            tags=self._tags,
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.route_handlers.append(self.router())
        app_config.lifespan.append(self.lifespan)
        if app_config.openapi_config is not None:
            # Our operations require `bearerAuth`: the host's document declares it (the only thing we add to it).
            add_security_scheme(app_config.openapi_config)
        return app_config

    def _count(self, name: str) -> None:
        if self._services is not None:
            self._services.count(name)

    def _services_provider(self) -> Callable[[], Awaitable[Services]]:
        # A plain function, not the bound method: Litestar deep-copies a router's layers when it registers
        # them, which would copy the plugin (and its services) along with a bound method. Functions are
        # never copied.
        async def provide_chat_services() -> Services:
            return await self.provide_services()

        return provide_chat_services

    async def provide_services(self) -> Services:
        """The open services; a host that never ran our lifespan (a Starlette mount, a WSGI adapter) gets
        them opened on first use instead, and they live until exit."""
        services = self._services
        if services is None:
            async with self._lazy_lock:
                if self._services is None:
                    self._services, _ = await self._open()
                services = self._services
        return services

    async def drain(self) -> None:
        """Shut down gracefully, first part: admit no run (503), let running runs finish for
        `shutdown_grace_seconds`, stop the rest like a user stop; return once none is left, while the
        server still serves their readers. Installed on SIGTERM/SIGINT by our lifespan (see
        `chatstream.shutdown`); a host that handles signals itself calls it before its server stops."""
        if self._services is not None:
            await self._services.runs.drain()

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        services, closers = await self._open()
        self._services = services
        runs = services.runs
        uninstall = drain_on_signals(runs.drain, runs.hurry) if self.settings.shutdown_signals else None
        lag_sampler = asyncio.create_task(sample_loop_lag(services.metrics), name="chatstream-loop-lag")
        try:
            yield
        finally:
            lag_sampler.cancel()
            if uninstall is not None:
                uninstall()
            self._services = None
            await services.runs.aclose()
            for close in reversed(closers):
                try:
                    await close()
                except Exception:  # shutdown continues whatever one resource does
                    log.exception("error while closing a resource")

    async def _open(self) -> tuple[Services, list[Any]]:
        settings = self.settings
        closers: list[Any] = []
        redis = self._redis
        if redis is None and settings.redis_url:
            from chatstream.redis_client import connect_redis

            redis = connect_redis(settings.redis_url, cluster=settings.redis_cluster or None)
            closers.append(redis.aclose)
        buffer, store, registry, documents = self._buffer, self._store, self._registry, self._documents
        if store is None and settings.database_url is not None:
            # DATABASE_URL picks the store whatever else is configured: with Redis too, Redis keeps streams,
            # runs and limits, and SQL holds everything stored (the documents too, on the same engine).
            if settings.sql_url:
                store, sql_documents = await _open_sql_store(settings)
                documents = documents or sql_documents
            else:
                store = MemoryConversationStore()
        if redis is not None:
            from chatstream.runs.redis import RedisRunRegistry
            from chatstream.store.redis import RedisConversationStore
            from chatstream.streams.redis import RedisStreamBuffer

            prefix = settings.redis_prefix
            buffer = buffer or RedisStreamBuffer(redis, prefix=prefix, ttl=settings.stream_ttl_seconds)
            if store is None:
                from chatstream.store.redis_documents import RedisDocumentStore

                store = RedisConversationStore(redis, prefix=prefix)
                documents = documents or RedisDocumentStore(redis, prefix=prefix)
            registry = registry or RedisRunRegistry(redis, prefix=prefix)
        buffer = buffer or MemoryStreamBuffer(ttl=settings.stream_ttl_seconds)
        store = store or MemoryConversationStore()
        registry = registry or MemoryRunRegistry()
        documents = documents or MemoryDocumentStore()
        closers += [buffer.aclose, store.aclose, registry.aclose, documents.aclose]

        # The providers' SDKs bring their own (httpx2) client, owned by the registry; this one is the tools'.
        tools_http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.provider_read_timeout, connect=settings.provider_connect_timeout)
        )
        closers.append(tools_http.aclose)
        providers = build_registry(settings, injected=self._providers)
        closers.append(providers.aclose)
        tools = ToolRegistry(self._tools if self._tools is not None else builtin_tools(settings, tools_http))
        check_workflows(self._workflows, tools, providers)

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
            documents=documents,
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
            bot_check=self._bot_check,
            workflows=self._workflows,
        )
        return services, closers


async def _open_sql_store(settings: Settings) -> tuple[ConversationStore, DocumentStore]:
    """The SQL stores on one engine (the conversation store closes it), the schema migrated
    (`CHAT_DB_AUTO_MIGRATE`) or checked: a schema this code cannot use stops the start-up with what to run,
    rather than failing the first request."""
    from chatstream.store.sql.documents import SqlDocumentStore
    from chatstream.store.sql.engine import open_database
    from chatstream.store.sql.migrate import prepare
    from chatstream.store.sql.store import SqlConversationStore

    assert settings.sql_url is not None
    database = open_database(settings.sql_url)
    try:
        await prepare(database, auto_migrate=settings.auto_migrate)
    except BaseException:
        await database.aclose()
        raise
    return SqlConversationStore(database), SqlDocumentStore(database, owns_engine=False)


def _require_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401 - only checking that the extra is installed
    except ImportError as exc:
        raise ConfigError("REDIS_URL is set but redis is not installed: pip install 'chatstream[redis]'") from exc


def create_app(
    settings: Settings | None = None,
    *,
    redis: Redis | RedisCluster | None = None,
    providers: Mapping[str, Provider] | None = None,
    tools: Sequence[Tool[Any]] | None = None,
    authenticate: Authenticate | None = None,
    bot_check: BotCheck | None = None,
    buffer: StreamBuffer | None = None,
    store: ConversationStore | None = None,
    registry: RunRegistry | None = None,
    documents: DocumentStore | None = None,
) -> Litestar:
    """The chat server as an ASGI app of its own, to serve or to mount (`Mount("/chat", app=create_app())`).

    The arguments are `ChatPlugin`'s. Unlike the plugin, it answers unknown routes with our JSON errors too.
    """
    plugin = ChatPlugin(
        settings,
        redis=redis,
        providers=providers,
        tools=tools,
        authenticate=authenticate,
        bot_check=bot_check,
        buffer=buffer,
        store=store,
        registry=registry,
        documents=documents,
    )
    return Litestar(
        plugins=[plugin],
        exception_handlers=exception_handlers(),
        openapi_config=openapi_config(),
        debug=False,
        # Litestar's default would configure the root logger of the process (dictConfig), over the host's or
        # the standalone server's own logging: the library only logs to its loggers.
        logging_config=None,
    )
