"""Draining on SIGTERM: the signal starts the drain at once, and reaches the server only once it is done.

uvicorn, on SIGTERM, stops listening, waits up to `timeout_graceful_shutdown` for open connections, cancels
them, and only then runs the lifespan shutdown: a drain started there would come after every reader was cut
off. So the drain has to start on the signal itself. `drain_on_signals` puts a handler in front of the one
installed when the app started (uvicorn's `Server.handle_exit`, installed with `signal.signal` before the
lifespan starts): it starts every registered drain, keeps the server serving meanwhile (sends get 503,
`/readyz` says unavailable, so a load balancer moves traffic away), and passes the signal on to the
previous handler once the drains are done, so the server then shuts down as usual with nothing left to
wait for but the last frames. A second signal stops the runs at once and passes itself on right away.

Signals can only be handled in the main thread; elsewhere (a WSGI adapter's worker thread, a server that
runs the app in a thread) nothing is installed and the host calls `ChatPlugin.drain()` on its own signal,
before its server stops serving. A server that handles signals with `loop.add_signal_handler` (Hypercorn,
for one) still sees the signal at once, through asyncio's wakeup fd: the drain runs alongside its own
graceful shutdown, so give that shutdown `CHAT_SHUTDOWN_GRACE_SECONDS` plus a margin.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from types import FrameType
    from typing import TypeAlias

    Drain: TypeAlias = tuple[Callable[[], Awaitable[None]], Callable[[], None]]
    """`(drain, hurry)`: a coroutine function that drains one app, and what cuts its grace short."""

__all__ = ["SIGNALS", "drain_on_signals"]

log = logging.getLogger("chatstream")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_keys = itertools.count()


class _SignalHook:
    """The one handler per process: several apps (two plugins, two mounts) drain together, not in turn."""

    def __init__(self) -> None:
        self.drains: dict[int, Drain] = {}
        self.previous: dict[int, Any] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.forwarded = False

    def handle(self, sig: int, frame: FrameType | None) -> None:
        # Runs between two bytecodes of whatever the main thread was doing (the event loop itself): do
        # nothing here but hand the signal to the loop.
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.on_signal, sig)

    def on_signal(self, sig: int) -> None:
        if self.task is None:
            name = signal.Signals(sig).name
            log.info("%s: draining before shutdown (no new runs; running ones may finish)", name)
            assert self.loop is not None
            self.task = self.loop.create_task(self._drain_then_forward(sig), name="chatstream-drain")
            return
        # A second signal: the operator will not wait. Stop the runs now and let the server go (a third
        # reaches the server again: uvicorn force-quits on a second SIGINT).
        for _, hurry in list(self.drains.values()):
            hurry()
        self.forward(sig)

    async def _drain_then_forward(self, sig: int) -> None:
        try:
            results = await asyncio.gather(
                *(drain() for drain, _ in list(self.drains.values())), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    log.error("drain failed", exc_info=result)
        finally:
            if not self.forwarded:  # a second signal may have passed itself on already
                log.info("drained; shutting down")
                self.forward(sig)

    def forward(self, sig: int) -> None:
        """What would have happened without us: the previous handler, or the default action."""
        self.forwarded = True
        previous = self.previous.get(sig, signal.SIG_DFL)
        if callable(previous):
            previous(sig, None)
        elif previous == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)
        # SIG_IGN (or a handler not installed from Python): nothing to pass on.

    def add(self, key: int, drain: Drain) -> None:
        if not self.drains:
            self.loop = asyncio.get_running_loop()
            self.task = None
            self.forwarded = False
            self.previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
            for sig in SIGNALS:
                signal.signal(sig, self.handle)
        self.drains[key] = drain

    def remove(self, key: int) -> None:
        if self.drains.pop(key, None) is None or self.drains:
            return
        for sig in SIGNALS:
            # Only our own handler is put back: whatever replaced it since (the server restoring its
            # originals on exit) stays.
            if signal.getsignal(sig) == self.handle:
                signal.signal(sig, self.previous.get(sig, signal.SIG_DFL))
        self.previous = {}
        self.loop = None


_hook = _SignalHook()


def drain_on_signals(drain: Callable[[], Awaitable[None]], hurry: Callable[[], None]) -> Callable[[], None]:
    """Run `drain()` on SIGTERM or SIGINT before the previous handler sees the signal; `hurry()` on a second.

    Returns the function that removes it again. Outside the main thread nothing is installed (Python
    delivers signals to the main thread only) and the returned function does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        log.info("not in the main thread: no signal handler; call ChatPlugin.drain() on shutdown")
        return lambda: None
    key = next(_keys)
    _hook.add(key, (drain, hurry))
    return lambda: _hook.remove(key)
