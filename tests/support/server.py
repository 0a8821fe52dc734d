"""Real server processes for end-to-end tests: `python -m app` under uvicorn on 127.0.0.1.

`ServerProcess` starts one instance with the given environment, waits for `/healthz`, and stops it
(SIGTERM, or SIGKILL for crash tests). Tests use several to model replicas sharing one Redis.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

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


class ServerProcess:
    def __init__(self, env: dict[str, str] | None = None, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_"))}
        base.pop("REDIS_URL", None)
        self.env = {
            **base,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "CHAT_AUTH_TOKENS": f"{TOKEN}:alice:premium,{OTHER_TOKEN}:bob:premium",
            "CHAT_RATE_IP_PER_MINUTE": "100000",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.argv: list[str] = []
        """Command-line arguments of `python -m app`."""
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = ROOT / ".pytest_cache" / f"server-{self.port}.log"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", *self.argv], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
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

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
