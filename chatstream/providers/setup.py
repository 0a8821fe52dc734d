"""Build the `ProviderRegistry` from settings: injected providers, the configured real providers, and `mock`
only when `settings.mock_provider` asks for it (SPEC §5: never chosen silently).

Every real provider is one `ProviderConfig` row (`chatstream.providers.catalog`) plus the adapter for its wire
format, all sharing one `httpx2.AsyncClient` (the SDKs are built on httpx2, not httpx). The SDKs are optional
extras, imported only when a provider that needs one is configured.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard

from chatstream.errors import ConfigError
from chatstream.providers._retry import RetryPolicy
from chatstream.providers.catalog import CATALOG, ProviderConfig
from chatstream.providers.mock import MOCK_MODELS, MockProvider
from chatstream.providers.registry import ProviderEntry, ProviderRegistry

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx
    import httpx2

    from chatstream.providers.base import Provider
    from chatstream.settings import ProviderSettings, Settings

__all__ = ["ADAPTERS", "Adapter", "RetryPolicy", "build_registry", "check_providers"]


class Adapter(NamedTuple):
    """Where a wire format's adapter lives, and the extra that installs its SDK."""

    module: str
    name: str
    extra: str
    sdk: str
    """The distribution the extra installs, named in the error (not whichever of its imports failed first)."""

    def load(self) -> Any:
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise ConfigError(f"{self.sdk} is not installed: pip install 'chatstream[{self.extra}]'") from exc
        return getattr(module, self.name)


# kind -> adapter; adding a wire format is one module and one line here.
ADAPTERS: dict[str, Adapter] = {
    "openai_compat": Adapter("chatstream.providers.openai_compat", "OpenAICompatProvider", "openai", "openai"),
    "anthropic": Adapter("chatstream.providers.anthropic", "AnthropicProvider", "anthropic", "anthropic"),
}

# Names people reach for that mean one of ours (CHAT_DEFAULT_PROVIDER=anthropic).
_ALIASES = {"anthropic": "claude", "gemini": "google"}


_NO_PROVIDER = (
    "no provider configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, GROQ_API_KEY, OPENROUTER_API_KEY, "
    "GEMINI_API_KEY or OLLAMA_BASE_URL (or CHAT_MOCK_PROVIDER=true for the mock provider)"
)


def check_providers(settings: Settings, injected: Mapping[str, Provider] | None = None) -> None:
    """Refuse, before anything opens, a configuration that serves no provider, lacks a provider's SDK, or
    names a default provider that is not served (`build_registry` would refuse it only at start-up)."""
    if not injected and not settings.providers and not settings.mock_provider:
        raise ConfigError(_NO_PROVIDER)
    models: dict[str, tuple[str, ...]] = {
        name: MOCK_MODELS if isinstance(p, MockProvider) else () for name, p in (injected or {}).items()
    }
    unconfigured: dict[str, str] = {}
    for row in CATALOG.values():
        if row.name in models:
            continue
        provider_settings = settings.providers.get(row.name)
        if provider_settings is None:
            unconfigured[row.name] = row.key_var
        else:
            ADAPTERS[row.kind].load()
            models[row.name] = _models(row, provider_settings)[1]
    if settings.mock_provider and "mock" not in models:
        models["mock"] = MOCK_MODELS
    _default_choice(settings, models, unconfigured)


