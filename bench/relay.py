"""Relay benchmark (SPEC §8, issue 13): the server relaying a fake OpenAI-compatible upstream, against reading that
upstream directly, in the same run. Every figure is reported as a ratio to the direct read.

    .venv/bin/python -m bench.relay                       # the floor, memory, Redis, 2 workers, 2 instances + nginx
    .venv/bin/python -m bench.relay --quick               # smaller counts, no 1,000-stream phase (~2 min)
    .venv/bin/python -m bench.relay --config memory,redis

Processes, each its own: two fake upstreams (tests/fakes/upstream.py: one answers at once, one paces its tokens
20 ms apart), the server (`python -m app`: one process, or `--workers 2`, or two instances behind nginx with a
config generated from deploy/nginx.conf), a private `redis-server` for the Redis configurations, and the load
client (bench/load.py). Server CPU is read from /proc (the server's process tree: workers included).

The scenario functions take any `Target` (a chat URL, a body for a model id, headers, the server's pids), so
another server can be measured with the same scenarios: `fast_scenarios(target, direct, ...)` and
`paced_scenarios(...)` return one dict of figures per scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.processes import RssSampler, commandstats, cpu_seconds, nginx, start_redis
from tests.fakes.upstream import FakeUpstream
from tests.support.server import Process, ServerProcess, clean_environ

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [  # the process helpers live in bench.processes; other benchmarks import them from here too
    "AUTH",
    "CONFIGS",
    "RssSampler",
    "Target",
    "chatstream",
    "commandstats",
    "cpu_seconds",
    "direct",
    "fast_scenarios",
    "load",
    "measure",
    "paced_scenarios",
    "server_env",
    "start_redis",
]

ROOT = Path(__file__).resolve().parents[1]
AUTH = "Authorization: Bearer test-token"
CONFIGS = ("floor", "floor-litestar", "memory", "redis", "redis-2-workers", "redis-2-instances-nginx")
"""`floor` is bench/floor_app.py: a relay that does nothing but pass the upstream's bytes on, through uvicorn and
the SDKs' aiohttp transport, in the same scenarios; the least a server on this stack can cost. `floor-litestar` is
the same relay as the smallest Litestar app (`--framework litestar`): the floor plus Litestar's own per-request
cost."""


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


@dataclass
class Target:
    """A server to measure: its chat route, the request body for a model id, headers, and its processes."""

    url: str
    body: Callable[[str], dict[str, Any]]
    headers: list[str]
    pids: tuple[int, ...] = ()
    """Server processes whose CPU (their trees) is the server's cost; empty: not measured."""

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)


def chat_body(model: str) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": "bench"}], "provider": "ollama", "model": model}


def openai_body(model: str) -> dict[str, Any]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]}


def direct(upstream: FakeUpstream, ns: str) -> Target:
    return Target(f"{upstream.url}/{ns}/v1/chat/completions", openai_body, ["Authorization: Bearer x"])


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


def measure(
    name: str,
    target: Target,
    reference: Target,
    *,
    tokens: int,
    concurrency: int,
    requests: int,
    redis_url: str | None = None,
    ramp: float = 0.0,
) -> dict[str, Any]:
    """One scenario: `requests` answers of `tokens` tokens at `concurrency`, read from `reference` (the
    upstream, directly) and then through `target`, in the same run."""
    model = f"bench-tokens-{tokens}"
    load_avg = os.getloadavg()[0]  # the machine is shared: how busy it was when this scenario started
    straight = load(
        reference.url, reference.body(model), concurrency=concurrency, requests=requests, headers=reference.headers
    )
    before = commandstats(redis_url) if redis_url else {}
    cpu_before = target.cpu()
    with RssSampler(*target.pids) as rss:
        relayed = load(
            target.url,
            target.body(model),
            concurrency=concurrency,
            requests=requests,
            headers=target.headers,
            ramp=ramp,
        )
    cpu = target.cpu() - cpu_before
    assert relayed["token_frames"] == tokens * requests, relayed
    relayed_tokens = tokens * requests
    figures: dict[str, Any] = {}
    if redis_url:
        # Every command of the relayed requests (runs, limits, store, buffer), per relayed token and request.
        # Commands that scripts run count too; script calls are round trips.
        after = commandstats(redis_url)
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}
        delta.pop("info", None)
        scripts = delta.get("evalsha", 0) + delta.get("eval", 0)
        figures = {
            "redis_commands_per_token": round(sum(delta.values()) / relayed_tokens, 4),
            "redis_commands_per_request": round(sum(delta.values()) / requests, 2),
            "redis_script_calls_per_token": round(scripts / relayed_tokens, 4),
            "redis_script_calls_per_request": round(scripts / requests, 2),
            "redis_commands": delta,
        }
    return {
        "scenario": name,
        "ramp_s": ramp,
        "tokens": tokens,
        "concurrency": concurrency,
        "requests": requests,
        "direct_frames_per_s": round(straight["token_frames_per_s"]),
        "relay_frames_per_s": round(relayed["token_frames_per_s"]),
        "relay_ratio": round(relayed["token_frames_per_s"] / straight["token_frames_per_s"], 3),
        "direct_ttft_ms": round(straight["ttft_p50_ms"], 2),
        "relay_ttft_ms": round(relayed["ttft_p50_ms"], 2),
        "added_ttft_ms": round(relayed["ttft_p50_ms"] - straight["ttft_p50_ms"], 2),
        "direct_total_p50_ms": round(straight["total_p50_ms"], 1),
        "relay_total_p50_ms": round(relayed["total_p50_ms"], 1),
        "total_p50_ratio": round(relayed["total_p50_ms"] / straight["total_p50_ms"], 3),
        "server_cpu_s": round(cpu, 3),
        "server_cpu_ms_per_request": round(cpu / requests * 1000, 3),
        "server_cpu_us_per_token": round(cpu / relayed_tokens * 1e6, 2),
        "server_peak_rss_mb": round(rss.peak_kb / 1024, 1),
        "load_avg_1m": round(load_avg, 2),
        **figures,
    }


