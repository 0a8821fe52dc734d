"""Real server processes for end-to-end tests on 127.0.0.1.

`ServerProcess` starts one instance of the standalone server (`python -m app` under uvicorn) with the given
environment, waits for `/healthz`, and stops it (SIGTERM, or SIGKILL for crash tests). Tests use several to
model replicas sharing one Redis. `Process` does the same for any command in any directory (the example
hosts under `examples/`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Self

import httpx

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-token"
OTHER_TOKEN = "other-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_environ() -> dict[str, str]:
    """This process's environment without chat, provider, Redis or database configuration (nothing leaks in)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_"))}
    base.pop("REDIS_URL", None)
    base.pop("DATABASE_URL", None)
    return base


class Process:
    """`command` run in `cwd` with exactly `env`, serving HTTP on 127.0.0.1:`port`; started once `ready_path`
    answers 200. `{port}` in an argument of `command` becomes the port. Its output goes to `log`."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path = ROOT,
        port: int | None = None,
        ready_path: str = "/healthz",
        name: str = "server",
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [arg.replace("{port}", str(self.port)) for arg in command]
        self.env = dict(env)
        self.cwd = cwd
        self.ready_path = ready_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = ROOT / ".pytest_cache" / f"{name}-{self.port}.log"

    def _argv(self) -> list[str]:
        return self.command

    def start(self, timeout: float = 60.0) -> Self:
        return self.launch().wait_ready(timeout)

    def launch(self) -> Self:
        """Start the process without waiting for it (`wait_ready` waits): several start side by side."""
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self._argv(), env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 60.0) -> Self:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()  # never leave a half-started server behind
        raise RuntimeError(f"server did not start:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ServerProcess(Process):
    """The standalone server, `python -m app` from the repository root, with alice's and bob's tokens.

    Its store is memory unless `env` names one (DATABASE_URL, or REDIS_URL alone for Redis): the standalone
    default, SQLite in `./chatstream.db`, would leave a database file in the checkout.
    """

    def __init__(self, env: dict[str, str] | None = None, *, port: int | None = None) -> None:
        super().__init__([sys.executable, "-m", "app"], env={}, cwd=ROOT, port=port)
        self.env = {
            **clean_environ(),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "CHAT_AUTH_TOKENS": f"{TOKEN}:alice:premium,{OTHER_TOKEN}:bob:premium",
            "CHAT_RATE_IP_PER_MINUTE": "100000",
            # A test that leaves a run going at teardown should not wait out the production grace (30 s).
            "CHAT_SHUTDOWN_GRACE_SECONDS": "2",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        if "DATABASE_URL" not in self.env and "REDIS_URL" not in self.env:
            self.env["DATABASE_URL"] = "memory://"
        self.argv: list[str] = []
        """Command-line arguments of `python -m app`."""

    def _argv(self) -> list[str]:
        return [*self.command, *self.argv]
