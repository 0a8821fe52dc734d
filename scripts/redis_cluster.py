"""A local Redis Cluster of N masters (no replicas), each `redis-server --cluster-enabled yes` on its own port
with its own directory, joined with `redis-cli --cluster create`:

    .venv/bin/python -m scripts.redis_cluster                       # 7101-7103, until Ctrl-C
    .venv/bin/python -m scripts.redis_cluster --ports 7201,7202,7203 --dir /tmp/rc
    make redis-cluster                                              # the same, REDIS_CLUSTER_PORTS=...

It prints the URL the servers take (`REDIS_URL=redis+cluster://127.0.0.1:7101`) and the nodes' pids, and
stops the nodes on Ctrl-C or SIGTERM. `scripts/cluster.py --redis-cluster`, the tests' CI setup and the
benchmarks start their clusters with `start` below.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def node_argv(server: str, port: int, directory: Path, *, aof: bool = False) -> list[str]:
    """The `redis-server` command line of one cluster node (its state, `nodes.conf`, in `directory`)."""
    return [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "5000",
        "--dir",
        str(directory),
        "--save",
        "",
        "--appendonly",
        "yes" if aof else "no",
    ]


def _spawn(argv: list[str], directory: Path) -> subprocess.Popen[bytes]:
    with (directory / "redis.log").open("ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - our own argv


def start(
    ports: list[int],
    base: Path,
    *,
    spawn: Callable[[list[str], Path], subprocess.Popen[bytes]] = _spawn,
    aof: bool = False,
    timeout: float = 20.0,
) -> list[subprocess.Popen[bytes]]:
    """Start one node per port (directory `base/<port>`), join them, wait for `cluster_state:ok`.

    Raises:
        RuntimeError: redis-server or redis-cli is missing, a node did not start, or the cluster never got ok.
            The nodes already started are stopped first.
    """
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        raise RuntimeError("redis-server and redis-cli are needed (apt-get install redis-server)")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            directory = base / str(port)
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "nodes.conf").unlink(missing_ok=True)  # a fresh cluster every time
            procs.append(spawn(node_argv(server, port, directory, aof=aof), directory))
        deadline = time.monotonic() + timeout
        for port, proc in zip(ports, procs, strict=True):
            while _cli(cli, port, "ping") != "PONG":
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on {port} did not start (see {base / str(port)}/redis.log)")
                time.sleep(0.05)
        nodes = [f"127.0.0.1:{port}" for port in ports]
        create = [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run(create, check=True, capture_output=True, timeout=timeout)  # noqa: S603 - our own argv
        for port in ports:
            while "cluster_state:ok" not in _cli(cli, port, "cluster", "info"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster on {ports} never reported cluster_state:ok")
                time.sleep(0.1)
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs: list[subprocess.Popen[bytes]], timeout: float = 10.0) -> None:
    """Stop the nodes (SIGTERM, then SIGKILL after `timeout`)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def url(ports: list[int]) -> str:
    """The `REDIS_URL` of the cluster for a server (any node will do; the client learns the others)."""
    return f"redis+cluster://127.0.0.1:{ports[0]}"


def _cli(cli: str, port: int, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own argv
        [cli, "-p", str(port), *args], capture_output=True, text=True, timeout=5, check=False
    )
    return done.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ports", default="7101,7102,7103", help="comma-separated node ports, default 7101-7103")
    parser.add_argument("--dir", type=Path, default=None, help="node directories (default: a temporary one)")
    args = parser.parse_args(argv)
    ports = [int(p) for p in args.ports.split(",") if p.strip()]
    if len(ports) < 3 or len(set(ports)) != len(ports):
        parser.error("a Redis Cluster needs at least 3 distinct master ports")
    with contextlib.ExitStack() as stack:
        base = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-cluster-")))
        try:
            procs = start(ports, base)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"REDIS_URL={url(ports)}", flush=True)
        for port, proc in zip(ports, procs, strict=True):
            print(f"node 127.0.0.1:{port}  pid {proc.pid}  (dir {base / str(port)})", flush=True)
        stopping = False

        def on_signal(_signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            while not stopping and all(proc.poll() is None for proc in procs):
                time.sleep(0.2)
        finally:
            stop(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
