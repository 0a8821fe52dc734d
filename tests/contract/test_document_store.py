"""The `DocumentStore` contract: memory, fakeredis, Redis, a Redis Cluster, SQLite and PostgreSQL behave the same.

Every `env.document_store()` of a Redis or SQL kind is a new instance on its own client or engine, as another
server process would have: what one stores, another reads.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from chatstream.models import Document, Suggestion

if TYPE_CHECKING:
    from chatstream.store.base import DocumentStore
    from tests.contract.conftest import Env

T0 = 1_764_600_000_000  # 2025-12-01T14:40:00Z, in epoch ms


def version(doc_id: str, at: int, content: str = "text", *, user: str = "alice", **kw: object) -> Document:
    fields: dict[str, object] = {"title": "Essay", "kind": "text", **kw}
    return Document(id=doc_id, created_at=at, content=content, user_id=user, **fields)  # type: ignore[arg-type]


def suggestion(sid: str, doc_id: str, doc_at: int, *, at: int = T0, text: str = "old") -> Suggestion:
    return Suggestion(
        id=sid,
        document_id=doc_id,
        document_created_at=doc_at,
        original_text=text,
        suggested_text=text.upper(),
        description="Louder",
        user_id="alice",
        created_at=at,
    )


async def test_versions_come_back_oldest_first_and_the_latest_is_the_document(env: Env) -> None:
    writer, reader = env.document_store(), env.document_store()
    for i, at in enumerate((T0, T0 + 1_000, T0 + 5_000)):
        assert await writer.save_document(version("d1", at, f"v{i}")) == version("d1", at, f"v{i}")
    await writer.save_document(version("other", T0 + 9_000, "elsewhere", user="bob", kind="code"))
    versions = await reader.list_versions("d1")
    assert [(d.created_at, d.content) for d in versions] == [(T0, "v0"), (T0 + 1_000, "v1"), (T0 + 5_000, "v2")]
    assert await reader.get_document("d1") == versions[-1]
    assert await reader.get_document("other") == version("other", T0 + 9_000, "elsewhere", user="bob", kind="code")


async def test_every_field_round_trips(document_store: DocumentStore) -> None:
    saved = version("d1", T0, None, title="Ünïcode ✓ title", kind="sheet")  # type: ignore[arg-type]
    await document_store.save_document(saved)
    assert await document_store.list_versions("d1") == [saved]
    code = version("d1", T0 + 1, 'print("hi")\n' * 3, kind="code")
    await document_store.save_document(code)
    assert await document_store.get_document("d1") == code


async def test_unknown_ids_are_empty(document_store: DocumentStore) -> None:
    assert await document_store.get_document("missing") is None
    assert await document_store.list_versions("missing") == []
    assert await document_store.list_suggestions("missing") == []
    assert await document_store.delete_versions_after("missing", 0) == []
    await document_store.save_document(version("d1", T0))
    await document_store.save_suggestions([suggestion("s1", "d1", T0)])
    # Nothing of d1 shows under another id.
    assert await document_store.list_versions("d") == []
    assert await document_store.list_suggestions("d") == []


async def test_saves_in_one_millisecond_or_out_of_order_stay_ordered(env: Env) -> None:
    store = env.document_store()
    first = await store.save_document(version("d1", T0, "a"))
    second = await store.save_document(version("d1", T0, "b"))  # the same millisecond
    third = await store.save_document(version("d1", T0 - 50, "c"))  # a clock behind the last save
    assert (first.created_at, second.created_at, third.created_at) == (T0, T0 + 1, T0 + 2)
    assert (second.content, third.content) == ("b", "c")
    versions = await env.document_store().list_versions("d1")
    assert versions == [first, second, third]
    later = await store.save_document(version("d1", T0 + 10_000, "d"))
    assert later.created_at == T0 + 10_000  # a later time is kept as given


async def test_delete_versions_after_is_strictly_after_and_takes_their_suggestions(env: Env) -> None:
    store = env.document_store()
    ats = [T0, T0 + 1_000, T0 + 2_000, T0 + 3_000]
    for i, at in enumerate(ats):
        await store.save_document(version("d1", at, f"v{i}"))
    await store.save_document(version("d2", T0 + 5_000, "untouched"))
    await store.save_suggestions(
        [
            suggestion("s0", "d1", ats[0], at=T0 + 10),
            suggestion("s1", "d1", ats[1], at=T0 + 20),
            suggestion("s2", "d1", ats[2], at=T0 + 30),
            suggestion("s3", "d1", ats[3], at=T0 + 40),
            suggestion("s-d2", "d2", T0 + 5_000, at=T0 + 50),
        ]
    )
    deleted = await store.delete_versions_after("d1", ats[1])  # v1 itself stays: strictly after
    assert [(d.created_at, d.content) for d in deleted] == [(ats[2], "v2"), (ats[3], "v3")]
    reader = env.document_store()
    assert [d.content for d in await reader.list_versions("d1")] == ["v0", "v1"]
    assert (await reader.get_document("d1") or version("x", 0)).content == "v1"
    assert [s.id for s in await reader.list_suggestions("d1")] == ["s0", "s1"]
    assert [s.id for s in await reader.list_suggestions("d2")] == ["s-d2"]
    assert [d.content for d in await reader.list_versions("d2")] == ["untouched"]
    assert await store.delete_versions_after("d1", ats[1]) == []  # nothing left after it
    # Before every version: all of them go, and the document is unknown again.
    assert [d.content for d in await store.delete_versions_after("d1", T0 - 1)] == ["v0", "v1"]
    assert await reader.get_document("d1") is None
    assert await reader.list_suggestions("d1") == []


async def test_a_version_saved_after_a_delete_continues_the_document(document_store: DocumentStore) -> None:
    for at in (T0, T0 + 1_000, T0 + 2_000):
        await document_store.save_document(version("d1", at))
    await document_store.delete_versions_after("d1", T0)
    again = await document_store.save_document(version("d1", T0 + 500, "restored"))
    assert again.created_at == T0 + 500  # later than what is left: kept as given
    assert [d.created_at for d in await document_store.list_versions("d1")] == [T0, T0 + 500]


async def test_suggestions_replace_by_id_and_come_back_in_order(env: Env) -> None:
    store = env.document_store()
    await store.save_document(version("d1", T0))
    await store.save_document(version("d1", T0 + 1_000))
    await store.save_suggestions(
        [
            suggestion("b", "d1", T0, at=T0 + 300),
            suggestion("a", "d1", T0 + 1_000, at=T0 + 300),  # same time as b: by id
            suggestion("c", "d1", T0, at=T0 + 100),
        ]
    )
    reader = env.document_store()
    assert [s.id for s in await reader.list_suggestions("d1")] == ["c", "a", "b"]
    resolved = Suggestion(
        id="b",
        document_id="d1",
        document_created_at=T0,
        original_text="old",
        suggested_text="new",
        description=None,
        user_id="alice",
        is_resolved=True,
        created_at=T0 + 50,
    )
    await store.save_suggestions([resolved])
    listed = await reader.list_suggestions("d1")
    assert [s.id for s in listed] == ["b", "c", "a"]
    assert listed[0] == resolved
    assert listed[1] == suggestion("c", "d1", T0, at=T0 + 100)
    await store.save_suggestions([])  # nothing to store: nothing changes
    assert await reader.list_suggestions("d1") == listed


async def test_suggestions_of_several_documents_in_one_call(document_store: DocumentStore) -> None:
    await document_store.save_suggestions(
        [suggestion("s1", "d1", T0), suggestion("s2", "d2", T0), suggestion("s3", "d1", T0, at=T0 + 1)]
    )
    assert [s.id for s in await document_store.list_suggestions("d1")] == ["s1", "s3"]
    assert [s.id for s in await document_store.list_suggestions("d2")] == ["s2"]


async def test_concurrent_saves_of_one_document_are_all_kept_in_distinct_increasing_times(env: Env) -> None:
    n = 20
    stores = [env.document_store() for _ in range(4)]  # four instances, as many processes would be
    saved = await asyncio.gather(*(stores[i % len(stores)].save_document(version("d1", T0, f"v{i}")) for i in range(n)))
    times = sorted(d.created_at for d in saved)
    assert times == list(range(T0, T0 + n))  # every save in the same ms: each got the next one
    versions = await env.document_store().list_versions("d1")
    assert sorted(d.content or "" for d in versions) == sorted(f"v{i}" for i in range(n))
    assert [d.created_at for d in versions] == times
    assert {d.created_at: d.content for d in versions} == {d.created_at: d.content for d in saved}


async def test_ping_answers(document_store: DocumentStore) -> None:
    await document_store.ping()
