"""Which providers exist, which models each serves, and how a request's `provider`/`model` resolve.

Resolution (SPEC §3.1, §5): `provider/model` ids name both; a bare model id is looked up in the catalog;
`provider` alone takes that provider's default model; `default` or nothing takes the configured default
provider. Unknown names are a 400 listing what exists; a known provider (or a model of one) that is not
configured is a 400 naming the variable to set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.errors import BadRequestError

# msgspec resolves Struct annotations at runtime, so `Provider` (a field type below) is a real import.
from chatstream.providers.base import Provider

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

__all__ = ["ModelInfo", "ProviderEntry", "ProviderRegistry", "is_reasoning_model"]


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    provider: str
    reasoning: bool = False
    default: bool = False
    """True for the model a request naming nothing gets."""


class ProviderEntry(msgspec.Struct, frozen=True, kw_only=True):
    provider: Provider
    models: tuple[str, ...]
    default_model: str
    open_catalog: bool = False
    """Accept model ids outside `models` (aggregators and local servers serve more than any list we keep)."""


def is_reasoning_model(model: str) -> bool:
    """Reasoning models get no tools (SPEC §3.3)."""
    return model.endswith("-thinking") or "reasoning" in model


class ProviderRegistry:
    """The configured providers, their model catalog and the default choice."""

    def __init__(
        self,
        entries: Mapping[str, ProviderEntry],
        *,
        default_provider: str,
        default_model: str | None = None,
        unconfigured: Mapping[str, str] | None = None,
        unconfigured_models: Mapping[str, tuple[str, ...]] | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if default_provider not in entries:
            raise ValueError(f"default provider {default_provider!r} is not configured")
        self._entries = dict(entries)
        self.default_provider = default_provider
        self.default_model = default_model or entries[default_provider].default_model
        # Known provider names without configuration -> the variable that would configure them.
        self._unconfigured = dict(unconfigured or {})
        # Their catalogs, so a bare id such as `claude-sonnet-4-6` says "set ANTHROPIC_API_KEY", not "unknown".
        self._unconfigured_models = dict(unconfigured_models or {})
        self._on_close = on_close

    @property
    def names(self) -> list[str]:
        return list(self._entries)

    @property
    def unconfigured(self) -> dict[str, str]:
        """Known but unconfigured provider names -> the variable to set."""
        return dict(self._unconfigured)

    def get(self, name: str) -> Provider:
        return self._entries[name].provider

    def resolve(self, provider: str | None, model: str | None) -> tuple[Provider, str]:
        """Pick the provider and model for a request, or raise `BadRequestError` naming the choices."""
        provider = provider or None
        model = model or None
        if provider == "default":
            provider = None
        if provider is not None:
            return self._resolve_in(provider, model)
        if model is None or model == "default":
            return self._entries[self.default_provider].provider, self.default_model
        # Exact catalog ids first (OpenRouter's contain a slash), the default provider winning ties.
        for name in (self.default_provider, *self._entries):
            if model in self._entries[name].models:
                return self._entries[name].provider, model
        prefix, sep, rest = model.partition("/")
        if sep and (prefix in self._entries or prefix in self._unconfigured):
            return self._resolve_in(prefix, rest)
        for name, models in self._unconfigured_models.items():
            if model in models:
                raise BadRequestError(
                    f"model {model!r} needs provider {name!r}, which is not configured: set {self._unconfigured[name]}"
                )
        raise BadRequestError(f"unknown model {model!r}", available=self.model_ids())

    def _resolve_in(self, name: str, model: str | None) -> tuple[Provider, str]:
        entry = self._entry(name)
        if model is None or model == "default":
            return entry.provider, entry.default_model
        if model in entry.models:
            return entry.provider, model
        prefix, sep, rest = model.partition("/")
        if sep and prefix == name:
            return self._resolve_in(name, rest)
        if sep and (prefix in self._entries or prefix in self._unconfigured) and not entry.open_catalog:
            raise BadRequestError(f"model {model!r} does not belong to provider {name!r}")
        if entry.open_catalog:
            return entry.provider, model
        raise BadRequestError(
            f"unknown model {model!r} for provider {name!r}", available=[f"{name}/{m}" for m in entry.models]
        )

    def _entry(self, name: str) -> ProviderEntry:
        if name in self._entries:
            return self._entries[name]
        if name in self._unconfigured:
            raise BadRequestError(f"provider {name!r} is not configured: set {self._unconfigured[name]}")
        raise BadRequestError(f"unknown provider {name!r}", available=self.names)

    def model_ids(self) -> list[str]:
        return [f"{name}/{m}" for name, e in self._entries.items() for m in e.models]

    def models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                id=m,
                provider=name,
                reasoning=is_reasoning_model(m),
                default=name == self.default_provider and m == self.default_model,
            )
            for name, e in self._entries.items()
            for m in e.models
        ]

    def describe(self) -> dict[str, Any]:
        """The `GET /api/models` body: default choice, configured providers and models, what a key would add."""
        return {
            "default": {"provider": self.default_provider, "model": self.default_model},
            "providers": [
                {"name": name, "defaultModel": e.default_model, "models": list(e.models), "openCatalog": e.open_catalog}
                for name, e in self._entries.items()
            ],
            "models": [
                {
                    "id": f"{m.provider}/{m.id}",
                    "model": m.id,
                    "provider": m.provider,
                    "reasoning": m.reasoning,
                    "default": m.default,
                }
                for m in self.models()
            ],
            "unconfigured": [{"name": name, "set": var} for name, var in self._unconfigured.items()],
        }

    async def aclose(self) -> None:
        try:
            for entry in self._entries.values():
                await entry.provider.aclose()
        finally:
            if self._on_close is not None:
                await self._on_close()
