"""Server-Sent Events framing: bytes only, no I/O.

A frame is `id: <cursor>\\ndata: <json>\\n\\n`. The cursor is the buffer's cursor for that frame, so a client's
`Last-Event-ID` (or `?cursor=`) resumes right after it.
"""

from __future__ import annotations

__all__ = ["DONE", "PING", "UI_STREAM_HEADERS", "frame", "frame_data", "valid_cursor"]

PING = b": ping\n\n"
DONE = b"data: [DONE]\n\n"

# The AI SDK's UI_MESSAGE_STREAM_HEADERS (protocol.md) without `connection: keep-alive`: a hop-by-hop header
# that the server manages itself, and that PEP 3333 forbids a WSGI app to send (waitress answers 500).
UI_STREAM_HEADERS = {
    "cache-control": "no-cache",
    "x-vercel-ai-ui-message-stream": "v1",
    "x-accel-buffering": "no",
}

_MAX_CURSOR = 64


def frame(cursor: str, data: bytes) -> bytes:
    """One SSE event carrying `data` (a single-line JSON document) with `id: cursor`."""
    return b"".join((b"id: ", cursor.encode(), b"\ndata: ", data, b"\n\n"))


def frame_data(data: bytes) -> bytes:
    """One SSE event without an id (terminal frames that are not in the buffer)."""
    return b"".join((b"data: ", data, b"\n\n"))


def valid_cursor(value: str) -> bool:
    """Cursors are short and made of digits, `-` and `.`; anything else is a client error."""
    return 0 < len(value) <= _MAX_CURSOR and all(c.isdigit() or c in "-." for c in value)
