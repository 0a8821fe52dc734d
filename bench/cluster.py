"""Two instances on one Redis against two instances on a 3-master Redis Cluster, in the same run: relay
capacity (token frames/s) and run starts per second.

    .venv/bin/python -m bench.cluster                  # both topologies, 2 rounds each (~3 min)
    .venv/bin/python -m bench.cluster --rounds 1 --starts 200

Processes, each its own: the fake OpenAI-compatible upstream (tests/fakes/upstream.py), a private
`redis-server` or a private 3-master cluster (scripts/redis_cluster.py, free ports), two `python -m app`
servers sharing it, and one load client (bench/load.py) per server, both at once. Capacity: 500-token answers,
20 concurrent streams per server. Run starts: 1-token answers, 32 concurrent per server, so a request is
almost all start-up (lease, limits, store, stream create, stop subscription) and its end. Redis figures are
the sum of `INFO commandstats` over every node. Rounds alternate the topologies, so drift in the box's load
hits both alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench.relay import AUTH, commandstats, load, server_env
from scripts import redis_cluster
from tests.fakes.upstream import FakeUpstream
from tests.support.server import ServerProcess, free_port


def port_block(count: int) -> list[int]:
    """`count` consecutive free ports whose cluster bus ports (+10000) are free too."""
    for first in range(7600, 8000):
        ports = [first + i for i in range(count)]
        if all(_free(p) and _free(p + 10_000) for p in ports):
            return ports
    raise RuntimeError("no free port block")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Topology:
    """A private Redis (`single`) or 3-master Redis Cluster (`cluster`): its server URL and node URLs."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.procs: list[subprocess.Popen[bytes]] = []
        self._dir = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
        if kind == "cluster":
            ports = port_block(3)
            self.procs = redis_cluster.start(ports, Path(self._dir.name))
            self.url = redis_cluster.url(ports)
        else:
            ports = [free_port()]
            argv = [shutil.which("redis-server") or "redis-server", "--port", str(ports[0]), "--bind", "127.0.0.1"]
            argv += ["--save", "", "--appendonly", "no"]
            self.procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL)]
            self.url = f"redis://127.0.0.1:{ports[0]}/0"
            for _ in range(100):
                try:
                    redis.Redis(port=ports[0]).ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
        self.nodes = [f"redis://127.0.0.1:{p}/0" for p in ports]

    def stats(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for node in self.nodes:
            for name, calls in commandstats(node).items():
                total[name] = total.get(name, 0) + calls
        return total

    def close(self) -> None:
        redis_cluster.stop(self.procs)
        self._dir.cleanup()


def both(urls: list[str], tokens: int, *, concurrency: int, requests: int) -> dict[str, Any]:
    """One load client per server, at once; the aggregate of the two."""
    body = {"parts": [{"type": "text", "text": "bench"}], "provider": "ollama", "model": f"bench-tokens-{tokens}"}
    results: list[dict[str, Any]] = [{}, {}]

    def run(i: int) -> None:
        results[i] = load(f"{urls[i]}/api/chat", body, concurrency=concurrency, requests=requests, headers=[AUTH])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    frames = sum(r["token_frames"] for r in results)
    streams = sum(r["streams"] for r in results)
    assert frames == tokens * streams == tokens * 2 * requests, results
    return {
        "token_frames_per_s": round(frames / max(r["wall_s"] for r in results)),
        "runs_per_s": round(streams / max(r["wall_s"] for r in results), 1),
        "ttft_p50_ms": round(sum(r["ttft_p50_ms"] for r in results) / 2, 2),
        "wall_s": round(wall, 2),
    }


def round_of(kind: str, upstream: FakeUpstream, starts: int) -> list[dict[str, Any]]:
    topology = Topology(kind)
    rows = []
    try:
        ns = upstream.namespace()
        env = server_env(upstream, ns, topology.url)
        with ServerProcess(env) as a, ServerProcess(env) as b:
            urls = [a.url, b.url]
            both(urls, 50, concurrency=4, requests=20)  # warm: connections, scripts, the slot map
            for scenario, tokens, concurrency, requests in (
                ("capacity", 500, 20, 40),
                ("run-starts", 1, 32, starts),
            ):
                before = topology.stats()
                figures = both(urls, tokens, concurrency=concurrency, requests=requests)
                after = topology.stats()
                delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
                delta.pop("info", None)
                runs = 2 * requests
                scripts = delta.get("evalsha", 0) + delta.get("eval", 0)
                rows.append(
                    {
                        "topology": kind,
                        "scenario": scenario,
                        **figures,
                        "redis_script_calls_per_run": round(scripts / runs, 2),
                        "redis_commands_per_run": round(sum(delta.values()) / runs, 2),
                    }
                )
    finally:
        topology.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--starts", type=int, default=400, help="run-start requests per server")
    parser.add_argument("--topologies", default="single,cluster", help="comma-separated: single, cluster")
    args = parser.parse_args()
    kinds = [k for k in args.topologies.split(",") if k in ("single", "cluster")]
    with FakeUpstream.start(delay_ms=0) as upstream:
        for _ in range(args.rounds):
            for kind in kinds:
                for row in round_of(kind, upstream, args.starts):
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
