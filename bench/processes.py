"""The benchmarks' processes: CPU and memory of a server's process tree from /proc, a private redis-server, and
nginx run as a process in front of several instances (deploy/nginx.conf, the compose topology, on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from tests.support.server import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (uvicorn's worker processes), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children.get(current, [])
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and its live descendants (utime, stime: fields 14 and 15 of /proc/pid/stat)."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / _TICK


def rss_kb(pids: tuple[int, ...]) -> int:
    """Resident memory of the processes `pids` and their descendants."""
    total = 0
    for root in pids:
        for pid in process_tree(root):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
    return total


class RssSampler:
    """Peak resident memory of processes (their trees), sampled from /proc while a scenario runs."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, rss_kb(self.pids))
            self._stop.wait(0.1)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def commandstats(url: str) -> dict[str, int]:
    stats = redis.Redis.from_url(url).info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def nginx_config(ports: list[int], listen: int, workdir: Path) -> str:
    """deploy/nginx.conf (the compose topology's load balancer) pointed at 127.0.0.1 ports, run as a process."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    lines, servers_done = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("server app"):
            if not servers_done:
                indent = line[: len(line) - len(line.lstrip())]
                lines += [f"{indent}server 127.0.0.1:{p} max_fails=2 fail_timeout=5s;" for p in ports]
                servers_done = True
            continue
        if stripped == "listen 8080;":
            line = line.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
        lines.append(line)
    head = [f"pid {workdir}/nginx.pid;", f"error_log {workdir}/error.log warn;"]
    if os.geteuid() == 0:
        head.append("user root;")  # the temp paths below are ours
    out = "\n".join(head + lines) + "\n"
    temp = "".join(
        f"    {kind}_temp_path {workdir}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return out.replace("http {\n", f"http {{\n    access_log {workdir}/access.log;\n{temp}", 1)


@contextlib.contextmanager
def nginx(ports: list[int]) -> Iterator[str]:
    """nginx from the system (`apt-get install nginx`) in front of `ports`; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        workdir = Path(tmp)
        listen = free_port()
        (workdir / "nginx.conf").write_text(nginx_config(ports, listen, workdir))
        proc = subprocess.Popen(
            [binary, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"],
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{listen}"
            for _ in range(100):
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", listen), timeout=0.2).close()
                    break
                time.sleep(0.05)
            yield url
        finally:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
