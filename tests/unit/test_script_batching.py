"""On a single Redis, script calls keep one round trip in flight; the calls made meanwhile go out together as
one pipeline when it returns (`redis_client._Batcher`).

Each caller keeps its own reply or error; a script Redis lost is loaded again; a caller cancelled while queued
is left out; a connection failure reaches every caller. fakeredis by default, and the real server when
`REDIS_URL` is set.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError, ResponseError

from chatstream.redis_client import Script
from tests.support.server import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ECHO = """
if ARGV[1] == 'bad' then return redis.error_reply('ERR bad argument') end
redis.call('INCR', KEYS[1])
return ARGV[1]
"""

KINDS = ["fakeredis", "redis"]


@pytest.fixture(params=KINDS)
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "fakeredis":
        redis: Any = fakeredis.FakeAsyncRedis()
    else:
        url = os.environ.get("REDIS_URL")
        if not url:
            pytest.skip("REDIS_URL is not set")
        redis = aioredis.Redis.from_url(url)
    key = f"batching-test:{os.getpid()}:{id(redis)}"
    await redis.delete(key)
    redis.test_key = key
    yield redis
    await redis.delete(key)
    await redis.aclose()


class _PipelineSpy:
    """Counts the pipelines `client` executes and the commands each carried."""

    def __init__(self, client: Any) -> None:
        self.sizes: list[int] = []
        original = client.pipeline

        def pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = original(*args, **kwargs)
            execute = pipe.execute

            async def counted(*a: Any, **k: Any) -> Any:
                self.sizes.append(len(pipe.command_stack))
                return await execute(*a, **k)

            pipe.execute = counted
            return pipe

        client.pipeline = pipeline


async def test_calls_made_while_one_is_in_flight_go_out_as_one_pipeline_each_with_its_own_reply(client: Any) -> None:
    script = Script(client, ECHO)
    await script([client.test_key], ["load"])  # a first call loads the script (else: NOSCRIPT, load, again)
    spy = _PipelineSpy(client)
    replies = await asyncio.gather(*(script([client.test_key], [f"call-{i}"]) for i in range(10)))
    assert replies == [f"call-{i}".encode() for i in range(10)]
    assert spy.sizes == [9]  # the first went out alone; the nine made while it was in flight, together
    assert int(await client.get(client.test_key)) == 11


async def test_a_call_alone_is_sent_as_is(client: Any) -> None:
    script = Script(client, ECHO)
    spy = _PipelineSpy(client)
    assert await script([client.test_key], ["one"]) == b"one"
    assert await script([client.test_key], ["two"]) == b"two"  # awaited one by one: two turns
    assert spy.sizes == []


async def test_an_error_reaches_its_own_caller_only(client: Any) -> None:
    script = Script(client, ECHO)
    results = await asyncio.gather(
        script([client.test_key], ["a"]),
        script([client.test_key], ["bad"]),
        script([client.test_key], ["c"]),
        return_exceptions=True,
    )
    assert results[0] == b"a"
    assert results[2] == b"c"
    assert isinstance(results[1], ResponseError)
    assert "bad argument" in str(results[1])


async def test_scripts_redis_lost_are_loaded_again(client: Any) -> None:
    echo, other = Script(client, ECHO), Script(client, "return 'other'")
    assert await echo([client.test_key], ["warm"]) == b"warm"
    await client.script_flush()
    # Batched: two different scripts answered NOSCRIPT in one pipeline (behind a first call), both loaded
    # and sent again.
    replies = await asyncio.gather(
        echo([client.test_key], ["first"]), echo([client.test_key], ["x"]), other([client.test_key], [])
    )
    assert list(replies) == [b"first", b"x", b"other"]
    await client.script_flush()
    assert await echo([client.test_key], ["alone"]) == b"alone"  # alone: redis-py's own reload


async def test_a_caller_cancelled_while_queued_is_left_out(client: Any) -> None:
    script = Script(client, ECHO)
    tasks = [asyncio.create_task(script([client.test_key], [str(i)])) for i in range(3)]
    await asyncio.sleep(0)  # the first call is in flight, the other two queued behind it
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert done[0] == b"0"
    assert done[2] == b"2"
    assert isinstance(done[1], asyncio.CancelledError)
    assert int(await client.get(client.test_key)) == 2


async def test_a_connection_failure_reaches_every_caller() -> None:
    client = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry_on_error=[])
    try:
        script = Script(client, ECHO)
        results = await asyncio.gather(*(script(["k"], [str(i)]) for i in range(3)), return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results), results
        with pytest.raises(RedisConnectionError):
            await script(["k"], ["alone"])
    finally:
        await client.aclose()
