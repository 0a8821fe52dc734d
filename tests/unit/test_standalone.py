"""The standalone server's conveniences (`app.server`): demo token on loopback only, mock when no provider."""

from __future__ import annotations

import pytest

from app.__main__ import parse_args
from app.server import DEMO_TOKEN, banner, standalone_settings
from chatstream.errors import ConfigError


def test_loopback_with_nothing_configured_gets_the_demo_token_and_the_mock() -> None:
    s = standalone_settings({})
    assert [(t.token.get(), t.user_id, t.tier) for t in s.auth_tokens] == [(DEMO_TOKEN, "demo", "premium")]
    assert s.mock_provider is True
    text = banner(s)
    assert "demo token 'demo-token'" in text and "the mock provider answers" in text


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "chat.example.com"])
def test_the_demo_token_is_refused_off_loopback(host: str) -> None:
    with pytest.raises(ConfigError, match="refusing to serve the demo token") as refused:
        standalone_settings({"HOST": host})
    assert "CHAT_AUTH_TOKENS" in refused.value.message and "CHAT_ALLOW_DEMO_TOKEN" in refused.value.message


def test_the_demo_token_off_loopback_only_when_explicitly_allowed() -> None:
    s = standalone_settings({"HOST": "0.0.0.0", "CHAT_ALLOW_DEMO_TOKEN": "true"})
    assert [t.token.get() for t in s.auth_tokens] == [DEMO_TOKEN]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses(host: str) -> None:
    assert [t.token.get() for t in standalone_settings({"HOST": host}).auth_tokens] == [DEMO_TOKEN]


def test_configured_auth_and_providers_replace_the_conveniences() -> None:
    s = standalone_settings({"HOST": "0.0.0.0", "CHAT_AUTH_TOKENS": "t:alice", "OPENAI_API_KEY": "sk-x"})
    assert [t.token.get() for t in s.auth_tokens] == ["t"]
    assert s.mock_provider is False
    assert "demo" not in banner(s) and "mock" not in banner(s)
    jwt_only = standalone_settings({"HOST": "0.0.0.0", "CHAT_JWT_SECRET": "s"})
    assert jwt_only.auth_tokens == ()


def test_command_line_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9100")
    args = parse_args(["--host", "0.0.0.0", "--workers", "3", "--log-level", "debug"])
    assert (args.host, args.port, args.workers, args.log_level, args.reload) == ("0.0.0.0", 9100, 3, "debug", False)
    assert parse_args(["--port", "9200", "--reload"]).port == 9200


@pytest.mark.parametrize("argv", [["--workers", "0"], ["--reload", "--workers", "2"], ["--port", "x"], ["--bogus"]])
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "usage: python -m app" in capsys.readouterr().err
