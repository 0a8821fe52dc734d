"""`ConversationStore` on Redis, the source of truth when `REDIS_URL` is set (one Redis or a Redis Cluster).

Keys (`chatstream.keys`): a conversation's keys share its hash tag `{c:<id>}`, a user's share `{u:<id>}`, so
on a cluster each lives in one slot:

- `{c:<id>}:conv` hash: `d` the record, `u` updated_at (ms, authoritative: touching a conversation rewrites
  only this field), `o` owner, `c` channel, `v` visibility.
- `{c:<id>}:msgs` hash message id -> record, and `{c:<id>}:msgids` list of ids in order (replace-by-id keeps
  a message's position); `{c:<id>}:votes` hash message id -> vote record.
- `{c:<id>}:sruns` hash run id -> `<expires at> <record>`: the conversation's runs suspended for approval;
  `{r:<run>}:srun` names the conversation of a suspended run (`get_suspended_run` has only the run id).
- `{u:<uid>}:convs` and `{u:<uid>}:chan:<channel>` sorted sets of conversation ids scored by updated_at:
  listing by recency, optionally of one channel. `{u:<uid>}:prefs` string: the user's preferences record.

Every change within one conversation (or one user) is one Lua script, so it is atomic. Records are JSON
envelopes `{"v": 1, "r": …}`: the version lets a later schema migrate on read; the records themselves follow
msgspec's evolution rules.

Operations that touch a conversation and its user's indexes span two slots. On a single Redis, where every
key is on the one node, the conversation's script is also given the owner's index keys (the owner as last
read or written by this store; the script checks it against the hash) and does both in one atomic call, as
before the keys had tags. On a Redis Cluster each call touches one slot, and the operation is steps in
this order:

- `put_conversation`: the record first (its slot), then the owner's indexes, then (only when the owner or
  channel changed) the old indexes lose it. A crash after the record leaves the conversation unlisted until
  its next touch indexes it again (a run saves its user message right after creating the conversation); a
  crash before the old entries go leaves them behind, and a listing drops them (owner or channel mismatch).
- `save_message` / `save_message_once` / `rewind` with a replacement: the messages and the touch of `u`,
  then the owner's index scores (both at once when the owner is remembered: one round trip). A crash in
  between leaves the conversation listed at its previous place; a listing that finds the hash's `u` other
  than the score re-scores the entry. An index touched for a conversation deleted meanwhile gets an entry
  without a hash, which a listing drops.
- `delete_conversation`: the conversation's keys first (one script: record, messages, votes, suspended
  runs), then its entries in its user's indexes. A crash in between leaves index entries without a hash,
  which a listing drops. The suspended runs' pointers are left to expire (they lead to nothing).
- `save_suspended_run`: the pointer and the record, both at once (either may land first: a pointer without
  its record reads as none); `take_suspended_run`: the pointer is read, the record taken (one script: of two
  takers exactly one gets it), then the pointer deleted. A pointer without a record, whatever left it, reads
  as no suspended run, and expires with the record's TTL. (On a single Redis too: the pointer is how a run
  id alone finds its conversation.)
- `list_conversations` (both deployments): ids from the user's index (`index_page.lua`, one slot), then the
  conversations (`fetch_conversations.lua`: one call on a single Redis, one per slot on a cluster, pipelined
  per node, all nodes at once), then index entries whose conversation is gone or belongs to another owner or
  channel are dropped, and entries whose score differs from their `u` re-scored, each only while its score
  is still the one read (`repair_index.lua`), so nothing a concurrent write just indexed is removed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec
from redis.exceptions import NoScriptError

from chatstream.keys import Keys
from chatstream.models import Conversation, Message, Preferences, SuspendedRun, Vote, now_ms
from chatstream.redis_client import is_cluster, load_script, raise_unavailable, slot_groups, unavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from chatstream.redis_client import RedisClient

__all__ = ["RedisConversationStore"]

_LUA = "chatstream.store.lua"
_OWNERS = 10_000
"""Conversations whose owner and channel a store remembers (to index a message save in the same round trip)."""
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

    def __init__(self, redis: RedisClient, *, prefix: str = "chat", suspended_ttl: float = 7 * 86400) -> None:
        """Args:
        redis: a client from `chatstream.redis_client.connect_redis` (one Redis or a cluster).
        prefix: first part of every key.
        suspended_ttl: seconds a run paused for approval waits before it is forgotten.
        """
        self._redis = redis
        self._keys = Keys(prefix)
        self._cluster = is_cluster(redis)
        self._suspended_ms = max(1, int(suspended_ttl * 1000))
        scripts = (
            "put_conversation",
            "index",
            "index_page",
            "fetch_conversations",
            "repair_index",
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
        self._owners: dict[str, tuple[str, str]] = {}
        """Conversation id -> (owner, channel), as last read or written here (a hint: the scripts check it)."""

    def _conv(self, conversation_id: str, kind: str) -> str:
        return self._keys.conversation(conversation_id, kind)

    def _indexes(self, user_id: str, channel: str) -> list[str]:
        return [self._keys.user(user_id, "convs"), self._keys.user(user_id, "chan", channel)]

    def _remember(self, cid: str, owner: str, channel: str) -> None:
        if self._owners.get(cid) != (owner, channel):
            self._owners.pop(cid, None)
            if len(self._owners) >= _OWNERS:
                del self._owners[next(iter(self._owners))]
            self._owners[cid] = (owner, channel)

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        with unavailable("conversation store"):
            return await self._lua[script](keys, args)

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        with unavailable("conversation store"):
            doc, updated = await self._redis.hmget(self._conv(conversation_id, "conv"), ["d", "u"])
        if doc is None:
            return None
        conversation = _decode_conversation(doc, updated)
        self._remember(conversation.id, conversation.user_id, conversation.channel)
        return conversation

    async def put_conversation(self, conversation: Conversation) -> None:
        c = conversation
        keys = [self._conv(c.id, "conv")]
        if not self._cluster:
            keys += self._indexes(c.user_id, c.channel)  # one node: indexed in the same call
        args = [_encode(_Record(r=c)), c.updated_at, c.user_id, c.channel, c.visibility, c.id]
        old_owner, old_channel = (_text(v) for v in await self._call("put_conversation", keys, args))
        if self._cluster:  # the record first, then its indexes (another slot)
            await self._call("index", self._indexes(c.user_id, c.channel), [2, c.updated_at, c.id])
        if old_owner and (old_owner, old_channel) != (c.user_id, c.channel):
            stale = self._indexes(old_owner, old_channel)
            if old_owner == c.user_id:
                stale = stale[1:]  # same user, another channel: only the channel index loses it
            await self._call("index", stale, [0, 0, c.id])
        self._remember(c.id, c.user_id, c.channel)

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
            mode = "after"
        # A cursor is ranked in the user's whole index (it need not be of the channel asked for); without
        # one, the channel's own index lists it directly.
        whole = channel is None or bool(cursor)
        index = self._keys.user(user_id, "convs") if whole else self._keys.user(user_id, "chan", channel or "")
        found: list[Conversation] = []
        repairs: list[Any] = []
        walked = 0
        while len(found) < limit:
            page = await self._call("index_page", [index], [cursor, mode, walked, limit])
            if page is None:
                return []  # the cursor is not one of the user's conversations
            entries = [(_text(page[i]), page[i + 1]) for i in range(0, len(page), 2)]
            if not entries:
                break
            walked += len(entries)
            if mode == "before":
                entries.reverse()  # walked from the cursor outwards
            fetched = await self._fetch(user_id, "" if whole else channel or "", channel, visibility, entries)
            for (cid, score), (doc, updated) in zip(entries, fetched, strict=True):
                if not updated:
                    repairs += [cid, score, ""]  # no hash, or no longer this user's (or this channel's)
                    continue
                if float(updated) != float(score):
                    repairs += [cid, score, _text(updated)]  # a touch whose index step did not happen
                if doc and len(found) < limit:
                    found.append(_decode_conversation(doc, updated))
            if len(entries) < limit:
                break
        if repairs:
            await self._call("repair_index", [index], repairs)
        if mode == "before":
            found.reverse()
        return found

    async def _fetch(
        self, user_id: str, index_channel: str, channel: str | None, visibility: str | None, entries: list[Any]
    ) -> list[tuple[Any, Any]]:
        """`fetch_conversations.lua` over one index page: one call on a single Redis; on a cluster one per
        slot, pipelined per node, every node at once. `(record or b"", updated_at or b"")` per entry."""
        keyed = [self._conv(cid, "conv") for cid, _ in entries]
        args = [user_id, index_channel, channel or "", visibility or ""]
        script = self._lua["fetch_conversations"]
        with unavailable("conversation store"):
            if not self._cluster:
                flat = await script(keyed, args)
                return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]
            groups = slot_groups(self._redis, keyed, lambda key: key)
            by_key: dict[str, tuple[Any, Any]] = {}
            for group, reply in zip(groups, await script.many([(g, args) for g in groups]), strict=True):
                flat = raise_unavailable(reply, "conversation store")
                for n, key in enumerate(group):
                    by_key[key] = (flat[2 * n], flat[2 * n + 1])
        return [by_key[key] for key in keyed]

    async def delete_conversation(self, conversation_id: str) -> Conversation | None:
        cid = conversation_id
        keys = [self._conv(cid, kind) for kind in ("conv", "msgs", "msgids", "sruns", "votes")]
        args = [cid]
        known = self._owners.pop(cid, None)
        if known is not None and not self._cluster:
            keys += self._indexes(*known)  # one node: out of the indexes in the same call
            args += list(known)
        reply = await self._call("delete_conversation", keys, args)
        if reply is None:
            return None
        doc, updated, owner, channel, unindexed = reply
        if owner and not int(unindexed):  # then out of its user's indexes (another slot on a cluster)
            await self._call("index", self._indexes(_text(owner), _text(channel)), [0, 0, cid])
        return _decode_conversation(doc, updated)

    async def save_message(self, message: Message) -> None:
        await self._save_message(message, once_run="")

    async def save_message_once(self, message: Message) -> bool:
        # A message without a run id cannot be told apart from another run's: the empty once_run would turn
        # the call into an unconditional write, so refuse it instead.
        if not message.run_id:
            raise ValueError("save_message_once needs a message with a run_id")
        return await self._save_message(message, once_run=message.run_id)

    async def _save_message(self, message: Message, *, once_run: str) -> bool:
        cid, now = message.conversation_id, now_ms()
        keys = [self._conv(cid, "msgs"), self._conv(cid, "msgids"), self._conv(cid, "conv")]
        args = [message.id, _encode(_Record(r=message)), now, once_run, cid]
        reply = await self._touching("save_message", cid, keys, args, now, _saved)
        return reply == 1 or isinstance(reply, list)

    async def _touching(
        self,
        script: str,
        cid: str,
        keys: list[str],
        args: list[Any],
        now: int,
        answer: Callable[[Any], tuple[Any, Any, Any, Any]],
    ) -> Any:
        """Run a conversation script that touches `u`, and re-index the conversation at `now` for its owner.

        `answer` reads the script's reply as `(touched, owner, channel, indexed)`. With the owner remembered:
        on a single Redis the script indexes too (one call); on a cluster the index step goes out at the same
        time (two slots, one round trip). Otherwise, or when the remembered owner was wrong, the index step
        follows the script's answer."""
        known = self._owners.get(cid)
        if known is not None and not self._cluster:
            reply = await self._call(script, [*keys, *self._indexes(*known)], [*args, *known])
        elif known is not None:
            index = self._lua["index"](self._indexes(*known), [2, now, cid])
            with unavailable("conversation store"):
                reply, _ = await asyncio.gather(self._lua[script](keys, args), index)
        else:
            reply = await self._call(script, keys, args)
        touched, owner, channel, indexed = answer(reply)
        if owner is None:  # indexed here for the remembered owner, or not written: nothing changes
            return reply
        owner, channel = _text(owner), _text(channel)
        if int(touched) and owner and not int(indexed) and (owner, channel) != known:
            await self._call("index", self._indexes(owner, channel), [2, now, cid])
        if owner:
            self._remember(cid, owner, channel)
        else:
            self._owners.pop(cid, None)
        return reply

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        with unavailable("conversation store"):
            doc = await self._redis.hget(self._conv(conversation_id, "msgs"), message_id)
        return None if doc is None else _message.decode(doc).r

    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, before: str | None = None
    ) -> list[Message]:
        keys = [self._conv(conversation_id, "msgs"), self._conv(conversation_id, "msgids")]
        docs = await self._call("list_messages", keys, [-1 if limit is None else max(0, limit), before or ""])
        # A missing doc would be an id without its record; never written that way, skipped defensively.
        return [_message.decode(doc).r for doc in docs if doc]

    async def truncate(self, conversation_id: str, keep: int) -> tuple[int, int]:
        keys = [self._conv(conversation_id, kind) for kind in ("msgs", "msgids", "votes")]
        kept, deleted = await self._call("truncate", keys, [keep])
        return int(kept), int(deleted)

    async def rewind(
        self, conversation_id: str, message_id: str, *, replacement: Message | None = None
    ) -> list[str] | None:
        cid, now = conversation_id, now_ms()
        keys = [self._conv(cid, kind) for kind in ("msgs", "msgids", "conv", "votes")]
        new_id, record = ("", b"") if replacement is None else (replacement.id, _encode(_Record(r=replacement)))
        args: list[Any] = [message_id, new_id, record, now, cid]
        if replacement is None:
            reply = await self._call("rewind", keys, args)
        else:  # the conversation is touched: re-indexed like a message save
            reply = await self._touching(
                "rewind", cid, keys, args, now, lambda r: (0, "", "", 0) if r is None else (1, r[0], r[1], r[3])
            )
        return None if reply is None else [_text(r) for r in reply[2]]

    async def vote(self, vote: Vote) -> bool:
        keys = [self._conv(vote.chat_id, "msgs"), self._conv(vote.chat_id, "votes")]
        return bool(await self._call("vote", keys, [vote.message_id, _encode(_Record(r=vote))]))

    async def list_votes(self, conversation_id: str) -> list[Vote]:
        keys = [self._conv(conversation_id, "votes"), self._conv(conversation_id, "msgids")]
        return [_vote.decode(doc).r for doc in await self._call("list_votes", keys, [])]

    async def get_preferences(self, user_id: str) -> Preferences | None:
        with unavailable("conversation store"):
            doc = await self._redis.get(self._keys.user(user_id, "prefs"))
        return None if doc is None else _preferences.decode(doc).r

    async def put_preferences(self, preferences: Preferences) -> None:
        with unavailable("conversation store"):
            await self._redis.set(self._keys.user(preferences.user_id, "prefs"), _encode(_Record(r=preferences)))

    async def save_suspended_run(self, run: SuspendedRun) -> None:
        save = [run.run_id, _encode(_Record(r=run)), self._suspended_ms, now_ms()]
        with unavailable("conversation store"):
            # Two slots, either order is safe (a pointer without its record reads as none): both at once.
            pipe: Any = self._redis.pipeline(transaction=False)  # queued commands return the pipeline
            pipe.set(self._keys.run(run.run_id, "srun"), run.conversation_id, px=self._suspended_ms)
            script = self._lua["save_suspended_run"]
            pipe.execute_command("EVALSHA", script.sha, 1, self._conv(run.conversation_id, "sruns"), *save)
            replies = await pipe.execute(raise_on_error=False)
            if isinstance(replies[1], NoScriptError):  # a restart emptied the script cache
                await script([self._conv(run.conversation_id, "sruns")], save)
            for reply in replies:
                if isinstance(reply, BaseException) and not isinstance(reply, NoScriptError):
                    raise reply

    async def get_suspended_run(self, run_id: str) -> SuspendedRun | None:
        with unavailable("conversation store"):
            cid = await self._redis.get(self._keys.run(run_id, "srun"))
            if cid is None:
                return None
            value = await self._redis.hget(self._conv(_text(cid), "sruns"), run_id)
        if value is None:
            return None
        raw = value if isinstance(value, bytes) else str(value).encode()
        expires, _, doc = raw.partition(b" ")
        return _suspended.decode(doc).r if expires.isdigit() and int(expires) > now_ms() else None

    async def take_suspended_run(self, run_id: str) -> SuspendedRun | None:
        pointer = self._keys.run(run_id, "srun")
        with unavailable("conversation store"):
            cid = await self._redis.get(pointer)
        if cid is None:
            return None
        doc = await self._call("take_suspended_run", [self._conv(_text(cid), "sruns")], [run_id, now_ms()])
        if doc is None:
            return None
        with unavailable("conversation store"):
            await self._redis.delete(pointer)
        return _suspended.decode(doc).r

    async def ping(self) -> None:
        with unavailable("conversation store"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """The client belongs to the caller (shared by every Redis backend); nothing to close."""
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else "" if value is None else str(value)


def _saved(reply: Any) -> tuple[Any, Any, Any, Any]:
    """save_message.lua's reply as `(touched, owner, channel, indexed)`; owner None: unknown but unchanged."""
    if isinstance(reply, list):
        return 1, reply[0], reply[1], 0
    if reply == 1:
        return 1, None, None, 1
    return 0, None if reply == -1 else "", "", 0


def _decode_conversation(doc: bytes | str, updated: bytes | str | None) -> Conversation:
    conversation = _conversation.decode(doc).r
    if updated is not None and int(updated) != conversation.updated_at:
        conversation = msgspec.structs.replace(conversation, updated_at=int(updated))
    return conversation
