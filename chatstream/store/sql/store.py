"""`SqlConversationStore`: the `ConversationStore` on SQLite or PostgreSQL (tables: `schema.py`).

Every statement is built once, at import, with bind parameters; SQLAlchemy compiles each once per engine
(its compiled cache) and asyncpg prepares each once per connection. One-statement operations run in
autocommit (`Database.single`); what reads before it writes runs in a transaction (`Database.tx`).

What the Redis store makes atomic with a Lua script, and how it is atomic here, with several instances on
one PostgreSQL (on SQLite every transaction is `BEGIN IMMEDIATE`: one writer at a time, nothing interleaves):

- `save_message`: `UPDATE chatstream_chat ... RETURNING last_position` takes the conversation's row lock and
  numbers the message; on PostgreSQL it is a CTE of the same statement as the `INSERT ... ON CONFLICT (chat_id,
  id) DO UPDATE` (a replaced message keeps its position). No conversation row, no message: a deleted
  conversation gets nothing (and the foreign key refuses it anyway).
- `save_message_once`: the same, in a transaction, with `ON CONFLICT ... DO UPDATE ... WHERE run_id IS DISTINCT
  FROM excluded.run_id`: the condition is evaluated on the conflicting row under its lock, so of two instances
  storing one run's answer, the second finds the first's row and stores nothing (and rolls back its touch).
- `truncate`, `rewind`: the conversation row `FOR UPDATE` first, so no message is appended meanwhile.
- `delete_conversation`: one transaction; messages and votes go by `ON DELETE CASCADE`.
- `take_suspended_run`: `DELETE ... RETURNING`: of two concurrent deletes of one row, one returns it.
- `vote`: `INSERT ... SELECT ... WHERE EXISTS (the message) ON CONFLICT DO UPDATE`; the foreign key refuses a
  vote on a message deleted meanwhile (False).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import BigInteger, Boolean, String, and_, bindparam, cast, delete, exists, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from chatstream.models import Conversation, Message, Preferences, SuspendedRun, Vote, now_ms
from chatstream.store.sql.engine import open_database, unavailable
from chatstream.store.sql.schema import Doc, chat, message, preferences, suspended_run, vote

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.sql import Executable

    from chatstream.store.sql.engine import Database

__all__ = ["SqlConversationStore"]

_encoder = msgspec.json.Encoder()
_conversation = msgspec.json.Decoder(Conversation)
_message = msgspec.json.Decoder(Message)
_suspended = msgspec.json.Decoder(SuspendedRun)
_preferences = msgspec.json.Decoder(Preferences)


def _doc(record: msgspec.Struct) -> str:
    return _encoder.encode(record).decode()


def _p(name: str) -> Any:
    return bindparam(name)


# ---- conversations -------------------------------------------------------------------------------------------

_GET_CHAT = select(chat.c.record, chat.c.updated_at).where(chat.c.id == _p("id"))
_CHAT_COLUMNS = ("user_id", "channel", "visibility", "title", "created_at", "updated_at", "record")


def _listing(*, channel: bool, visibility: bool, cursor: str | None) -> Executable:
    """One of the listing statements: by user and recency, filtered, from a cursor (`after` or `before`)."""
    stmt = select(chat.c.record, chat.c.updated_at).where(chat.c.user_id == _p("user"))
    if channel:
        stmt = stmt.where(chat.c.channel == _p("channel"))
    if visibility:
        stmt = stmt.where(chat.c.visibility == _p("visibility"))
    newest_first = (chat.c.updated_at.desc(), chat.c.id.desc())
    if cursor is None:
        return stmt.order_by(*newest_first).limit(_p("limit"))
    # The cursor row, which must be the user's: no row, nothing listed.
    k = chat.alias("k")
    stmt = stmt.join(k, and_(k.c.id == _p("cursor"), k.c.user_id == _p("user")))
    here, there = tuple_(chat.c.updated_at, chat.c.id), tuple_(k.c.updated_at, k.c.id)
    if cursor == "after":
        return stmt.where(here < there).order_by(*newest_first).limit(_p("limit"))
    # The `limit` nearest newer ones: ascending from the cursor (reversed by the caller).
    return stmt.where(here > there).order_by(chat.c.updated_at, chat.c.id).limit(_p("limit"))


_LISTINGS = {
    (channel, visibility, cursor): _listing(channel=channel, visibility=visibility, cursor=cursor)
    for channel in (False, True)
    for visibility in (False, True)
    for cursor in (None, "after", "before")
}

_DELETE_RUNS_OF_CHAT = delete(suspended_run).where(suspended_run.c.chat_id == _p("id"))
_DELETE_CHAT = delete(chat).where(chat.c.id == _p("id")).returning(chat.c.record, chat.c.updated_at)

# ---- messages ------------------------------------------------------------------------------------------------

_MESSAGE_COLUMNS = ("chat_id", "id", "position", "role", "run_id", "created_at", "record")
# Number the message and touch the conversation, under its row lock; no row when it does not exist.
_TOUCH = (
    update(chat)
    .where(chat.c.id == _p("chat_id"))
    .values(updated_at=_p("now"), last_position=chat.c.last_position + 1)
    .returning(chat.c.last_position)
)
_GET_MESSAGE = select(message.c.record).where(message.c.chat_id == _p("chat_id"), message.c.id == _p("id"))
_ALL_MESSAGES = select(message.c.record).where(message.c.chat_id == _p("chat_id")).order_by(message.c.position)
_LAST_MESSAGES = (
    select(message.c.record)
    .where(message.c.chat_id == _p("chat_id"))
    .order_by(message.c.position.desc())
    .limit(_p("limit"))
)
_m2 = message.alias("m2")
_BEFORE = select(_m2.c.position).where(_m2.c.chat_id == _p("chat_id"), _m2.c.id == _p("before")).scalar_subquery()
_MESSAGES_BEFORE = (
    select(message.c.record)
    .where(message.c.chat_id == _p("chat_id"), message.c.position < _BEFORE)
    .order_by(message.c.position.desc())
    .limit(_p("limit"))
)
_ALL_MESSAGES_BEFORE = (
    select(message.c.record)
    .where(message.c.chat_id == _p("chat_id"), message.c.position < _BEFORE)
    .order_by(message.c.position)
)
_LOCK_CHAT = select(chat.c.id).where(chat.c.id == _p("chat_id")).with_for_update()
_COUNT_MESSAGES = select(func.count()).select_from(message).where(message.c.chat_id == _p("chat_id"))
_DELETE_ALL_MESSAGES = delete(message).where(message.c.chat_id == _p("chat_id"))
# The (keep+1)-th most recent message's position: it and everything older goes.
_CUT = (
    select(_m2.c.position)
    .where(_m2.c.chat_id == _p("chat_id"))
    .order_by(_m2.c.position.desc())
    .limit(1)
    .offset(_p("keep"))
    .scalar_subquery()
)
_DELETE_OLDER = delete(message).where(message.c.chat_id == _p("chat_id"), message.c.position <= _CUT)
# The rewound message's position, with its conversation's row locked (PostgreSQL; SQLite holds the write lock).
_REWIND_FROM = (
    select(message.c.position)
    .join(chat, chat.c.id == message.c.chat_id)
    .where(message.c.chat_id == _p("chat_id"), message.c.id == _p("id"))
    .with_for_update(of=chat)
)
_DELETE_FROM = (
    delete(message)
    .where(message.c.chat_id == _p("chat_id"), message.c.position >= _p("position"))
    .returning(message.c.id, message.c.position)
)

# ---- votes, preferences, suspended runs ----------------------------------------------------------------------

_LIST_VOTES = (
    select(vote.c.chat_id, vote.c.message_id, vote.c.is_upvoted)
    .join(message, and_(message.c.chat_id == vote.c.chat_id, message.c.id == vote.c.message_id))
    .where(vote.c.chat_id == _p("chat_id"))
    .order_by(message.c.position)
)
_GET_PREFERENCES = select(preferences.c.record).where(preferences.c.user_id == _p("user_id"))
_GET_RUN = select(suspended_run.c.record).where(
    suspended_run.c.run_id == _p("run_id"), suspended_run.c.expires_at > _p("now")
)
_TAKE_RUN = (
    delete(suspended_run)
    .where(suspended_run.c.run_id == _p("run_id"), suspended_run.c.expires_at > _p("now"))
    .returning(suspended_run.c.record)
)
_EXPIRE_RUNS = delete(suspended_run).where(suspended_run.c.expires_at <= _p("now"))


class _Dialect:
    """The statements that differ by dialect: the upserts (`INSERT ... ON CONFLICT` of each dialect's module)."""

    def __init__(self, name: str) -> None:
        insert = postgresql.insert if name == "postgresql" else sqlite.insert
        put_chat = insert(chat)
        self.put_chat = put_chat.on_conflict_do_update(
            index_elements=[chat.c.id], set_={c: put_chat.excluded[c] for c in _CHAT_COLUMNS}
        )
        replace = ("role", "run_id", "created_at", "record")
        put_message = insert(message)
        self.put_message = put_message.on_conflict_do_update(
            index_elements=[message.c.chat_id, message.c.id], set_={c: put_message.excluded[c] for c in replace}
        )
        # Only over a message of another run (or of none): the once-only store.
        self.put_message_once = put_message.on_conflict_do_update(
            index_elements=[message.c.chat_id, message.c.id],
            set_={c: put_message.excluded[c] for c in replace},
            where=message.c.run_id.is_distinct_from(put_message.excluded.run_id),
        ).returning(message.c.position)
        self.save_message: Executable | None = None
        if name == "postgresql":
            # One statement: touch-and-number as a CTE, the upsert selecting from it (nothing when no row).
            touched = _TOUCH.cte("touched")
            # Bind names that are no column's: SQLAlchemy would take those for more SET/VALUES columns.
            values = select(
                cast(_p("m_chat"), String),
                cast(_p("m_id"), String),
                touched.c.last_position,
                cast(_p("m_role"), String),
                cast(_p("m_run"), String),
                cast(_p("m_created"), BigInteger),
                cast(_p("m_record"), Doc()),
            )
            upsert = insert(message).from_select(list(_MESSAGE_COLUMNS), values)
            self.save_message = upsert.on_conflict_do_update(
                index_elements=[message.c.chat_id, message.c.id], set_={c: upsert.excluded[c] for c in replace}
            )
        exists_message = exists().where(message.c.chat_id == _p("chat_id"), message.c.id == _p("message_id"))
        put_vote = insert(vote).from_select(
            ["chat_id", "message_id", "is_upvoted"],
            select(cast(_p("chat_id"), String), cast(_p("message_id"), String), cast(_p("is_upvoted"), Boolean)).where(
                exists_message
            ),
        )
        self.put_vote = put_vote.on_conflict_do_update(
            index_elements=[vote.c.chat_id, vote.c.message_id], set_={"is_upvoted": put_vote.excluded.is_upvoted}
        ).returning(vote.c.message_id)
        put_preferences = insert(preferences)
        self.put_preferences = put_preferences.on_conflict_do_update(
            index_elements=[preferences.c.user_id],
            set_={c: put_preferences.excluded[c] for c in ("updated_at", "record")},
        )
        put_run = insert(suspended_run)
        self.put_run = put_run.on_conflict_do_update(
            index_elements=[suspended_run.c.run_id],
            set_={c: put_run.excluded[c] for c in ("chat_id", "expires_at", "record")},
        )


_DIALECTS = {name: _Dialect(name) for name in ("postgresql", "sqlite")}


class SqlConversationStore:
    """Conversations, messages, votes, suspended runs and preferences in SQLite or PostgreSQL.

    The tables must exist (`chatstream.store.sql.migrate.upgrade`, or `chatstream db upgrade`); the factory
    checks the schema revision at start-up and migrates when `CHAT_DB_AUTO_MIGRATE` says so.
    """

    def __init__(self, database: Database, *, suspended_ttl: float = 7 * 86400, owns_engine: bool = True) -> None:
        """Args:
        database: from `chatstream.store.sql.engine.open_database`.
        suspended_ttl: seconds a run paused for approval waits before it is forgotten.
        owns_engine: dispose of the engine on `aclose` (False when the caller shares it).
        """
        self.database = database
        self._single = database.single
        self._tx = database.tx
        self._sql = _DIALECTS[database.dialect]
        self._suspended_ms = max(1, int(suspended_ttl * 1000))
        self._owns_engine = owns_engine

    @classmethod
    def from_url(cls, url: str, *, schema: str | None = None, suspended_ttl: float = 7 * 86400) -> SqlConversationStore:
        """A store on its own engine for `url` (see `open_database`); nothing connects until the first call."""
        return cls(open_database(url, schema=schema), suspended_ttl=suspended_ttl)

    # ---- plumbing

    # Rows are typed loosely: SQLAlchemy 2.0 and 2.1 spell `Row`'s parameters differently.
    async def _rows(self, stmt: Executable, params: dict[str, Any]) -> Sequence[Any]:
        with unavailable():
            async with self._single.connect() as conn:
                return (await conn.execute(stmt, params)).all()

    async def _first(self, stmt: Executable, params: dict[str, Any]) -> Any:
        with unavailable():
            async with self._single.connect() as conn:
                return (await conn.execute(stmt, params)).first()

    async def _write(self, stmt: Executable, params: dict[str, Any]) -> None:
        with unavailable():
            async with self._single.connect() as conn:
                await conn.execute(stmt, params)
                await conn.commit()  # a no-op in autocommit; ends SQLAlchemy's own transaction state

    # ---- conversations

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = await self._first(_GET_CHAT, {"id": conversation_id})
        return None if row is None else _decode_conversation(row[0], row[1])

    async def put_conversation(self, conversation: Conversation) -> None:
        c = conversation
        params = {
            "id": c.id,
            "user_id": c.user_id,
            "channel": c.channel,
            "visibility": c.visibility,
            "title": c.title,
            "created_at": c.created_at,
            "updated_at": c.updated_at,
            "record": _doc(c),
        }
        await self._write(self._sql.put_chat, params)

    async def list_conversations(
        self,
        user_id: str,
        *,
        channel: str | None = None,
        visibility: str | None = None,
        limit: int = 20,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> list[Conversation]:
        if limit <= 0:
            return []
        cursor = "after" if starting_after is not None else "before" if ending_before is not None else None
        stmt = _LISTINGS[(channel is not None, visibility is not None, cursor)]
        params: dict[str, Any] = {"user": user_id, "limit": limit}
        if channel is not None:
            params["channel"] = channel
        if visibility is not None:
            params["visibility"] = visibility
        if cursor is not None:
            params["cursor"] = starting_after if cursor == "after" else ending_before
        found = [_decode_conversation(record, updated) for record, updated in await self._rows(stmt, params)]
        if cursor == "before":
            found.reverse()
        return found

    async def delete_conversation(self, conversation_id: str) -> Conversation | None:
        params = {"id": conversation_id}
        with unavailable():
            async with self._tx.begin() as conn:
                await conn.execute(_DELETE_RUNS_OF_CHAT, params)
                row = (await conn.execute(_DELETE_CHAT, params)).first()
        return None if row is None else _decode_conversation(row[0], row[1])

    # ---- messages

    async def save_message(self, message: Message) -> None:
        if self._sql.save_message is not None:
            m = message
            params = {
                "chat_id": m.conversation_id,
                "now": now_ms(),
                "m_chat": m.conversation_id,
                "m_id": m.id,
                "m_role": m.role,
                "m_run": m.run_id,
                "m_created": m.created_at,
                "m_record": _doc(m),
            }
            await self._write(self._sql.save_message, params)
            return
        with unavailable():
            async with self._tx.begin() as conn:
                await self._append(conn, message, once=False)

    async def save_message_once(self, message: Message) -> bool:
        if not message.run_id:
            raise ValueError("save_message_once needs a message with a run_id")
        with unavailable():
            async with self._tx.begin() as conn:
                return await self._append(conn, message, once=True)

    async def _append(self, conn: AsyncConnection, message: Message, *, once: bool) -> bool:
        """Touch and number (under the conversation's row lock), then insert or replace; in `conn`'s transaction."""
        touch = {"chat_id": message.conversation_id, "now": now_ms()}
        position = (await conn.execute(_TOUCH, touch)).scalar()
        if position is None:
            return False  # no such conversation
        params = _message_params(message, position=position)
        if not once:
            await conn.execute(self._sql.put_message, params)
            return True
        if (await conn.execute(self._sql.put_message_once, params)).first() is None:
            await conn.rollback()  # this run's message is there already: not even the touch stays
            return False
        return True

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        row = await self._first(_GET_MESSAGE, {"chat_id": conversation_id, "id": message_id})
        return None if row is None else _message.decode(row[0])

    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, before: str | None = None
    ) -> list[Message]:
        params: dict[str, Any] = {"chat_id": conversation_id}
        if limit is not None and limit <= 0:
            return []
        if before is not None:
            params["before"] = before
        if limit is None:
            stmt = _ALL_MESSAGES if before is None else _ALL_MESSAGES_BEFORE
            return [_message.decode(row[0]) for row in await self._rows(stmt, params)]
        params["limit"] = limit
        rows = await self._rows(_LAST_MESSAGES if before is None else _MESSAGES_BEFORE, params)
        return [_message.decode(row[0]) for row in reversed(rows)]

    async def truncate(self, conversation_id: str, keep: int) -> tuple[int, int]:
        params: dict[str, Any] = {"chat_id": conversation_id, "keep": max(0, keep)}
        with unavailable():
            async with self._tx.begin() as conn:
                if (await conn.execute(_LOCK_CHAT, params)).first() is None:
                    return 0, 0  # no conversation, no messages (the foreign key)
                stmt = _DELETE_ALL_MESSAGES if keep <= 0 else _DELETE_OLDER
                deleted = (await conn.execute(stmt, params)).rowcount
                kept = (await conn.execute(_COUNT_MESSAGES, params)).scalar_one()
        return int(kept), int(deleted)

    async def rewind(
        self, conversation_id: str, message_id: str, *, replacement: Message | None = None
    ) -> list[str] | None:
        if replacement is not None and replacement.conversation_id != conversation_id:
            raise ValueError("the replacement belongs to another conversation")
        with unavailable():
            async with self._tx.begin() as conn:
                position = (await conn.execute(_REWIND_FROM, {"chat_id": conversation_id, "id": message_id})).scalar()
                if position is None:
                    return None
                removed = (await conn.execute(_DELETE_FROM, {"chat_id": conversation_id, "position": position})).all()
                if replacement is not None:
                    await self._append(conn, replacement, once=False)
        return [mid for mid, _ in sorted(removed, key=lambda row: row[1])]

    # ---- votes

    async def vote(self, vote: Vote) -> bool:
        params = {"chat_id": vote.chat_id, "message_id": vote.message_id, "is_upvoted": vote.is_upvoted}
        try:
            with unavailable():
                async with self._single.connect() as conn:
                    stored = (await conn.execute(self._sql.put_vote, params)).first() is not None
                    await conn.commit()
        except IntegrityError:
            return False  # the message was deleted between the check and the insert (the foreign key)
        return stored

    async def list_votes(self, conversation_id: str) -> list[Vote]:
        rows = await self._rows(_LIST_VOTES, {"chat_id": conversation_id})
        return [Vote(chat_id=c, message_id=m, is_upvoted=bool(up)) for c, m, up in rows]

    # ---- preferences

    async def get_preferences(self, user_id: str) -> Preferences | None:
        row = await self._first(_GET_PREFERENCES, {"user_id": user_id})
        return None if row is None else _preferences.decode(row[0])

    async def put_preferences(self, preferences: Preferences) -> None:
        params = {"user_id": preferences.user_id, "updated_at": preferences.updated_at, "record": _doc(preferences)}
        await self._write(self._sql.put_preferences, params)

    # ---- suspended runs

    async def save_suspended_run(self, run: SuspendedRun) -> None:
        now = now_ms()
        row = {"run_id": run.run_id, "chat_id": run.conversation_id, "expires_at": now + self._suspended_ms}
        with unavailable():
            async with self._tx.begin() as conn:
                await conn.execute(_EXPIRE_RUNS, {"now": now})  # the forgotten ones (Redis expires its keys)
                await conn.execute(self._sql.put_run, {**row, "record": _doc(run)})

    async def get_suspended_run(self, run_id: str) -> SuspendedRun | None:
        row = await self._first(_GET_RUN, {"run_id": run_id, "now": now_ms()})
        return None if row is None else _suspended.decode(row[0])

    async def take_suspended_run(self, run_id: str) -> SuspendedRun | None:
        with unavailable():
            async with self._single.connect() as conn:
                row = (await conn.execute(_TAKE_RUN, {"run_id": run_id, "now": now_ms()})).first()
                await conn.commit()
        return None if row is None else _suspended.decode(row[0])

    # ---- lifecycle

    async def ping(self) -> None:
        with unavailable():
            async with self._single.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")

    async def aclose(self) -> None:
        if self._owns_engine:
            await self.database.aclose()


def _message_params(message: Message, *, position: int) -> dict[str, Any]:
    """The columns of a message row: exactly those (a key named like another column would be written too)."""
    return {
        "chat_id": message.conversation_id,
        "id": message.id,
        "position": position,
        "role": message.role,
        "run_id": message.run_id,
        "created_at": message.created_at,
        "record": _doc(message),
    }


def _decode_conversation(record: str, updated_at: int) -> Conversation:
    conversation = _conversation.decode(record)
    if conversation.updated_at != updated_at:
        conversation = msgspec.structs.replace(conversation, updated_at=updated_at)
    return conversation
