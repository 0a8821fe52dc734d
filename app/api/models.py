"""`GET /api/models`: the configured providers and the models each serves (SPEC §3)."""

from __future__ import annotations

from typing import Any

from litestar import get

from app.api.deps import PrincipalDep, ServicesDep

__all__ = ["routes"]


@get("/api/models")
async def list_models(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """Configured providers with their models, the default choice, and the providers a key would enable."""
    return services.providers.describe()


routes = [list_models]
