"""Liveness, readiness and Prometheus metrics, each at a path the host chooses (or nowhere)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response, get

from chatstream.api.deps import ServicesDep  # noqa: TC001 - Litestar reads handler annotations
from chatstream.api.openapi import documented
from chatstream.errors import AppError

if TYPE_CHECKING:
    from litestar.handlers import HTTPRouteHandler

__all__ = ["ops_routes"]


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def readyz(chat_services: ServicesDep) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    backends = (("buffer", chat_services.buffer), ("store", chat_services.store), ("registry", chat_services.registry))
    for name, backend in backends:
        try:
            await backend.ping()
            checks[name] = "ok"
        except AppError as exc:
            checks[name] = exc.message
    ready = all(v == "ok" for v in checks.values())
    if chat_services.runs.draining:
        # Shutting down: a load balancer must route new work elsewhere while our runs finish.
        return Response({"status": "draining", "checks": checks}, status_code=503)
    return Response(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


async def metrics(chat_services: ServicesDep) -> str:
    return chat_services.metrics.render(active_runs=chat_services.runs.active_tasks)


def ops_routes(*, health: str | None, ready: str | None, metrics_path: str | None) -> list[HTTPRouteHandler]:
    """The ops handlers at the given paths; None leaves one out (a host with its own `/healthz`).

    Built per app, since a handler's path is fixed when it is decorated."""
    routes: list[HTTPRouteHandler] = []
    if health is not None:
        routes.append(get(health, media_type=MediaType.JSON, name="chat-healthz", **documented("healthz"))(healthz))
    if ready is not None:
        routes.append(get(ready, media_type=MediaType.JSON, name="chat-readyz", **documented("readyz"))(readyz))
    if metrics_path is not None:
        routes.append(
            get(metrics_path, media_type="text/plain; version=0.0.4", name="chat-metrics", **documented("metrics"))(
                metrics
            )
        )
    return routes
