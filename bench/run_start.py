"""Run start cost (issue 13): server CPU per started run, with the memory backends and with Redis.

    .venv/bin/python -m bench.run_start                          # memory and Redis, 1,000 runs each, 2 rounds
    .venv/bin/python -m bench.run_start --runs 300 --config redis
    .venv/bin/python -m bench.run_start --config redis-2-workers  # `python -m app --workers 2`

Many short runs (one token each) against the fake upstream that answers at once, 4 at a time, through the
server. The figure is the server's CPU time (user + system from /proc, worker processes included) over the
measured runs divided by their number: everything a run costs the server, from accepting the connection
through routing, auth, admission, the store and buffer writes, the provider request and the run's few frames,
to storing the answer. The server's idle CPU (heartbeats, the lag sampler) over a second is reported beside
it, not subtracted. The load client, the fake upstream and Redis are other processes, not counted.
Also the `run-start` row of `bench.relay`. 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.relay import CONFIGS, ROOT, chatstream, direct, measure, start_redis
from tests.fakes.upstream import FakeUpstream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", default="memory,redis", help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    for config in args.config.split(","):
        redis_proc, redis_url = start_redis() if config.startswith("redis") else (None, None)
        try:
            with FakeUpstream.start(delay_ms=0) as upstream:
                ns = upstream.namespace()
                with chatstream(config, upstream, ns, redis_url) as target:
                    idle_before = target.cpu()
                    time.sleep(1.0)
                    idle_ms = (target.cpu() - idle_before) * 1000
                    for _ in range(args.rounds):
                        row = measure(
                            "run-start",
                            target,
                            direct(upstream, ns),
                            tokens=1,
                            concurrency=args.concurrency,
                            requests=args.runs,
                            redis_url=redis_url,
                        )
                        row.pop("redis_commands", None)
                        print(json.dumps({"config": config, "idle_cpu_ms_per_s": round(idle_ms, 1), **row}), flush=True)
        finally:
            if redis_proc is not None:
                redis_proc.terminate()
                redis_proc.wait()


if __name__ == "__main__":
    main()
