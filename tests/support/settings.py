"""Settings for in-process tests: two users with static tokens, limits out of the way unless a test sets them."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from chatstream import ChatPlugin, Settings
from chatstream.api.deps import Services
from chatstream.settings import AuthToken, Secret

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "auth_tokens": (
            AuthToken(token=Secret("alice-token"), user_id="alice", tier="premium"),
            AuthToken(token=Secret("bob-token"), user_id="bob", tier="premium"),
        ),
        "rate_ip_per_minute": 100_000,
    }
    base.update(overrides)
    # The mock provider serves unless a test configures real ones.
    base.setdefault("mock_provider", "providers" not in overrides)
    return Settings(**base)


def services_of(app: Litestar) -> Services:
    """The open services of the app's `ChatPlugin` (tests reach into backends through them)."""
    services = app.plugins.get(ChatPlugin).services
    assert services is not None, "the app's lifespan has not run"
    return services
