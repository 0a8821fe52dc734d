"""`build_registry` from settings and model resolution: catalog ids, `provider/model`, defaults, and the
400s naming what exists or which variable to set."""

from __future__ import annotations

import httpx
import pytest

from chatstream.errors import BadRequestError, ConfigError
from chatstream.providers.anthropic import AnthropicProvider
from chatstream.providers.catalog import CATALOG
from chatstream.providers.mock import MockProvider
from chatstream.providers.openai_compat import OpenAICompatProvider
from chatstream.providers.setup import build_registry, check_providers
from chatstream.settings import ProviderSettings, Secret, Settings


def _settings(*names: str, **kw: object) -> Settings:
    providers = {n: ProviderSettings(api_key=Secret("k"), base_url="http://127.0.0.1:9/v1") for n in names}
    return Settings(providers=providers, **kw)  # type: ignore[arg-type]


def test_nothing_configured_refuses_to_start() -> None:
    # The library never answers with the mock silently; the standalone server turns it on itself.
    with pytest.raises(ConfigError, match=r"no provider configured: set OPENAI_API_KEY.*CHAT_MOCK_PROVIDER=true"):
        build_registry(Settings())


def test_a_configured_provider_without_its_sdk_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if chatstream[anthropic] were not installed
    monkeypatch.delitem(sys.modules, "chatstream.providers.anthropic", raising=False)
    with pytest.raises(ConfigError, match=r"pip install 'chatstream\[anthropic\]'"):
        build_registry(_settings("claude"))


async def test_mock_only_and_every_provider_says_what_to_set() -> None:
    registry = build_registry(Settings(mock_provider=True))

    assert registry.names == ["mock"]
    assert isinstance(registry.get("mock"), MockProvider)
    assert registry.unconfigured == {
        "openai": "OPENAI_API_KEY",
        "groq": "GROQ_API_KEY",
        "openrouter": "OPENROUTER_API_KEY",
        "google": "GOOGLE_API_KEY",
        "ollama": "OLLAMA_BASE_URL",
        "claude": "ANTHROPIC_API_KEY",
    }
    with pytest.raises(BadRequestError, match="provider 'claude' is not configured: set ANTHROPIC_API_KEY"):
        registry.resolve("claude", None)
    with pytest.raises(BadRequestError, match="set OPENAI_API_KEY"):
        registry.resolve(None, "gpt-4o")  # a bare id from an unconfigured provider's catalog
    with pytest.raises(BadRequestError, match="set GROQ_API_KEY"):
        registry.resolve(None, "groq/llama-3.1-8b-instant")
    await registry.aclose()


async def test_real_providers_replace_mock_and_resolve() -> None:
    registry = build_registry(Settings.from_env({"OPENAI_API_KEY": "k1", "ANTHROPIC_API_KEY": "k2"}))

    assert registry.names == ["openai", "claude"]
    assert isinstance(registry.get("openai"), OpenAICompatProvider)
    assert isinstance(registry.get("claude"), AnthropicProvider)
    openai, claude = registry.get("openai"), registry.get("claude")
    assert registry.resolve(None, None) == (openai, CATALOG["openai"].default_model)
    assert registry.resolve("default", None) == (openai, CATALOG["openai"].default_model)
    assert registry.resolve("claude", None) == (claude, "claude-sonnet-4-6")
    assert registry.resolve(None, "gpt-4o") == (openai, "gpt-4o")
    assert registry.resolve(None, "claude/claude-opus-4-6") == (claude, "claude-opus-4-6")
    assert registry.resolve("claude", "claude/claude-opus-4-6") == (claude, "claude-opus-4-6")
    with pytest.raises(BadRequestError) as unknown:
        registry.resolve(None, "gpt-99")
    assert "openai/gpt-4o" in unknown.value.body()["available"]
    with pytest.raises(BadRequestError) as wrong:
        registry.resolve("openai", "claude-opus-4-6")
    assert wrong.value.body()["available"][0].startswith("openai/")
    with pytest.raises(BadRequestError, match="unknown provider 'nope'"):
        registry.resolve("nope", None)
    await registry.aclose()


