from __future__ import annotations

import pytest

from chatstream.errors import ConfigError
from chatstream.settings import Settings


def test_library_defaults_have_no_dev_conveniences() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.redis_url) == ("127.0.0.1", 8000, None)
    # No demo token and no silent mock provider: those are the standalone server's (app.server).
    assert s.auth_tokens == () and s.jwt_secret is None and not s.auth_configured
    assert s.mock_provider is False
    assert s.cors_origins == ()
    assert (s.health_path, s.ready_path, s.metrics_path, s.models_path) == (
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/models",
    )
    assert s.quota_per_day == {"free": 20, "premium": 1000}
    assert (s.rate_ip_per_minute, s.max_concurrent_runs, s.stream_ttl_seconds) == (60, 3, 60.0)
    assert (s.run_timeout_seconds, s.max_steps, s.max_body_bytes) == (60.0, 5, 20 * 1024 * 1024)
    assert s.providers == {}


def test_spec_variables() -> None:
    s = Settings.from_env(
        {
            "HOST": "0.0.0.0",
            "PORT": "9000",
            "REDIS_URL": "redis://r:6379/0",
            "CHAT_AUTH_TOKENS": "t1:alice:premium, t2:bob",
            "CHAT_JWT_SECRET": "sekret",
            "CHAT_DEFAULT_PROVIDER": "openai",
            "CHAT_DEFAULT_MODEL": "gpt-4o",
            "OPENAI_API_KEY": "sk-x",
            "GEMINI_API_KEY": "g",
            "OLLAMA_BASE_URL": "http://localhost:11434/v1",
            "CHAT_RATE_IP_PER_MINUTE": "10",
            "CHAT_QUOTA_FREE_PER_DAY": "5",
            "CHAT_QUOTA_GOLD_PER_DAY": "50",
            "CHAT_MAX_CONCURRENT_RUNS": "2",
            "CHAT_STREAM_TTL_SECONDS": "30",
            "CHAT_RUN_TIMEOUT_SECONDS": "20",
            "CHAT_MAX_STEPS": "3",
            "CHAT_MAX_BODY_BYTES": "1000",
            "CHAT_LIMITS_FAIL_OPEN": "true",
        }
    )
    assert (s.host, s.port, s.redis_url) == ("0.0.0.0", 9000, "redis://r:6379/0")
    assert [(t.token.get(), t.user_id, t.tier) for t in s.auth_tokens] == [
        ("t1", "alice", "premium"),
        ("t2", "bob", "free"),
    ]
    assert s.auth_configured
    assert s.jwt_secret is not None and s.jwt_secret.get() == "sekret"
    assert set(s.providers) == {"openai", "google", "ollama"}
    assert s.providers["ollama"].api_key is None
    assert s.quota_per_day == {"free": 5, "premium": 1000, "gold": 50}
    assert (s.rate_ip_per_minute, s.max_concurrent_runs, s.stream_ttl_seconds) == (10, 2, 30.0)
    assert (s.run_timeout_seconds, s.max_steps, s.max_body_bytes, s.limits_fail_open) == (20.0, 3, 1000, True)


def test_false_means_false() -> None:
    assert Settings.from_env({"CHAT_LIMITS_FAIL_OPEN": "false"}).limits_fail_open is False


def test_secrets_do_not_leak_in_repr() -> None:
    s = Settings.from_env({"OPENAI_API_KEY": "sk-very-secret", "CHAT_AUTH_TOKENS": "tok-secret:u"})
    assert "sk-very-secret" not in repr(s)
    assert "tok-secret" not in repr(s)


@pytest.mark.parametrize("env", [{"PORT": "eighty"}, {"CHAT_AUTH_TOKENS": "lonely"}, {"CHAT_QUOTA_FREE_PER_DAY": "x"}])
def test_bad_values_name_the_problem(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_ops_paths_move_or_turn_off() -> None:
    s = Settings.from_env({"CHAT_HEALTH_PATH": "/ops/health", "CHAT_READY_PATH": "off", "CHAT_METRICS_PATH": ""})
    assert (s.health_path, s.ready_path, s.metrics_path, s.models_path) == ("/ops/health", None, None, "/api/models")
    with pytest.raises(ConfigError, match="must start with '/'"):
        Settings.from_env({"CHAT_HEALTH_PATH": "health"})


def test_cors_origins() -> None:
    s = Settings.from_env({"CHAT_CORS_ORIGINS": "http://localhost:3000, https://app.example.com"})
    assert s.cors_origins == ("http://localhost:3000", "https://app.example.com")
    assert Settings.from_env({"CHAT_CORS_ORIGINS": "*"}).cors_origins == ("*",)
    with pytest.raises(ConfigError, match="cannot be combined"):
        Settings.from_env({"CHAT_CORS_ORIGINS": "*,http://localhost:3000"})
    with pytest.raises(ConfigError, match="is not an origin"):
        Settings.from_env({"CHAT_CORS_ORIGINS": "localhost:3000"})


def test_shutdown_and_store_retry_settings() -> None:
    defaults = Settings.from_env({})
    assert (defaults.shutdown_grace_seconds, defaults.shutdown_signals, defaults.store_retry_seconds) == (
        30.0,
        True,
        60.0,
    )
    s = Settings.from_env(
        {"CHAT_SHUTDOWN_GRACE_SECONDS": "12.5", "CHAT_SHUTDOWN_SIGNALS": "false", "CHAT_STORE_RETRY_SECONDS": "5"}
    )
    assert (s.shutdown_grace_seconds, s.shutdown_signals, s.store_retry_seconds) == (12.5, False, 5.0)
    for var in ("CHAT_SHUTDOWN_GRACE_SECONDS", "CHAT_STORE_RETRY_SECONDS"):
        with pytest.raises(ConfigError, match=var):
            Settings.from_env({var: "-1"})


def test_uvicorn_waits_longer_than_the_drain() -> None:
    from app.__main__ import graceful_timeout

    assert graceful_timeout(Settings()) == 40
    assert graceful_timeout(Settings(shutdown_grace_seconds=2.5)) == 13


def test_run_lease_outlasts_liveness() -> None:
    assert Settings().run_lease_seconds == 60.0
    settings = Settings.from_env({"CHAT_RUN_LEASE_SECONDS": "30", "CHAT_HEARTBEAT_SECONDS": "0.5"})
    assert (settings.run_lease_seconds, settings.heartbeat_seconds) == (30.0, 0.5)
    # A hold shorter than the liveness would drop a stalled run's slot before readers even missed it.
    with pytest.raises(ConfigError, match="CHAT_RUN_LEASE_SECONDS"):
        Settings.from_env({"CHAT_RUN_LEASE_SECONDS": "3", "CHAT_HEARTBEAT_SECONDS": "1"})
    with pytest.raises(ConfigError, match="CHAT_HEARTBEAT_SECONDS"):
        Settings(heartbeat_seconds=0)
