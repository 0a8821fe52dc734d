"""One configuration row per provider name: everything that differs between backends of the same wire format.

The five OpenAI-compatible backends are one adapter (`OpenAICompatProvider`) and five rows here; adding a
compatible backend is one row. `kind` picks the adapter (see `chatstream.providers.setup`).
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["CATALOG", "ProviderConfig", "ReasoningField"]

ReasoningField = Literal["reasoning", "reasoning_content"]


class ProviderConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How to reach one provider and what it serves."""

    name: str
    """The provider name clients use (`openai`, `claude`, ...)."""
    kind: Literal["openai_compat", "anthropic"]
    """The wire format, i.e. which adapter serves it."""
    key_var: str
    """The environment variable that configures it (named in the 400 when it is missing)."""
    base_url: str
    """The vendor default; `<NAME>_BASE_URL` overrides it."""
    default_model: str
    models: tuple[str, ...]
    """The catalog: bare ids resolve to this provider through it."""
    open_catalog: bool = False
    """Aggregators and local servers serve more models than any list we could keep: accept any id."""
    key_required: bool = True
    """Ollama runs without a key; the SDK still wants one, so a placeholder is sent."""
    extra_headers: dict[str, str] = msgspec.field(default_factory=dict)
    reasoning_field: ReasoningField | None = None
    """Which delta field carries reasoning text on this backend (the other is read only as a fallback)."""
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """OpenAI's reasoning models reject `max_tokens`; the compatible servers mostly only know `max_tokens`."""
    stream_usage: bool = True
    """Send `stream_options.include_usage` so the last chunk carries token counts."""


CATALOG: dict[str, ProviderConfig] = {
    row.name: row
    for row in (
        ProviderConfig(
            name="openai",
            kind="openai_compat",
            key_var="OPENAI_API_KEY",
            base_url="https://api.openai.com/v1",
            default_model="gpt-5.4-mini",
            # Ids as the installed SDK's `ChatModel` names them; `gpt-4o` and `gpt-4` are what the seeds send.
            models=(
                "gpt-5.4-mini",
                "gpt-5.5",
                "gpt-5.4",
                "gpt-5.4-nano",
                "gpt-5-mini",
                "gpt-4.1",
                "gpt-4.1-mini",
                "gpt-4o",
                "gpt-4o-mini",
                "gpt-4",
            ),
            max_tokens_field="max_completion_tokens",
        ),
        ProviderConfig(
            name="groq",
            kind="openai_compat",
            key_var="GROQ_API_KEY",
            base_url="https://api.groq.com/openai/v1",
            default_model="llama-3.3-70b-versatile",
            models=("llama-3.3-70b-versatile", "llama-3.1-8b-instant", "qwen-qwq-32b", "deepseek-r1-distill-llama-70b"),
            reasoning_field="reasoning",
        ),
        ProviderConfig(
            name="openrouter",
            kind="openai_compat",
            key_var="OPENROUTER_API_KEY",
            base_url="https://openrouter.ai/api/v1",
            default_model="openai/gpt-4o-mini",
            models=(
                "openai/gpt-4o-mini",
                "anthropic/claude-sonnet-4.5",
                "google/gemini-2.5-flash",
                "deepseek/deepseek-r1",
            ),
            open_catalog=True,
            # OpenRouter attributes traffic to an app by these two headers (its docs: "app attribution").
            extra_headers={"HTTP-Referer": "https://github.com/chatstream/chatstream", "X-Title": "chatstream"},
            reasoning_field="reasoning",
        ),
        ProviderConfig(
            name="google",
            kind="openai_compat",
            key_var="GOOGLE_API_KEY",
            base_url="https://generativelanguage.googleapis.com/v1beta/openai",
            default_model="gemini-2.5-flash",
            models=("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"),
            reasoning_field="reasoning_content",
        ),
        ProviderConfig(
            name="ollama",
            kind="openai_compat",
            key_var="OLLAMA_BASE_URL",
            base_url="http://127.0.0.1:11434/v1",
            default_model="llama3.2",
            models=("llama3.2", "qwen3", "deepseek-r1", "gemma3"),
            open_catalog=True,
            key_required=False,
            reasoning_field="reasoning",
        ),
        ProviderConfig(
            name="claude",
            kind="anthropic",
            key_var="ANTHROPIC_API_KEY",
            base_url="https://api.anthropic.com",
            default_model="claude-sonnet-4-6",
            # `-thinking` ids are ours: the same model with extended thinking on (and, per SPEC §3.3, no tools).
            # Ids the installed SDK lists as deprecated are left out (it warns on every request for them).
            models=(
                "claude-sonnet-4-6",
                "claude-sonnet-4-6-thinking",
                "claude-opus-4-6",
                "claude-opus-4-6-thinking",
                "claude-haiku-4-5",
                "claude-sonnet-5",
                "claude-opus-5",
            ),
        ),
    )
}
