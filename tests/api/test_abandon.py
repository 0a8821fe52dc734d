"""`CHAT_ABANDON_AFTER_SECONDS` through the app, in process: a run nobody reads (its tab closed) is stopped,
one whose response is read, or that is resumed within the window, carries on. (Across instances on Redis:
`tests/contract/test_abandoned_runs.py`.)"""

from __future__ import annotations

import asyncio

from chatstream import Settings
from chatstream.models import ChatRequest, MessagePart, Principal
from tests.api.conftest import ALICE
from tests.api.test_lifecycle import send, serve, stored, text, ui
from tests.support.asgi import services
from tests.support.settings import make_settings
from tests.support.sse import parse_frames

WINDOW = 0.5


def settings() -> Settings:
    return make_settings(abandon_after_seconds=WINDOW, title_generation=False)


async def test_a_read_answer_is_not_abandoned() -> None:
    async with serve(settings()) as client:
        response = await send(client, ui("t-read", "mock:tokens=75 mock:delay=20", mid="u1"))  # 1.5 s, 3 windows
        finish = parse_frames(response.text)[-2].data
        assert finish["type"] == "finish" and finish["finishReason"] == "stop", finish


async def test_a_closed_tab_stops_the_run_and_a_resume_within_the_window_keeps_it() -> None:
    async with serve(settings()) as client:
        svc = services(client)
        alice = Principal(user_id="alice", tier="premium")

        def request(conversation_id: str, tokens: int) -> ChatRequest:
            # Started without reading its stream: a tab closed right after sending.
            text = f"mock:tokens={tokens} mock:delay=20"
            return ChatRequest(parts=(MessagePart(type="text", text=text),), conversation_id=conversation_id)

        loop = asyncio.get_running_loop()
        await svc.runs.start(alice, request("t-gone", 400), ip="127.0.0.1")
        started = loop.time()
        while await svc.registry.active("t-gone") is not None:
            assert loop.time() - started < 3 * WINDOW, "the unread run was not stopped"
            await asyncio.sleep(0.02)
        [_, answer] = await stored(client, "t-gone")
        assert answer["finishReason"] == "interrupted"
        assert text(answer) and answer["usage"]["outputTokens"] > 0
        replay = parse_frames((await client.get("/api/chat/t-gone/stream", headers=ALICE)).text)
        assert replay[-2].data["messageMetadata"]["endedBy"] == "abandoned"

        # Reconnecting within the window: the run carries on to its end.
        await svc.runs.start(alice, request("t-back", 75), ip="127.0.0.1")
        await asyncio.sleep(WINDOW * 0.6)
        resumed = parse_frames((await client.get("/api/chat/t-back/stream", headers=ALICE)).text)
        assert resumed[-2].data["finishReason"] == "stop"


async def test_off_by_default() -> None:
    async with serve(make_settings(title_generation=False)) as client:
        svc = services(client)
        await svc.runs.start(
            Principal(user_id="alice", tier="premium"),
            ChatRequest(
                parts=(MessagePart(type="text", text="mock:tokens=40 mock:delay=20"),), conversation_id="t-off"
            ),
            ip="127.0.0.1",
        )
        while await svc.registry.active("t-off") is not None:
            await asyncio.sleep(0.02)
        [_, answer] = await stored(client, "t-off")
        assert answer["finishReason"] == "stop"
