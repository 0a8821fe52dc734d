"""Build the `ProviderRegistry` from settings: the configured real providers, or `mock` when there are none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from app.errors import ConfigError
from app.providers.mock import MOCK_MODELS, MockProvider
from app.providers.registry import ProviderEntry, ProviderRegistry

if TYPE_CHECKING:
    import httpx

    from app.providers.base import Provider
    from app.settings import Settings

__all__ = ["build_registry"]


def build_registry(
    settings: Settings,
    *,
    http_client: httpx.AsyncClient | None = None,
    injected: Mapping[str, Provider] | None = None,
) -> ProviderRegistry:
    """Injected providers win; otherwise real providers from settings; `mock` only when nothing is configured."""
    entries: dict[str, ProviderEntry] = {}
    for name, provider in (injected or {}).items():
        models = MOCK_MODELS if isinstance(provider, MockProvider) else ()
        entries[name] = ProviderEntry(
            provider=provider, models=models, default_model=models[0] if models else f"{name}-default"
        )
    if not entries:
        entries["mock"] = ProviderEntry(
            provider=MockProvider(delay=settings.mock_delay_ms / 1000),
            models=MOCK_MODELS,
            default_model=MOCK_MODELS[0],
        )
    default = settings.default_provider or next(iter(entries))
    if default not in entries:
        raise ConfigError(f"CHAT_DEFAULT_PROVIDER={default!r} is not configured (configured: {', '.join(entries)})")
    return ProviderRegistry(entries, default_provider=default, default_model=settings.default_model)
