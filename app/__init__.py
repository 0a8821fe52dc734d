"""An embeddable chat-streaming micro-server: LLM answers as resumable Server-Sent Events."""

from __future__ import annotations

from app.factory import ChatPlugin, create_app
from app.settings import Settings

__all__ = ["ChatPlugin", "Settings", "__version__", "create_app"]

__version__ = "0.1.0"
