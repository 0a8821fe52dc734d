"""The tables of the SQL store, close to the Vercel chatbot's (`Chat`, `Message` with JSON parts, `Vote`) plus
our suspended runs and preferences. This is the live definition the queries use; `migrations/` builds it
(a test compares the two).

Every record is stored whole as JSON in `record` (msgspec-encoded, camelCase as on the wire), so a new field
with a default needs no migration; what is queried, ordered or indexed is a real column beside it. Times are
epoch milliseconds (`BIGINT`), as in the records. Ids are `VARCHAR(128)` (the id grammar) with the `C`
collation on PostgreSQL, so `ORDER BY id` is byte order whatever the database's locale (the memory twin
sorts Python strings, the same order for ASCII ids).

- `chatstream_chat` (conversations): `updated_at` is authoritative over the record's (touching a
  conversation rewrites that column only); `last_position` numbers its messages.
- `chatstream_message`: primary key `(chat_id, id)`; `position`, unique per chat, is the order (insertion
  order: a message replaced by id keeps its position).
- `chatstream_vote`: one per message, deleted with it (`ON DELETE CASCADE`).
- `chatstream_suspended_run`: runs paused for approval, forgotten after `expires_at`.
- `chatstream_preferences`: one row per user.
- `chatstream_document` (revision 0002): one row per version of a document, primary key `(id, created_at)`, in
  the Vercel chatbot's columns (no `record`: the content is the row). Documents belong to their user, not to a
  conversation: no foreign key to `chatstream_chat`, deleting a chat leaves them.
- `chatstream_suggestion` (0002): edits suggested for a version, `(document_id, document_created_at)`. No
  foreign key to the version (the other backends store a suggestion whatever it names); deleting versions
  deletes their suggestions in the same transaction.

Tables carry the `chatstream_` prefix so that they can live in a host's own database beside its tables, and
the Alembic version table is `chatstream_alembic_version` for the same reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, UserDefinedType

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect
    from sqlalchemy.sql.compiler import SQLCompiler
    from sqlalchemy.types import TypeEngine

__all__ = [
    "HEAD",
    "VERSION_TABLE",
    "Doc",
    "chat",
    "document",
    "id_type",
    "message",
    "metadata",
    "preferences",
    "suggestion",
    "suspended_run",
    "vote",
]

HEAD = "0002"
"""The Alembic revision this code's queries expect (the newest in `migrations/versions`; a test checks it)."""

VERSION_TABLE = "chatstream_alembic_version"


class _PgJson(UserDefinedType[str]):
    """PostgreSQL `JSON` without SQLAlchemy's (de)serialization: bound as text (asyncpg's codec encodes it)."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSON"


class _AsText(ColumnElement[str]):
    """A `Doc` column as selected: `col::text` on PostgreSQL (asyncpg would hand `json` to `json.loads`),
    the column itself elsewhere."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = Text()


@compiles(_AsText)
def _as_text(element: _AsText, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_AsText, "postgresql")
def _as_text_pg(element: _AsText, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)}::text"


class Doc(TypeDecorator[str]):
    """A msgspec-encoded record: `JSON` on PostgreSQL (checked by the server, readable with `->`), `TEXT` on
    SQLite. Bound and read as text: msgspec encodes and decodes it, straight into the record's type."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(_PgJson() if dialect.name == "postgresql" else Text())

    def column_expression(self, column: ColumnElement[str]) -> ColumnElement[str]:
        return _AsText(column)


def id_type() -> TypeEngine[str]:
    """`VARCHAR(128)`, `COLLATE "C"` on PostgreSQL."""
    return String(128).with_variant(String(128, collation="C"), "postgresql")


metadata = MetaData()

chat = Table(
    "chatstream_chat",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("title", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_position", BigInteger, nullable=False, server_default="0"),
    Column("record", Doc, nullable=False),
    # The listings: by user and recency, optionally of one channel and/or one visibility; the cursors are
    # (updated_at, id) row comparisons on the same indexes (scanned forwards or backwards).
    Index("chatstream_chat_user_recent", "user_id", "updated_at", "id"),
    Index("chatstream_chat_user_channel_recent", "user_id", "channel", "updated_at", "id"),
    Index("chatstream_chat_user_visibility_recent", "user_id", "visibility", "updated_at", "id"),
    Index("chatstream_chat_user_channel_visibility_recent", "user_id", "channel", "visibility", "updated_at", "id"),
)

message = Table(
    "chatstream_message",
    metadata,
    Column("chat_id", id_type(), ForeignKey("chatstream_chat.id", ondelete="CASCADE"), primary_key=True),
    Column("id", id_type(), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("run_id", id_type(), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("record", Doc, nullable=False),
    # Messages by conversation and order (listing, paging back with `before`, truncate, rewind).
    UniqueConstraint("chat_id", "position", name="chatstream_message_chat_position"),
)

vote = Table(
    "chatstream_vote",
    metadata,
    Column("chat_id", id_type(), primary_key=True),
    Column("message_id", id_type(), primary_key=True),
    Column("is_upvoted", Boolean, nullable=False),
    ForeignKeyConstraint(
        ["chat_id", "message_id"],
        ["chatstream_message.chat_id", "chatstream_message.id"],
        ondelete="CASCADE",
        name="chatstream_vote_message",
    ),
)

suspended_run = Table(
    "chatstream_suspended_run",
    metadata,
    Column("run_id", id_type(), primary_key=True),
    Column("chat_id", id_type(), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("record", Doc, nullable=False),
    # No foreign key: a run may be saved before its conversation is (and is deleted with it by hand).
    Index("chatstream_suspended_run_chat", "chat_id"),
    Index("chatstream_suspended_run_expires", "expires_at"),
)

preferences = Table(
    "chatstream_preferences",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("updated_at", BigInteger, nullable=False),
    Column("record", Doc, nullable=False),
)

document = Table(
    "chatstream_document",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("created_at", BigInteger, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("content", Text, nullable=True),
    Column("kind", String(16), nullable=False),
)

suggestion = Table(
    "chatstream_suggestion",
    metadata,
    Column("id", id_type(), primary_key=True),
    Column("document_id", id_type(), nullable=False),
    Column("document_created_at", BigInteger, nullable=False),
    Column("original_text", Text, nullable=False),
    Column("suggested_text", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("is_resolved", Boolean, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # A document's suggestions (listing), and those of its versions after a time (deleting versions).
    Index("chatstream_suggestion_document", "document_id", "document_created_at"),
)
