"""The playground: a chat page at `/` for someone who just ran `make run` (the standalone server only).

`static/` holds the page, its stylesheet and `app.js`, the bundle of `src/main.jsx` (React and the AI SDK's
`useChat`, pinned by `package-lock.json`) that `make playground` builds with esbuild. Everything is served from
here: the page loads nothing from elsewhere. It talks to our routes on the same origin with the demo token
(or `?token=`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from litestar import MediaType, Response, get
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar import Litestar

__all__ = ["STATIC", "add_playground"]

STATIC = Path(__file__).parent / "static"


@get("/", media_type=MediaType.HTML, include_in_schema=False, name="playground", sync_to_thread=False)
def playground_page() -> Response[bytes]:
    return Response(
        (STATIC / "index.html").read_bytes(), media_type=MediaType.HTML, headers={"cache-control": "no-cache"}
    )


def add_playground(app: Litestar) -> None:
    """Serve the page at `/` and its files under `/playground/`."""
    app.register(playground_page)
    app.register(
        create_static_files_router(
            path="/playground", directories=[STATIC], include_in_schema=False, name="playground-static"
        )
    )
