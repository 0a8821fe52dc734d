"""Backends for the Protocol contract suites: every test runs against memory, fakeredis and real Redis; the
conversation-store tests (those using the `conversation_store` fixture, and the modules in `STORE_MODULES`)
also against SQLite and a real PostgreSQL.

Real Redis is used only when `REDIS_URL` is set (marker `redis`), a real Redis Cluster only when
`REDIS_CLUSTER_URL` is (markers `redis` and `redis_cluster`), PostgreSQL only when
`CHAT_TEST_POSTGRES_URL` is (marker `postgres`; CI's `DATABASE_URL` lands there, see `tests/conftest.py`).
SQLite gets a fresh database file per test, PostgreSQL a fresh schema (dropped afterwards), both migrated
with the shipped Alembic migrations; every `conversation_store()` is then a store on its own engine, as
another instance would have. Each test gets its own key prefix
`test:{uuid4().hex}` and deletes exactly its own keys afterwards (SCAN on the prefix, never FLUSHALL).
Time: the memory twins take an injected clock that `Env.elapse` advances; Redis backends expire keys in
real time, so `elapse` also sleeps for them (tests keep such TTLs to fractions of a second).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import fakeredis
import pytest

from chatstream.redis_client import connect_redis
from chatstream.runs.memory import MemoryRunRegistry
from chatstream.runs.redis import RedisRunRegistry
from chatstream.store.memory import MemoryConversationStore, MemoryDocumentStore
from chatstream.store.redis import RedisConversationStore
from chatstream.store.redis_documents import RedisDocumentStore
from chatstream.store.sql.documents import SqlDocumentStore
from chatstream.store.sql.store import SqlConversationStore
from chatstream.streams.memory import MemoryStreamBuffer
from chatstream.streams.redis import RedisStreamBuffer
from tests.support import sql

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence
    from pathlib import Path

    from chatstream.redis_client import RedisClient
    from chatstream.runs.registry import RunRegistry
    from chatstream.store.base import ConversationStore, DocumentStore
    from chatstream.streams.base import ReadResult, StreamBuffer, StreamInfo

BACKENDS = [
    "memory",
    "fakeredis",
    pytest.param("redis", marks=pytest.mark.redis),
    # A real 3-master Redis Cluster (`REDIS_CLUSTER_URL`, started by .ci/run): see `redis_url` below.
    pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.redis_cluster]),
]
STORE_BACKENDS = [*BACKENDS, "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
STORE_MODULES = ("test_conversation_store", "test_lost_answer_contract", "test_document_store")
"""Modules whose `env` tests exercise the conversation (or document) store: they run on the SQL kinds too."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "env" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        if "env" in marker.args[0]:
            return  # the module chose its kinds itself
    store = "conversation_store" in metafunc.fixturenames or metafunc.module.__name__.endswith(STORE_MODULES)
    metafunc.parametrize("env", STORE_BACKENDS if store else BACKENDS, indirect=True)


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    """One backend kind, with factories for every Protocol implementation on it."""

    kind: str
    prefix: str
    clock: Clock = field(default_factory=Clock)
    redis: RedisClient | None = None
    fake_server: Any = None
    sql_url: str | None = None
    """A migrated database (SQL kinds); `sql_schema` is its PostgreSQL schema."""
    sql_schema: str | None = None
    _closers: list[Any] = field(default_factory=list)
    _memory_registry: MemoryRunRegistry | None = None
    _memory_store: MemoryConversationStore | None = None
    _memory_documents: MemoryDocumentStore | None = None

    @property
    def is_redis(self) -> bool:
        return self.redis is not None

    def stream_buffer(self, *, ttl: float = 60.0) -> StreamBuffer:
        buffer: StreamBuffer
        if self.redis is None:
            buffer = MemoryStreamBuffer(ttl=ttl, clock=self.clock)
        else:
            buffer = RedisStreamBuffer(self.redis, prefix=self.prefix, ttl=ttl)
        self._closers.append(buffer)
        return buffer

    def remote_stream_buffer(self, *, ttl: float = 60.0) -> RedisStreamBuffer:
        """A Redis buffer on its own client: another instance, which has no local copy of our streams."""
        buffer = RedisStreamBuffer(self.second_client(), prefix=self.prefix, ttl=ttl)
        self._closers.append(buffer)
        return buffer

    def split_stream_buffer(self, *, ttl: float = 60.0) -> StreamBuffer:
        """Writes on one instance, reads on another: every read takes the Redis path, not the local copy."""
        writer = self.stream_buffer(ttl=ttl)
        assert isinstance(writer, RedisStreamBuffer)
        return SplitStreamBuffer(writer, self.remote_stream_buffer(ttl=ttl))

    def conversation_store(self) -> ConversationStore:
        """A store; for Redis and SQL kinds every call is a new instance on its own client or engine (another
        process)."""
        if self.sql_url is not None:
            sql_store = SqlConversationStore.from_url(self.sql_url, schema=self.sql_schema)
            self._closers.append(sql_store)
            return sql_store
        if self.redis is None:
            if self._memory_store is None:
                self._memory_store = MemoryConversationStore()
            return self._memory_store
        store = RedisConversationStore(self.second_client(), prefix=self.prefix)
        self._closers.append(store)
        return store

    def document_store(self) -> DocumentStore:
        """A document store; for Redis and SQL kinds every call is a new instance on its own client or engine."""
        documents: DocumentStore
        if self.sql_url is not None:
            documents = SqlDocumentStore.from_url(self.sql_url, schema=self.sql_schema)
        elif self.redis is None:
            if self._memory_documents is None:
                self._memory_documents = MemoryDocumentStore()
            return self._memory_documents
        else:
            documents = RedisDocumentStore(self.second_client(), prefix=self.prefix)
        self._closers.append(documents)
        return documents

    def run_registry(self) -> RunRegistry:
        """A registry; for Redis kinds every call is a new instance (another server process, in effect)."""
        if self.redis is None:
            if self._memory_registry is None:
                self._memory_registry = MemoryRunRegistry(clock=self.clock)
            return self._memory_registry
        registry = RedisRunRegistry(self.second_client(), prefix=self.prefix)
        self._closers.append(registry)
        return registry

    def second_client(self) -> RedisClient:
        """Another client on the same Redis, as a second instance would have."""
        assert self.redis is not None
        client: RedisClient
        if self.fake_server is not None:
            client = fakeredis.FakeAsyncRedis(server=self.fake_server, max_connections=5_000)
        else:
            client = connect_redis(redis_url(self.kind), cluster=self.kind == "cluster")
        self._closers.append(client)
        return client

    async def elapse(self, seconds: float) -> None:
        """Let `seconds` pass: advance the memory clock, or really wait for Redis key expiry."""
        self.clock.now += seconds
        if self.is_redis:
            await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        for closer in reversed(self._closers):
            await closer.aclose()
        if self.redis is not None:
            if self.kind in ("redis", "cluster"):
                keys = [key async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=500)]
                if keys:
                    await self.redis.delete(*keys)
            await self.redis.aclose()
        if self.sql_url is not None and self.sql_schema is not None:
            await sql.drop_schema(self.sql_url, self.sql_schema)


