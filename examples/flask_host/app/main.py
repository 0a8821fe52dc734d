"""The host's own Flask app: its routes, its `principal` (loaded per request into `g`), its error format,
its `/healthz`.

chatstream is an ASGI app (`create_app`); `a2wsgi.ASGIMiddleware` turns it into a WSGI app, and werkzeug's
`DispatcherMiddleware` sends everything under `/chat` to it. Everything under the prefix is ours (our
routes, our JSON errors, our CORS, and our `/chat/healthz`); everything else stays Flask's.

A WSGI server runs no ASGI lifespan: chatstream opens its services on the first request (supported) and
they live until the process exits. The adapter runs them on its own event-loop thread.

Serve it with a WSGI server, from this directory (see README.md): `python -m waitress app.main:app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from a2wsgi import ASGIMiddleware
from flask import Flask, abort, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from chatstream import Settings, create_app

if TYPE_CHECKING:
    from flask import Response

ITEMS = {1: "first item", 2: "second item"}

app = Flask(__name__)


class QuotaExceededError(Exception):
    """The host's own domain error, rendered by the host's own handler."""


@app.before_request
def load_principal() -> None:
    """The host's own "dependency": who is calling, from the `X-User` header (a stand-in for real auth)."""
    name = request.headers.get("X-User", "anonymous")
    g.principal = {"name": name, "role": "admin" if name == "root" else "member"}


@app.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[Response, int]:
    return jsonify(host_error=exc.name.lower(), path=request.path), exc.code or 500


@app.errorhandler(QuotaExceededError)
def quota_exceeded(exc: QuotaExceededError) -> tuple[Response, int]:
    return jsonify(host_error="quota exceeded", user=str(exc)), 429


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"host": "healthy"}


@app.get("/me")
def me() -> dict[str, str]:
    return dict(g.principal)


@app.get("/items/<int:item_id>")
def item(item_id: int) -> dict[str, Any]:
    if item_id not in ITEMS:
        abort(404)
    return {"id": item_id, "name": ITEMS[item_id]}


@app.get("/quota")
def quota() -> dict[str, str]:
    raise QuotaExceededError(g.principal["name"])


# a2wsgi's types are its own, not typeshed's WSGI protocol: Any bridges them.
chat: Any = ASGIMiddleware(create_app(Settings.from_env()))  # type: ignore[arg-type]
app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/chat": chat})  # type: ignore[method-assign]
