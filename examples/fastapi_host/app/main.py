"""The host's own FastAPI app: its routes, its `principal` dependency, its error format, its `/healthz`.

chatstream is a separate ASGI app (`create_app`) mounted under `/chat`. Everything under the prefix is
ours (our routes, our JSON errors, our CORS, and our `/chat/healthz`); everything else stays the host's.

Starlette never runs a mounted app's lifespan. chatstream would open its services lazily on the first
request, but entering its lifespan from the host's is cleaner: the services open at start-up and, at
shutdown, running answers are stopped and their final frames written before the backends close.

Run from this directory: `uvicorn app.main:app` (see README.md for the environment).
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from chatstream import Settings, create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ITEMS = {1: "first item", 2: "second item"}

chat = create_app(Settings.from_env())


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with chat.lifespan():  # chatstream's services open and close with the host
        yield


app = FastAPI(title="host", lifespan=lifespan)
app.mount("/chat", chat)  # type: ignore[arg-type]  # Litestar types its ASGI signature more narrowly


class HostUser(BaseModel):
    name: str
    role: str


class QuotaExceededError(Exception):
    """The host's own domain error, rendered by the host's own handler."""


def principal(x_user: Annotated[str, Header()] = "anonymous") -> HostUser:
    """The host's own dependency: who is calling, from the `X-User` header (a stand-in for real auth)."""
    return HostUser(name=x_user, role="admin" if x_user == "root" else "member")


@app.exception_handler(StarletteHTTPException)
async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"host_detail": exc.detail, "path": request.url.path}, status_code=exc.status_code)


@app.exception_handler(QuotaExceededError)
async def quota_exceeded(request: Request, exc: QuotaExceededError) -> JSONResponse:
    return JSONResponse({"host_detail": "quota exceeded", "user": str(exc)}, status_code=429)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"host": "healthy"}


@app.get("/me")
async def me(user: Annotated[HostUser, Depends(principal)]) -> HostUser:
    return user


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int | str]:
    if item_id not in ITEMS:
        raise StarletteHTTPException(404)
    return {"id": item_id, "name": ITEMS[item_id]}


@app.get("/quota")
async def quota(user: Annotated[HostUser, Depends(principal)]) -> dict[str, str]:
    raise QuotaExceededError(user.name)
