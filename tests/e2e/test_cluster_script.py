"""`scripts/cluster.py` for real, on free ports: kill one instance and the others keep serving; SIGTERM to
the script leaves none of its processes behind."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.server import ROOT, free_port

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


class Output:
    """The script's stdout and stderr lines, read by a thread so every wait here has a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.streams = [proc.stdout, proc.stderr]
        self.threads = [threading.Thread(target=self._read, args=(s,), daemon=True) for s in self.streams]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        """Once the script has exited: its pipes are at their end, the readers done."""
        for thread in self.threads:
            thread.join(timeout=5)
        for stream in self.streams:
            if stream is not None:
                stream.close()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if match := re.search(pattern, line):
                    return match
            try:
                self.seen.append(self.lines.get(timeout=max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {timeout}s; got {self.seen}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(120)
def test_an_instance_dies_the_others_serve_and_sigterm_stops_everything(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    redis_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_", "REDIS_"))}
    env.update(CHAT_SHUTDOWN_GRACE_SECONDS="2", CLUSTER_DIR=str(tmp_path))
    proc = subprocess.Popen(
        # Ports from the environment, as `make cluster CLUSTER_PORTS=... REDIS_PORT=...` can give them.
        [sys.executable, "scripts/cluster.py"],
        cwd=ROOT,
        env={**env, "CLUSTER_PORTS": ",".join(map(str, ports)), "CLUSTER_REDIS_PORT": str(redis_port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Output(proc)
    pids: dict[int, int] = {}  # port -> pid, Redis's included
    try:
        pids[redis_port] = int(out.wait_for(rf"redis: redis://127\.0\.0\.1:{redis_port}/0\s+pid (\d+)", 60)[1])
        for port in ports:
            pids[port] = int(out.wait_for(rf"instance: http://127\.0\.0\.1:{port}\s+pid (\d+)", 5)[1])
        first, dead, last = ports

        os.kill(pids[dead], signal.SIGKILL)  # an instance dies
        out.wait_for(rf"instance on {dead} \(pid {pids[dead]}\) exited .*still serving: {first}, {last}", 10)

        assert proc.poll() is None  # the script and the other instances go on
        for port in (first, last):
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:  # only if the test failed early: the script stops what it started
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        left = [pid for pid in pids.values() if _alive(pid)]
        for pid in left:  # never leave a process of the cluster running, whatever happened
            os.kill(pid, signal.SIGKILL)
        out.close()
    assert len(pids) == 4
    assert left == []  # SIGTERM to the script stopped every process it had started
    for port in [redis_port, *ports]:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


@pytest.mark.timeout(60)
def test_a_killed_script_takes_its_processes_with_it(tmp_path: Path) -> None:
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_", "REDIS_"))}
    argv = [sys.executable, "scripts/cluster.py", "--ports", str(port), "--redis-port", str(redis_port)]
    proc = subprocess.Popen(
        [*argv, "--dir", str(tmp_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out = Output(proc)
    pids: list[int] = []
    try:
        pids.append(int(out.wait_for(rf"redis: .*:{redis_port}/0\s+pid (\d+)", 45)[1]))
        pids.append(int(out.wait_for(rf"instance: http://127\.0\.0\.1:{port}\s+pid (\d+)", 5)[1]))
        proc.kill()  # no chance to stop anything itself
        proc.wait()
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in pids if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        out.close()
    assert left == []


def _free_block(count: int) -> int:
    """The first of `count` consecutive free ports whose cluster bus ports (+10000) are free too."""
    for first in range(7500, 8000):
        ports = [first + i for i in range(count)]
        if all(_port_free(p) and _port_free(p + 10_000) for p in ports):
            return first
    raise RuntimeError("no free port block")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.timeout(120)
@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")
def test_a_redis_cluster_topology_serves_across_instances_and_stops_whole(tmp_path: Path) -> None:
    """`--redis-cluster` (make cluster REDIS_CLUSTER=1): three masters, the instances on them."""
    ports = [free_port() for _ in range(2)]
    redis_port = _free_block(3)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_", "REDIS_"))}
    env.pop("DATABASE_URL", None)
    env.update(CHAT_SHUTDOWN_GRACE_SECONDS="2", CLUSTER_REDIS_CLUSTER="1")
    argv = [sys.executable, "scripts/cluster.py", "--ports", ",".join(map(str, ports)), "--redis-port", str(redis_port)]
    proc = subprocess.Popen(
        [*argv, "--sqlite", "--dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = Output(proc)
    pids: list[int] = []
    try:
        pids.append(int(out.wait_for(rf"redis: redis\+cluster://127\.0\.0\.1:{redis_port}\s+pid (\d+)", 60)[1]))
        for node in (redis_port + 1, redis_port + 2):
            pids.append(int(out.wait_for(rf"redis node: 127\.0\.0\.1:{node}\s+pid (\d+)", 5)[1]))
        for port in ports:
            pids.append(int(out.wait_for(rf"instance: http://127\.0\.0\.1:{port}\s+pid (\d+)", 5)[1]))
        info = subprocess.run(
            ["redis-cli", "-p", str(redis_port), "cluster", "info"], capture_output=True, text=True, check=True
        ).stdout
        assert "cluster_state:ok" in info and "cluster_size:3" in info
        auth = {"Authorization": "Bearer demo-token"}
        body = {"parts": [{"type": "text", "text": "mock:tokens=3 hi"}]}
        sent = httpx.post(f"http://127.0.0.1:{ports[0]}/api/chat", json=body, headers=auth, timeout=30)
        assert sent.status_code == 200, sent.text
        thread = sent.headers["x-thread-id"]
        listed = httpx.get(
            f"http://127.0.0.1:{ports[1]}/api/chat/messages", params={"conversationId": thread}, headers=auth
        )
        assert [m["role"] for m in listed.json()["messages"]] == ["user", "assistant"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        left = [pid for pid in pids if _alive(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        out.close()
    assert len(pids) == 5
    assert left == []