def build_registry(
    settings: Settings,
    *,
    http_client: httpx2.AsyncClient | httpx.AsyncClient | None = None,
    injected: Mapping[str, Provider] | None = None,
    retry: RetryPolicy | None = None,
) -> ProviderRegistry:
    """Injected providers first, then every configured real provider, then `mock` when asked for.

    `http_client` is shared by every SDK client and stays the caller's to close; without one, the registry
    creates and (in `aclose`) closes its own. It must be an `httpx2.AsyncClient`: the SDKs are built on
    httpx2 and the Anthropic SDK refuses an `httpx` client, so one is ignored (a private httpx2 client is
    used instead). `retry` overrides the before-first-token retry policy.
    """
    shared: httpx2.AsyncClient | None = http_client if _is_httpx2(http_client) else None
    entries: dict[str, ProviderEntry] = {}
    for name, provider in (injected or {}).items():
        models = MOCK_MODELS if isinstance(provider, MockProvider) else ()
        entries[name] = ProviderEntry(
            provider=provider, models=models, default_model=models[0] if models else f"{name}-default"
        )

    unconfigured: dict[str, str] = {}
    unconfigured_models: dict[str, tuple[str, ...]] = {}
    configured = [(row, settings.providers.get(row.name)) for row in CATALOG.values() if row.name not in entries]
    adapters = {row.kind: ADAPTERS[row.kind].load() for row, ps in configured if ps is not None}
    owned_client: httpx2.AsyncClient | None = None
    timeout: httpx2.Timeout | None = None
    if adapters:
        import httpx2  # comes with either SDK

        if shared is None:
            owned_client = shared = new_http_client(settings)
        timeout = httpx2.Timeout(
            settings.provider_read_timeout,
            connect=settings.provider_connect_timeout,
            pool=settings.provider_connect_timeout,
        )
    for row, provider_settings in configured:
        if provider_settings is None or shared is None or timeout is None:
            unconfigured[row.name] = row.key_var
            unconfigured_models[row.name] = row.models
            continue
        entries[row.name] = _entry(adapters[row.kind], row, provider_settings, shared, timeout, retry)

    if settings.mock_provider and "mock" not in entries:
        entries["mock"] = ProviderEntry(
            provider=MockProvider(delay=settings.mock_delay_ms / 1000),
            models=MOCK_MODELS,
            default_model=MOCK_MODELS[0],
        )
    if not entries:
        raise ConfigError(_NO_PROVIDER)
    default, default_model = _default_choice(settings, {n: e.models for n, e in entries.items()}, unconfigured)
    return ProviderRegistry(
        entries,
        default_provider=default,
        default_model=default_model,
        unconfigured=unconfigured,
        unconfigured_models=unconfigured_models,
        on_close=owned_client.aclose if owned_client is not None else None,
    )


def new_http_client(settings: Settings) -> httpx2.AsyncClient:
    """The one client every SDK shares: pooled keep-alive connections, sized for hundreds of streams.

    It is the SDKs' own aiohttp-backed client (`openai.DefaultAioHttpClient`, the `aiohttp` extra both SDKs
    support): the relay benchmark showed httpx2's pure-Python HTTP/1.1 parsing (h11) taking about half of
    the server's CPU per relayed token, where aiohttp's C parser reads whole socket buffers at a time.
    """
    import httpx2

    try:
        from openai import DefaultAioHttpClient
    except ImportError:  # only the anthropic extra: its SDK ships the same client
        from anthropic import DefaultAioHttpClient

    client: httpx2.AsyncClient = DefaultAioHttpClient(
        timeout=httpx2.Timeout(settings.provider_read_timeout, connect=settings.provider_connect_timeout),
        limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=200),
    )
    return client


def _is_httpx2(client: object) -> TypeGuard[httpx2.AsyncClient]:
    if client is None:
        return False
    try:
        import httpx2
    except ImportError:
        return False
    return isinstance(client, httpx2.AsyncClient)


def _entry(
    adapter: Any,
    row: ProviderConfig,
    provider_settings: ProviderSettings,
    http_client: httpx2.AsyncClient,
    timeout: httpx2.Timeout,
    retry: RetryPolicy | None,
) -> ProviderEntry:
    provider = adapter(
        row,
        api_key=provider_settings.api_key.get() if provider_settings.api_key else None,
        base_url=provider_settings.base_url,
        http_client=http_client,
        timeout=timeout,
        retry=retry,
    )
    default_model, models = _models(row, provider_settings)
    return ProviderEntry(provider=provider, models=models, default_model=default_model, open_catalog=row.open_catalog)


def _models(row: ProviderConfig, provider_settings: ProviderSettings) -> tuple[str, tuple[str, ...]]:
    """A configured provider's default model and the models it lists (its default first if not a catalog one)."""
    default_model = provider_settings.default_model or row.default_model
    return default_model, row.models if default_model in row.models else (default_model, *row.models)


def _default_choice(
    settings: Settings, entries: Mapping[str, tuple[str, ...]], unconfigured: Mapping[str, str]
) -> tuple[str, str | None]:
    """CHAT_DEFAULT_PROVIDER / CHAT_DEFAULT_MODEL, or the first configured provider and its default model."""
    default = _ALIASES.get(settings.default_provider or "", settings.default_provider)
    model = settings.default_model
    if model and not default:
        prefix, sep, rest = model.partition("/")
        if sep and _ALIASES.get(prefix, prefix) in entries:
            default, model = _ALIASES.get(prefix, prefix), rest
        else:
            default = next((name for name, models in entries.items() if model in models), None)
    default = default or next(iter(entries))
    if default not in entries:
        if default in unconfigured:
            raise ConfigError(f"CHAT_DEFAULT_PROVIDER={default!r} is not configured: set {unconfigured[default]}")
        raise ConfigError(f"CHAT_DEFAULT_PROVIDER={default!r} is not configured (configured: {', '.join(entries)})")
    return default, model
