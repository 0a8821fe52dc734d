"""`GET /api/models`: the configured providers and the models each serves (SPEC §3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import get

from chatstream.api.deps import PrincipalDep, ServicesDep  # noqa: TC001 - Litestar reads handler annotations
from chatstream.api.openapi import documented

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

__all__ = ["models_route"]


async def list_models(chat_services: ServicesDep, chat_principal: PrincipalDep) -> dict[str, Any]:
    """Configured providers with their models, the default choice, and the providers a key would enable."""
    return chat_services.providers.describe()


def models_route(path: str) -> HTTPRouteHandler:
    return get(path, name="chat-models", **documented("listModels"))(list_models)
