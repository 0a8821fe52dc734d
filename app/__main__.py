"""`python -m app`: serve the standalone server. Command-line options override the environment."""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from app.server import banner, configure_logging, standalone_settings
from chatstream.errors import ConfigError

_LEVELS = ("critical", "error", "warning", "info", "debug")


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
        type=int,
        default=int(env.get("CHAT_WORKERS") or 1),
        help="worker processes sharing the port (env CHAT_WORKERS); more than one needs REDIS_URL",
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Workers are separate processes that build their settings from the environment: hand them ours.
    os.environ.update(HOST=args.host, PORT=str(args.port), CHAT_LOG_LEVEL=args.log_level)
    try:
        settings = standalone_settings()
        if args.workers > 1 and not settings.redis_url:
            raise ConfigError(
                "--workers needs REDIS_URL: with memory backends every worker would keep its own conversations, "
                "streams and limits"
            )
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(args.log_level)
    print(banner(settings) + (f"\n  workers: {args.workers}" if args.workers > 1 else ""), file=sys.stderr, flush=True)
    uvicorn.run(
        "app.main:app",
        host=settings.host,
        port=settings.port,
        workers=args.workers if args.workers > 1 else None,
        reload=args.reload,
        log_level="warning" if args.log_level == "info" else args.log_level,
        timeout_keep_alive=30,
        # Open SSE responses would hold a graceful shutdown forever; after this, our lifespan stops runs cleanly.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
