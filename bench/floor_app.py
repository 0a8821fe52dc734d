"""The floor of the relay benchmark: what a relay that does nothing costs on our stack.

A bare ASGI app on uvicorn (uvloop, httptools, access log off: as `python -m app` runs it) that sends each
`POST` to the upstream through the SDKs' aiohttp transport (`openai.DefaultAioHttpClient`, sized as
`chatstream.providers.setup.new_http_client` sizes it) and writes the upstream's bytes back unchanged, a write
per read. No routing, auth, limits, store, buffer, parsing or encoding: every figure `bench.relay` measures for
it is what uvicorn, aiohttp and the event loop cost alone, the least any server built on them can reach.

`--framework litestar` serves the same relay as the smallest Litestar app that does it: one `POST` handler
taking the decoded JSON body and returning a `Stream` of the upstream's bytes (Litestar's default
middleware, no DI, no plugins). Its figures less the bare app's are what Litestar itself adds per request.

    UPSTREAM_URL=http://127.0.0.1:PORT/<ns>/v1/chat/completions .venv/bin/python -m bench.floor_app --port 8001
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar import Litestar

_UPSTREAM = os.environ.get("UPSTREAM_URL", "")
_HEADERS = {"content-type": "application/json", "authorization": "Bearer x"}
_session: Any = None
_client: Any = None


def _payload(model: str) -> bytes:
    return msgspec.json.encode({"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]})


async def _startup() -> None:
    global _client, _session
    import httpx2
    from openai import DefaultAioHttpClient

    _client = DefaultAioHttpClient(limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=200))
    transport = _client._transport
    _session = transport.client = transport.get_client()  # the transport's own aiohttp session


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _startup()
                await send({"type": "lifespan.startup.complete"})
            else:
                await _client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/healthz":  # readiness, for tests.support.server.Process
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    model = msgspec.json.decode(body)["model"]
    payload = msgspec.json.encode({"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]})
    async with _session.post(_UPSTREAM, data=payload, headers=_HEADERS) as response:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        readany = response.content.readany
        while chunk := await readany():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def litestar_app() -> Litestar:
    from litestar import Litestar, get, post
    from litestar.response import Stream

    async def relay(model: str) -> AsyncIterator[bytes]:
        async with _session.post(_UPSTREAM, data=_payload(model), headers=_HEADERS) as response:
            readany = response.content.readany
            while chunk := await readany():
                yield chunk

    @post("/api/chat", status_code=200)
    async def chat(data: dict[str, Any]) -> Stream:
        return Stream(relay(data["model"]), media_type="text/event-stream")

    @get("/healthz")
    async def healthz() -> str:
        return "ok"

    async def shutdown() -> None:
        await _client.aclose()

    return Litestar(
        [chat, healthz],
        on_startup=[_startup],
        on_shutdown=[shutdown],
        openapi_config=None,
        signature_namespace={"Stream": Stream},
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--framework", choices=["none", "litestar"], default="none")
    args = parser.parse_args()
    uvicorn.run(
        "bench.floor_app:litestar_app" if args.framework == "litestar" else "bench.floor_app:app",
        factory=args.framework == "litestar",
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    main()
