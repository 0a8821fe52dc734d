"""Which provider and model a send runs on: what it names, else its conversation's, else the user's
preferences, else the server's default.

- A send naming a model, or a provider other than `default`, gets exactly that (400 when not configured),
  and the conversation switches to it.
- A send naming neither continues on the conversation's provider and model (sticky).
- `provider: "default"` (or a new conversation naming nothing) means the *user's* default
  (`/api/chat/preferences`), then the server's.

A remembered choice that is no longer configured (a key removed, a model retired) falls through to the next
one rather than failing the send: the user did not ask for it in this request.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chatstream.errors import BadRequestError

if TYPE_CHECKING:
    from chatstream.models import Conversation, Preferences
    from chatstream.providers.base import Provider
    from chatstream.providers.registry import ProviderRegistry

__all__ = ["choose_model", "default_model"]

log = logging.getLogger("chatstream.runs")


def default_model(providers: ProviderRegistry, preferences: Preferences | None) -> tuple[Provider, str]:
    """The user's default provider and model: their preferences while configured, else the server's."""
    if preferences is not None and (preferences.provider or preferences.model):
        try:
            return providers.resolve(preferences.provider, preferences.model)
        except BadRequestError:
            log.info("preferences of %s name an unconfigured model; using the server's default", preferences.user_id)
    return providers.resolve(None, None)


def choose_model(
    providers: ProviderRegistry,
    *,
    provider: str | None,
    model: str | None,
    conversation: Conversation | None,
    preferences: Preferences | None,
) -> tuple[Provider, str]:
    """Resolve a send's provider and model (see the module docstring); raises `BadRequestError` only for
    what the request itself names."""
    provider = provider or None
    model = None if model in (None, "", "default") else model
    if model is not None or (provider is not None and provider != "default"):
        return providers.resolve(None if provider == "default" else provider, model)
    if provider is None and conversation is not None and conversation.provider:
        try:
            return providers.resolve(conversation.provider, conversation.model)
        except BadRequestError:
            log.info("conversation %s was on an unconfigured model; using the default", conversation.id)
    return default_model(providers, preferences)
