"""Peer benchmark: the relay scenarios of bench/relay.py against chatstream (memory and Redis), LiteLLM's
proxy and the Vercel AI SDK's Node server (plain and with resumable-stream over Redis), in one run, each
reported as a ratio to the fake upstream read directly.

    .venv/bin/python -m bench.peers.run            # every scenario, 1,000 streams included (~9 min)
    .venv/bin/python -m bench.peers.run --quick    # smaller counts, no 1,000-stream phase (a few minutes)
    .venv/bin/python -m bench.peers.run --only aisdk,litellm

Processes, each its own: two fake upstreams (tests/fakes/upstream.py; one answers at once, one paces its
tokens 20 ms apart), a private redis-server on a free port, each peer in turn (its own process group,
stopped with it), and the load client (bench/peers/load.py), which counts every stream's SSE `data:`
frames and token frames. Writes bench/peers/results/<date>[-quick].json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.processes import RssSampler, process_tree
from bench.relay import AUTH, server_env, start_redis
from tests.fakes.upstream import FakeUpstream
from tests.support.server import ServerProcess, clean_environ, free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LITELLM_VENV = Path(os.environ.get("LITELLM_VENV", HERE / ".venv-litellm"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
X = "\u00d7"  # the multiplication sign of ratios

COLUMNS = {
    "direct": "direct",
    "memory": "chatstream memory",
    "redis": "chatstream Redis",
    "litellm": "LiteLLM proxy",
    "aisdk": "AI SDK",
    "aisdk-resumable": "AI SDK + resumable-stream",
}


# --- processes ------------------------------------------------------------------------------------------


class ProcTree:
    """A process and its descendants (`bench.processes.process_tree`), and their CPU time with the reaped
    children's: a peer's helper processes that exit during a phase still count (its memory: `RssSampler`)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pids = process_tree(pid)

    def refresh(self) -> None:
        self.pids = process_tree(self.pid)

    def cpu_s(self) -> float:
        """utime + stime, plus the reaped children's (cutime + cstime), summed over the tree."""
        ticks = 0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += sum(int(f) for f in fields[11:15])
        return ticks / CLK_TCK


class GroupProcess:
    """A peer server started in its own process group (workers included), ready once `ready_path` answers
    200, stopped by signalling the group. Output goes to `.pytest_cache/peer-<name>-<port>.log`."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path, ready_path: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [arg.replace("{port}", str(self.port)) for arg in command]
        self.env = {**clean_environ(), **{k: v.replace("{port}", str(self.port)) for k, v in env.items()}}
        self.cwd = cwd
        self.ready_path = ready_path
        self.log = ROOT / ".pytest_cache" / f"peer-{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> GroupProcess:
        self.log.parent.mkdir(exist_ok=True)
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited early:\n{self.log.read_text()[-3000:]}")
            if http_status(f"{self.url}{self.ready_path}") == 200:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.command[0]} did not start in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        # The group, not just its leader: workers that outlive a SIGTERM'd leader go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def http_json(url: str) -> Any:
    """GET `url` as JSON; None if it does not answer."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def http_status(url: str, method: str = "GET", body: bytes | None = None, timeout: float = 2.0) -> int:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request(method, parts.path, body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


# --- targets --------------------------------------------------------------------------------------------


@dataclass
class Target:
    """Where the load client sends one scenario's streams, in that server's own request shape."""

    url: str
    body: Callable[[str], dict[str, Any]]  # model id -> request body
    dialect: str  # bench/peers/load.py --format
    headers: list[str] = field(default_factory=list)
    pid: int | None = None  # the server process (tree) whose CPU and memory are measured
    proc: subprocess.Popen[bytes] | None = None  # to tell whether it survived a phase
    log: Path | None = None
    stats_url: str | None = None  # JSON the server reports about itself, read after each phase


