"""The standalone server's ASGI app, for any ASGI server: `uvicorn app.main:app --workers 2`.

Each worker process imports this module and builds its own app from the environment.
"""

from __future__ import annotations

import os

from app.server import build_app, configure_logging

configure_logging(os.environ.get("CHAT_LOG_LEVEL", "info"))
app = build_app()
