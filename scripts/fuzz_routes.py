"""Fuzz every route of a real chatstream server: no 5xx, no dropped connection, no traceback in its log.

    .venv/bin/python scripts/fuzz_routes.py                                  # memory backends, 200 a route
    .venv/bin/python scripts/fuzz_routes.py --redis-url redis://127.0.0.1:6411/0 --seed 1234
    .venv/bin/python scripts/fuzz_routes.py --url http://127.0.0.1:8000 --token tok --other-token tok2 \\
        --log server.log                                                     # a server that is already running

Without `--url` it starts `python -m app` itself (mock provider, `getWeather` behind approval, weather and
search backends pointed at a dead local port so nothing leaves the machine, limits out of the way) and stops
it at the end. For every route it sends `--per-route` requests built by a random generator seeded from
`--seed` (printed; a run is reproduced by the same seed against the same server configuration): path ids
(valid, someone else's, unicode, control characters, percent-encoded bytes, very long, empty), query
parameters, headers (Authorization, Last-Event-ID, Idempotency-Key, Content-Type, ...), and bodies (each
request shape, mutated: fields removed, wrong types, nulls, huge strings, deep nesting, unicode, lone
surrogates, invalid data URLs, extra fields; random bytes, invalid JSON, empty). Everything goes over raw
sockets, one connection per request, so bytes httpx would refuse (CR/LF or NUL in the target, non-ASCII
headers) reach the server as written. Every response is read to its end (with a deadline).

Per route it records the status counts and, as failures: a 5xx (except the documented 502 of a plain,
non-streaming answer whose run failed upstream, counted apart), a dropped connection (no response, reset,
truncated, or no end by the deadline), a 4xx from the app that is not JSON `{"error": "..."}`, a stream
that ends without its dialect's final frame, a response header smuggled in through a request (CR/LF
injection), and a traceback or `unhandled error` in the server log. uvicorn's own plain-text 400 for bytes
it cannot parse (before the app sees anything) is fine, and counted apart (`uv400`). Exit status 1 on any
failure.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent

DEAD_URL = "http://127.0.0.1:9/"
"""Where the tools' upstreams point in a server this script starts: nothing listens, nothing leaves the host."""

DEFAULT_TOKENS = ("fuzz-alice-token", "fuzz-bob-token")

UVICORN_400 = b"Invalid HTTP request received."

PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

ROUTES = (
    "POST /api/chat",
    "POST /api/chat/approve",
    "GET /api/chat/{id}/stream",
    "POST /api/chat/{id}/stop",
    "DELETE /api/chat?id=",
    "GET /api/chat/conversations",
    "GET /api/chat/messages",
    "DELETE /api/chat/conversations/{id}",
    "POST /api/chat/conversations/{id}/truncate",
    "POST /api/chats/{id}/messages/stream",
    "GET /api/models",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "(unrouted)",
)
"""Every route of the standalone server, plus `(unrouted)`: unknown paths and wrong methods (JSON 404/405)."""

SETUP = "(setup)"
BACKGROUND = "(background)"