def openai_body(model: str) -> dict[str, Any]:
    return {"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]}


def chatstream_body(model: str) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": "bench"}], "provider": "ollama", "model": model}


def ui_body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": "bench"}]}]}


def direct_target(upstream: FakeUpstream, ns: str) -> Target:
    return Target(f"{upstream.url}/{ns}/v1/chat/completions", openai_body, "openai", pid=upstream.process.pid)


@contextlib.contextmanager
def chatstream(upstream: FakeUpstream, ns: str, redis_url: str | None) -> Iterator[Target]:
    with ServerProcess(server_env(upstream, ns, redis_url)) as server:
        assert server.proc is not None
        yield Target(f"{server.url}/api/chat", chatstream_body, "ui", [AUTH], server.proc.pid, server.proc, server.log)


@contextlib.contextmanager
def litellm(upstream: FakeUpstream, ns: str) -> Iterator[Target]:
    subprocess.run(["bash", str(HERE / "litellm" / "setup.sh")], check=True, timeout=1800)
    key = f"sk-{secrets.token_hex(32)}"
    proc = GroupProcess(
        "litellm",
        [
            str(LITELLM_VENV / "bin" / "litellm"),
            *("--config", "config.yaml", "--host", "127.0.0.1", "--port", "{port}", "--num_workers", "1"),
        ],
        {
            "BENCH_UPSTREAM_BASE": f"{upstream.url}/{ns}/v1",
            "LITELLM_MASTER_KEY": key,
            "LITELLM_LOG": "ERROR",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # never fetch the cost map from the network
        },
        HERE / "litellm",
        "/health/liveliness",
    )
    try:
        proc.start()
        assert proc.proc is not None
        auth = [f"Authorization: Bearer {key}"]
        yield Target(f"{proc.url}/v1/chat/completions", openai_body, "openai", auth, proc.proc.pid, proc.proc, proc.log)
    finally:
        proc.stop()


@contextlib.contextmanager
def aisdk(upstream: FakeUpstream, ns: str, redis_url: str | None, *, paced: bool) -> Iterator[Target]:
    where = HERE / "aisdk"
    if not (where / "node_modules" / "ai").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=where, check=True, timeout=600)
    env = {"PORT": "{port}", "UPSTREAM_BASE_URL": f"{upstream.url}/{ns}/v1", "NODE_ENV": "production"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    proc = GroupProcess("aisdk-resumable" if redis_url else "aisdk", ["node", "server.mjs"], env, where, "/healthz")
    try:
        proc.start()
        assert proc.proc is not None
        stats = f"{proc.url}/healthz" if redis_url else None
        target = Target(f"{proc.url}/api/chat", ui_body, "ui", [], proc.proc.pid, proc.proc, proc.log, stats)
        if redis_url and paced:
            warm(target)
            check_resume(proc.url)
        yield target
    finally:
        proc.stop()


def check_resume(url: str) -> None:
    """The resumable variant really resumes: a second reader joins a stream mid-way and gets all of it."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    chat_id = f"resume-check-{secrets.token_hex(4)}"
    body = json.dumps({**ui_body("bench-tokens-50"), "id": chat_id}).encode()
    results: dict[str, int] = {}

    def read(name: str, method: str, path: str, payload: bytes | None) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
        conn.request(method, path, body=payload, headers={"content-type": "application/json"})
        results[name] = conn.getresponse().read().count(b'"type":"text-delta"')
        conn.close()

    first = threading.Thread(target=read, args=("original", "POST", "/api/chat", body))
    first.start()
    time.sleep(0.3)  # the paced fake answers 50 tokens over ~1 s: this joins mid-way
    read("resumed", "GET", f"/api/chat/{chat_id}/stream", None)
    first.join(timeout=30)
    if results != {"original": 50, "resumed": 50}:
        raise RuntimeError(f"resumable-stream check failed: {results}")


# --- scenarios ------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    tokens: int
    concurrency: int
    requests: int
    timeout: float
    slow_requests: int | None = None  # fewer streams for a peer marked slow (the per-stream shape is unchanged)


def scenarios(quick: bool) -> dict[str, list[Scenario]]:
    fast = [
        Scenario("capacity", 500, 20, 40 if quick else 200, 240, slow_requests=20 if quick else 40),
        Scenario("ttft", 20, 1, 20 if quick else 50, 120),
    ]
    paced = [Scenario("paced-100", 50, 100, 100, 120)]
    if not quick:
        paced.append(Scenario("paced-1000", 50, 1000, 1000, 180))
    return {"fast": fast, "paced": paced}


def load(target: Target, model: str, *, concurrency: int, requests: int, tokens: int, timeout: float) -> dict[str, Any]:
    args = [sys.executable, "-m", "bench.peers.load", "--url", target.url, "--body", json.dumps(target.body(model))]
    args += ["--format", target.dialect, "--concurrency", str(concurrency), "--requests", str(requests)]
    args += ["--expect-tokens", str(tokens), "--timeout", str(timeout)]
    for header in target.headers:
        args += ["--header", header]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True, timeout=timeout + 60)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def phase(target: Target, sc: Scenario, requests: int) -> dict[str, Any]:
    tree = ProcTree(target.pid) if target.pid else None
    cpu_before = tree.cpu_s() if tree else 0.0
    stats_before = http_json(target.stats_url) if target.stats_url else None
    with contextlib.ExitStack() as stack:
        rss = stack.enter_context(RssSampler(target.pid)) if target.pid else None
        result = load(
            target,
            f"bench-tokens-{sc.tokens}",
            concurrency=sc.concurrency,
            requests=requests,
            tokens=sc.tokens,
            timeout=sc.timeout,
        )
    if tree:
        tree.refresh()
        cpu = tree.cpu_s() - cpu_before
        result["server_cpu_s"] = round(cpu, 3)
        result["server_processes"] = len(tree.pids)
        frames = result["token_frames"]
        result["cpu_us_per_token_frame"] = round(cpu / frames * 1e6, 1) if frames else None
        result["server_peak_rss_mb"] = round(rss.peak_kb / 1024, 1) if rss else None
    if target.stats_url:
        stats_after = http_json(target.stats_url)
        result["server_stats"] = stats_after
        if stats_before is not None and stats_after is not None:
            # Resumable registrations that failed in this phase (the streams themselves went on).
            result["resumable_errors"] = stats_after["resumable"]["errors"] - stats_before["resumable"]["errors"]
    if target.proc is not None and target.proc.poll() is not None:
        # The server died during the phase: say so, with the end of its log.
        tail = target.log.read_text(errors="replace")[-1500:] if target.log and target.log.exists() else ""
        result["server_exited"] = {"returncode": target.proc.returncode, "log_tail": tail}
    return result


def compare(direct: dict[str, Any], relayed: dict[str, Any]) -> dict[str, Any]:
    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 3) if a and b else None

    return {
        "frames_per_s_ratio": ratio(relayed["token_frames_per_s"], direct["token_frames_per_s"]),
        "added_ttft_ms": round(relayed["ttft_p50_ms"] - direct["ttft_p50_ms"], 2) if relayed["streams"] else None,
        "total_p50_ratio": ratio(relayed["total_p50_ms"], direct["total_p50_ms"]),
    }


def warm(target: Target) -> None:
    load(target, "bench-tokens-50", concurrency=4, requests=20, tokens=50, timeout=120)


PeerStart = Callable[[FakeUpstream, str, str, bool], contextlib.AbstractContextManager[Target]]

PEERS: dict[str, tuple[PeerStart, bool]] = {  # name -> (start(upstream, ns, redis_url, paced), slow)
    "memory": (lambda up, ns, _redis, _paced: chatstream(up, ns, None), False),
    "redis": (lambda up, ns, redis_url, _paced: chatstream(up, ns, redis_url), False),
    "litellm": (lambda up, ns, _redis, _paced: litellm(up, ns), True),
    "aisdk": (lambda up, ns, _redis, paced: aisdk(up, ns, None, paced=paced), False),
    "aisdk-resumable": (lambda up, ns, redis_url, paced: aisdk(up, ns, redis_url, paced=paced), False),
}


def run(quick: bool, only: list[str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    redis_proc, redis_url = start_redis()
    try:
        with FakeUpstream.start(delay_ms=0) as fast, FakeUpstream.start(delay_ms=20) as paced:
            upstreams = {"fast": fast, "paced": paced}
            for kind, group in scenarios(quick).items():
                upstream = upstreams[kind]
                for name in only:
                    start, slow = PEERS[name]
                    ns = upstream.namespace()
                    direct = direct_target(upstream, ns)
                    print(f"[{time.strftime('%H:%M:%S')}] {name} on the {kind} upstream", file=sys.stderr, flush=True)
                    try:
                        with start(upstream, ns, redis_url, kind == "paced") as target:
                            warm(target)
                            for sc in group:
                                requests = sc.slow_requests if slow and sc.slow_requests else sc.requests
                                d = phase(direct, sc, requests)
                                r = phase(target, sc, requests)
                                row = {"scenario": sc.name, "peer": name, "tokens": sc.tokens}
                                row |= {"concurrency": sc.concurrency, "requests": requests}
                                rows.append({**row, "direct": d, "relayed": r, **compare(d, r)})
                                print(json.dumps(rows[-1]), flush=True)
                    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                        print(f"  {name} failed: {exc!r}"[:2000], file=sys.stderr, flush=True)
                        rows.append({"scenario": f"{kind}:start", "peer": name, "failed": repr(exc)[:2000]})
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    return rows


# --- report ---------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    out: dict[str, str] = {}
    lock = json.loads((HERE / "aisdk" / "package-lock.json").read_text())["packages"]
    for pkg in ("ai", "@ai-sdk/openai-compatible", "resumable-stream", "redis"):
        out[f"npm {pkg}"] = lock.get(f"node_modules/{pkg}", {}).get("version", "?")
    req = (HERE / "litellm" / "requirements.txt").read_text()
    out["litellm[proxy]"] = next(line.split("==")[1] for line in req.splitlines() if line.startswith("litellm"))
    for cmd, key in ((["node", "--version"], "node"), (["redis-server", "--version"], "redis-server")):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out[key] = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    out["python"] = sys.version.split()[0]
    return out


def _k(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def _errors(r: dict[str, Any]) -> str:
    crashed = ", server crashed" if r.get("server_exited") else ""
    out = f", **{r['error_rate']:.1%} errors{crashed}**" if r.get("errors") else ""
    if r.get("resumable_errors"):
        out += f", {r['resumable_errors']} of {r['requests']} not resumable"
    return out


def table(rows: list[dict[str, Any]], machine: str) -> str:
    cells: dict[tuple[str, str], str] = {}
    by = {(r["scenario"], r["peer"]): r for r in rows if "failed" not in r}
    failed = {r["peer"]: r["failed"] for r in rows if "failed" in r}

    def direct_median(scenario: str, key: str) -> float | None:
        values = [r["direct"][key] for (s, _), r in by.items() if s == scenario and r["direct"]["streams"]]
        return statistics.median(values) if values else None

    lines = [  # (row, scenario, label)
        ("capacity", "capacity", f"relay capacity: token frames/s, 500-token answers, 20 concurrent ({X} direct)"),
        ("capacity-cpu", "capacity", "server CPU per relayed token frame (capacity phase)"),
        ("ttft", "ttft", "added time to first token, concurrency 1 (p50)"),
        ("paced-100", "paced-100", f"100 streams at once, 50 tokens 20 ms apart: total p50 ({X} direct)"),
        ("paced-1000", "paced-1000", f"1,000 streams at once: total p50 ({X} direct)"),
        ("paced-1000-ttft", "paced-1000", "1,000 streams at once: first token p50"),
        ("paced-1000-rss", "paced-1000", "server peak RSS, 1,000 streams"),
    ]
    for key, scenario, _ in lines:
        for peer in COLUMNS:
            if peer == "direct":
                if key == "capacity" and (v := direct_median(scenario, "token_frames_per_s")):
                    cells[key, peer] = _k(v)
                elif key == "capacity-cpu" and (v := direct_median(scenario, "cpu_us_per_token_frame")):
                    cells[key, peer] = f"({v:.1f} µs: the fake upstream)"
                elif key == "ttft" and (v := direct_median(scenario, "ttft_p50_ms")):
                    cells[key, peer] = f"{v:.2f} ms"
                elif key in ("paced-100", "paced-1000") and (v := direct_median(scenario, "total_p50_ms")):
                    cells[key, peer] = f"{v / 1000:.2f} s"
                elif key == "paced-1000-ttft" and (v := direct_median(scenario, "ttft_p50_ms")):
                    cells[key, peer] = f"{v:.0f} ms"
                continue
            r = by.get((scenario, peer))
            if r is None:
                if peer in failed:
                    cells[key, peer] = "failed"
                continue
            rel = r["relayed"]
            if not rel["streams"]:
                cells[key, peer] = f"**all failed** ({rel['distinct_errors'][:1]})"
                continue
            if key == "capacity":
                cells[key, peer] = f"{_k(rel['token_frames_per_s'])} ({r['frames_per_s_ratio']:.2f}{X}){_errors(rel)}"
            elif key == "capacity-cpu":
                cells[key, peer] = f"{rel['cpu_us_per_token_frame']:.0f} µs"
            elif key == "ttft":
                cells[key, peer] = f"+{r['added_ttft_ms']:.1f} ms{_errors(rel)}"
            elif key in ("paced-100", "paced-1000"):
                seconds = rel["total_p50_ms"] / 1000
                cells[key, peer] = f"{r['total_p50_ratio']:.2f}{X} ({seconds:.1f} s){_errors(rel)}"
            elif key == "paced-1000-ttft":
                cells[key, peer] = f"{rel['ttft_p50_ms']:.0f} ms"
            elif key == "paced-1000-rss":
                cells[key, peer] = f"{rel['server_peak_rss_mb']:.0f} MB"
    out = [
        f"Peers, one run ({machine}). Ratios are to the fake upstream read directly, measured right before "
        "each peer's phase; the direct column is the median of those reads.",
        "",
        "| scenario | " + " | ".join(COLUMNS.values()) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for key, _, label in lines:
        if any((key, p) in cells for p in COLUMNS):
            out.append(f"| {label} | " + " | ".join(cells.get((key, p), "") for p in COLUMNS) + " |")
    for peer, error in failed.items():
        out.append(f"\n{COLUMNS[peer]} failed: `{error[:300]}`")
    for (scenario, peer), r in by.items():
        if exited := r["relayed"].get("server_exited"):
            lines_with_error = [line for line in exited["log_tail"].splitlines() if "Error" in line]
            why = lines_with_error[0].strip() if lines_with_error else f"exit status {exited['returncode']}"
            out.append(f"\n{COLUMNS[peer]}'s server exited during {scenario}: `{why[:200]}`.")
    counts = {r["peer"]: r["requests"] for r in rows if r.get("scenario") == "capacity"}
    if "litellm" in counts and len(set(counts.values())) > 1:
        others = max(counts.values())
        out.append(
            f"\nLiteLLM's capacity phase ran {counts['litellm']} streams (the others {others}): the same answer "
            "length and concurrency, fewer streams, so that it ends in bounded time."
        )
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts, no 1,000-stream phase")
    parser.add_argument("--only", default=",".join(PEERS), help=f"comma-separated, of: {', '.join(PEERS)}")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="folder for <date>.json and .md")
    parser.add_argument("--report", type=Path, help="only re-render the .md of this results .json")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        machine = f"{os.cpu_count()} cores, load average {saved['load_average_start'][0]:.1f} at the start"
        md = table(saved["rows"], machine)
        args.report.with_suffix(".md").write_text(f"# Peer benchmark, {saved['date']}\n\n{md}")
        print(md)
        return
    only = [name for name in args.only.split(",") if name]
    unknown = set(only) - set(PEERS)
    if unknown:
        parser.error(f"unknown peers: {', '.join(sorted(unknown))}")
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    started = time.time()
    load_before = os.getloadavg()
    rows = run(args.quick, only)
    machine = f"{os.cpu_count()} cores, load average {load_before[0]:.1f} at the start"
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    name = f"{stamp}-quick" if args.quick else stamp
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "duration_s": round(time.time() - started),
        "load_average_start": load_before,
        "load_average_end": os.getloadavg(),
        "versions": versions(),
        "rows": rows,
    }
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    md = table(rows, machine)
    (args.out / f"{name}.md").write_text(f"# Peer benchmark, {report['date']}\n\n{md}")
    print(md)


if __name__ == "__main__":
    main()
