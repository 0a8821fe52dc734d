"""Approval across instances: a run suspended on instance A is decided on instance B, after A is gone.

Two real `python -m app` processes share one redis-server (`REDIS_URL`, marker `redis`; a unique key
prefix per test), then a Redis Cluster (`REDIS_CLUSTER_URL`). `getWeather` is made to need approval with
`CHAT_APPROVAL_TOOLS`, and its Open-Meteo URLs point at a local fake, so the approved tool really runs on B.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.fakes.web import serve_handler
from tests.support.redis_targets import TARGETS, delete_prefix, server_redis_url
from tests.support.server import AUTH, OTHER_AUTH, ServerProcess
from tests.support.sse import Frame, parse_frames, text_of

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.timeout(90)]

ASK = 'mock:tool=getWeather mock:args={"city":"Paris"} weather in Paris?'


class _FakeOpenMeteo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/geo"):
            body: dict[str, Any] = {
                "results": [{"name": "Paris", "latitude": 48.85, "longitude": 2.35, "country": "France"}]
            }
        else:
            body = {
                "current_units": {"temperature_2m": "°C", "wind_speed_10m": "km/h"},
                "current": {"time": "2026-11-23T14:00", "temperature_2m": 11.5, "weather_code": 0},
            }
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def weather_url() -> Iterator[str]:
    with serve_handler(_FakeOpenMeteo) as base:
        yield base


@pytest.fixture(params=TARGETS)
def env(request: pytest.FixtureRequest, weather_url: str) -> Iterator[dict[str, str]]:
    """One Redis, then a Redis Cluster (`tests.support.redis_targets`)."""
    url = server_redis_url(request.param)
    prefix = f"test:{uuid4().hex}"
    yield {
        "REDIS_URL": url,
        "CHAT_REDIS_PREFIX": prefix,
        "CHAT_TITLE_GENERATION": "false",
        "CHAT_HEARTBEAT_SECONDS": "0.5",
        "CHAT_APPROVAL_TOOLS": "getWeather",
        "CHAT_WEATHER_GEOCODING_URL": f"{weather_url}/geo",
        "CHAT_WEATHER_FORECAST_URL": f"{weather_url}/forecast",
    }
    delete_prefix(request.param, prefix)


def body_frames(response: httpx.Response) -> list[Frame]:
    frames = parse_frames(response.text)
    assert frames and frames[-1].data == "[DONE]", response.text
    return frames[:-1]


def of_type(frames: list[Frame], kind: str) -> list[Any]:
    return [f.data for f in frames if f.type == kind]


def suspend_on(server: ServerProcess) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/api/chat", json={"parts": [{"type": "text", "text": ASK}]}, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    frames = body_frames(r)
    (request,) = of_type(frames, "tool-approval-request")
    assert frames[-1].data["finishReason"] == "tool-calls"
    return {
        "thread": r.headers["x-thread-id"],
        "run": frames[0].data["messageMetadata"]["runId"],
        "message": frames[0].data["messageId"],
        "call": request["toolCallId"],
        "approval": request["approvalId"],
    }


def test_suspended_on_a_approved_on_b_after_a_is_gone(env: dict[str, str]) -> None:
    with ServerProcess(env) as a:
        s = suspend_on(a)
    # A has shut down: the run's state lives only in Redis now.
    with ServerProcess(env) as b:
        body = {"runId": s["run"], "threadId": s["thread"], "toolCallId": s["call"], "approved": True}
        other = httpx.post(f"{b.url}/api/chat/approve", json=body, headers=OTHER_AUTH, timeout=30)
        assert other.status_code == 403, other.text
        r = httpx.post(f"{b.url}/api/chat/approve", json=body, headers=AUTH, timeout=30)
        assert r.status_code == 200, r.text
        frames = body_frames(r)
        assert frames[0].data["messageId"] == s["message"]
        (output,) = of_type(frames, "tool-output-available")
        assert output["toolCallId"] == s["call"]
        assert output["output"]["temperature"] == 11.5 and output["output"]["conditions"] == "clear sky"
        assert text_of(frames).startswith("I ran the tool 1 time(s).")
        assert frames[-1].data["finishReason"] == "stop"

        again = httpx.post(f"{b.url}/api/chat/approve", json=body, headers=AUTH, timeout=30)
        assert again.status_code == 409, again.text

        r = httpx.get(f"{b.url}/api/chat/messages", params={"conversationId": s["thread"]}, headers=AUTH)
        messages = r.json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        part = next(p for p in messages[1]["parts"] if p["type"] == "tool-getWeather")
        assert part["state"] == "output-available" and part["approval"]["approved"] is True


def test_denied_on_b_through_the_ai_sdk_request_while_a_runs(env: dict[str, str]) -> None:
    with ServerProcess(env) as a, ServerProcess(env) as b:
        s = suspend_on(a)
        ui = {
            "id": s["thread"],
            "trigger": "submit-message",
            "messageId": s["message"],
            "messages": [
                {"id": "u1", "role": "user", "parts": [{"type": "text", "text": ASK}]},
                {
                    "id": s["message"],
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool-getWeather",
                            "toolCallId": s["call"],
                            "state": "approval-responded",
                            "input": {"city": "Paris"},
                            "approval": {"id": s["approval"], "approved": False, "reason": "no"},
                        }
                    ],
                },
            ],
        }
        r = httpx.post(f"{b.url}/api/chat", json=ui, headers=AUTH, timeout=30)
        assert r.status_code == 200, r.text
        frames = body_frames(r)
        assert of_type(frames, "tool-output-denied") == [{"type": "tool-output-denied", "toolCallId": s["call"]}]
        assert not of_type(frames, "tool-output-available")
        assert frames[-1].data["finishReason"] == "stop"
        # The same decision again, on the other instance: applied once.
        again = httpx.post(f"{a.url}/api/chat", json=ui, headers=AUTH, timeout=30)
        assert again.status_code == 409, again.text
