"""Run the docker-compose topology as local processes: one redis-server and N `python -m app` instances.

    make cluster                                                 # redis 6390, instances on 8001-8003
    make cluster CLUSTER_PORTS=9001,9002 REDIS_PORT=6397
    .venv/bin/python scripts/cluster.py --redis-port 6391 --ports 9001,9002

No load balancer: point clients at any instance (they share everything through Redis), e.g. start a chat
on 8001 and resume it on 8002. Failover: kill one instance by the pid printed at start (`kill -9 <pid>`);
the others keep serving, and this script reports the exit and keeps them running. It stops the whole
cluster (instances first, so they store what they hold, then Redis) on Ctrl-C or SIGTERM, when
redis-server exits, or when no instance is left. Logs and the Redis data directory go to `.cluster/`.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import FrameType

ROOT = Path(__file__).resolve().parent.parent

EPILOG = """\
environment (the options win):
  CLUSTER_PORTS        instance ports, as --ports (make: CLUSTER_PORTS=...)
  CLUSTER_REDIS_PORT   redis-server port, as --redis-port (make: REDIS_PORT=...)
  CLUSTER_DIR          logs and Redis data, as --dir
Every other variable (CHAT_*, provider keys) is passed on to the instances.
"""


class Stop(Exception):
    """Raised by the first SIGTERM/SIGINT: unwinds to the one place that stops the cluster."""


class Cluster:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.redis: subprocess.Popen[bytes] | None = None
        self.instances: dict[int, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def spawn(self, argv: list[str], log_name: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.state / log_name).open("ab") as log:
            # A session of its own: Ctrl-C in the terminal reaches this script only, which stops the
            # instances before Redis (a terminal's SIGINT to the whole group would stop Redis first).
            return subprocess.Popen(  # noqa: S603 - our own argv
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # safe: this script runs no threads
            )

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            raise Stop
        # A second signal while stopping: no more waiting.
        for proc in self._all():
            if proc.poll() is None:
                proc.kill()

    def _all(self) -> list[subprocess.Popen[bytes]]:
        return [*self.instances.values(), *([self.redis] if self.redis else [])]

    def stop(self) -> None:
        """Instances first (SIGTERM: they drain and write their final frames), then Redis; SIGKILL after a wait."""
        self.stopping = True
        grace = float(os.environ.get("CHAT_SHUTDOWN_GRACE_SECONDS") or 30) + 15
        _terminate(list(self.instances.values()), grace)
        if self.redis is not None:
            _terminate([self.redis], 10)

    def supervise(self) -> int:
        """Until Redis exits or no instance is left; an instance that exits is reported, the others go on."""
        assert self.redis is not None
        while True:
            code = self.redis.poll()
            if code is not None:
                print(f"redis-server exited with code {code}; stopping the cluster", file=sys.stderr, flush=True)
                return 1
            for port, proc in list(self.instances.items()):
                code = proc.poll()
                if code is not None:
                    del self.instances[port]
                    left = ", ".join(map(str, self.instances)) or "none"
                    print(
                        f"instance on {port} (pid {proc.pid}) exited with code {code}; still serving: {left}",
                        file=sys.stderr,
                        flush=True,
                    )
            if not self.instances:
                print("no instance left; stopping the cluster", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when this script dies, even by SIGKILL (Linux), so a killed
    script leaves no cluster behind (its own session keeps the terminal's signals from reaching it)."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _terminate(procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


def wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        description="redis-server + N chat instances on 127.0.0.1 (failover: kill one, the others keep serving)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--redis-port", type=int, default=int(env.get("CLUSTER_REDIS_PORT") or 6390), help="default 6390"
    )
    parser.add_argument(
        "--ports",
        default=env.get("CLUSTER_PORTS") or "8001,8002,8003",
        help="comma-separated instance ports, default 8001,8002,8003",
    )
    parser.add_argument(
        "--dir", type=Path, default=Path(env.get("CLUSTER_DIR") or ROOT / ".cluster"), help="default .cluster/"
    )
    parser.add_argument("--aof", action="store_true", help="enable Redis AOF persistence (as docker-compose)")
    args = parser.parse_args(argv)
    try:
        args.ports = [int(p) for p in args.ports.split(",") if p.strip()]
    except ValueError:
        parser.error(f"--ports must be comma-separated port numbers, got {args.ports!r}")
    every = [args.redis_port, *args.ports]
    if not args.ports or len(set(every)) != len(every) or not all(0 < p < 65536 for p in every):
        parser.error(f"need distinct ports from 1 to 65535, got redis {args.redis_port} and instances {args.ports}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = shutil.which("redis-server")
    if server is None:
        print("error: redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    busy = [p for p in (args.redis_port, *args.ports) if not port_free(p)]
    if busy:
        print(f"error: port {busy[0]} on 127.0.0.1 is already in use", file=sys.stderr)
        return 2
    args.dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(args.dir)
    signal.signal(signal.SIGTERM, cluster.on_signal)
    signal.signal(signal.SIGINT, cluster.on_signal)
    try:
        redis_args = [server, "--port", str(args.redis_port), "--bind", "127.0.0.1", "--dir", str(args.dir)]
        redis_args += ["--save", "", "--appendonly", "yes" if args.aof else "no"]
        cluster.redis = cluster.spawn(redis_args, "redis.log")
        if not wait_port(args.redis_port, cluster.redis, 5):
            print(f"redis-server did not start on {args.redis_port} (see {args.dir}/redis.log)", file=sys.stderr)
            return 1
        redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
        for port in args.ports:
            env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "REDIS_URL": redis_url}
            cluster.instances[port] = cluster.spawn([sys.executable, "-m", "app"], f"app-{port}.log", env)
        for port, proc in cluster.instances.items():
            if not wait_healthy(port, proc, 30):
                print(f"instance on {port} is not healthy (see {args.dir}/app-{port}.log)", file=sys.stderr)
                return 1
        print(f"redis: {redis_url}  pid {cluster.redis.pid}", flush=True)
        for port, proc in cluster.instances.items():
            print(f"instance: http://127.0.0.1:{port}  pid {proc.pid}  (log {args.dir}/app-{port}.log)", flush=True)
        print("kill an instance's pid to see failover; Ctrl-C stops everything", flush=True)
        return cluster.supervise()
    except Stop:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
