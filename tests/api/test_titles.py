"""A new conversation's title: the heuristic one at once, the generated one when its job lands, unless the
user renamed the conversation meanwhile (`title_source`)."""

from __future__ import annotations

import asyncio

from chatstream.providers.mock import MockProvider
from tests.api.conftest import ALICE
from tests.api.test_lifecycle import send, serve, ui
from tests.support.asgi import idle, services
from tests.support.settings import make_settings
from tests.support.sse import parse_frames


async def test_a_rename_during_the_run_is_kept() -> None:
    async with serve(make_settings()) as client:
        first = asyncio.create_task(send(client, ui("t-mine", "Plan a trip mock:tokens=40 mock:delay=10", mid="u1")))
        await asyncio.sleep(0.15)  # the answer is streaming, its title job not done with it
        renamed = await client.patch("/api/chat/conversations/t-mine", json={"title": "Mine"}, headers=ALICE)
        assert renamed.status_code == 200, renamed.text
        frames = parse_frames((await first).text)
        await idle(client, "t-mine")
        conversation = await services(client).store.get_conversation("t-mine")
        assert conversation is not None
        assert (conversation.title, conversation.title_source) == ("Mine", "user")
        # Only the start-of-stream title was streamed: the one the run found on its way out was not the user's.
        titles = [f.data["data"]["title"] for f in frames if f.type == "data-conversation"]
        assert titles == ["Plan a trip"]


async def test_the_heuristic_fallback_stays_heuristic() -> None:
    async with serve(make_settings()) as client:  # the mock's title job falls back to the heuristic title
        await send(client, ui("t-heur", "Plan a trip to Lisbon", mid="u1"))
        await idle(client, "t-heur")
        conversation = await services(client).store.get_conversation("t-heur")
        assert conversation is not None
        assert (conversation.title, conversation.title_source) == ("Plan a trip to Lisbon", "heuristic")


async def test_a_generated_title_replaces_the_heuristic_one() -> None:
    async with serve(make_settings(), other=MockProvider(name="other")) as client:
        response = await send(client, ui("t-gen", "Plan a trip to Lisbon", mid="u1", provider="other"))
        await idle(client, "t-gen")
        conversation = await services(client).store.get_conversation("t-gen")
        assert conversation is not None
        assert conversation.title_source == "generated"
        assert conversation.title and conversation.title != "Plan a trip to Lisbon"
        titles = [f.data["data"]["title"] for f in parse_frames(response.text) if f.type == "data-conversation"]
        assert titles == ["Plan a trip to Lisbon", conversation.title]
