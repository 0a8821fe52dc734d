"""The SQL store with real server processes: the standalone server's SQLite default keeps conversations across a
restart (`make run`, chat, Ctrl-C, `make run` again), and two instances share one PostgreSQL plus one Redis.

Markers: `e2e` (starts processes); the PostgreSQL tests also `postgres` (a database of their own on the server
`CHAT_TEST_POSTGRES_URL` names) and `redis` (`REDIS_URL`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import httpx
import pytest
import redis

from tests.support import sql
from tests.support.server import AUTH, ServerProcess
from tests.support.sse import Frame, iter_frames, parse_frames, text_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

FAST = {"CHAT_HEARTBEAT_SECONDS": "0.5", "CHAT_TITLE_GENERATION": "false"}


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"parts": [{"type": "text", "text": text}], **extra}


def standalone_in(directory: Path) -> ServerProcess:
    """`python -m app` with nothing configured but tokens, started in `directory`: its own default store."""
    server = ServerProcess(FAST)
    server.env.pop("DATABASE_URL")  # ServerProcess's memory:// default off: the standalone server's own default
    server.cwd = directory
    return server


def test_make_run_chat_ctrl_c_make_run_the_conversation_is_there(tmp_path: Path) -> None:
    first = standalone_in(tmp_path)
    with first:
        r = httpx.post(f"{first.url}/api/chat", json=chat_body("hello mock:tokens=3"), headers=AUTH, timeout=30)
        assert r.status_code == 200
        thread = r.headers["x-thread-id"]
        answer = text_of(parse_frames(r.text))
        first.stop(signal.SIGINT)  # Ctrl-C
    assert (tmp_path / "chatstream.db").is_file()
    assert f"conversations: SQLite ({tmp_path / 'chatstream.db'})" in first.log.read_text()

    second = standalone_in(tmp_path)
    with second, httpx.Client(base_url=second.url, headers=AUTH, timeout=30) as client:
        listed = client.get("/api/chat/conversations").json()["conversations"]
        assert [c["id"] for c in listed] == [thread]
        messages = client.get("/api/chat/messages", params={"conversationId": thread}).json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[0]["parts"][0]["text"] == "hello mock:tokens=3"
        assert "".join(p.get("text", "") for p in messages[1]["parts"] if p["type"] == "text") == answer
        # And the conversation goes on where it was.
        again = client.post("/api/chat", json=chat_body("more mock:tokens=2", threadId=thread))
        assert again.status_code == 200
        messages = client.get("/api/chat/messages", params={"conversationId": thread}).json()["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


@pytest.fixture(scope="module")
def pg_pair() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two instances on one fresh PostgreSQL database and one Redis, started at the same moment on an empty
    database: both migrate at start-up, under the migration lock."""
    base, redis_url = sql.postgres_url(), os.environ.get("REDIS_URL")
    if not base or not redis_url:
        pytest.skip("needs CHAT_TEST_POSTGRES_URL and REDIS_URL")
    url = sql.create_database(base)
    prefix = f"test:{uuid4().hex}"
    env = {"DATABASE_URL": url, "CHAT_DB_AUTO_MIGRATE": "true", "REDIS_URL": redis_url, "CHAT_REDIS_PREFIX": prefix}
    a, b = ServerProcess({**env, **FAST}), ServerProcess({**env, **FAST})
    try:
        a.launch()
        b.launch()
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()
        sql.drop_database(url)
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
        client.close()


async def read_until(stream: AsyncIterator[Frame], frames: list[Frame], *, deltas: int) -> None:
    """Collect frames from `stream` until `deltas` text deltas have arrived (or the stream ends)."""
    async for frame in stream:
        frames.append(frame)
        if sum(f.type == "text-delta" for f in frames) >= deltas:
            return


@pytest.mark.postgres
@pytest.mark.redis
async def test_two_instances_share_history_votes_and_deletes(pg_pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pg_pair
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
        r = await client.post(f"{a.url}/api/chat", json=chat_body("first mock:tokens=3"))
        assert r.status_code == 200
        thread = r.headers["x-thread-id"]
        r = await client.post(f"{b.url}/api/chat", json=chat_body("second mock:tokens=3", threadId=thread))
        assert r.status_code == 200
        messages = (await client.get(f"{a.url}/api/chat/messages", params={"conversationId": thread})).json()
        roles = [m["role"] for m in messages["messages"]]
        assert roles == ["user", "assistant", "user", "assistant"]
        answer = messages["messages"][1]["id"]
        voted = await client.patch(f"{b.url}/api/vote", json={"chatId": thread, "messageId": answer, "type": "up"})
        assert voted.status_code == 200, voted.text
        votes = (await client.get(f"{a.url}/api/vote", params={"chatId": thread})).json()
        assert votes == [{"chatId": thread, "messageId": answer, "isUpvoted": True}]
        listed = (await client.get(f"{b.url}/api/chat/conversations")).json()["conversations"]
        assert thread in [c["id"] for c in listed]
        assert (await client.delete(f"{b.url}/api/chat/conversations/{thread}")).status_code in (200, 204)
        gone = await client.get(f"{a.url}/api/chat/messages", params={"conversationId": thread})
        assert gone.status_code == 404


@pytest.mark.postgres
@pytest.mark.redis
async def test_resume_elsewhere_and_a_dead_producers_answer_stored_once(
    pg_pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pg_pair
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
        frames: list[Frame] = []
        body = chat_body("long mock:tokens=2000 mock:delay=20")
        async with client.stream("POST", f"{a.url}/api/chat", json=body) as r:
            assert r.status_code == 200
            thread = r.headers["x-thread-id"]
            await read_until(iter_frames(r), frames, deltas=3)

        async def follow() -> list[Frame]:
            got: list[Frame] = []
            async with client.stream("GET", f"{b.url}/api/chat/{thread}/stream") as s:
                assert s.status_code == 200
                stream = iter_frames(s)
                await read_until(stream, got, deltas=5)
                a.kill()  # the second follower's kill finds it dead already
                got += [frame async for frame in stream]
            return got

        # Two readers on the other instance notice the dead producer; its answer is stored once.
        followers = await asyncio.wait_for(asyncio.gather(follow(), follow()), 30)
    a.start()  # leave the pair whole for whatever runs next
    for got in followers:
        assert got[-1].data == "[DONE]"
        assert any(f.type == "error" for f in got)
    async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
        deadline = time.monotonic() + 10
        while True:
            found = await client.get(f"{a.url}/api/chat/messages", params={"conversationId": thread})
            messages = found.json()["messages"]
            if [m["role"] for m in messages] == ["user", "assistant"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["finishReason"] == "error"
