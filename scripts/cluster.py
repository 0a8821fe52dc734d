"""Run the docker-compose topology as local processes: one redis-server and N `python -m app` instances.

    .venv/bin/python scripts/cluster.py                          # redis 6390, instances on 8001-8003
    .venv/bin/python scripts/cluster.py --redis-port 6391 --ports 9001,9002

No load balancer: point clients at any instance (they share everything through Redis), e.g. start a chat
on 8001 and resume it on 8002. Logs and the Redis data directory go to `.cluster/`. Ctrl-C (or SIGTERM)
stops every process this script started.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".cluster"


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def wait_healthy(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description="redis-server + N chat instances on 127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6390)
    parser.add_argument("--ports", default="8001,8002,8003", help="comma-separated instance ports")
    parser.add_argument("--aof", action="store_true", help="enable Redis AOF persistence (as docker-compose)")
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",") if p]

    server = shutil.which("redis-server")
    if server is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 1
    STATE.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    redis_args = [server, "--port", str(args.redis_port), "--bind", "127.0.0.1", "--dir", str(STATE), "--save", ""]
    redis_args += ["--appendonly", "yes" if args.aof else "no"]
    redis_log = (STATE / "redis.log").open("ab")
    procs.append(subprocess.Popen(redis_args, stdout=redis_log, stderr=subprocess.STDOUT))  # noqa: S603 - our own argv
    if not wait_port(args.redis_port, 5):
        print(f"redis-server did not start on {args.redis_port} (see .cluster/redis.log)", file=sys.stderr)
        stop()
    redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
    for port in ports:
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": redis_url}
        log = (STATE / f"app-{port}.log").open("ab")
        procs.append(
            subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    try:
        for port in ports:
            if not wait_healthy(port, 20):
                print(f"instance on {port} is not healthy (see .cluster/app-{port}.log)", file=sys.stderr)
                stop()
        print(f"redis: {redis_url}", flush=True)
        for port in ports:
            print(f"instance: http://127.0.0.1:{port}  (log .cluster/app-{port}.log)", flush=True)
        print("Ctrl-C stops everything", flush=True)
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        print("a process exited; stopping the cluster", file=sys.stderr)
        stop()
    except KeyboardInterrupt:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
