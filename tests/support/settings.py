"""Settings for in-process tests: two users with static tokens, limits out of the way unless a test sets them."""

from __future__ import annotations

from typing import Any

from app import Settings
from app.settings import AuthToken, Secret

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "auth_tokens": (
            AuthToken(token=Secret("alice-token"), user_id="alice", tier="premium"),
            AuthToken(token=Secret("bob-token"), user_id="bob", tier="premium"),
        ),
        "demo_token": False,
        "rate_ip_per_minute": 100_000,
    }
    base.update(overrides)
    return Settings(**base)
