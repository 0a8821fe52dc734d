"""A TCP proxy on 127.0.0.1 that drops connections mid-stream, for the client's resume tests.

`DroppingProxy(target_port, cuts=10, after=lambda n: 1200 + 173 * n)` forwards every connection to the target;
the first `cuts` connections are reset (RST, no FIN) once `after(n)` bytes of the server's answer have gone
through connection `n` (0-based), wherever that falls: inside the headers, a chunk, an SSE frame. It runs
on its own event loop in a thread, so sync and async tests can use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from collections.abc import Callable


class DroppingProxy:
    def __init__(self, target_port: int, *, cuts: int, after: Callable[[int], int]) -> None:
        self.target_port = target_port
        self.cuts = cuts
        self.after = after
        self.connections = 0
        """Connections accepted so far."""
        self.dropped = 0
        """Connections reset so far."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dropping-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for writer in self._writers:
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._server is not None:
                await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        limit = self.after(index) if index < self.cuts else None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, upstream_writer}
        cut = asyncio.Event()

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, budget: int | None) -> None:
            sent = 0
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while not cut.is_set():
                    data = await reader.read(65536)
                    if not data:
                        break
                    if budget is not None and sent + len(data) >= budget:
                        writer.write(data[: budget - sent])
                        await writer.drain()
                        cut.set()
                        break
                    sent += len(data)
                    writer.write(data)
                    await writer.drain()
            if cut.is_set():
                return
            with contextlib.suppress(OSError):
                writer.write_eof()

        to_client = asyncio.ensure_future(pump(upstream_reader, client_writer, limit))
        to_server = asyncio.ensure_future(pump(client_reader, upstream_writer, None))
        try:
            await asyncio.wait([to_client, to_server], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            to_client.cancel()
            to_server.cancel()
            return
        if cut.is_set():
            self.dropped += 1
            _reset(client_writer)
            _reset(upstream_writer)
            to_server.cancel()
            to_client.cancel()
            return
        with contextlib.suppress(asyncio.CancelledError):  # the proxy stops: its connections are aborted
            await asyncio.gather(to_client, to_server, return_exceptions=True)
        client_writer.close()
        upstream_writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset: the peer sees the connection break, not end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()
