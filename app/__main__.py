"""`python -m app`: serve on HOST:PORT (127.0.0.1:8000) and say what is configured."""

from __future__ import annotations

import logging
import sys

import uvicorn

from app.factory import create_app
from app.providers.setup import build_registry
from app.settings import DEMO_TOKEN, Settings


def banner(settings: Settings) -> str:
    providers = build_registry(settings)
    backends = f"Redis ({settings.redis_url})" if settings.redis_url else "memory (set REDIS_URL for Redis)"
    lines = [
        f"chat server on http://{settings.host}:{settings.port}",
        f"  backends: {backends}",
        f"  providers: {', '.join(providers.names)} (default {providers.default_provider}/{providers.default_model})",
    ]
    if "mock" in providers.names:
        lines.append("  the mock provider answers: set OPENAI_API_KEY, ANTHROPIC_API_KEY, ... for real models")
    if settings.demo_token:
        lines += [
            f"  auth: demo token {DEMO_TOKEN!r} (user 'demo', tier premium); set CHAT_AUTH_TOKENS for real tokens",
            f"  try: curl -N http://{settings.host}:{settings.port}/api/chat -H 'Authorization: Bearer {DEMO_TOKEN}'"
            ' -H \'Content-Type: application/json\' -d \'{"parts":[{"type":"text","text":"Hello"}]}\'',
        ]
    return "\n".join(lines)


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The HTTP clients log every request at INFO: one line per relayed answer is noise, and costly.
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "anthropic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    print(banner(settings), file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_keep_alive=30,
        # Open SSE responses would hold a graceful shutdown forever; after this, our lifespan stops runs cleanly.
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