class SplitStreamBuffer:
    """A `StreamBuffer` that produces on `writer` and reads through `reader` (two instances, one Redis)."""

    def __init__(self, writer: RedisStreamBuffer, reader: RedisStreamBuffer) -> None:
        self.writer = writer
        self.reader = reader

    async def create(self, stream_id: str, run_id: str) -> None:
        await self.writer.create(stream_id, run_id)

    async def append(
        self, stream_id: str, frames: Sequence[bytes], *, final: bool = False, run_id: str | None = None
    ) -> None:
        await self.writer.append(stream_id, frames, final=final, run_id=run_id)

    async def read(self, stream_id: str, after: str | None, *, block: float = 0.0) -> ReadResult | None:
        return await self.reader.read(stream_id, after, block=block)

    async def info(self, stream_id: str) -> StreamInfo | None:
        return await self.reader.info(stream_id)

    async def delete(self, stream_id: str) -> None:
        await self.writer.delete(stream_id)

    async def ping(self) -> None:
        await self.reader.ping()

    async def aclose(self) -> None:
        return None  # both halves are closed by the Env


@pytest.fixture
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    kind: str = request.param
    prefix = f"test:{uuid4().hex}"
    if kind == "memory":
        backend = Env(kind, prefix)
    elif kind == "fakeredis":
        server = fakeredis.FakeServer()
        backend = Env(
            kind, prefix, redis=fakeredis.FakeAsyncRedis(server=server, max_connections=5_000), fake_server=server
        )
    elif kind == "sqlite":
        sqlite = sql.sqlite_url(tmp_path / "chat.db")
        await sql.migrate(sqlite)
        backend = Env(kind, prefix, sql_url=sqlite)
    elif kind == "postgres":
        postgres = sql.postgres_url()
        if not postgres:
            pytest.skip(f"{sql.POSTGRES_ENV} is not set")
        backend = Env(kind, prefix, sql_url=postgres, sql_schema=await sql.create_schema(postgres))
    else:
        backend = Env(kind, prefix, redis=connect_redis(redis_url(kind), cluster=kind == "cluster"))
    try:
        yield backend
    finally:
        await backend.aclose()


def redis_url(kind: str) -> str:
    """The real Redis of a kind: `REDIS_URL` for `redis`; for `cluster` `REDIS_CLUSTER_URL`, one node of a
    Redis Cluster (`redis://127.0.0.1:7101` or `redis+cluster://...`). Skips without it."""
    var = "REDIS_CLUSTER_URL" if kind == "cluster" else "REDIS_URL"
    url = os.environ.get(var)
    if not url:
        pytest.skip(f"{var} is not set")
    return url


@pytest.fixture
def stream_buffer(env: Env) -> StreamBuffer:
    return env.stream_buffer()


@pytest.fixture
def conversation_store(env: Env) -> ConversationStore:
    return env.conversation_store()


@pytest.fixture
def document_store(env: Env) -> DocumentStore:
    return env.document_store()


@pytest.fixture
def run_registry(env: Env) -> RunRegistry:
    return env.run_registry()
