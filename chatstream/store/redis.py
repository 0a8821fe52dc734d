"""`ConversationStore` on Redis, the source of truth when `REDIS_URL` is set.

Keys (`{prefix}:{kind}:{id}`):

- `conv:{id}` hash: `d` the record, `u` updated_at (ms, authoritative: touching a conversation rewrites
  only this field), `o` owner, `c` channel, `v` visibility.
- `user:{uid}:convs` and `user:{uid}:chan:{channel}` sorted sets of conversation ids scored by
  updated_at: listing by recency, optionally of one channel.
- `msgs:{id}` hash message id -> record, and `msgids:{id}` list of ids in order (replace-by-id keeps
  a message's position).
- `votes:{id}` hash message id -> vote record.
- `prefs:{uid}` string: the user's preferences record.
- `srun:{run}` hash (`d` record, `c` conversation) and `convruns:{id}` set of suspended runs, for the
  delete cascade.

Every multi-key change is one Lua script, so it is atomic. Records are JSON envelopes `{"v": 1, "r": …}`:
the version lets a later schema migrate on read; the records themselves follow msgspec's evolution rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from chatstream.models import Conversation, Message, Preferences, SuspendedRun, Vote, now_ms
from chatstream.redis_client import load_script, unavailable

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisConversationStore"]

_LUA = "chatstream.store.lua"
T = TypeVar("T")


class _Record(msgspec.Struct, Generic[T], kw_only=True):
    """The stored envelope of every record."""

    v: int = 1
    r: T


_encode = msgspec.json.Encoder().encode
_conversation = msgspec.json.Decoder(_Record[Conversation])
_message = msgspec.json.Decoder(_Record[Message])
_suspended = msgspec.json.Decoder(_Record[SuspendedRun])
_vote = msgspec.json.Decoder(_Record[Vote])
_preferences = msgspec.json.Decoder(_Record[Preferences])


class RedisConversationStore:
    """Conversations, messages and suspended runs in Redis; see the module docstring for the layout."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "chat", suspended_ttl: float = 7 * 86400) -> None:
        """Args:
        redis: a client from `chatstream.redis_client.connect_redis`.
        prefix: first part of every key.
        suspended_ttl: seconds a run paused for approval waits before it is forgotten.
        """
        self._redis = redis
        self._prefix = prefix
        self._suspended_ms = max(1, int(suspended_ttl * 1000))
        scripts = (
            "put_conversation",
            "list_conversations",
            "delete_conversation",
            "save_message",
            "list_messages",
            "truncate",
            "rewind",
            "vote",
            "list_votes",
            "save_suspended_run",
            "take_suspended_run",
        )
        self._lua = {name: load_script(redis, _LUA, f"{name}.lua") for name in scripts}

    def _key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}:{kind}:{ident}"

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        with unavailable("conversation store"):
            return await self._lua[script](keys=keys, args=args)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        with unavailable("conversation store"):
            doc, updated = await self._redis.hmget(self._key("conv", conversation_id), ["d", "u"])
        return None if doc is None else _decode_conversation(doc, updated)

    async def put_conversation(self, conversation: Conversation) -> None:
        c = conversation
        args = [self._prefix, c.id, c.user_id, c.channel, c.updated_at, _encode(_Record(r=c)), c.visibility]
        await self._call("put_conversation", [self._key("conv", c.id)], args)

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
        mode, cursor = ("after", starting_after) if starting_after else ("before", ending_before or "")
        if not cursor:
            mode = ""
        # A cursor is ranked in the user's whole index (it need not be of the channel asked for); without
        # one, the channel's own index lists it directly.
        index = f"{self._prefix}:user:{user_id}:" + ("convs" if channel is None or mode else f"chan:{channel}")
        args = [self._prefix, limit, user_id, channel or "", visibility or "", mode, cursor]
        flat = await self._call("list_conversations", [index], args)
        return [_decode_conversation(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    async def delete_conversation(self, conversation_id: str) -> Conversation | None:
        keys = [self._key(kind, conversation_id) for kind in ("conv", "msgs", "msgids", "convruns", "votes")]
        reply = await self._call("delete_conversation", keys, [self._prefix, conversation_id])
        return None if reply is None else _decode_conversation(reply[0], reply[1])

    async def save_message(self, message: Message) -> None:
        await self._save_message(message, once_run="")

    async def save_message_once(self, message: Message) -> bool:
        # A message without a run id cannot be told apart from another run's: the empty once_run would turn
        # the call into an unconditional write, so refuse it instead.
        if not message.run_id:
            raise ValueError("save_message_once needs a message with a run_id")
        return await self._save_message(message, once_run=message.run_id)

    async def _save_message(self, message: Message, *, once_run: str) -> bool:
        cid = message.conversation_id
        keys = [self._key("msgs", cid), self._key("msgids", cid), self._key("conv", cid)]
        args = [self._prefix, cid, message.id, _encode(_Record(r=message)), now_ms(), once_run]
        return bool(await self._call("save_message", keys, args))

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        with unavailable("conversation store"):
            doc = await self._redis.hget(self._key("msgs", conversation_id), message_id)
        return None if doc is None else _message.decode(doc).r

    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, before: str | None = None
    ) -> list[Message]:
        keys = [self._key("msgs", conversation_id), self._key("msgids", conversation_id)]
        docs = await self._call("list_messages", keys, [-1 if limit is None else max(0, limit), before or ""])
        # A missing doc would be an id without its record; never written that way, skipped defensively.
        return [_message.decode(doc).r for doc in docs if doc]

    async def truncate(self, conversation_id: str, keep: int) -> tuple[int, int]:
        keys = [self._key(kind, conversation_id) for kind in ("msgs", "msgids", "votes")]
        kept, deleted = await self._call("truncate", keys, [keep])
        return int(kept), int(deleted)

    async def rewind(
        self, conversation_id: str, message_id: str, *, replacement: Message | None = None
    ) -> list[str] | None:
        cid = conversation_id
        keys = [self._key("msgs", cid), self._key("msgids", cid), self._key("conv", cid), self._key("votes", cid)]
        new_id, record = ("", b"") if replacement is None else (replacement.id, _encode(_Record(r=replacement)))
        removed = await self._call("rewind", keys, [self._prefix, cid, message_id, new_id, record, now_ms()])
        if removed is None:
            return None
        return [r.decode() if isinstance(r, bytes) else str(r) for r in removed]

    async def vote(self, vote: Vote) -> bool:
        keys = [self._key("msgs", vote.chat_id), self._key("votes", vote.chat_id)]
        return bool(await self._call("vote", keys, [vote.message_id, _encode(_Record(r=vote))]))

    async def list_votes(self, conversation_id: str) -> list[Vote]:
        keys = [self._key("votes", conversation_id), self._key("msgids", conversation_id)]
        return [_vote.decode(doc).r for doc in await self._call("list_votes", keys, [])]

    async def get_preferences(self, user_id: str) -> Preferences | None:
        with unavailable("conversation store"):
            doc = await self._redis.get(self._key("prefs", user_id))
        return None if doc is None else _preferences.decode(doc).r

    async def put_preferences(self, preferences: Preferences) -> None:
        with unavailable("conversation store"):
            await self._redis.set(self._key("prefs", preferences.user_id), _encode(_Record(r=preferences)))

    async def save_suspended_run(self, run: SuspendedRun) -> None:
        keys = [self._key("srun", run.run_id), self._key("convruns", run.conversation_id)]
        args = [run.run_id, run.conversation_id, _encode(_Record(r=run)), self._suspended_ms]
        await self._call("save_suspended_run", keys, args)

    async def get_suspended_run(self, run_id: str) -> SuspendedRun | None:
        with unavailable("conversation store"):
            doc = await self._redis.hget(self._key("srun", run_id), "d")
        return None if doc is None else _suspended.decode(doc).r

    async def take_suspended_run(self, run_id: str) -> SuspendedRun | None:
        doc = await self._call("take_suspended_run", [self._key("srun", run_id)], [self._prefix, run_id])
        return None if doc is None else _suspended.decode(doc).r

    async def ping(self) -> None:
        with unavailable("conversation store"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """The client belongs to the caller (shared by every Redis backend); nothing to close."""
        return None


def _decode_conversation(doc: bytes | str, updated: bytes | str | None) -> Conversation:
    conversation = _conversation.decode(doc).r
    if updated is not None and int(updated) != conversation.updated_at:
        conversation = msgspec.structs.replace(conversation, updated_at=int(updated))
    return conversation
