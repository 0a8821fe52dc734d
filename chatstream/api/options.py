"""`OPTIONS` on a path several of our handlers share: `Allow` lists every method of the path.

Litestar adds an `OPTIONS` handler to a route when its first handler is registered and keeps it when more
join the route, so its `Allow` names the first handler's methods only (`OPTIONS /api/vote` said `PATCH`,
not `GET`). A path whose first handler is an `OPTIONS` handler gets none added: these are those handlers,
registered first.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response, route

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from litestar.handlers import HTTPRouteHandler

__all__ = ["options_handlers"]


def _answer(allow: str) -> Callable[[], Response[None]]:
    def options() -> Response[None]:
        return Response(None, status_code=204, headers={"Allow": allow}, media_type=MediaType.TEXT)

    return options


def options_handlers(handlers: Sequence[Any]) -> list[HTTPRouteHandler]:
    """An `OPTIONS` handler for each path that more than one of `handlers` serves."""
    methods: defaultdict[str, set[str]] = defaultdict(set)
    count: defaultdict[str, int] = defaultdict(int)
    for handler in handlers:
        for path in handler.paths:
            methods[path] |= set(handler.http_methods)
            count[path] += 1
    return [
        route(
            path, http_method=["OPTIONS"], include_in_schema=False, sync_to_thread=False, name=f"chat-options:{path}"
        )(_answer(", ".join(sorted(methods[path] | {"OPTIONS"}))))
        for path in methods
        if count[path] > 1 and "OPTIONS" not in methods[path]
    ]
