"""AI SDK protocol conformance: the real `ai` npm client (`tests/node/conformance.mjs`) against a real server.

The script drives `DefaultChatTransport`, `readUIMessageStream` and a headless `AbstractChat` (what `useChat`
wraps), validates every chunk with the SDK's own `parseJsonEventStream` + `uiMessageChunkSchema`, and
checks order, headers, assembled messages, resume and tool approval. See the script's header for the checks.

Skipped only when `node` is not installed; with node present but `tests/node/node_modules` missing the tests
fail and say to run `make node`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.fakes.upstream import FakeUpstream
from tests.fakes.web import fake_web
from tests.support.conformance import NODE, SCRIPT_TIMEOUT, run_conformance
from tests.support.server import ServerProcess, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.node,
    pytest.mark.timeout(SCRIPT_TIMEOUT + 40),
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
]


def no_weather_backend() -> dict[str, str]:
    """Point getWeather at a closed local port: no network here, so the tool fails fast (`output-error`)."""
    dead = f"http://127.0.0.1:{free_port()}"
    return {"CHAT_WEATHER_GEOCODING_URL": f"{dead}/v1/search", "CHAT_WEATHER_FORECAST_URL": f"{dead}/v1/forecast"}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess(env=no_weather_backend()) as proc:
        yield proc


@pytest.fixture(scope="module")
def approval_server() -> Iterator[ServerProcess]:
    with ServerProcess(env={**no_weather_backend(), "CHAT_APPROVAL_TOOLS": "getWeather"}) as proc:
        yield proc


def test_stream_headers_resume_and_errors(server: ServerProcess) -> None:
    """sendMessages + readUIMessageStream; abort mid-stream and reconnectToStream (replay from `start`, every
    token once), Chat.resumeStream, reconnect after completion; unknown chat -> null; a mid-answer error."""
    run_conformance(server, "basic", "resume", "unknown", "errors")


def test_conversation_data_part_is_replaced_not_duplicated(server: ServerProcess) -> None:
    """The start-of-stream and title `data-conversation` chunks assemble into ONE part (same `id`)."""
    run_conformance(server, "datapart")


def test_server_executed_tool_call(server: ServerProcess) -> None:
    """getWeather (no approval) runs on the server; the Chat sees input -> output/error -> next step's text."""
    run_conformance(server, "tools")


def test_document_tools_stream_data_parts_the_sdk_validates(server: ServerProcess) -> None:
    """An essay request: createDocument's nested generation reaches `onData` as data-kind, data-id, data-title,
    data-clear, data-textDelta (in order), data-finish, each validated against `dataPartSchemas`; none is in
    the assembled message, and the stored document's content is the deltas joined."""
    run_conformance(server, "documents")


def test_tool_approval_round_trip(approval_server: ServerProcess) -> None:
    """approval-requested; addToolApprovalResponse + sendAutomaticallyWhen continues the SAME message (approve
    and deny)."""
    run_conformance(approval_server, "approval")


def test_search_results_are_source_url_parts() -> None:
    """web_search on the fake web, twice in one answer: the Chat holds one `source-url` part per result."""
    with fake_web() as web:
        env = {
            **no_weather_backend(),
            "CHAT_WEB_SEARCH_API_KEY": "fake",
            "CHAT_WEB_SEARCH_URL": f"{web}/search",
            "CHAT_TITLE_GENERATION": "false",
        }
        with ServerProcess(env=env) as server:
            run_conformance(server, "sources", env={"WEB_URL": web})


class Lifecycle:
    """A server whose only provider is OpenAI on the fake upstream, which records every request."""

    def __init__(self, server: ServerProcess, upstream: FakeUpstream, ns: str) -> None:
        self.server, self.upstream, self.ns = server, upstream, ns

    def run(self, *checks: str) -> None:
        run_conformance(self.server, *checks, env={"FAKE_URL": self.upstream.url, "FAKE_NS": self.ns})


@pytest.fixture(scope="module")
def lifecycle() -> Iterator[Lifecycle]:
    # 40 tokens 25 ms apart: an answer takes about a second, long enough to stop one mid-way.
    with FakeUpstream.start(tokens=40, delay_ms=25) as upstream:
        ns = upstream.namespace()
        env = {
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": f"{upstream.url}/{ns}/v1",
            "CHAT_TITLE_GENERATION": "false",  # the upstream's record holds only the answers' requests
        }
        with ServerProcess(env=env) as server:
            yield Lifecycle(server, upstream, ns)


def test_regenerate_and_edit_leave_the_conversation_the_client_shows(lifecycle: Lifecycle) -> None:
    """Chat.regenerate() (twice, then a follow-up) and an edit of the first user message: the stored
    conversation is the one the client shows, and the model received exactly it."""
    lifecycle.run("regenerate", "edit")


def test_stop_then_send_supersedes_the_running_answer(lifecycle: Lifecycle) -> None:
    """Chat.stop() (the fetch abort) then an immediate send: no 409, the stopped answer stored as
    interrupted, the model sees it once before the new question."""
    lifecycle.run("stopsend")
