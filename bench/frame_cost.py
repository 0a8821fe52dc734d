"""Server CPU per relayed frame (issue 13's "≤ 8 µs memory / ≤ 10 µs Redis"), paced and in bursts.

    .venv/bin/python -m bench.frame_cost                                   # memory and Redis, paced and burst
    .venv/bin/python -m bench.frame_cost --config memory --mode paced --rounds 5
    .venv/bin/python -m bench.frame_cost --root /tmp/base-frame            # also a baseline checkout, alternately

One server process (`python -m app`, provider `ollama` pointed at the fake upstream, `tests/fakes/upstream.py`)
and the load client (`bench/load.py`) as its own process. `paced`: the upstream writes one token every 20 ms
(as a model does); `burst`: it writes them all at once. Each round runs `--streams` streams of `--tokens`
tokens at once (paced: 100 of 50, burst: 20 of 500), then as many 1-token streams; the figure is the server's
CPU (user + system from /proc/<pid>/stat) per long stream minus a short one's, over the extra frames: the
marginal cost of one relayed token frame, run start-up excluded (`gross` divides all of it by the frames).
With `--root`, servers from that checkout (a `git worktree` of the baseline) are measured in the same rounds,
alternately, and medians of both are printed side by side. `FRAME_COST_WRAP=script.py` runs the servers
through a wrapper script in place of `-m app` (profiling).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.processes import cpu_seconds
from bench.relay import AUTH, ROOT, chat_body, load, server_env, start_redis
from tests.fakes.upstream import FakeUpstream
from tests.support.server import ServerProcess

if TYPE_CHECKING:
    from collections.abc import Iterator


def _server(root: Path, env: dict[str, str]) -> ServerProcess:
    server = ServerProcess(env)
    server.cwd = root
    server.env["PYTHONPATH"] = str(root)
    if os.environ.get("FRAME_COST_WRAP"):  # profiling experiments: a wrapper script in place of `-m app`
        server.command = [sys.executable, os.environ["FRAME_COST_WRAP"]]
    return server


def _cpu_per_stream(server: ServerProcess, tokens: int, streams: int) -> float:
    assert server.proc is not None
    before = cpu_seconds(server.proc.pid)
    result = load(
        f"{server.url}/api/chat",
        chat_body(f"bench-tokens-{tokens}"),
        concurrency=streams,
        requests=streams,
        headers=[AUTH],
    )
    assert result["token_frames"] == tokens * streams, result
    return (cpu_seconds(server.proc.pid) - before) / streams


def _rounds(roots: list[Path], config: str, mode: str, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    streams = args.streams or (100 if mode == "paced" else 20)
    tokens = args.tokens or (50 if mode == "paced" else 500)
    redis_proc, redis_url = start_redis() if config == "redis" else (None, None)
    try:
        with FakeUpstream.start(delay_ms=20 if mode == "paced" else 0) as upstream:
            ns = upstream.namespace()
            servers = [_server(root, server_env(upstream, ns, redis_url)).start() for root in roots]
            try:
                for server in servers:  # warm up: imports, the provider's connection pool
                    _cpu_per_stream(server, tokens, min(streams, 20))
                for n in range(args.rounds):
                    for root, server in zip(roots, servers, strict=True):
                        load_avg = os.getloadavg()[0]
                        long = _cpu_per_stream(server, tokens, streams)
                        short = _cpu_per_stream(server, 1, streams)
                        yield {
                            "root": str(root),
                            "config": config,
                            "mode": mode,
                            "round": n,
                            "streams": streams,
                            "tokens": tokens,
                            "cpu_ms_per_stream": round(long * 1000, 3),
                            "cpu_ms_per_1_token_stream": round(short * 1000, 3),
                            "gross_us_per_frame": round(long / tokens * 1e6, 2),
                            "marginal_us_per_frame": round((long - short) / (tokens - 1) * 1e6, 2),
                            "load_avg_1m": round(load_avg, 2),
                        }
                        time.sleep(0.2)
            finally:
                for server in servers:
                    server.stop()
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", default="memory,redis", help="comma-separated, of memory, redis")
    parser.add_argument("--mode", default="paced,burst", help="comma-separated, of paced, burst")
    parser.add_argument("--streams", type=int, help="streams at once (default: 100 paced, 20 burst)")
    parser.add_argument("--tokens", type=int, help="tokens per stream (default: 50 paced, 500 burst)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", action="append", default=[], help="another checkout to measure alternately")
    args = parser.parse_args()
    roots = [ROOT, *(Path(r).resolve() for r in args.root)]
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    for config in args.config.split(","):
        for mode in args.mode.split(","):
            rows: dict[str, list[dict[str, Any]]] = {}
            for row in _rounds(roots, config, mode, args):
                print(json.dumps(row), flush=True)
                rows.setdefault(row["root"], []).append(row)
            summary = {
                root: {
                    key: statistics.median(r[key] for r in rs)
                    for key in ("marginal_us_per_frame", "gross_us_per_frame", "cpu_ms_per_stream")
                }
                for root, rs in rows.items()
            }
            print(json.dumps({"config": config, "mode": mode, "median": summary}), flush=True)


if __name__ == "__main__":
    main()
