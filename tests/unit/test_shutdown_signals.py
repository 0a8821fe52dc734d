"""The SIGTERM hook: the drain starts on the signal, and the server's own handler sees the signal only after it.

Each test puts a recording handler in place of the server's (uvicorn installs its own the same way, with
`signal.signal`, before the lifespan starts) and restores whatever was there before.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import TYPE_CHECKING

import pytest

from chatstream.shutdown import drain_on_signals

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from types import FrameType


@pytest.fixture
def server_handler() -> Iterator[list[int]]:
    """A stand-in for uvicorn's `handle_exit`: records the signals it receives."""
    received: list[int] = []

    def handle_exit(sig: int, frame: FrameType | None) -> None:
        received.append(sig)

    before = {sig: signal.signal(sig, handle_exit) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_the_signal_reaches_the_server_only_once_the_drain_is_done(server_handler: list[int]) -> None:
    release = asyncio.Event()
    drained: list[str] = []

    async def drain() -> None:
        drained.append("started")
        await release.wait()
        drained.append("done")

    uninstall = drain_on_signals(drain, lambda: None)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: drained == ["started"])
        await asyncio.sleep(0.1)
        assert server_handler == []  # still serving while runs finish
        release.set()
        await until(lambda: server_handler == [signal.SIGTERM])
        assert drained == ["started", "done"]
    finally:
        uninstall()
    handler = signal.getsignal(signal.SIGTERM)
    assert callable(handler) and getattr(handler, "__name__", "") == "handle_exit"  # the server's, back


async def test_a_second_signal_hurries_the_drain_and_passes_on_at_once(server_handler: list[int]) -> None:
    release = asyncio.Event()
    hurried: list[bool] = []

    async def drain() -> None:
        await release.wait()

    def hurry() -> None:
        hurried.append(True)
        release.set()

    uninstall = drain_on_signals(drain, hurry)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.1)
        assert server_handler == []
        os.kill(os.getpid(), signal.SIGINT)
        await until(lambda: hurried == [True] and server_handler == [signal.SIGINT])
        await asyncio.sleep(0.1)
        assert server_handler == [signal.SIGINT]  # the drain ending does not pass the same signal on again
    finally:
        uninstall()


async def test_two_apps_drain_together_not_one_after_the_other(server_handler: list[int]) -> None:
    release = asyncio.Event()
    started: list[str] = []

    def drain_of(name: str) -> Callable[[], Awaitable[None]]:
        async def drain() -> None:
            started.append(name)
            await release.wait()

        return drain

    first = drain_on_signals(drain_of("a"), lambda: None)
    second = drain_on_signals(drain_of("b"), lambda: None)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await until(lambda: sorted(started) == ["a", "b"])
        assert server_handler == []
        release.set()
        await until(lambda: server_handler == [signal.SIGTERM])
    finally:
        second()
        first()
