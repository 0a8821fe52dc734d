"""Documents and suggestions over ASGI, in the Vercel chatbot's shape: versions oldest first, saving, deleting
after a time, the ownership 403s, and the refusals (which store nothing); then a real server on SQLite that
keeps a document across a restart."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx
import jsonschema
import pytest
from fakeredis import FakeAsyncRedis
from litestar.testing import TestClient

from chatstream import create_app
from chatstream.api.documents import iso_ms, parse_timestamp
from chatstream.errors import BadRequestError
from chatstream.models import Document, Suggestion
from chatstream.store.memory import MemoryDocumentStore
from chatstream.store.redis_documents import RedisDocumentStore
from chatstream.store.sql.documents import SqlDocumentStore
from tests.api.conftest import ALICE, BOB
from tests.api.test_openapi import validator
from tests.support.server import AUTH, OTHER_AUTH, ServerProcess
from tests.support.settings import make_settings, services_of
from tests.support.sql import sqlite_url

if TYPE_CHECKING:
    from pathlib import Path

    from litestar import Litestar
    from litestar.testing import AsyncTestClient

    from chatstream.store.base import DocumentStore

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ESSAY = {"title": "Essay", "kind": "text", "content": "First draft."}


async def save(client: AsyncTestClient[Any], doc_id: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return await client.post("/api/document", params={"id": doc_id}, json=body, headers=headers)


async def test_versions_are_saved_and_listed_oldest_first(client: AsyncTestClient[Any]) -> None:
    first = await save(client, "doc-1", ESSAY, ALICE)
    assert first.status_code == 200
    version = first.json()
    assert set(version) == {"id", "createdAt", "title", "content", "kind", "userId"}
    assert (version["id"], version["title"], version["content"], version["kind"], version["userId"]) == (
        "doc-1",
        "Essay",
        "First draft.",
        "text",
        "alice",
    )
    assert ISO.match(version["createdAt"]), version["createdAt"]
    second = (await save(client, "doc-1", {**ESSAY, "content": "Second draft.", "chatId": "c1"}, ALICE)).json()
    third = (await save(client, "doc-1", {"title": "Code", "kind": "code", "content": None}, ALICE)).json()
    listed = await client.get("/api/document", params={"id": "doc-1"}, headers=ALICE)
    assert listed.status_code == 200
    assert listed.json() == [version, second, third]
    # Three saves in a row, maybe in one millisecond: still three distinct times, in order.
    times = [parse_timestamp(v["createdAt"]) for v in listed.json()]
    assert times == sorted(set(times))
    stored = await services_of(client.app).documents.list_versions("doc-1")
    assert [iso_ms(d.created_at) for d in stored] == [v["createdAt"] for v in listed.json()]


async def test_delete_removes_the_versions_after_the_timestamp(client: AsyncTestClient[Any]) -> None:
    documents = services_of(client.app).documents
    base = 1_796_139_600_123  # 2026-12-01T15:40:00.123Z
    for i in range(4):
        await documents.save_document(
            Document(id="doc-1", created_at=base + i * 1_000, title="T", content=f"v{i}", kind="text", user_id="alice")
        )
    cut = "2026-12-01T15:40:01.123Z"  # the second version's createdAt: it stays
    deleted = await client.delete("/api/document", params={"id": "doc-1", "timestamp": cut}, headers=ALICE)
    assert deleted.status_code == 200
    assert [(v["content"], v["createdAt"]) for v in deleted.json()] == [
        ("v2", "2026-12-01T15:40:02.123Z"),
        ("v3", "2026-12-01T15:40:03.123Z"),
    ]
    left = (await client.get("/api/document", params={"id": "doc-1"}, headers=ALICE)).json()
    assert [v["content"] for v in left] == ["v0", "v1"]
    # Another offset, the same instant; nothing after it any more.
    again = await client.delete(
        "/api/document", params={"id": "doc-1", "timestamp": "2026-12-01T16:40:01.123+01:00"}, headers=ALICE
    )
    assert again.status_code == 200 and again.json() == []


@pytest.mark.parametrize(
    "timestamp", ["yesterday", "2026-12-01", "2026-12-01T15:40:00", "2026-02-30T00:00:00Z", "1764600000000", " "]
)
async def test_an_invalid_timestamp_is_400_and_deletes_nothing(client: AsyncTestClient[Any], timestamp: str) -> None:
    await save(client, "doc-1", ESSAY, ALICE)
    refused = await client.delete("/api/document", params={"id": "doc-1", "timestamp": timestamp}, headers=ALICE)
    assert refused.status_code == 400
    assert "timestamp" in refused.json()["error"]
    assert len((await client.get("/api/document", params={"id": "doc-1"}, headers=ALICE)).json()) == 1


async def test_missing_and_invalid_parameters_are_400(client: AsyncTestClient[Any]) -> None:
    for method, path, params in [
        ("GET", "/api/document", {}),
        ("POST", "/api/document", {}),
        ("DELETE", "/api/document", {"timestamp": "2026-12-01T15:40:00Z"}),
        ("DELETE", "/api/document", {"id": "doc-1"}),
        ("GET", "/api/suggestions", {}),
        ("GET", "/api/document", {"id": "not an id"}),
        ("GET", "/api/suggestions", {"documentId": "{bad}"}),
    ]:
        r = await client.request(method, path, params=params, json=ESSAY if method == "POST" else None, headers=ALICE)
        assert r.status_code == 400, (method, params, r.text)
        assert set(r.json()) >= {"error"}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"title": "T", "content": "c"}',
        b'{"title": "T", "kind": "essay", "content": "c"}',
        b'{"title": 3, "kind": "text", "content": "c"}',
        b'{"kind": "text", "content": "c"}',
        b'{"title": "T", "kind": "text"}',
    ],
)
async def test_a_bad_body_is_400_and_stores_nothing(client: AsyncTestClient[Any], body: bytes) -> None:
    r = await client.post("/api/document", params={"id": "doc-1"}, content=body, headers=ALICE)
    assert r.status_code == 400, r.text
    assert (await client.get("/api/document", params={"id": "doc-1"}, headers=ALICE)).status_code == 404
    assert await services_of(client.app).documents.list_versions("doc-1") == []


async def test_an_unknown_document_is_404(client: AsyncTestClient[Any]) -> None:
    r = await client.get("/api/document", params={"id": "missing"}, headers=ALICE)
    assert r.status_code == 404 and r.json()["error"] == "document not found"
    r = await client.delete(
        "/api/document", params={"id": "missing", "timestamp": "2026-12-01T00:00:00Z"}, headers=ALICE
    )
    assert r.status_code == 404


async def test_someone_elses_document_is_403_and_stays_as_it_was(client: AsyncTestClient[Any]) -> None:
    mine = (await save(client, "doc-1", ESSAY, ALICE)).json()
    assert (await client.get("/api/document", params={"id": "doc-1"}, headers=BOB)).status_code == 403
    overwrite = await save(client, "doc-1", {**ESSAY, "content": "Bob's now"}, BOB)
    assert overwrite.status_code == 403 and overwrite.json()["error"]
    cut = await client.delete("/api/document", params={"id": "doc-1", "timestamp": "1970-01-01T00:00:00Z"}, headers=BOB)
    assert cut.status_code == 403
    assert (await client.get("/api/suggestions", params={"documentId": "doc-1"}, headers=BOB)).status_code == 403
    assert (await client.get("/api/document", params={"id": "doc-1"}, headers=ALICE)).json() == [mine]
    # Bob's own document, under another id, is his.
    assert (await save(client, "doc-2", ESSAY, BOB)).json()["userId"] == "bob"
    assert (await client.get("/api/document", params={"id": "doc-2"}, headers=ALICE)).status_code == 403


async def test_without_a_token_every_route_is_401(client: AsyncTestClient[Any]) -> None:
    for method, path in [("GET", "/api/document"), ("POST", "/api/document"), ("DELETE", "/api/document")]:
        r = await client.request(method, path, params={"id": "doc-1", "timestamp": "2026-12-01T00:00:00Z"})
        assert r.status_code == 401
    assert (await client.get("/api/suggestions", params={"documentId": "doc-1"})).status_code == 401
    assert await services_of(client.app).documents.list_versions("doc-1") == []


async def test_suggestions_are_listed_in_the_chatbots_shape(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/api/suggestions", params={"documentId": "doc-1"}, headers=ALICE)).json() == []
    version = (await save(client, "doc-1", ESSAY, ALICE)).json()
    at = parse_timestamp(version["createdAt"])
    assert (await client.get("/api/suggestions", params={"documentId": "doc-1"}, headers=ALICE)).json() == []
    await services_of(client.app).documents.save_suggestions(
        [
            Suggestion(
                id=f"s{i}",
                document_id="doc-1",
                document_created_at=at,
                original_text=f"First draft {i}.",
                suggested_text=f"A first draft {i}.",
                description="Add an article" if i else None,
                user_id="alice",
                is_resolved=i == 2,
                created_at=1_796_139_600_000 + i,
            )
            for i in (2, 0, 1)
        ]
    )
    listed = await client.get("/api/suggestions", params={"documentId": "doc-1"}, headers=ALICE)
    assert listed.status_code == 200
    body = listed.json()
    assert [s["id"] for s in body] == ["s0", "s1", "s2"]
    assert body[0] == {
        "id": "s0",
        "documentId": "doc-1",
        "documentCreatedAt": version["createdAt"],
        "originalText": "First draft 0.",
        "suggestedText": "A first draft 0.",
        "description": None,
        "isResolved": False,
        "userId": "alice",
        "createdAt": "2026-12-01T15:40:00.000Z",
    }
    assert body[2]["isResolved"] is True and body[2]["description"] == "Add an article"
    # Deleting the version deletes its suggestions.
    before = iso_ms(at - 1)
    deleted = await client.delete("/api/document", params={"id": "doc-1", "timestamp": before}, headers=ALICE)
    assert [v["createdAt"] for v in deleted.json()] == [version["createdAt"]]
    assert await services_of(client.app).documents.list_suggestions("doc-1") == []


async def test_answers_validate_against_the_openapi_document(client: AsyncTestClient[Any]) -> None:
    doc: dict[str, Any] = client.app.openapi_schema.to_schema()
    ops = doc["paths"]
    assert set(ops["/api/document"]) == {"get", "post", "delete"} and set(ops["/api/suggestions"]) == {"get"}
    timestamp = {p["name"]: p for p in ops["/api/document"]["delete"]["parameters"]}["timestamp"]
    assert timestamp["required"] is True and timestamp["schema"]["format"] == "date-time"
    assert {"400", "401", "403", "404", "503"} <= set(ops["/api/document"]["get"]["responses"])
    assert "413" in ops["/api/document"]["post"]["responses"]
    version = validator(doc, "DocumentVersion")
    saved = await save(client, "doc-1", ESSAY, ALICE)
    version.validate(saved.json())
    for v in (await client.get("/api/document", params={"id": "doc-1"}, headers=ALICE)).json():
        version.validate(v)
    at = parse_timestamp(saved.json()["createdAt"])
    await services_of(client.app).documents.save_suggestions(
        [
            Suggestion(
                id="s1",
                document_id="doc-1",
                document_created_at=at,
                original_text="a",
                suggested_text="b",
                description=None,
                user_id="alice",
            )
        ]
    )
    suggestions = (await client.get("/api/suggestions", params={"documentId": "doc-1"}, headers=ALICE)).json()
    assert len(suggestions) == 1
    validator(doc, "Suggestion").validate(suggestions[0])
    validator(doc, "ApiError").validate((await client.get("/api/document", headers=ALICE)).json())
    with pytest.raises(jsonschema.ValidationError):  # the body schema refuses what the route refuses
        validator(doc, "DocumentInput").validate({"title": "T", "kind": "essay", "content": "c"})
    validator(doc, "DocumentInput").validate(ESSAY)


def test_timestamps_parse_as_rfc_3339_and_print_as_the_chatbots_dates() -> None:
    assert parse_timestamp("2026-12-01T15:40:00.123Z") == 1_796_139_600_123
    assert parse_timestamp("2026-12-01t15:40:00.1239z") == 1_796_139_600_123  # rounded down
    assert parse_timestamp("2026-12-01T16:40:00.123+01:00") == 1_796_139_600_123
    assert parse_timestamp("1970-01-01T00:00:00Z") == 0
    assert parse_timestamp("0000-01-01T00:00:00Z") < parse_timestamp("0001-01-01T00:00:00Z") == -62_135_596_800_000
    assert iso_ms(1_796_139_600_123) == "2026-12-01T15:40:00.123Z"
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    for bad in (
        "2026-13-01T00:00:00Z",
        "2026-12-01T24:00:00Z",
        "2026-12-01T00:00:00+24:00",
        "\uff12\uff10\uff12\uff16-12-01T00:00:00Z",  # fullwidth digits,
    ):
        with pytest.raises(BadRequestError):
            parse_timestamp(bad)


def test_documents_follow_the_conversation_store(tmp_path: Path) -> None:
    """SQL on the store's engine, Redis beside the Redis store, memory otherwise; a host's own wins."""

    def documents_of(app: Litestar) -> DocumentStore:
        with TestClient(app) as client:
            saved = client.post("/api/document", params={"id": "doc-1"}, json=ESSAY, headers=ALICE)
            assert saved.status_code == 200, saved.text
            return services_of(app).documents

    url = sqlite_url(tmp_path / "chat.db")
    sql_documents = documents_of(create_app(make_settings(database_url=url)))
    assert isinstance(sql_documents, SqlDocumentStore)
    with_redis = create_app(make_settings(database_url=url, redis_url="redis://unused:1/0"), redis=FakeAsyncRedis())
    assert isinstance(documents_of(with_redis), SqlDocumentStore)  # DATABASE_URL holds everything stored
    redis_only = create_app(make_settings(redis_url="redis://unused:1/0"), redis=FakeAsyncRedis())
    assert isinstance(documents_of(redis_only), RedisDocumentStore)
    assert isinstance(documents_of(create_app(make_settings())), MemoryDocumentStore)
    assert isinstance(documents_of(create_app(make_settings(database_url="memory://"))), MemoryDocumentStore)
    own = MemoryDocumentStore()
    assert documents_of(create_app(make_settings(database_url=url), documents=own)) is own


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_a_document_outlives_a_restart_on_sqlite(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}", "CHAT_TITLE_GENERATION": "false"}
    with ServerProcess(env) as first, httpx.Client(base_url=first.url, timeout=30) as client:
        saved = client.post("/api/document", params={"id": "doc-1"}, json=ESSAY, headers=AUTH)
        assert saved.status_code == 200, saved.text
        second = client.post("/api/document", params={"id": "doc-1"}, json={**ESSAY, "content": "v2"}, headers=AUTH)
        assert second.status_code == 200
    with ServerProcess(env) as again, httpx.Client(base_url=again.url, timeout=30) as client:
        listed = client.get("/api/document", params={"id": "doc-1"}, headers=AUTH)
        assert listed.status_code == 200
        assert listed.json() == [saved.json(), second.json()]
        assert client.get("/api/document", params={"id": "doc-1"}, headers=OTHER_AUTH).status_code == 403
