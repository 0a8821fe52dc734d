"""chatstream: an embeddable chat-streaming server, LLM answers as resumable Server-Sent Events."""

from __future__ import annotations

from chatstream._version import __version__
from chatstream.factory import ChatPlugin, create_app
from chatstream.settings import Settings

__all__ = ["ChatPlugin", "Settings", "__version__", "create_app"]