def fuzz_env(redis_url: str | None = None) -> dict[str, str]:
    """Server environment for fuzzing (without tokens, host or port): the mock provider, a tool that asks
    for approval, every upstream a dead local port, limits that never refuse."""
    env = {
        "CHAT_MOCK_PROVIDER": "true",
        "CHAT_APPROVAL_TOOLS": "getWeather",
        "CHAT_WEATHER_GEOCODING_URL": DEAD_URL,
        "CHAT_WEATHER_FORECAST_URL": DEAD_URL,
        "CHAT_WEB_SEARCH_URL": DEAD_URL,
        "CHAT_RATE_IP_PER_MINUTE": "1000000",
        "CHAT_QUOTA_PREMIUM_PER_DAY": "1000000",
        "CHAT_RUN_TIMEOUT_SECONDS": "20",
        "CHAT_SHUTDOWN_GRACE_SECONDS": "2",
        "CHAT_LOG_LEVEL": "info",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["CHAT_REDIS_PREFIX"] = f"fuzz{os.getpid()}x{int(time.time())}"
    else:
        env["DATABASE_URL"] = "memory://"  # not the standalone default, a chatstream.db in the checkout
    return env


# --------------------------------------------------------------------------------------------------------------
# The wire: one request per connection, exactly these bytes, the whole answer read back.


@dataclass
class Request:
    route: str
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | None = None
    chunked: bool = False
    note: list[str] = field(default_factory=list)
    """What the generator did (mutations applied), for the report."""
    plain_answer: bool = False
    """A plain-shape send that may be answered as JSON (its run's upstream failure is the documented 502)."""
    declared_length: int | None = None
    """Content-Length to declare instead of the body's (only ever larger, with no body sent)."""

    def wire(self, host: bytes) -> bytes:
        head = [self.method + b" " + self.target + b" HTTP/1.1"]
        names = {name.lower() for name, _ in self.headers}
        if b"host" not in names:
            head.append(b"Host: " + host)
        head += [name + b": " + value for name, value in self.headers]
        head.append(b"Connection: close")
        payload = b""
        if self.declared_length is not None:
            head.append(b"Content-Length: %d" % self.declared_length)
        elif self.body is not None and self.chunked:
            head.append(b"Transfer-Encoding: chunked")
            payload = _chunk(self.body)
        elif self.body is not None:
            head.append(b"Content-Length: %d" % len(self.body))
            payload = self.body
        return b"\r\n".join(head) + b"\r\n\r\n" + payload

    def describe(self, limit: int = 600) -> str:
        lines = [f"{self.method.decode('latin-1')} {_clip(self.target, limit)}"]
        fillers = [name for name, _ in self.headers if name.startswith(b"X-Fuzz-")]
        lines += [
            f"  {name.decode('latin-1')}: {_clip(value, 200)}"
            for name, value in self.headers
            if not name.startswith(b"X-Fuzz-")
        ]
        if fillers:
            lines.append(f"  (and {len(fillers)} headers X-Fuzz-<n>: {'v' * 50})")
        if self.declared_length is not None:
            lines.append(f"  (Content-Length: {self.declared_length}, no body sent)")
        if self.body is not None:
            how = "chunked" if self.chunked else "Content-Length"
            lines.append(f"  body ({len(self.body)} bytes, {how}): {_clip(self.body, limit)}")
        if self.note:
            lines.append(f"  generated: {'; '.join(self.note)}")
        return "\n".join(lines)


def _chunk(body: bytes) -> bytes:
    out: list[bytes] = []
    pos, size = 0, 1
    while pos < len(body):
        piece = body[pos : pos + size]
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        pos += len(piece)
        size = min(size * 7 + 1, 65536)
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def _clip(data: bytes, limit: int) -> str:
    text = repr(data[:limit])[2:-1]
    return text + (f"... ({len(data)} bytes)" if len(data) > limit else "")


@dataclass
class Response:
    status: int = 0
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    drop: str | None = None
    """Why no complete response arrived: `no response`, `reset`, `truncated`, `timeout` (None: it did)."""
    elapsed: float = 0.0

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def _parse_head(buf: bytes) -> tuple[int, dict[str, list[str]], int] | None:
    """Status, headers and where the body starts, skipping interim 1xx answers; None while incomplete."""
    start = 0
    while True:
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            return None
        lines = buf[start:end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else -1
        if 100 <= status < 200:
            start = end + 4
            continue
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return status, headers, end + 4


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    """The body of a chunked message and whether its last chunk arrived."""
    out: list[bytes] = []
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(out), False
        try:
            size = int(data[pos:eol].split(b";")[0], 16)
        except ValueError:
            return b"".join(out), False
        if size == 0:
            return b"".join(out), data.find(b"\r\n", eol + 2) >= 0
        if len(data) < eol + 2 + size + 2:
            return b"".join(out), False
        out.append(data[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2


def _assemble(buf: bytes, *, head_only: bool, eof: bool) -> Response | None:
    """The response in `buf`, or None while it is incomplete (and the connection open)."""
    parsed = _parse_head(buf)
    if parsed is None:
        return None
    status, headers, at = parsed
    if status < 0:
        return Response(status=0, headers=headers, body=buf, drop="garbled status line")
    data = buf[at:]
    if head_only or status in (204, 304):
        return Response(status=status, headers=headers, body=b"")
    encoding = ",".join(headers.get("transfer-encoding", [])).lower()
    if "chunked" in encoding:
        if not (eof or data.endswith(b"\r\n\r\n")):
            return None
        body, complete = _dechunk(data)
        if complete:
            return Response(status=status, headers=headers, body=body)
        return Response(status=status, headers=headers, body=body, drop="truncated") if eof else None
    length = headers.get("content-length")
    if length and length[0].isdigit():
        if len(data) >= int(length[0]):
            return Response(status=status, headers=headers, body=data[: int(length[0])])
        return Response(status=status, headers=headers, body=data, drop="truncated") if eof else None
    return Response(status=status, headers=headers, body=data) if eof else None


def exchange(host: str, port: int, request: Request, *, timeout: float = 20.0) -> Response:
    """Send `request` on a new connection and read the whole answer (until complete, EOF or `timeout`)."""
    started = time.monotonic()
    deadline = started + timeout
    buf = bytearray()
    head_only = request.method == b"HEAD"
    result: Response | None = None
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            # The server may answer before it has read everything (a 413, a 400 on the head).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(request.wire(f"{host}:{port}".encode()))
            eof = False
            while result is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(min(remaining, 5.0))
                chunk = sock.recv(262144)
                eof = not chunk
                buf += chunk
                result = _assemble(bytes(buf), head_only=head_only, eof=eof)
                if eof and result is None:
                    result = Response(drop="no response" if not buf else "truncated", body=bytes(buf))
    except TimeoutError:
        result = _assemble(bytes(buf), head_only=head_only, eof=True)
        if result is None or result.drop is not None or not buf:
            result = result or Response(body=bytes(buf))
            result.drop = "timeout"
    except (ConnectionResetError, ConnectionAbortedError):
        result = _assemble(bytes(buf), head_only=head_only, eof=True)
        if result is None or result.drop is not None:
            result = result or Response(body=bytes(buf))
            result.drop = "reset"
    except OSError as exc:
        result = Response(drop=f"connect: {exc}")
    result.elapsed = time.monotonic() - started
    return result


# --------------------------------------------------------------------------------------------------------------
# Server-sent events.


@dataclass
class Frames:
    ids: list[str]
    data: list[bytes]

    def objects(self) -> Iterator[dict[str, Any]]:
        for raw in self.data:
            try:
                obj = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if isinstance(obj, dict):
                yield obj


def parse_sse(body: bytes) -> Frames:
    ids, data = [], []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        lines = [line for line in event.split(b"\n") if line and not line.startswith(b":")]
        datas = [line[5:].lstrip(b" ") for line in lines if line.startswith(b"data:")]
        ids += [line[3:].strip().decode("latin-1") for line in lines if line.startswith(b"id:")]
        if datas:
            data.append(b"\n".join(datas))
    return Frames(ids=ids, data=data)


def stream_terminated(response: Response, route: str) -> bool:
    """Whether an event stream ended with its dialect's final frame."""
    frames = parse_sse(response.body)
    if response.header("x-vercel-ai-ui-message-stream") is not None:
        return bool(frames.data) and frames.data[-1] == b"[DONE]"
    last = list(frames.objects())[-1:] or [{}]
    final = ("end", "error") if route.startswith("POST /api/chats/") else ("done", "error")
    return last[0].get("type") in final


# --------------------------------------------------------------------------------------------------------------
# Results.


@dataclass
class Finding:
    kind: str
    route: str
    request: str
    status: int
    detail: str


@dataclass
class RouteStats:
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    upstream_502: int = 0
    drops: int = 0
    uvicorn_400: int = 0
    non_json_4xx: int = 0
    unterminated: int = 0
    injected: int = 0
    tracebacks: int = 0


_COUNTS = (
    "sent",
    "server_errors",
    "upstream_502",
    "drops",
    "uvicorn_400",
    "non_json_4xx",
    "unterminated",
    "tracebacks",
)
"""The counted columns of the table, in order."""


@dataclass
class Report:
    seed: int
    per_route: int
    routes: dict[str, RouteStats] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    upstream_errors: Counter[str] = field(default_factory=Counter)
    log_tracebacks: int = 0
    log_unhandled: int = 0
    log_path: str | None = None
    server_alive: bool = True
    aborted: str | None = None
    elapsed: float = 0.0

    FAILING = ("5xx", "drop", "non-JSON 4xx", "unterminated stream", "header injection", "bad 2xx JSON", "traceback")

    def stats(self, route: str) -> RouteStats:
        return self.routes.setdefault(route, RouteStats())

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def failed(self) -> bool:
        return (
            any(f.kind in self.FAILING for f in self.findings)
            or self.log_tracebacks > 0
            or self.log_unhandled > 0
            or not self.server_alive
            or self.aborted is not None
        )

    def table(self) -> str:
        cols = ["route", "sent", "statuses", "5xx", "502run", "drops", "uv400", "badJSON4xx", "unterm", "tb"]
        rows = [cols]
        total = RouteStats()
        for route in [r for r in (*ROUTES, SETUP, BACKGROUND) if r in self.routes]:
            rows.append(self._row(route, self.routes[route]))
            total.statuses.update(self.routes[route].statuses)
            for name in _COUNTS:
                setattr(total, name, getattr(total, name) + getattr(self.routes[route], name))
        rows.append(self._row("TOTAL", total))
        widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
        out = []
        for n, row in enumerate(rows):
            out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
            if n in (0, len(rows) - 2):
                out.append("  ".join("-" * w for w in widths))
        return "\n".join(out)

    @staticmethod
    def _row(route: str, s: RouteStats) -> list[str]:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(s.statuses.items()))
        return [route, str(s.sent), statuses, *(str(getattr(s, name)) for name in _COUNTS[1:])]

    def summary(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "per_route": self.per_route,
            "elapsed_seconds": round(self.elapsed, 1),
            "failed": self.failed,
            "aborted": self.aborted,
            "server_alive": self.server_alive,
            "log": self.log_path,
            "log_tracebacks": self.log_tracebacks,
            "log_unhandled_errors": self.log_unhandled,
            "upstream_errors": dict(self.upstream_errors),
            "routes": {
                route: {
                    "sent": s.sent,
                    "statuses": dict(s.statuses),
                    "5xx": s.server_errors,
                    "upstream_502": s.upstream_502,
                    "drops": s.drops,
                    "uvicorn_400": s.uvicorn_400,
                    "non_json_4xx": s.non_json_4xx,
                    "unterminated": s.unterminated,
                    "injected_headers": s.injected,
                    "tracebacks": s.tracebacks,
                }
                for route, s in self.routes.items()
            },
            "findings": [vars(f) for f in self.findings],
        }


class LogWatch:
    """New text in the server log since the last look (tracebacks are attributed to the request before)."""

    MARKERS = ("Traceback", "unhandled error")

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.offset = path.stat().st_size if path is not None and path.exists() else 0

    def new(self) -> str:
        if self.path is None or not self.path.exists():
            return ""
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        return data.decode("utf-8", "replace")

    def totals(self) -> tuple[int, int]:
        if self.path is None or not self.path.exists():
            return 0, 0
        text = self.path.read_text("utf-8", "replace")
        return text.count("Traceback"), text.count("unhandled error")


# --------------------------------------------------------------------------------------------------------------
# Generators of odd values.

UNICODE = (
    "é",
    "日本語",
    "💥",
    "\u202e",
    "\u200b",
    "Ω≈ç√",
    "\U0001d518\U0001d52b\U0001d526",
    "ﷺ",
    "\ufeff",
    "\u0301",
    "\u0663",
)
CONTROL = ("\x00", "\r\n", "\r", "\n", "\t", "\x01", "\x7f", "\x1b[31m", "\x85", "\u2028")
INJECT = "a\r\nSet-Cookie: fuzz=1\r\nX-Injected: 1"
BIG_INTS = (2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 10**30, -(2**63) - 1, -(10**30))


def odd_text(rng: random.Random) -> str:
    pick = rng.randrange(9)
    if pick == 0:
        return "".join(rng.choice(UNICODE) for _ in range(rng.randint(1, 8)))
    if pick == 1:
        return "x" + rng.choice(CONTROL) + "y"
    if pick == 2:
        return "\ud800" if rng.random() < 0.5 else "a\udfffb"  # lone surrogates
    if pick == 3:
        return rng.choice(("", " ", "\t\n", "null", "undefined", "0", "-1", "true", "[]", "{}"))
    if pick == 4:
        return INJECT
    if pick == 5:
        return rng.choice(("x", "é", "a b ")) * rng.choice((129, 1000, 70000))
    if pick == 6:
        return "".join(chr(rng.randrange(0x20, 0x2FFF)) for _ in range(rng.randint(1, 40)))
    if pick == 7:
        return rng.choice(("../../etc/passwd", "%00", "%ff", "${jndi:x}", "'; DROP TABLE x;--", "<script>", "*"))
    return str(rng.choice(BIG_INTS))


def weird_value(rng: random.Random) -> Any:
    pick = rng.randrange(12)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice((True, False))
    if pick == 2:
        return rng.choice((0, -1, 1, 7, *BIG_INTS))
    if pick == 3:
        return rng.choice((1.5, -0.0, 1e308, -1e-308, 3.0))
    if pick == 4:
        return rng.choice(([], [None], [1, "a"], [[[]]], ["text"]))
    if pick == 5:
        return rng.choice(({}, {"": None}, {"type": "text"}, {"a": {"b": {"c": []}}}))
    if pick == 6:
        return f"__deep_{rng.choice((63, 64, 65, 300, 5000, 100000))}_{rng.choice(('list', 'dict'))}__"
    if pick == 7:
        return "x" * rng.choice((1000, 100_000, 1_000_000))
    return odd_text(rng)


def directives(rng: random.Random) -> str:
    """Mock provider directives: bounded (a few tokens, delays of a few ms), some breaking the run on purpose."""
    picks: list[str] = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(10)
        if kind == 0:
            picks.append(f"mock:tokens={rng.choice(('0', '1', '5', '40', 'abc', '-3', '1.5', ''))}")
        elif kind == 1:
            picks.append(f"mock:delay={rng.choice(('0', '1', '2', '-5', 'abc', 'nan', ''))}")
        elif kind in (2, 3):
            tool = rng.choice(("getWeather", "getWeather", "web_search", "web_fetch", "nope", ""))
            args = rng.choice(
                (
                    '{"city":"Paris"}',
                    '{"city":1}',
                    "{",
                    "[]",
                    "null",
                    '{"query":"x"}',
                    '{"url":"http://127.0.0.1:9/"}',
                    '{"url":"file:///etc/passwd"}',
                    '{"city":"' + "x" * 5000 + '"}',
                )
            )
            picks.append(f"mock:tool={tool} mock:args={args}")
            if rng.random() < 0.3:
                picks.append(f"mock:steps={rng.choice(('1', '2', '3', '9', '0', 'abc', '-1'))}")
        elif kind == 4:
            picks.append(f"mock:fail={rng.choice(('0', '1', '3', 'abc', '-1'))}")
        elif kind == 5:
            picks.append(f"mock:error={rng.choice(('rate_limit', 'boom', 'x' * 300))}")
        elif kind == 6:
            picks.append("mock:reasoning")
        else:
            picks.append(f"mock:tokens={rng.randint(0, 12)}")
    return " ".join(picks)


def message_text(rng: random.Random) -> str:
    words = " ".join(rng.choice(("hello", "what", "is", "the", "weather", "in", "Paris", "?")) for _ in range(4))
    roll = rng.random()
    if roll < 0.45:
        return f"{words} {directives(rng)}"
    if roll < 0.6:
        return odd_text(rng)
    if roll < 0.63:
        return "y" * rng.choice((100_000, 2_000_000))
    return f"{words} mock:tokens={rng.randint(1, 8)}"


def data_url(rng: random.Random) -> tuple[str, str]:
    """`(url, mediaType)` of a file part: valid, or broken one of many ways."""
    good = f"data:image/png;base64,{PNG_1X1}"
    pick = rng.randrange(16)
    cases = (
        (good, "image/png"),
        (good, "image/jpeg"),
        ("data:image/png;base64,!!!!", "image/png"),
        ("data:image/png;base64,iVBOR", "image/png"),
        ("data:image/png,rawbytes", "image/png"),
        ("data:;base64,AAAA", ""),
        ("data:image/svg+xml;base64,PHN2Zz4=", "image/svg+xml"),
        (f"data:IMAGE/PNG; charset=utf-8;base64,{PNG_1X1}", "Image/PNG"),
        ("http://127.0.0.1:9/x.png", "image/png"),
        ("data:", "image/png"),
        ("data:image/png;base64,", "image/png"),
        ("data:text/plain;base64," + base64.b64encode(b"hello").decode(), "text/plain"),
        ("data:image/png;base64,<big>", "image/png"),
        (f"data:image/png;base64,{PNG_1X1[:20]} \n{PNG_1X1[20:]}", "image/png"),
        (f"data:{'x' * 5000}/png;base64,AAAA", "image/png"),
        (f"data:image/png;base64,{PNG_1X1}\x00", "image/png"),
    )
    url, media_type = cases[pick]
    if url.endswith("<big>"):  # built only when picked: up to 1.4 MB of base64 (valid, but not a PNG)
        url = url.replace("<big>", "A" * rng.choice((4, 400_000, 1_400_000)))
    return url, media_type


def _slots(value: Any, out: list[tuple[Any, Any]]) -> None:
    if isinstance(value, dict):
        for key in list(value):
            out.append((value, key))
            _slots(value[key], out)
    elif isinstance(value, list):
        for i in range(len(value)):
            out.append((value, i))
            _slots(value[i], out)


def _containers(value: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(value, dict):
        out.append(value)
        for item in value.values():
            _containers(item, out)
    elif isinstance(value, list):
        for item in value:
            _containers(item, out)


def mutate(obj: Any, rng: random.Random, note: list[str]) -> Any:
    """Zero to three structural mutations of a JSON document (in place where possible)."""
    for _ in range(rng.choice((0, 1, 1, 1, 2, 3))):
        slots: list[tuple[Any, Any]] = []
        _slots(obj, slots)
        kind = rng.randrange(4)
        if kind == 0 and slots:
            container, key = rng.choice(slots)
            del container[key]
            note.append(f"removed {key!r}")
        elif kind == 1 and slots:
            container, key = rng.choice(slots)
            value = weird_value(rng)
            container[key] = value
            note.append(f"{key!r} = {_short(value)}")
        elif kind == 2:
            dicts: list[dict[str, Any]] = []
            _containers(obj, dicts)
            if dicts:
                name = rng.choice(("system", "extra", "__proto__", "", "threadId", "stream", "ünï", "k" * 300))
                value = weird_value(rng)
                rng.choice(dicts)[name] = value
                note.append(f"extra {name[:20]!r} = {_short(value)}")
        elif not slots:
            value = weird_value(rng)
            note.append(f"whole document = {_short(value)}")
            return value
        else:
            container, key = rng.choice(slots)
            container[key] = None
            note.append(f"{key!r} = None")
    return obj


def _short(value: Any) -> str:
    text = repr(value)
    return text[:60] + (f"... ({len(text)} chars)" if len(text) > 60 else "")


def encode(obj: Any, rng: random.Random, note: list[str]) -> bytes:
    """JSON bytes for `obj`, sometimes not quite JSON any more; `__deep_N_kind__` markers become N levels."""
    ascii_only = rng.random() < 0.5
    text = json.dumps(obj, ensure_ascii=ascii_only)
    for depth in (63, 64, 65, 300, 5000, 100000):
        for kind, (open_, close) in (("list", ("[", "]")), ("dict", ('{"a":', "}"))):
            marker = f'"__deep_{depth}_{kind}__"'
            if marker in text:
                text = text.replace(marker, open_ * depth + "1" + close * depth)
    body = text.encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.04:
        cut = rng.randrange(max(len(body), 1))
        note.append(f"truncated at {cut}")
        return body[:cut]
    if roll < 0.07 and body:
        at = rng.randrange(len(body))
        note.append(f"byte {at} replaced")
        return body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]
    if roll < 0.09:
        note.append("BOM prefix")
        return b"\xef\xbb\xbf" + body
    if roll < 0.11:
        note.append("trailing garbage")
        return body + rng.choice((b"}", b" x", b"\x00", b",", b"\n{}"))
    if roll < 0.12:
        note.append("UTF-16")
        return text.encode("utf-16", "surrogatepass")
    return body


def junk_body(rng: random.Random, note: list[str]) -> bytes:
    pick = rng.randrange(8)
    if pick == 0:
        note.append("empty body")
        return b""
    if pick == 1:
        n = rng.choice((1, 16, 1024, 65536))
        note.append(f"{n} random bytes")
        return rng.randbytes(n)
    if pick == 2:
        note.append("invalid JSON")
        return rng.choice((b"{", b"{'a': 1}", b'{"a":}', b"[1,]", b"nul", b'{"a" 1}', b'"\\ud800"', b'{"a":1e400}'))
    if pick == 3:
        note.append("JSON that is not an object")
        return rng.choice((b"[]", b"1", b"null", b'"text"', b"true", b"[{}]", b"-0", b"1e308"))
    if pick == 4:
        note.append("NaN/Infinity")
        return rng.choice((b'{"keep": NaN}', b'{"message": Infinity}', b'{"parts": -Infinity}'))
    if pick == 5:
        depth = rng.choice((65, 1000, 100000))
        note.append(f"array nested {depth} deep")
        return b"[" * depth + b"]" * depth
    if pick == 6:
        note.append("form-encoded")
        return b"message=hello&stream=true"
    note.append("invalid UTF-8 in a string")
    return b'{"message": "\xff\xfe\xed\xa0\x80", "parts": [{"type": "text", "text": "\xc0\xaf"}]}'


# --------------------------------------------------------------------------------------------------------------
# The fuzzer.


@dataclass
class Target:
    host: str
    port: int
    token: str
    other_token: str
    log: Path | None = None


@dataclass
class Pending:
    thread_id: str
    run_id: str
    tool_call_id: str
    approval_id: str
    message_id: str


class Fuzzer:
    def __init__(
        self, target: Target, *, seed: int, per_route: int, timeout: float = 20.0, trace: TextIO | None = None
    ) -> None:
        self.target = target
        self.trace = trace
        """Where to write one JSON line per request and answer (None: nowhere)."""
        self.seed = seed
        self.per_route = per_route
        self.timeout = timeout
        self.report = Report(seed=seed, per_route=per_route, log_path=str(target.log) if target.log else None)
        self.log = LogWatch(target.log)
        self.rng = random.Random(f"{seed}/setup")  # noqa: S311 - reproducible inputs, not secrets
        self.alice: list[str] = []
        """Alice's conversations (most recent last)."""
        self.bob: list[str] = []
        self.cursors: list[str] = []
        self.pending: list[Pending] = []
        self.decided: list[Pending] = []
        self.idempotency: dict[str, bytes] = {}
        self.consecutive_drops = 0
        self._lock = threading.Lock()
        self._fresh = 0

    # -- sending and recording

    def send(self, request: Request) -> Response:
        response = exchange(self.target.host, self.target.port, request, timeout=self.timeout)
        with self._lock:
            self.record(request, response)
        return response

    def record(self, request: Request, response: Response) -> None:
        route = request.route
        if self.trace is not None:
            line = {
                "route": route,
                "status": response.status,
                "drop": response.drop,
                "ms": round(response.elapsed * 1000, 1),
                "request": f"{request.method.decode('latin-1')} {_clip(request.target, 120)}",
                "note": request.note,
                "answer": _clip(response.body, 160),
            }
            self.trace.write(json.dumps(line) + "\n")
        stats = self.report.stats(route)
        stats.sent += 1
        described = request.describe

        def find(kind: str, detail: str) -> None:
            self.report.findings.append(Finding(kind, route, described(), response.status, detail))

        if response.drop is not None:
            stats.drops += 1
            stats.statuses["drop"] += 1
            self.consecutive_drops += 1
            find("drop", f"{response.drop} after {response.elapsed:.2f}s; got {_clip(response.body, 300)}")
            return
        self.consecutive_drops = 0
        body = response.body
        content_type = (response.header("content-type") or "").lower()
        if response.status == 400 and body == UVICORN_400 and content_type.startswith("text/plain"):
            stats.uvicorn_400 += 1
            stats.statuses["uv400"] += 1
            return
        stats.statuses[str(response.status)] += 1
        if route == "POST /api/chat" and 200 <= response.status < 300 and request.body is not None:
            key = dict(request.headers).get(b"Idempotency-Key", b"")
            if key.startswith(b"idem-"):
                self.idempotency[key.decode()] = request.body
        if any(name in response.headers for name in ("set-cookie", "x-injected")):
            stats.injected += 1
            find("header injection", f"response headers {response.headers}")
        error = _error_of(body) if "json" in content_type else None
        if response.status >= 500:
            if response.status == 502 and request.plain_answer and error is not None:
                stats.upstream_502 += 1
                self.report.upstream_errors[error[:80]] += 1
            else:
                stats.server_errors += 1
                find("5xx", f"body {_clip(body, 1000)}")
        elif response.status >= 400:
            if error is None and request.method != b"HEAD":  # a HEAD answer has no body to be JSON
                stats.non_json_4xx += 1
                find("non-JSON 4xx", f"content-type {content_type!r}, body {_clip(body, 500)}")
        elif "text/event-stream" in content_type:
            if not stream_terminated(response, route):
                stats.unterminated += 1
                find("unterminated stream", f"ends with {_clip(body[-300:], 300)}")
            if route != BACKGROUND:  # what the main thread learns stays in its own order (reproducible)
                self.learn_stream(request, response)
        elif "json" in content_type:
            try:
                obj = response.json()
            except (ValueError, RecursionError):
                find("bad 2xx JSON", f"body {_clip(body, 500)}")
            else:
                if route != BACKGROUND:
                    self.learn_json(request, response, obj)

    def check_log(self, route: str, request: Request | None) -> None:
        text = self.log.new()
        hits = sum(text.count(marker) for marker in LogWatch.MARKERS)
        if hits:
            with self._lock:
                self.report.stats(route).tracebacks += hits
                described = request.describe() if request is not None else "(between requests)"
                self.report.findings.append(Finding("traceback", route, described, 0, _excerpt(text)))

    # -- what the server told us, for later requests

    def owner(self, request: Request) -> str | None:
        """Whose token the request carries (None: none, a wrong one, or several Authorization headers)."""
        values = [value for name, value in request.headers if name.lower() == b"authorization"]
        if len(values) != 1:
            return None
        scheme, _, token = values[0].partition(b" ")
        if scheme.lower() != b"bearer":
            return None
        return {self.target.token.encode(): "alice", self.target.other_token.encode(): "bob"}.get(token.strip())

    def remember(self, owner: str | None, conversation_id: str | None) -> None:
        if owner is None or not conversation_id:
            return
        pool = self.alice if owner == "alice" else self.bob
        if conversation_id in pool:
            pool.remove(conversation_id)
        pool.append(conversation_id)
        del pool[:-60]

    def learn_stream(self, request: Request, response: Response) -> None:
        owner = self.owner(request)
        self.remember(owner, response.header("x-thread-id"))
        frames = parse_sse(response.body)
        self.cursors += [c for c in frames.ids if c]
        del self.cursors[:-200]
        run_id = response.header("x-run-id")
        thread_id = response.header("x-thread-id")
        message_id = ""
        for obj in frames.objects():
            if obj.get("type") == "start" and isinstance(obj.get("messageId"), str):
                message_id = obj["messageId"]
            if obj.get("type") == "tool-approval-request" and owner == "alice" and run_id and thread_id:
                self.pending.append(
                    Pending(thread_id, run_id, str(obj.get("toolCallId")), str(obj.get("approvalId")), message_id)
                )

    def learn_json(self, request: Request, response: Response, obj: Any) -> None:
        owner = self.owner(request)
        if isinstance(obj, dict):
            conversation = obj.get("conversationId")
            if request.route in ("POST /api/chat", SETUP) and isinstance(conversation, str):
                self.remember(owner, conversation)
            # A delete that succeeded took the conversation away, whoever asked.
            if request.route.startswith("DELETE") and isinstance(conversation, str):
                self._forget(conversation)
            deleted = obj.get("deletedChat")
            if isinstance(deleted, dict) and isinstance(deleted.get("id"), str):
                self._forget(deleted["id"])

    def _forget(self, conversation_id: str) -> None:
        for pool in (self.alice, self.bob):
            if conversation_id in pool:
                pool.remove(conversation_id)
        self.pending = [p for p in self.pending if p.thread_id != conversation_id]

    # -- known-good requests the fuzz builds on

    def auth(self, who: str = "alice") -> list[tuple[bytes, bytes]]:
        token = self.target.token if who == "alice" else self.target.other_token
        return [(b"Authorization", b"Bearer " + token.encode())]

    def fresh_id(self, rng: random.Random) -> str:
        self._fresh += 1
        return f"fz-{self.seed}-{self._fresh}-{rng.randrange(10**6)}"

    def setup_send(self, text: str, *, who: str = "alice", thread_id: str | None = None) -> Response:
        body: dict[str, Any] = {"parts": [{"type": "text", "text": text}]}
        if thread_id is not None:
            body["threadId"] = thread_id
        request = Request(
            SETUP,
            b"POST",
            b"/api/chat",
            [*self.auth(who), (b"Content-Type", b"application/json")],
            json.dumps(body).encode(),
        )
        response = self.send(request)
        self.check_log(SETUP, request)
        return response

    def ensure_conversations(self, rng: random.Random, n: int = 4) -> None:
        while len(self.alice) < n and self.report.aborted is None:
            before = len(self.alice)
            self.setup_send(f"hello mock:tokens={rng.randint(1, 4)}", thread_id=self.fresh_id(rng))
            if len(self.alice) == before:
                break
        if not self.bob:
            self.setup_send("bob's own mock:tokens=2", who="bob", thread_id=self.fresh_id(rng))

    def take_pending(self, rng: random.Random) -> Pending | None:
        if not self.pending:
            self.setup_send(
                'weather please mock:tool=getWeather mock:args={"city":"Paris"}', thread_id=self.fresh_id(rng)
            )
        if not self.pending:
            return None
        pending = self.pending.pop(rng.randrange(len(self.pending)))
        self.decided.append(pending)
        del self.decided[:-50]
        return pending

    def background_run(self, rng: random.Random) -> tuple[str, threading.Thread]:
        """A streaming send in another thread, generating for a little while (about 0.1 s)."""
        thread_id = self.fresh_id(rng)
        text = f"slow mock:tokens={rng.randint(20, 60)} mock:delay={rng.choice((1, 2, 3))}"
        body = json.dumps({"parts": [{"type": "text", "text": text}], "threadId": thread_id}).encode()
        request = Request(BACKGROUND, b"POST", b"/api/chat", [*self.auth(), (b"Content-Type", b"application/json")])
        request.body = body
        worker = threading.Thread(target=self.send, args=(request,), daemon=True)
        worker.start()
        time.sleep(rng.uniform(0.0, 0.06))
        return thread_id, worker

    # -- pieces of fuzzed requests

    def pick_auth(self, rng: random.Random, note: list[str]) -> list[tuple[bytes, bytes]]:
        roll = rng.random()
        if roll < 0.72:
            return self.auth()
        if roll < 0.8:
            note.append("auth: other user")
            return self.auth("bob")
        token = self.target.token.encode()
        variants: list[tuple[str, list[tuple[bytes, bytes]]]] = [
            ("missing", []),
            ("garbage", [(b"Authorization", b"Bearer " + rng.randbytes(12).hex().encode())]),
            ("empty bearer", [(b"Authorization", b"Bearer ")]),
            ("empty", [(b"Authorization", b"")]),
            ("basic", [(b"Authorization", b"Basic " + base64.b64encode(token + b":x"))]),
            ("lower-case scheme", [(b"Authorization", b"bearer " + token)]),
            ("double space", [(b"Authorization", b"Bearer  " + token)]),
            ("token prefix", [(b"Authorization", b"Bearer " + token[:-1])]),
            ("very long", [(b"Authorization", b"Bearer " + b"a" * rng.choice((5000, 60000)))]),
            ("non-ASCII", [(b"Authorization", b"Bearer t\xc3\xb6k\xff")]),
            ("two headers", [(b"Authorization", b"Bearer nope"), *self.auth()]),
            ("JWT-looking", [(b"Authorization", b"Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.")]),
            ("control char", [(b"Authorization", b"Bearer " + token + b"\x01")]),
        ]
        label, headers = rng.choice(variants)
        note.append(f"auth: {label}")
        return headers

    def odd_headers(self, rng: random.Random, note: list[str]) -> list[tuple[bytes, bytes]]:
        if rng.random() > 0.3:
            return []
        out: list[tuple[bytes, bytes]] = []
        for _ in range(rng.randint(1, 3)):
            pick = rng.randrange(10)
            if pick == 0:
                value = rng.choice((b"text/event-stream", b"*/*", b"application/json", b"\xff", b"x" * 9000))
                out.append((b"Accept", value))
            elif pick == 1:
                out.append((b"Idempotency-Key", self.odd_idempotency_key(rng)))
            elif pick == 2:
                out.append((b"Last-Event-ID", self.odd_cursor(rng).encode("utf-8", "surrogatepass")))
            elif pick == 3:
                out.append((b"X-Forwarded-For", rng.choice((b"1.2.3.4", b"not-an-ip", b", , ,", b"::1" * 500))))
            elif pick == 4:
                out.append((b"Expect", b"100-continue"))
            elif pick == 5:
                out.append((b"Host", rng.choice((b"", b"evil.example", b"h" * 5000, b"\xc3\xa9:99999"))))
            elif pick == 6:
                out.append((b"Origin", rng.choice((b"null", b"https://evil.example", b"\x00"))))
            elif pick == 7:
                out.append((b"Content-Encoding", rng.choice((b"gzip", b"br", b"identity, x"))))
            elif pick == 8:
                out += [(b"X-Fuzz-%d" % i, b"v" * 50) for i in range(rng.choice((10, 100)))]
            else:
                out.append((b"Cookie", b"session=" + rng.randbytes(20).hex().encode()))
        names = sorted({"X-Fuzz-<n>" if name.startswith(b"X-Fuzz-") else name.decode() for name, _ in out})
        note.append("odd headers: " + ", ".join(names))
        return out

    def content_type(self, rng: random.Random, note: list[str]) -> list[tuple[bytes, bytes]]:
        if rng.random() < 0.75:
            return [(b"Content-Type", b"application/json")]
        value = rng.choice(
            (
                b"",
                b"text/plain",
                b"application/x-www-form-urlencoded",
                b"multipart/form-data; boundary=x",
                b"application/json; charset=utf-16",
                b"application/xml",
                b"application/json, text/html",
                b"\xff\xfe",
                None,
            )
        )
        note.append(f"content-type {value!r}")
        return [] if value is None else [(b"Content-Type", value)]

    def odd_idempotency_key(self, rng: random.Random) -> bytes:
        return rng.choice(
            (
                b"",
                b" ",
                b"k" * 255,
                b"k" * 256,
                b"k" * 5000,
                b"\xc3\xa9t\xc3\xa9",
                b"\xff",
                b"a\tb",
                b"a\x01b",
                b"ok-" + str(rng.randrange(1000)).encode(),
            )
        )

    def odd_cursor(self, rng: random.Random) -> str:
        if self.cursors and rng.random() < 0.4:
            cursor = rng.choice(self.cursors)
            return rng.choice((cursor, cursor + "1", cursor + ".0", cursor.replace(".", "-"), "-" + cursor))
        return rng.choice(
            (
                "0",
                "-1",
                "0-0",
                "0-0.0",
                "1",
                "2",
                "999999",
                "1.2.3",
                "..",
                "-",
                "1-",
                "9" * 30,
                "9" * 64,
                "9" * 65,
                str(2**64),
                f"{2**64 - 1}-{2**64 - 1}",
                f"1-{2**64}",
                "99999999999999999999-99999999999999999999.99999999999999999999",
                "\u0663",
                "\u0661\u0662\u0663-\u0660",
                "²",
                "abc",
                "",
                " 1",
                "1\x00",
                "\uff11",
            )
        )

    def path_id(self, rng: random.Random, note: list[str], *, live: str | None = None) -> bytes:
        """A path segment as it goes on the wire."""
        roll = rng.random()
        if live is not None and roll < 0.6:
            note.append("id: a running conversation")
            return live.encode()
        if roll < 0.45 and self.alice:
            note.append("id: alice's")
            return quote(rng.choice(self.alice), safe="").encode()
        if roll < 0.53 and self.bob:
            note.append("id: bob's")
            return quote(rng.choice(self.bob), safe="").encode()
        if roll < 0.62:
            note.append("id: unknown valid")
            return self.fresh_id(rng).encode()
        cases: list[tuple[str, bytes]] = [
            ("unicode, encoded", quote(rng.choice(UNICODE), safe="").encode()),
            ("unicode, raw UTF-8", rng.choice(UNICODE).encode("utf-8")),
            ("%00", b"a%00b"),
            ("%0D%0A injection", b"a%0D%0ASet-Cookie:%20fuzz=1%0D%0AX-Injected:%201"),
            ("raw CRLF", b"a\r\nX-Injected: 1"),
            ("raw NUL", b"a\x00b"),
            ("raw space", b"a b"),
            ("raw tab", b"a\tb"),
            ("%ff", b"%ff"),
            ("%fe%ff", b"%fe%ff%fe"),
            ("overlong", b"%C0%AF"),
            ("%2F", b"a%2Fb"),
            ("%2f..", b"%2e%2e%2f%2e%2e"),
            ("%25", b"%25"),
            ("lone %", b"a%"),
            ("%zz", b"%zz"),
            ("%01", b"%01"),
            ("%7F", b"%7F"),
            ("dots", rng.choice((b".", b"..", b"..."))),
            ("empty", b""),
            ("128 chars", b"a" * 128),
            ("129 chars", b"a" * 129),
            ("very long", b"b" * rng.choice((5000, 60000))),
            ("query char", b"a%3Fb=1"),
            ("hash", b"a%23b"),
            ("plus", b"a+b"),
            ("colon", b"a:b:c"),
            ("backslash", b"a%5Cb"),
            (
                "known id + odd",
                quote((self.alice or ["x"])[-1] + rng.choice(("\x00", "é", " ", "/")), safe="").encode(),
            ),
        ]
        label, value = rng.choice(cases)
        note.append(f"id: {label}")
        return value

    def body_id(self, rng: random.Random, note: list[str], name: str) -> Any:
        roll = rng.random()
        if roll < 0.3 and self.alice:
            return rng.choice(self.alice)
        if roll < 0.36 and self.bob:
            note.append(f"{name}: bob's")
            return rng.choice(self.bob)
        if roll < 0.8:
            return self.fresh_id(rng)
        value = rng.choice((odd_text(rng), "a" * 129, "", "a b", "a/b", "..", 123, None, "%00"))
        note.append(f"{name}: {_short(value)}")
        return value

    def selectors(self, rng: random.Random, body: dict[str, Any]) -> None:
        if rng.random() < 0.3:
            body["provider"] = rng.choice((None, "mock", "default", "openai", "claude", "nope", "", "MOCK"))
        if rng.random() < 0.3:
            body["model"] = rng.choice((None, "mock-1", "mock-thinking", "mock/mock-1", "gpt-4o", "openai/x", ""))
        if rng.random() < 0.2:
            body["mood"] = rng.choice(("serious", "friendly", "normal", "angry", ""))
        if rng.random() < 0.2:
            body["webSearch"] = rng.choice((True, False))
        if rng.random() < 0.2:
            body["channel"] = rng.choice(("api", "web", "é", "", "c" * 300, "a:b*"))

    def text_parts(self, rng: random.Random) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = [{"type": "text", "text": message_text(rng)}]
        if rng.random() < 0.2:
            url, media_type = data_url(rng)
            part: dict[str, Any] = {"type": "file", "mediaType": media_type, "url": url}
            if rng.random() < 0.3:
                part["filename"] = odd_text(rng)
            parts.insert(rng.randrange(2), part)
        if rng.random() < 0.05:
            parts.append({"type": rng.choice(("image", "reasoning", "tool-x", "", "TEXT")), "text": "x"})
        return parts

    def body_bytes(self, rng: random.Random, obj: Any, note: list[str]) -> bytes:
        if rng.random() < 0.08:
            return junk_body(rng, note)
        if rng.random() < 0.55:
            obj = mutate(obj, rng, note)
        return encode(obj, rng, note)

    def finish(
        self,
        rng: random.Random,
        route: str,
        method: bytes,
        target: bytes,
        note: list[str],
        *,
        body: bytes | None = None,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> Request:
        headers = [*self.pick_auth(rng, note), *(extra or []), *self.odd_headers(rng, note)]
        if body is not None:
            headers += self.content_type(rng, note)
        request = Request(route, method, target, headers, body, note=note)
        if body is not None and rng.random() < 0.1:
            request.chunked = True
            note.append("chunked body")
        if body is not None and rng.random() < 0.01:
            request.declared_length = 50 * 1024 * 1024
            note.append("declared 50 MB, sent nothing")
        return request

    # -- one generator per route

    def gen_send(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        shape = rng.choice(("parts", "parts", "transport", "chatbot", "plain", "plain", "approval"))
        parts = self.text_parts(rng)
        body: dict[str, Any]
        extra: list[tuple[bytes, bytes]] = []
        if shape == "parts":
            body = {"parts": parts}
            if rng.random() < 0.6:
                body[rng.choice(("threadId", "threadId", "conversationId"))] = (
                    live if live and rng.random() < 0.5 else self.body_id(rng, note, "threadId")
                )
        elif shape == "transport":
            message = {"id": self.fresh_id(rng), "role": "user", "parts": parts}
            history = [{"id": self.fresh_id(rng), "role": "assistant", "parts": [{"type": "text", "text": "hi"}]}]
            body = {
                "id": live if live and rng.random() < 0.5 else self.body_id(rng, note, "id"),
                "messages": [*history[: rng.randint(0, 1)], message],
                "trigger": "submit-message",
                "messageId": message["id"],
            }
        elif shape == "chatbot":
            body = {
                "id": self.body_id(rng, note, "id"),
                "message": {"id": self.fresh_id(rng), "role": "user", "parts": parts},
                "selectedChatModel": rng.choice(("mock-1", "mock-thinking", "gpt-4o", "")),
                "selectedVisibilityType": rng.choice(("private", "public")),
            }
        elif shape == "plain":
            body = {"message": message_text(rng)}
            if rng.random() < 0.5:
                body["conversationId"] = self.body_id(rng, note, "conversationId")
            if rng.random() < 0.4:
                body["stream"] = True
            if rng.random() < 0.15:
                url, media_type = data_url(rng)
                body["image"] = url if rng.random() < 0.5 else url.partition(",")[2]
                if rng.random() < 0.5:
                    body["imageMimeType"] = media_type
            if rng.random() < 0.15:
                extra.append((b"Accept", b"text/event-stream"))
        else:
            pending = self.take_pending(rng)
            decided = pending or Pending(self.fresh_id(rng), "run-x", "call_1", "apv-x", "msg-x")
            note.append("approval via messages" + ("" if pending else " (no pending approval)"))
            body = {
                "id": decided.thread_id,
                "messages": [
                    {
                        "id": decided.message_id or self.fresh_id(rng),
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool-getWeather",
                                "toolCallId": decided.tool_call_id,
                                "state": "approval-responded",
                                "input": {"city": "Paris"},
                                "approval": {"id": decided.approval_id, "approved": rng.random() < 0.5},
                            }
                        ],
                    }
                ],
            }
        note.insert(0, f"shape {shape}")
        self.selectors(rng, body)
        roll = rng.random()
        if self.idempotency and roll < 0.18:
            # A key an earlier send was answered under: the same body again gets that run's stream (or its
            # stored answer); another body is a 422.
            key, previous = rng.choice(sorted(self.idempotency.items()))
            extra.append((b"Idempotency-Key", key.encode()))
            same = roll < 0.1
            note.append(f"idempotency key reused, {'same' if same else 'another'} body")
            raw = previous if same else encode(body, rng, note)
        else:
            if roll < 0.3:
                extra.append((b"Idempotency-Key", f"idem-{self.fresh_id(rng)}".encode()))
            raw = self.body_bytes(rng, body, note)
        request = self.finish(rng, "POST /api/chat", b"POST", b"/api/chat", note, body=raw, extra=extra)
        request.plain_answer = plain_shape(raw)
        return request

    def gen_approve(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        roll = rng.random()
        source: Pending | None = None
        if roll < 0.55:
            source = self.take_pending(rng)
            note.append("a pending approval" if source else "no pending approval to be had")
        elif roll < 0.7 and self.decided:
            source = rng.choice(self.decided)
            note.append("an approval already decided")
        body: dict[str, Any] = {
            "runId": source.run_id if source else rng.choice(("run-x", self.fresh_id(rng))),
            "threadId": source.thread_id if source else (live or self.body_id(rng, note, "threadId")),
            "toolCallId": source.tool_call_id if source else rng.choice(("call_1", "call_2", None)),
            "approved": rng.choice((True, False, None)),
        }
        if rng.random() < 0.3:
            body["messageId"] = source.message_id if source else self.fresh_id(rng)
        if rng.random() < 0.3:
            body["reason"] = rng.choice(("ok", odd_text(rng)))
        raw = self.body_bytes(rng, body, note)
        return self.finish(rng, "POST /api/chat/approve", b"POST", b"/api/chat/approve", note, body=raw)

    def gen_resume(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        target = b"/api/chat/" + self.path_id(rng, note, live=live) + b"/stream"
        extra: list[tuple[bytes, bytes]] = []
        roll = rng.random()
        if roll < 0.35:
            cursor = self.odd_cursor(rng)
            extra.append((b"Last-Event-ID", cursor.encode("utf-8", "surrogatepass")))
            note.append(f"Last-Event-ID {cursor[:40]!r}")
        elif roll < 0.55:
            cursor = self.odd_cursor(rng)
            target += b"?cursor=" + quote(cursor, safe="").encode()
            note.append(f"?cursor={cursor[:40]!r}")
        elif roll < 0.6:
            target += b"?cursor=" + rng.choice((b"%ff", b"%00", b"&cursor=1", b"1&cursor=2", b"", b"%"))
            note.append("odd cursor query")
        body = rng.randbytes(10) if rng.random() < 0.03 else None
        return self.finish(rng, "GET /api/chat/{id}/stream", b"GET", target, note, body=body, extra=extra)

    def gen_stop(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        target = b"/api/chat/" + self.path_id(rng, note, live=live) + b"/stop"
        body = junk_body(rng, note) if rng.random() < 0.2 else None
        return self.finish(rng, "POST /api/chat/{id}/stop", b"POST", target, note, body=body)

    def query_value(self, rng: random.Random, note: list[str], name: str) -> bytes:
        if rng.random() < 0.5 and (self.alice or self.bob) and name in ("id", "conversationId"):
            pool = self.alice if self.alice and rng.random() < 0.8 else self.bob or self.alice
            return quote(rng.choice(pool), safe="").encode()
        value = self.path_id(rng, note)
        return value

    def limit_value(self, rng: random.Random, note: list[str]) -> bytes:
        value = rng.choice(
            (
                b"1",
                b"20",
                b"100",
                b"0",
                b"-1",
                b"101",
                b"-99999999999999999999",
                b"9" * 40,
                b"9" * 5000,
                b"abc",
                b"1.5",
                b"1e3",
                b"",
                b"%20%205",
                b"%2B5",
                b"0x10",
                b"%D9%A3",
                b"%EF%BC%95",
                b"%00",
                b"5%00",
                b"NaN",
                b"inf",
                b"-0",
                b"%ff",
                b"1_0",
            )
        )
        note.append(f"limit={value[:30]!r}")
        return value

    def gen_delete_chat(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        roll = rng.random()
        if live is not None and roll < 0.5:
            query = b"id=" + live.encode()
            note.append("id: a running conversation")
        elif roll < 0.85:
            query = b"id=" + self.query_value(rng, note, "id")
        else:
            query = rng.choice((b"", b"id", b"id=", b"id=a&id=b", b"ID=x", b"id=%", b"id[]=x", b"&&&"))
            note.append(f"query {query!r}")
        return self.finish(rng, "DELETE /api/chat?id=", b"DELETE", b"/api/chat?" + query, note)

    def gen_conversations(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        params: list[bytes] = []
        if rng.random() < 0.6:
            params.append(b"limit=" + self.limit_value(rng, note))
        if rng.random() < 0.4:
            channel = rng.choice(("api", "web", odd_text(rng), ""))
            params.append(b"channel=" + quote(channel, safe="", errors="surrogatepass").encode())
            note.append(f"channel={channel[:30]!r}")
        if rng.random() < 0.1:
            params.append(rng.choice((b"limit=1&limit=abc", b"extra=1", b"channel", b"%ff=%ff", b"limit")))
        target = b"/api/chat/conversations" + (b"?" + b"&".join(params) if params else b"")
        return self.finish(rng, "GET /api/chat/conversations", b"GET", target, note)

    def gen_messages(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        params: list[bytes] = []
        roll = rng.random()
        if live is not None and roll < 0.4:
            params.append(b"conversationId=" + live.encode())
        elif roll < 0.9:
            params.append(b"conversationId=" + self.query_value(rng, note, "conversationId"))
        else:
            note.append("no conversationId")
        if rng.random() < 0.6:
            params.append(b"limit=" + self.limit_value(rng, note))
        target = b"/api/chat/messages" + (b"?" + b"&".join(params) if params else b"")
        return self.finish(rng, "GET /api/chat/messages", b"GET", target, note)

    def gen_delete_conversation(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        target = b"/api/chat/conversations/" + self.path_id(rng, note, live=live)
        return self.finish(rng, "DELETE /api/chat/conversations/{id}", b"DELETE", target, note)

    def gen_truncate(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        target = b"/api/chat/conversations/" + self.path_id(rng, note, live=live) + b"/truncate"
        keep: Any = (
            rng.choice((0, 1, 2, 5, 100))
            if rng.random() < 0.5
            else rng.choice((-1, *BIG_INTS, 1.0, 2.5, "2", True, None, [], {"n": 1}))
        )
        note.append(f"keep={_short(keep)}")
        raw = self.body_bytes(rng, {"keep": keep}, note) if rng.random() < 0.9 else b""
        return self.finish(rng, "POST /api/chat/conversations/{id}/truncate", b"POST", target, note, body=raw)

    def gen_seed003(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        target = b"/api/chats/" + self.path_id(rng, note, live=live) + b"/messages/stream"
        body: dict[str, Any] = {
            "content": message_text(rng),
            "modelId": rng.choice(("mock-1", "mock-thinking", "gpt-4o", "")),
        }
        if rng.random() < 0.4:
            body["userId"] = rng.choice(("alice", "bob", "", odd_text(rng)))
        if rng.random() < 0.2:
            body["workflowId"] = rng.choice(("wf-1", odd_text(rng)))
        raw = self.body_bytes(rng, body, note)
        return self.finish(rng, "POST /api/chats/{id}/messages/stream", b"POST", target, note, body=raw)

    def gen_ops(self, route: str, path: bytes, rng: random.Random) -> Request:
        note: list[str] = []
        target = path
        if rng.random() < 0.4:
            target += b"?" + rng.choice((b"x=1", b"%ff", b"a=%00", b"&&", b"q=" + b"z" * 5000, b"limit=-1"))
            note.append("query")
        if rng.random() < 0.1:
            target += rng.choice((b"/", b"/x", b"%00", b"/.."))
            note.append("suffix")
        body = junk_body(rng, note) if rng.random() < 0.1 else None
        return self.finish(rng, route, b"GET", target, note, body=body)

    def gen_unrouted(self, rng: random.Random, live: str | None) -> Request:
        note: list[str] = []
        method = rng.choice(
            (b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"HEAD", b"TRACE", b"FOO", b"get")
        )
        target = rng.choice(
            (
                b"/",
                b"/api",
                b"/api/",
                b"/api/chat/",
                b"/api/chat/x/y/z",
                b"//api/chat",
                b"/api/chat/conversations/x/y",
                b"/api/chats/x/messages",
                b"/api/chat/x/stream/extra",
                b"/API/CHAT",
                b"/healthz/",
                b"/metrics.json",
                b"/favicon.ico",
                b"/api/chat/%2e%2e/conversations",
                b"/../../etc/passwd",
                b"/api/chat?" + b"q" * 8000,
                b"/" + quote(rng.choice(UNICODE)).encode(),
                b"/api/chat/conversations/x",
                b"/api/chat/approve",
                b"/api/models",
            )
        )
        note.append(f"{method.decode()} on {target[:40]!r}")
        body = self.body_bytes(rng, {"message": "hi"}, note) if rng.random() < 0.3 else None
        return self.finish(rng, "(unrouted)", method, target, note, body=body)

    # -- the run

    def generators(self) -> dict[str, Callable[[random.Random, str | None], Request]]:
        def ops(route: str, path: bytes) -> Callable[[random.Random, str | None], Request]:
            return lambda rng, _live: self.gen_ops(route, path, rng)

        return {
            "POST /api/chat": self.gen_send,
            "POST /api/chat/approve": self.gen_approve,
            "GET /api/chat/{id}/stream": self.gen_resume,
            "POST /api/chat/{id}/stop": self.gen_stop,
            "DELETE /api/chat?id=": self.gen_delete_chat,
            "GET /api/chat/conversations": self.gen_conversations,
            "GET /api/chat/messages": self.gen_messages,
            "DELETE /api/chat/conversations/{id}": self.gen_delete_conversation,
            "POST /api/chat/conversations/{id}/truncate": self.gen_truncate,
            "POST /api/chats/{id}/messages/stream": self.gen_seed003,
            "GET /api/models": ops("GET /api/models", b"/api/models"),
            "GET /healthz": ops("GET /healthz", b"/healthz"),
            "GET /readyz": ops("GET /readyz", b"/readyz"),
            "GET /metrics": ops("GET /metrics", b"/metrics"),
            "(unrouted)": self.gen_unrouted,
        }

    LIVE_ROUTES = frozenset(
        {
            "POST /api/chat",
            "POST /api/chat/approve",
            "GET /api/chat/{id}/stream",
            "POST /api/chat/{id}/stop",
            "DELETE /api/chat?id=",
            "GET /api/chat/messages",
            "DELETE /api/chat/conversations/{id}",
            "POST /api/chat/conversations/{id}/truncate",
            "POST /api/chats/{id}/messages/stream",
        }
    )

    def run(self, routes: tuple[str, ...] = ROUTES, progress: Callable[[str], None] | None = None) -> Report:
        started = time.monotonic()
        self.ensure_conversations(self.rng)
        self.take_pending(self.rng)  # one approval waiting, so the first requests can find it
        generators = self.generators()
        for route in routes:
            rng = random.Random(f"{self.seed}/{route}")  # noqa: S311 - reproducible inputs, not secrets
            for _ in range(self.per_route):
                if self.consecutive_drops >= 25:
                    self.report.aborted = f"{self.consecutive_drops} dropped connections in a row (server gone?)"
                    break
                self.ensure_conversations(rng)
                live: str | None = None
                worker: threading.Thread | None = None
                if route in self.LIVE_ROUTES and rng.random() < 0.15:
                    live, worker = self.background_run(rng)
                request = generators[route](rng, live)
                self.send(request)
                if worker is not None:
                    worker.join(self.timeout + 5)
                    time.sleep(0.1)  # the run may log a little after its readers have ended
                self.check_log(route, request)
            if progress is not None:
                stats = self.report.stats(route)
                progress(f"{route}: {stats.sent} sent, {sum(stats.statuses.values())} answered")
            if self.report.aborted:
                break
        time.sleep(0.3)  # anything a background run logs after its stream ended
        self.check_log(BACKGROUND, None)
        self.report.log_tracebacks, self.report.log_unhandled = self.log.totals()
        probe = exchange(self.target.host, self.target.port, Request("probe", b"GET", b"/healthz"), timeout=5)
        self.report.server_alive = probe.status == 200
        self.report.elapsed = time.monotonic() - started
        return self.report


def run_fuzz(target: Target, *, seed: int, per_route: int, timeout: float = 20.0) -> Report:
    """The fuzzer's core: every route against a running server; the log (if given) is checked as it grows."""
    return Fuzzer(target, seed=seed, per_route=per_route, timeout=timeout).run()


def plain_shape(body: bytes) -> bool:
    """Whether the server reads `body` as the plain shape (its order: parts, messages, message object, string)."""
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(obj, dict)
        and "parts" not in obj
        and not ("messages" in obj and "message" not in obj)
        and isinstance(obj.get("message"), str)
    )


def _excerpt(log: str, limit: int = 8000) -> str:
    """The log from the record that carries the first traceback (or unhandled error) on."""
    at = min(i for i in (log.find(marker) for marker in LogWatch.MARKERS) if i >= 0)
    start = log.rfind("\n", 0, at) + 1
    if log.startswith("Traceback", start) and start > 0:
        start = log.rfind("\n", 0, start - 1) + 1  # the record the traceback belongs to
    return log[start : start + limit]


def _error_of(body: bytes) -> str | None:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("error"), str):
        return str(obj["error"])
    return None


# --------------------------------------------------------------------------------------------------------------
# A server of our own.


class Server:
    """`python -m app` on a free port with the fuzzing environment; its output goes to `log`."""

    def __init__(self, log: Path, *, redis_url: str | None, tokens: tuple[str, str]) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.log = log
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "OPENAI_", "ANTHROPIC_"))}
        for name in (
            "REDIS_URL",
            "DATABASE_URL",
            "GROQ_API_KEY",
            "OPENROUTER_API_KEY",
            "GOOGLE_API_KEY",
            "GEMINI_API_KEY",
        ):
            base.pop(name, None)
        self.env = {
            **base,
            **fuzz_env(redis_url),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "CHAT_AUTH_TOKENS": f"{tokens[0]}:alice:premium,{tokens[1]}:bob:premium",
            "PYTHONPATH": str(ROOT),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            probe = exchange("127.0.0.1", self.port, Request("probe", b"GET", b"/healthz"), timeout=1)
            if probe.status == 200:
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def print_report(report: Report, *, details: int = 20) -> None:
    print()
    print(report.table())
    print()
    if report.upstream_errors:
        print("documented 502s (plain answers whose run failed), by error:")
        for error, n in report.upstream_errors.most_common():
            print(f"  {n:5d}  {error}")
        print()
    print(f"server log: {report.log_path or '(none given)'}")
    print(f"  'Traceback': {report.log_tracebacks}, 'unhandled error': {report.log_unhandled}")
    print(f"server alive at the end: {report.server_alive}")
    if report.aborted:
        print(f"ABORTED: {report.aborted}")
    kinds = Counter(f.kind for f in report.findings)
    for kind, n in sorted(kinds.items()):
        print(f"\n=== {kind}: {n} (first {min(n, details)})")
        for finding in [f for f in report.findings if f.kind == kind][:details]:
            print(f"--- {finding.route} -> {finding.status or '-'}")
            print(finding.request)
            print(f"  => {finding.detail}")
    verdict = "FAILED" if report.failed else "OK"
    print(f"\n{verdict}: seed {report.seed}, {report.per_route} per route, {report.elapsed:.1f}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--url", help="target a running server (default: start python -m app)")
    parser.add_argument("--redis-url", help="REDIS_URL for the server this script starts (default: memory)")
    parser.add_argument("--per-route", type=int, default=200, help="requests per route (default 200)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, printed)")
    parser.add_argument("--token", default=DEFAULT_TOKENS[0], help="alice's bearer token")
    parser.add_argument("--other-token", default=DEFAULT_TOKENS[1], help="bob's bearer token (another user)")
    parser.add_argument("--log", type=Path, help="the server's log (with --url); default: the started server's")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--trace", type=Path, help="write every request and answer here, one JSON line each")
    parser.add_argument("--details", type=int, default=20, help="findings printed per kind (default 20)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed}", flush=True)
    server: Server | None = None
    if args.url:
        parts = urlsplit(args.url)
        target = Target(parts.hostname or "127.0.0.1", parts.port or 80, args.token, args.other_token, args.log)
    else:
        log = args.log or Path(tempfile.mkdtemp(prefix="fuzz-routes-")) / "server.log"
        server = Server(log, redis_url=args.redis_url, tokens=(args.token, args.other_token))
        server.start()
        backend = f"Redis ({args.redis_url})" if args.redis_url else "memory"
        print(f"server pid {server.proc.pid if server.proc else '?'} on port {server.port}, {backend}, log {log}")
        target = Target("127.0.0.1", server.port, args.token, args.other_token, log)
    trace = args.trace.open("w") if args.trace else None
    try:
        fuzzer = Fuzzer(target, seed=seed, per_route=args.per_route, timeout=args.timeout, trace=trace)
        report = fuzzer.run(progress=lambda line: print(line, flush=True))
    finally:
        if server is not None:
            server.stop()
        if trace is not None:
            trace.close()
    if server is not None:
        # What the server logged while stopping counts too.
        report.log_tracebacks, report.log_unhandled = LogWatch(target.log).totals()
    print_report(report, details=args.details)
    if args.json:
        args.json.write_text(json.dumps(report.summary(), indent=2))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
