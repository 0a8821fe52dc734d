"""Incremental decoder for upstream Server-Sent Events (the WHATWG event-stream format), bytes in, events out.

The adapters read the upstream body as raw bytes (through the SDK's streaming-response API) and decode each
event's `data` straight into msgspec Structs; building SDK model objects per chunk costs far more (see
`bench/README.md`). This decoder is the only place that knows SSE framing.
"""

from __future__ import annotations

__all__ = ["SSEDecoder", "SSEEvent"]

SSEEvent = tuple[str, bytes]
"""`(event name, data)`; the name is `"message"` when the event has no `event:` line."""


class SSEDecoder:
    """Feed body chunks in any split; get back the events they complete, in order."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A `\r\n` may be split across chunks: keep a trailing `\r` until we see what follows it.
            tail = b"\r" if buffer.endswith(b"\r") else b""
            if tail:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + tail
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append((self._event or "message", b"\n".join(self._data)))
                    self._data = []
                self._event = ""
                continue
            if line[0] == 0x3A:  # ":" starts a comment (keep-alives such as OpenRouter's `: OPENROUTER PROCESSING`)
                continue
            field, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if field == b"data":
                self._data.append(value)
            elif field == b"event":
                self._event = value.decode("utf-8", "replace")
            # `id:` and `retry:` mean nothing to a one-shot upstream request.
        return events

    @property
    def pending(self) -> bool:
        """True when bytes of an unfinished event are buffered (a body that ends here was cut)."""
        return bool(self._buffer.strip() or self._data)
