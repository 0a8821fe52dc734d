"""The standalone server's JSON log lines (`CHAT_LOG_FORMAT=json`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime

from app.server import JsonFormatter


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    return logging.getLogger("chatstream.access").makeRecord(
        "chatstream.access", logging.INFO, __file__, 1, msg, args, sys.exc_info() if exc else None, extra=extra
    )


def test_a_line_is_one_json_object_with_the_structured_fields() -> None:
    record = _record("%s %s %d", "GET", "/healthz", 200, method="GET", status=200, user_id=None, duration_ms=0.4)

    line = JsonFormatter().format(record)

    assert "\n" not in line
    out = json.loads(line)
    assert out == {
        "ts": out["ts"],
        "level": "info",
        "logger": "chatstream.access",
        "msg": "GET /healthz 200",
        "method": "GET",
        "status": 200,
        "user_id": None,
        "duration_ms": 0.4,
    }
    assert abs(datetime.fromisoformat(out["ts"]).timestamp() - record.created) < 0.001  # ISO 8601, in UTC


def test_a_traceback_and_an_unencodable_field_stay_on_the_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("failed", exc=True, thing=object())

    out = json.loads(JsonFormatter().format(record))

    assert out["msg"] == "failed"
    assert "ValueError: boom" in out["exc"] and "Traceback" in out["exc"]
    assert out["thing"].startswith("<object object at ")