def fast_scenarios(target: Target, reference: Target, *, quick: bool, redis_url: str | None) -> list[dict[str, Any]]:
    """Against the upstream that answers at once: run start CPU (many 1-token runs), capacity and CPU per frame
    (500-token answers), and the added time to first token at concurrency 1."""
    load(target.url, target.body("bench-tokens-50"), concurrency=4, requests=40, headers=target.headers)  # warm
    start = measure(
        "run-start", target, reference, tokens=1, concurrency=4, requests=300 if quick else 1000, redis_url=redis_url
    )
    capacity = measure(
        "capacity", target, reference, tokens=500, concurrency=20, requests=40 if quick else 200, redis_url=redis_url
    )
    # The run's own CPU beyond what a 1-token run costs, per extra frame: what each relayed frame adds.
    extra = capacity["server_cpu_ms_per_request"] - start["server_cpu_ms_per_request"]
    capacity["server_cpu_us_per_extra_frame"] = round(extra / (500 - 1) * 1000, 2)
    ttft = measure(
        "ttft", target, reference, tokens=20, concurrency=1, requests=30 if quick else 100, redis_url=redis_url
    )
    return [start, capacity, ttft]


def paced_scenarios(target: Target, reference: Target, *, quick: bool, redis_url: str | None) -> list[dict[str, Any]]:
    """Against the paced upstream (50 tokens, 20 ms apart): 100 and 1,000 streams started at once (and over a
    ramp: the steady-state overhead)."""
    load(target.url, target.body("bench-tokens-5"), concurrency=4, requests=20, headers=target.headers)  # warm
    rows = [
        measure("paced-100", target, reference, tokens=50, concurrency=100, requests=100, redis_url=redis_url),
        measure(
            "paced-100-ramp", target, reference, tokens=50, concurrency=100, requests=100, redis_url=redis_url, ramp=1
        ),
    ]
    if not quick:
        rows.append(
            measure("paced-1000", target, reference, tokens=50, concurrency=1000, requests=1000, redis_url=redis_url)
        )
        rows.append(
            measure(
                "paced-1000-ramp",
                target,
                reference,
                tokens=50,
                concurrency=1000,
                requests=1000,
                redis_url=redis_url,
                ramp=2.0,
            )
        )
    return rows


@contextlib.contextmanager
def chatstream(config: str, upstream: FakeUpstream, ns: str, redis_url: str | None) -> Iterator[Target]:
    """Our server in configuration `config` (see `CONFIGS`) in front of `upstream`."""
    if config.startswith("floor"):
        env = {**clean_environ(), "PYTHONPATH": str(ROOT), "UPSTREAM_URL": direct(upstream, ns).url}
        framework = "litestar" if config == "floor-litestar" else "none"
        command = [sys.executable, "-m", "bench.floor_app", "--port", "{port}", "--framework", framework]
        with Process(command, env=env, name="floor") as bare:
            assert bare.proc is not None
            yield Target(f"{bare.url}/api/chat", openai_body, [], (bare.proc.pid,))
        return
    env = server_env(upstream, ns, redis_url)
    if config == "redis-2-instances-nginx":
        env["CHAT_TRUSTED_PROXIES"] = "127.0.0.1/32"  # nginx is the only peer, as in docker-compose.yml
        with ServerProcess(env) as first, ServerProcess(env) as second, nginx([first.port, second.port]) as url:
            assert first.proc is not None
            assert second.proc is not None
            yield Target(f"{url}/api/chat", chat_body, [AUTH], (first.proc.pid, second.proc.pid))
        return
    server = ServerProcess(env)
    if config == "redis-2-workers":
        server.argv = ["--workers", "2"]
    with server:
        assert server.proc is not None
        yield Target(f"{server.url}/api/chat", chat_body, [AUTH], (server.proc.pid,))


def run_config(config: str, quick: bool) -> list[dict[str, Any]]:
    results = []
    redis_proc, redis_url = start_redis() if config.startswith("redis") else (None, None)
    try:
        with FakeUpstream.start(delay_ms=0) as fast, FakeUpstream.start(delay_ms=20) as paced:
            ns = fast.namespace()
            with chatstream(config, fast, ns, redis_url) as target:
                results += fast_scenarios(target, direct(fast, ns), quick=quick, redis_url=redis_url)
            pns = paced.namespace()
            with chatstream(config, paced, pns, redis_url) as target:
                results += paced_scenarios(target, direct(paced, pns), quick=quick, redis_url=redis_url)
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
    for r in results:
        r["config"] = config
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--config", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--backend", choices=["memory", "redis", "both"], help="shorthand for --config")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    configs = args.config.split(",")
    if args.backend:
        configs = ["memory", "redis"] if args.backend == "both" else [args.backend]
    for config in configs:
        if config not in CONFIGS:
            parser.error(f"unknown config {config!r}")
        for row in run_config(config, args.quick):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