def test_open_catalogs_accept_any_id_and_slashed_ids_stay_whole() -> None:
    registry = build_registry(_settings("openrouter", "ollama", "openai"))
    openrouter = registry.get("openrouter")

    assert registry.resolve("openrouter", "mistralai/mistral-large") == (openrouter, "mistralai/mistral-large")
    # An OpenRouter catalog id is found whole, though its prefix is another provider's name.
    assert registry.resolve(None, "anthropic/claude-sonnet-4.5") == (openrouter, "anthropic/claude-sonnet-4.5")
    assert registry.resolve("openrouter", "openai/gpt-4o-mini") == (openrouter, "openai/gpt-4o-mini")
    assert registry.resolve("ollama", "phi4") == (registry.get("ollama"), "phi4")


def test_defaults_from_settings() -> None:
    registry = build_registry(_settings("openai", "claude", default_provider="anthropic"))
    assert registry.default_provider == "claude"

    registry = build_registry(_settings("openai", "claude", default_model="claude-opus-4-6"))
    assert (registry.default_provider, registry.default_model) == ("claude", "claude-opus-4-6")

    env = {"GROQ_API_KEY": "k", "GROQ_MODEL": "moonshotai/kimi-k2", "CHAT_DEFAULT_MODEL": "groq/moonshotai/kimi-k2"}
    registry = build_registry(Settings.from_env(env))
    assert (registry.default_provider, registry.default_model) == ("groq", "moonshotai/kimi-k2")
    assert registry.resolve("groq", None)[1] == "moonshotai/kimi-k2"  # the row's default, added to its catalog

    with pytest.raises(ConfigError, match="set ANTHROPIC_API_KEY"):
        build_registry(_settings("openai", default_provider="claude"))


def test_a_default_that_is_not_served_is_refused_before_anything_opens() -> None:
    # At construction, where a server can still say so in one line, not first in the lifespan.
    with pytest.raises(ConfigError, match="CHAT_DEFAULT_PROVIDER='claude' is not configured: set ANTHROPIC_API_KEY"):
        check_providers(_settings("openai", default_provider="claude"))
    with pytest.raises(
        ConfigError, match=r"CHAT_DEFAULT_PROVIDER='nobody' is not configured \(configured: mine, mock\)"
    ):
        check_providers(Settings(mock_provider=True, default_provider="nobody"), {"mine": MockProvider()})
    # What `build_registry` accepts, the check accepts: aliases, a `provider/model` default, the mock.
    check_providers(_settings("openai", "claude", default_provider="anthropic"))
    check_providers(Settings.from_env({"GROQ_API_KEY": "k", "CHAT_DEFAULT_MODEL": "groq/moonshotai/kimi-k2"}))
    check_providers(Settings(mock_provider=True, default_model="mock-thinking"))


def test_injected_providers_come_first_and_mock_is_never_silent() -> None:
    mock = MockProvider()
    registry = build_registry(_settings("openai"), injected={"mock": mock})

    assert registry.names == ["mock", "openai"]
    assert registry.default_provider == "mock"
    assert [m.id for m in registry.models() if m.provider == "mock"] == ["mock-1", "mock-thinking"]

    registry = build_registry(_settings("openai"))
    assert "mock" not in registry.names


async def test_a_legacy_httpx_client_is_not_handed_to_the_sdks() -> None:
    async with httpx.AsyncClient() as legacy:
        registry = build_registry(_settings("claude"), http_client=legacy)  # Anthropic's SDK would raise
        assert registry.names == ["claude"]
        await registry.aclose()


def test_describe_is_the_models_endpoint_body() -> None:
    registry = build_registry(_settings("claude"))
    body = registry.describe()

    assert body["default"] == {"provider": "claude", "model": "claude-sonnet-4-6"}
    assert body["providers"][0]["name"] == "claude"
    assert {
        "id": "claude/claude-sonnet-4-6-thinking",
        "model": "claude-sonnet-4-6-thinking",
        "provider": "claude",
        "reasoning": True,
        "default": False,
    } in body["models"]
    assert {"name": "openai", "set": "OPENAI_API_KEY"} in body["unconfigured"]
