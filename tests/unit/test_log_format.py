"""The standalone server's log lines: JSON (`CHAT_LOG_FORMAT=json`) and text."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime

from app.server import JsonFormatter, TextFormatter


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


def test_the_text_line_is_loggings_own_with_the_time_made_once_per_second() -> None:
    standard = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    ours = TextFormatter()
    for created in (1796152250.0, 1796152250.0004, 1796152250.9996, 1796152251.5, 1796152251.5):
        record = logging.makeLogRecord({"msg": "run ended", "levelname": "INFO", "name": "chatstream.runs"})
        record.created, record.msecs = created, (created - int(created)) * 1000
        assert ours.format(record) == standard.format(record)
