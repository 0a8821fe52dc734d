"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response, get

from app.api.deps import ServicesDep
from app.errors import AppError

__all__ = ["routes"]


@get("/healthz", media_type=MediaType.JSON)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", media_type=MediaType.JSON)
async def readyz(services: ServicesDep) -> Response[dict[str, Any]]:
    checks: dict[str, str] = {}
    for name, backend in (("buffer", services.buffer), ("store", services.store), ("registry", services.registry)):
        try:
            await backend.ping()
            checks[name] = "ok"
        except AppError as exc:
            checks[name] = exc.message
    ready = all(v == "ok" for v in checks.values())
    return Response(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


@get("/metrics", media_type="text/plain; version=0.0.4")
async def metrics(services: ServicesDep) -> str:
    return services.metrics.render(active_runs=services.runs.active_tasks)


routes = [healthz, readyz, metrics]
