"""`python -m app`: serve the standalone server. Command-line options override the environment."""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import socket
import sys

import uvicorn

from app.server import banner, configure_logging, standalone_settings
from chatstream import ChatPlugin, Settings
from chatstream.errors import ConfigError

_LEVELS = ("critical", "error", "warning", "info", "debug")


def _workers(value: str) -> int:
    """`--workers`: a count, or `auto` for the number of cores."""
    if value.strip().lower() == "auto":
        return os.cpu_count() or 1
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description="Serve chatstream. Every other setting comes from the environment (see the README).",
    )
    parser.add_argument("--host", default=env.get("HOST") or "127.0.0.1", help="address to bind (env HOST)")
    parser.add_argument("--port", type=int, default=int(env.get("PORT") or 8000), help="port (env PORT)")
    parser.add_argument(
        "--workers",
        type=_workers,
        default=env.get("CHAT_WORKERS") or "1",
        help="worker processes sharing the port, or `auto` for one per core (env CHAT_WORKERS); more than one "
        "needs REDIS_URL",
    )
    parser.add_argument(
        "--log-level", choices=_LEVELS, default=env.get("CHAT_LOG_LEVEL") or "info", help="(env CHAT_LOG_LEVEL)"
    )
    parser.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.reload and args.workers > 1:
        parser.error("--reload and --workers cannot be combined")
    return args


def _check_port(host: str, port: int) -> None:
    """Exit with one line if the address cannot be bound, before the banner says we serve on it (uvicorn would
    log the failure after it). Bound as uvicorn binds: the address family by the host, SO_REUSEADDR."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                print(f"error: port {port} on {host} is already in use", file=sys.stderr)
            else:
                print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
            raise SystemExit(2) from None


GRACE_MARGIN = 10
"""Seconds uvicorn waits beyond the drain grace: a stopped run's end (up to `STOP_WAIT`) and its last frames."""


def graceful_timeout(settings: Settings) -> int:
    """uvicorn's `timeout_graceful_shutdown`: the run grace plus a margin, so no open stream is cancelled
    before its run has ended. `uvicorn app.main:app` users pass it themselves
    (`--timeout-graceful-shutdown`, e.g. 40 with the default 30 s grace)."""
    return math.ceil(settings.shutdown_grace_seconds) + GRACE_MARGIN


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Workers are separate processes that build their settings from the environment: hand them ours.
    os.environ.update(HOST=args.host, PORT=str(args.port), CHAT_LOG_LEVEL=args.log_level)
    try:
        settings = standalone_settings()
        if args.workers > 1 and not settings.redis_url:
            raise ConfigError(
                f"--workers needs REDIS_URL ({args.workers} asked for): without it streams, runs and limits live "
                "in each process's memory (and conversations in a local SQLite file), so each worker would keep its "
                "own; set REDIS_URL, or run one worker"
            )
        # The server (each worker) builds the app itself; constructing its plugin here (cheap, nothing opens)
        # surfaces what only the plugin checks (a provider's SDK not installed, ...) as one line, before the banner.
        ChatPlugin(settings)
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    _check_port(settings.host, settings.port)
    configure_logging(settings.log_level, settings.log_format)
    text = banner(settings) + (f"\n  workers: {args.workers}" if args.workers > 1 else "")
    if settings.log_format == "json":
        logging.getLogger("app").info(text)  # one JSON object like every other line on stderr
    else:
        print(text, file=sys.stderr, flush=True)
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=args.workers if args.workers > 1 else None,
        reload=args.reload,
        log_level="warning" if args.log_level == "info" else args.log_level,
        timeout_keep_alive=30,
        log_config=None,  # uvicorn's own lines go through our root handler, so CHAT_LOG_FORMAT=json covers them
        # Our SIGTERM handler drains first (runs finish or stop, their readers get the final frames) and only
        # then lets uvicorn close; this bound matters when it could not (a second signal, no main thread).
        timeout_graceful_shutdown=graceful_timeout(settings),
    )


if __name__ == "__main__":
    main()
