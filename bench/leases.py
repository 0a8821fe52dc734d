"""Leases under load: how many runs lose their concurrency lease while they run, and what an idle server
costs afterwards.

    .venv/bin/python -m bench.leases                          # 400 streams of 200 tokens at 50 tokens/s
    .venv/bin/python -m bench.leases --streams 300 --tokens 150 --idle 5

Processes, each its own: a private `redis-server`, the paced fake upstream, one `python -m app` (JSON
logs), and the load client (`bench/load.py`), all streams started at once so the server's event loop
saturates. Read from the server's own log, so it measures any version of the tree:

- runs that lost their concurrency lease while running: a "concurrency lease of run X ... lapsed" line
  before X's "run ended" line (the concurrent-runs limit under-counted X from then on);
- lapse lines in total, and during the idle window (renewals that outlived their runs);
- after the load, over `--idle` seconds: the server's CPU and the commands Redis received.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any
from urllib.request import urlopen

from bench.relay import AUTH, commandstats, load, server_env, start_redis
from tests.fakes.upstream import FakeUpstream
from tests.support.server import ServerProcess

_LAPSED = re.compile(r"concurrency lease of run (\S+) had (?:already )?lapsed")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def read_log(path: str) -> list[dict[str, Any]]:
    records = []
    with open(path) as log:
        for line in log:
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return records


def lapses(records: list[dict[str, Any]]) -> tuple[int, int]:
    """(runs that lost their lease before their end, lapse lines)."""
    ended: set[str] = set()
    lost: set[str] = set()
    lines = 0
    for record in records:
        if record.get("msg") == "run ended":
            ended.add(str(record.get("run")))
        elif match := _LAPSED.search(str(record.get("msg", ""))):
            lines += 1
            if match.group(1) not in ended:
                lost.add(match.group(1))
    return len(lost), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--delay-ms", type=int, default=20, help="upstream delay per token")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idleness measured after the load")
    args = parser.parse_args()
    redis_proc, redis_url = start_redis()
    try:
        with FakeUpstream.start(delay_ms=args.delay_ms) as upstream:
            ns = upstream.namespace()
            env = {**server_env(upstream, ns, redis_url), "CHAT_LOG_FORMAT": "json"}
            with ServerProcess(env) as server:
                assert server.proc is not None
                pid = server.proc.pid
                model = f"bench-tokens-{args.tokens}"
                body = {"parts": [{"type": "text", "text": "bench"}], "provider": "ollama", "model": model}
                cpu_before = cpu_seconds(pid)
                started = time.monotonic()
                result = load(
                    f"{server.url}/api/chat", body, concurrency=args.streams, requests=args.streams, headers=[AUTH]
                )
                load_wall = time.monotonic() - started
                load_cpu = cpu_seconds(pid) - cpu_before
                time.sleep(1.0)  # every run's end (release, settle) is done well within this
                lost, lines_after_load = lapses(read_log(str(server.log)))
                stats_before, cpu_idle_before = commandstats(redis_url), cpu_seconds(pid)
                time.sleep(args.idle)
                stats_after, cpu_idle = commandstats(redis_url), cpu_seconds(pid) - cpu_idle_before
                _, lines_total = lapses(read_log(str(server.log)))
                idle_commands = {
                    name: n - stats_before.get(name, 0)
                    for name, n in stats_after.items()
                    if n - stats_before.get(name, 0) > 0 and name != "info"
                }
                metrics = [
                    line
                    for line in server_metrics(server.url)
                    if line.startswith(
                        ("chat_leases_lost_total", "chat_event_loop_lag_seconds_", "chat_lease_renewal_seconds")
                    )
                    and "_bucket" not in line
                ]
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    print(
        json.dumps(
            {
                "streams": args.streams,
                "tokens": args.tokens,
                "token_frames": result["token_frames"],
                "load_wall_s": round(load_wall, 2),
                "load_server_cpu_s": round(load_cpu, 2),
                "total_p50_ms": round(result["total_p50_ms"], 1),
                "runs_that_lost_their_concurrency_lease_while_running": lost,
                "lapse_log_lines_by_end_of_load": lines_after_load,
                "lapse_log_lines_during_idle": lines_total - lines_after_load,
                "idle_seconds": args.idle,
                "idle_server_cpu_fraction": round(cpu_idle / args.idle, 4),
                "idle_redis_commands": idle_commands,
                "metrics": metrics,
            },
            indent=2,
        )
    )


def server_metrics(base: str) -> list[str]:
    """The server's `/metrics` lines."""
    with urlopen(f"{base}/metrics", timeout=10) as response:
        return str(response.read().decode()).splitlines()


if __name__ == "__main__":
    main()
