"""`GET` and `PUT /api/chat/preferences`: the user's defaults, what `provider: "default"` resolves to."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, put

from chatstream.api.deps import PrincipalDep, Services, ServicesDep, read_body
from chatstream.api.openapi import documented
from chatstream.api.schemas import decode_body
from chatstream.errors import BadRequestError
from chatstream.models import Mood, Preferences
from chatstream.runs.choice import default_model

__all__ = ["routes"]


class PreferencesBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: str | None = None
    model: str | None = None
    mood: Mood | None = None


def _describe(services: Services, stored: Preferences | None) -> dict[str, Any]:
    provider, model = default_model(services.providers, stored)
    return {
        "provider": stored.provider if stored else None,
        "model": stored.model if stored else None,
        "mood": stored.mood if stored else None,
        "resolved": {"provider": provider.name, "model": model},
    }


@get("/api/chat/preferences", status_code=200, **documented("getPreferences"))
async def get_preferences(chat_services: ServicesDep, chat_principal: PrincipalDep) -> dict[str, Any]:
    """The stored preferences (null where unset) and what a send naming no model resolves to now."""
    stored = await chat_services.store.get_preferences(chat_principal.user_id)
    return _describe(chat_services, stored)


@put("/api/chat/preferences", status_code=200, request_max_body_size=None, **documented("putPreferences"))
async def put_preferences(
    request: Request[Any, Any, Any], chat_services: ServicesDep, chat_principal: PrincipalDep
) -> dict[str, Any]:
    """Replace the preferences. `provider` and `model` must be configured (400 naming the choices); a model
    alone picks its provider. An absent field is cleared: the server's default applies to it."""
    raw = await read_body(request, chat_services)
    body = decode_body(raw, PreferencesBody)
    if body.provider == "default":
        raise BadRequestError('provider "default" is what preferences define; name a provider')
    provider: str | None = None
    model: str | None = None
    if body.provider is not None or body.model is not None:
        chosen, model = chat_services.providers.resolve(body.provider, body.model)
        provider = chosen.name
        if body.model is None:
            model = None  # the provider alone: its default model, whatever that is later
    stored = Preferences(user_id=chat_principal.user_id, provider=provider, model=model, mood=body.mood)
    await chat_services.store.put_preferences(stored)
    return _describe(chat_services, stored)


routes = [get_preferences, put_preferences]
