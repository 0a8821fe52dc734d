"""`SqlDocumentStore`: the `DocumentStore` on SQLite or PostgreSQL (tables `chatstream_document` and
`chatstream_suggestion`, `schema.py`), usually on the conversation store's engine.

What the Redis store makes atomic with a Lua script, and how it is atomic here:

- `save_document`: a transaction that reads the document's latest `created_at` and inserts the new version
  after it. On PostgreSQL the transaction first takes an advisory lock of the document id
  (`pg_advisory_xact_lock`, released at commit): a document has no row to lock before its first version, and
  two instances saving one document at once would otherwise both read the same latest version. On SQLite
  `BEGIN IMMEDIATE` holds the database's write lock for the transaction. The primary key `(id, created_at)`
  refuses a duplicate whatever happens.
- `delete_versions_after`: one transaction deletes the suggestions of the versions, then the versions
  (`DELETE ... RETURNING`).
- `save_suggestions`: one transaction of upserts (`INSERT ... ON CONFLICT (id) DO UPDATE`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import bindparam, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite

from chatstream.models import Document, Suggestion
from chatstream.store.sql.engine import open_database, unavailable
from chatstream.store.sql.schema import document, suggestion

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.store.sql.engine import Database

__all__ = ["SqlDocumentStore"]

_LOCK_SPACE = 0x646F63  # pg_advisory_xact_lock's first key: "doc" (the migration lock uses the one-key form)
_LOCK = text("SELECT pg_advisory_xact_lock(:space, :key)")
_DOCUMENT_COLUMNS = tuple(document.c)
_SUGGESTION_COLUMNS = tuple(suggestion.c)


def _p(name: str) -> Any:
    return bindparam(name)


_LATEST_AT = select(func.max(document.c.created_at)).where(document.c.id == _p("id"))
_INSERT_DOCUMENT = insert(document)
_ALL_VERSIONS = select(*_DOCUMENT_COLUMNS).where(document.c.id == _p("id")).order_by(document.c.created_at)
_LATEST = select(*_DOCUMENT_COLUMNS).where(document.c.id == _p("id")).order_by(document.c.created_at.desc()).limit(1)
_DELETE_SUGGESTIONS_AFTER = delete(suggestion).where(
    suggestion.c.document_id == _p("id"), suggestion.c.document_created_at > _p("after")
)
_DELETE_VERSIONS_AFTER = (
    delete(document).where(document.c.id == _p("id"), document.c.created_at > _p("after")).returning(*_DOCUMENT_COLUMNS)
)
_SUGGESTIONS = (
    select(*_SUGGESTION_COLUMNS)
    .where(suggestion.c.document_id == _p("id"))
    .order_by(suggestion.c.created_at, suggestion.c.id)
)


def _upsert_suggestion(dialect: str) -> Any:
    put = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(suggestion)
    return put.on_conflict_do_update(
        index_elements=[suggestion.c.id], set_={c.name: put.excluded[c.name] for c in suggestion.c if c.name != "id"}
    )


_PUT_SUGGESTION = {name: _upsert_suggestion(name) for name in ("postgresql", "sqlite")}


class SqlDocumentStore:
    """Document versions and suggestions in SQLite or PostgreSQL. The tables must exist (revision 0002 of the
    migrations, which the factory checks or applies at start-up like the conversation store's)."""

    def __init__(self, database: Database, *, owns_engine: bool = True) -> None:
        """Args:
        database: from `chatstream.store.sql.engine.open_database`; usually the conversation store's.
        owns_engine: dispose of the engine on `aclose` (False when the conversation store shares it).
        """
        self.database = database
        self._single = database.single
        self._tx = database.tx
        self._lock = database.dialect == "postgresql"
        self._put_suggestion = _PUT_SUGGESTION[database.dialect]
        self._owns_engine = owns_engine

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None) -> SqlDocumentStore:
        """A store on its own engine for `url` (see `open_database`); nothing connects until the first call."""
        return cls(open_database(url, schema=schema))

    async def _rows(self, stmt: Any, params: dict[str, Any]) -> Sequence[Any]:
        with unavailable("document store"):
            async with self._single.connect() as conn:
                return (await conn.execute(stmt, params)).all()

    async def save_document(self, document: Document) -> Document:
        with unavailable("document store"):
            async with self._tx.begin() as conn:
                if self._lock:
                    await conn.execute(_LOCK, {"space": _LOCK_SPACE, "key": _lock_key(document.id)})
                latest = (await conn.execute(_LATEST_AT, {"id": document.id})).scalar()
                at = document.created_at if latest is None or document.created_at > latest else int(latest) + 1
                row = {
                    "id": document.id,
                    "created_at": at,
                    "user_id": document.user_id,
                    "title": document.title,
                    "content": document.content,
                    "kind": document.kind,
                }
                await conn.execute(_INSERT_DOCUMENT, row)
        return document if at == document.created_at else msgspec.structs.replace(document, created_at=at)

    async def get_document(self, document_id: str) -> Document | None:
        rows = await self._rows(_LATEST, {"id": document_id})
        return _document(rows[0]) if rows else None

    async def list_versions(self, document_id: str) -> list[Document]:
        return [_document(row) for row in await self._rows(_ALL_VERSIONS, {"id": document_id})]

    async def delete_versions_after(self, document_id: str, timestamp: int) -> list[Document]:
        params = {"id": document_id, "after": int(timestamp)}
        with unavailable("document store"):
            async with self._tx.begin() as conn:
                await conn.execute(_DELETE_SUGGESTIONS_AFTER, params)
                rows = (await conn.execute(_DELETE_VERSIONS_AFTER, params)).all()
        return sorted((_document(row) for row in rows), key=lambda d: d.created_at)

    async def save_suggestions(self, suggestions: Sequence[Suggestion]) -> None:
        if not suggestions:
            return
        rows = [
            {
                "id": s.id,
                "document_id": s.document_id,
                "document_created_at": s.document_created_at,
                "original_text": s.original_text,
                "suggested_text": s.suggested_text,
                "description": s.description,
                "is_resolved": s.is_resolved,
                "user_id": s.user_id,
                "created_at": s.created_at,
            }
            for s in {s.id: s for s in suggestions}.values()  # one row per id: the last given
        ]
        with unavailable("document store"):
            async with self._tx.begin() as conn:
                for row in rows:
                    await conn.execute(self._put_suggestion, row)

    async def list_suggestions(self, document_id: str) -> list[Suggestion]:
        rows = await self._rows(_SUGGESTIONS, {"id": document_id})
        return [
            Suggestion(
                id=row.id,
                document_id=row.document_id,
                document_created_at=int(row.document_created_at),
                original_text=row.original_text,
                suggested_text=row.suggested_text,
                description=row.description,
                is_resolved=bool(row.is_resolved),
                user_id=row.user_id,
                created_at=int(row.created_at),
            )
            for row in rows
        ]

    async def ping(self) -> None:
        with unavailable("document store"):
            async with self._single.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")

    async def aclose(self) -> None:
        if self._owns_engine:
            await self.database.aclose()


def _lock_key(document_id: str) -> int:
    """A signed 32-bit key of the document id (two ids sharing one only wait for each other)."""
    return int.from_bytes(hashlib.blake2b(document_id.encode(), digest_size=4).digest(), "big", signed=True)


def _document(row: Any) -> Document:
    return Document(
        id=row.id,
        created_at=int(row.created_at),
        title=row.title,
        content=row.content,
        kind=row.kind,
        user_id=row.user_id,
    )
