"""Relay benchmark (SPEC §8): the server relaying a fake OpenAI-compatible upstream, against reading that
upstream directly, in the same run. Every figure is reported as a ratio to the direct read.

    .venv/bin/python -m bench.relay                 # all scenarios, memory and Redis buffers
    .venv/bin/python -m bench.relay --quick         # smaller counts (a smoke run, ~1 minute)

Processes: the fake upstream (tests/fakes/upstream.py), one `python -m app` (one uvicorn worker), a
private `redis-server` for the Redis scenarios, and the load client (bench/load.py), each its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis

from tests.fakes.upstream import FakeUpstream
from tests.support.server import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
AUTH = "Authorization: Bearer test-token"


def load(
    url: str, body: dict[str, Any], *, concurrency: int, requests: int, headers: list[str], ramp: float = 0.0
) -> dict[str, Any]:
    args = [
        sys.executable,
        "-m",
        "bench.load",
        "--url",
        url,
        "--body",
        json.dumps(body),
        "--concurrency",
        str(concurrency),
        "--requests",
        str(requests),
        "--ramp",
        str(ramp),
    ]
    for header in headers:
        args += ["--header", header]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True, timeout=600)
    result: dict[str, Any] = json.loads(out.stdout)
    if result["errors"]:
        raise RuntimeError(f"load errors: {result['first_error']}")
    return result


class RssSampler:
    """Peak resident memory of a process, sampled from /proc while a scenario runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
            except OSError:
                return
            self._stop.wait(0.1)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def server_env(upstream: FakeUpstream, ns: str, redis_url: str | None) -> dict[str, str]:
    env = {
        "OLLAMA_BASE_URL": f"{upstream.url}/{ns}/v1",  # an open catalog: any model id is accepted
        "CHAT_DEFAULT_PROVIDER": "ollama",
        "CHAT_TITLE_GENERATION": "false",
        "CHAT_RATE_IP_PER_MINUTE": "100000000",
        "CHAT_QUOTA_PREMIUM_PER_DAY": "100000000",
        "CHAT_MAX_CONCURRENT_RUNS": "100000",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CHAT_REDIS_PREFIX"] = f"bench{ns}"
    return env


def scenario(
    name: str,
    upstream: FakeUpstream,
    server: ServerProcess,
    ns: str,
    *,
    tokens: int,
    concurrency: int,
    requests: int,
    redis_url: str | None = None,
    ramp: float = 0.0,
) -> dict[str, Any]:
    model = f"bench-tokens-{tokens}"
    direct = load(
        f"{upstream.url}/{ns}/v1/chat/completions",
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]},
        concurrency=concurrency,
        requests=requests,
        headers=["Authorization: Bearer x"],
        ramp=ramp,
    )
    before = commandstats(redis_url) if redis_url else {}
    with RssSampler(server.proc.pid if server.proc else 0) as rss:
        relayed = load(
            f"{server.url}/api/chat",
            {"parts": [{"type": "text", "text": "bench"}], "provider": "ollama", "model": model},
            concurrency=concurrency,
            requests=requests,
            headers=[AUTH],
            ramp=ramp,
        )
    assert relayed["token_frames"] == tokens * requests, relayed
    redis_figures = {}
    if redis_url:
        # Every command of the relayed requests (runs, limits, store, buffer), per relayed token. Commands
        # that scripts run count too, so the total is Redis's work, not round trips. Script calls are round
        # trips: every buffer write is one (so are the registry's and limiter's calls), which bounds the
        # buffer's writes from above.
        after = commandstats(redis_url)
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
        delta.pop("info", None)
        relayed_tokens = tokens * requests
        scripts = delta.get("evalsha", 0) + delta.get("eval", 0)
        redis_figures = {
            "redis_commands_per_token": round(sum(delta.values()) / relayed_tokens, 4),
            "redis_script_calls_per_token": round(scripts / relayed_tokens, 4),
            "redis_script_calls_per_request": round(scripts / requests, 2),
            # One stream entry per buffer append (the run marker of `create` included).
            "buffer_entries_per_token": round(delta.get("xadd", 0) / relayed_tokens, 4),
            "redis_commands": delta,
        }
    return {
        "scenario": name,
        "ramp_s": ramp,
        "tokens": tokens,
        "concurrency": concurrency,
        "requests": requests,
        "direct_frames_per_s": round(direct["token_frames_per_s"]),
        "relay_frames_per_s": round(relayed["token_frames_per_s"]),
        "relay_ratio": round(relayed["token_frames_per_s"] / direct["token_frames_per_s"], 3),
        "direct_ttft_ms": round(direct["ttft_p50_ms"], 2),
        "relay_ttft_ms": round(relayed["ttft_p50_ms"], 2),
        "added_ttft_ms": round(relayed["ttft_p50_ms"] - direct["ttft_p50_ms"], 2),
        "direct_total_p50_ms": round(direct["total_p50_ms"], 1),
        "relay_total_p50_ms": round(relayed["total_p50_ms"], 1),
        "total_p50_ratio": round(relayed["total_p50_ms"] / direct["total_p50_ms"], 3),
        "server_peak_rss_mb": round(rss.peak_kb / 1024, 1),
        **redis_figures,
    }


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


def run_backend(backend: str, quick: bool) -> list[dict[str, Any]]:
    results = []
    redis_proc, redis_url = start_redis() if backend == "redis" else (None, None)
    try:
        with FakeUpstream.start(delay_ms=0) as fast, FakeUpstream.start(delay_ms=20) as paced:
            ns = fast.namespace()
            with ServerProcess(server_env(fast, ns, redis_url)) as server:
                load(
                    f"{server.url}/api/chat",
                    {"parts": [{"type": "text", "text": "warm"}], "provider": "ollama", "model": "bench-tokens-50"},
                    concurrency=4,
                    requests=20,
                    headers=[AUTH],
                )
                requests = 40 if quick else 200
                results.append(
                    scenario(
                        "capacity", fast, server, ns, tokens=500, concurrency=20, requests=requests, redis_url=redis_url
                    )
                )
                results.append(
                    scenario(
                        "ttft",
                        fast,
                        server,
                        ns,
                        tokens=20,
                        concurrency=1,
                        requests=20 if quick else 50,
                        redis_url=redis_url,
                    )
                )
            pns = paced.namespace()
            with ServerProcess(server_env(paced, pns, redis_url)) as server:
                results.append(
                    scenario(
                        "paced-100", paced, server, pns, tokens=50, concurrency=100, requests=100, redis_url=redis_url
                    )
                )
                # The same streams arriving over one second instead of in one burst: steady-state overhead.
                results.append(
                    scenario(
                        "paced-100-ramp",
                        paced,
                        server,
                        pns,
                        tokens=50,
                        concurrency=100,
                        requests=100,
                        redis_url=redis_url,
                        ramp=1.0,
                    )
                )
                if not quick:
                    results.append(
                        scenario(
                            "paced-1000",
                            paced,
                            server,
                            pns,
                            tokens=50,
                            concurrency=1000,
                            requests=1000,
                            redis_url=redis_url,
                        )
                    )
                    results.append(
                        scenario(
                            "paced-1000-ramp",
                            paced,
                            server,
                            pns,
                            tokens=50,
                            concurrency=1000,
                            requests=1000,
                            redis_url=redis_url,
                            ramp=2.0,
                        )
                    )
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
    for r in results:
        r["backend"] = backend
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", choices=["memory", "redis", "both"], default="both")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    backends = ["memory", "redis"] if args.backend == "both" else [args.backend]
    for backend in backends:
        for row in run_backend(backend, args.quick):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
