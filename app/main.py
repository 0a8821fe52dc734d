"""The standalone server's ASGI app, for any ASGI server: `uvicorn app.main:app --workers 2`.

Each worker process imports this module and builds its own app from the environment. Give uvicorn a graceful
timeout above `CHAT_SHUTDOWN_GRACE_SECONDS` (`--timeout-graceful-shutdown 40` for the default 30 s), as
`python -m app` does: its default waits forever for open streams, and a short one cancels them mid-answer
whenever the drain on SIGTERM cannot hold uvicorn back (a second signal).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from typing import TYPE_CHECKING

from app.server import build_app, tune_gc
from chatstream.errors import ConfigError

if TYPE_CHECKING:
    from litestar import Litestar


def _build() -> Litestar:
    try:
        app = build_app()
    except ConfigError as exc:
        # The ASGI server imports this module: a traceback through its importer would bury the one line that
        # says what to fix. Exit status 2, as `python -m app` for the same mistake.
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        supervisor = multiprocessing.parent_process()
        if supervisor is not None and supervisor.pid is not None:
            # A worker of `uvicorn --workers N`: the supervisor would start a new worker for this one, which fails
            # the same way, forever. The configuration is the same for all of them, so the supervisor stops.
            os.kill(supervisor.pid, signal.SIGTERM)
        raise SystemExit(2) from None
    app.on_startup.append(tune_gc)  # a server process of its own: its collector is ours to tune
    return app


app = _build()
