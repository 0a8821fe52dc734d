"""`DocumentStore` on Redis, beside `RedisConversationStore` when Redis is the store (one Redis or a Cluster).

Keys (`chatstream.keys`): everything of one document shares its hash tag `{d:<id>}`, so on a cluster it lives
in one slot and every script below touches that slot only:

- `{d:<id>}:docs` hash created_at (epoch ms) -> version record, and `{d:<id>}:times` sorted set of the same
  created_at values scored by themselves: the versions in order. The hash field is authoritative over the
  record's own `createdAt` (a save within the same millisecond is stored 1 ms later than asked).
- `{d:<id>}:sugg` hash suggestion id -> record, and `{d:<id>}:suggv` sorted set of the suggestion ids scored
  by the created_at of the version each was made for (what deleting versions deletes with them).

`save_document` (the strictly increasing created_at), `delete_versions_after` (versions and their suggestions)
and `save_suggestions` are one Lua script each, so atomic; reads are one script or one command. Records are
the JSON envelopes `{"v": 1, "r": …}` of every Redis record.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import msgspec

from chatstream.keys import Keys
from chatstream.models import Document, Suggestion
from chatstream.redis_client import load_script, unavailable
from chatstream.store.redis import _LUA, _encode, _Record  # the same envelope and scripts package

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.redis_client import RedisClient

__all__ = ["RedisDocumentStore"]

_document = msgspec.json.Decoder(_Record[Document])
_suggestion = msgspec.json.Decoder(_Record[Suggestion])


class RedisDocumentStore:
    """Document versions and their suggestions in Redis; see the module docstring for the layout."""

    def __init__(self, redis: RedisClient, *, prefix: str = "chat") -> None:
        """Args:
        redis: a client from `chatstream.redis_client.connect_redis` (one Redis or a cluster).
        prefix: first part of every key.
        """
        self._redis = redis
        self._keys = Keys(prefix)
        scripts = ("save_document", "list_versions", "delete_versions", "save_suggestions")
        self._lua = {name: load_script(redis, _LUA, f"{name}.lua") for name in scripts}

    def _versions(self, document_id: str) -> list[str]:
        return [self._keys.document(document_id, "docs"), self._keys.document(document_id, "times")]

    def _suggestions(self, document_id: str) -> list[str]:
        return [self._keys.document(document_id, "sugg"), self._keys.document(document_id, "suggv")]

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        with unavailable("document store"):
            return await self._lua[script](keys, args)

    async def save_document(self, document: Document) -> Document:
        keys = self._versions(document.id)
        stored = int(await self._call("save_document", keys, [document.created_at, _encode(_Record(r=document))]))
        return document if stored == document.created_at else msgspec.structs.replace(document, created_at=stored)

    async def get_document(self, document_id: str) -> Document | None:
        found = _decode_versions(await self._call("list_versions", self._versions(document_id), ["last"]))
        return found[-1] if found else None

    async def list_versions(self, document_id: str) -> list[Document]:
        return _decode_versions(await self._call("list_versions", self._versions(document_id), ["all"]))

    async def delete_versions_after(self, document_id: str, timestamp: int) -> list[Document]:
        keys = [*self._versions(document_id), *self._suggestions(document_id)]
        return _decode_versions(await self._call("delete_versions", keys, [int(timestamp)]))

    async def save_suggestions(self, suggestions: Sequence[Suggestion]) -> None:
        by_document: dict[str, list[Any]] = defaultdict(list)
        for s in suggestions:
            by_document[s.document_id] += [s.id, s.document_created_at, _encode(_Record(r=s))]
        for document_id, args in by_document.items():  # one slot each
            await self._call("save_suggestions", self._suggestions(document_id), args)

    async def list_suggestions(self, document_id: str) -> list[Suggestion]:
        with unavailable("document store"):
            records = await self._redis.hvals(self._keys.document(document_id, "sugg"))
        found = [_suggestion.decode(record).r for record in records]
        return sorted(found, key=lambda s: (s.created_at, s.id))

    async def ping(self) -> None:
        with unavailable("document store"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """The client belongs to the caller (shared by every Redis backend); nothing to close."""
        return None


def _decode_versions(flat: list[Any]) -> list[Document]:
    """`{created_at, record, ...}` as versions, the field's created_at over the record's."""
    out: list[Document] = []
    for i in range(0, len(flat), 2):
        if not flat[i + 1]:
            continue  # never written that way (both keys change in one script): skipped defensively
        document = _document.decode(flat[i + 1]).r
        at = int(flat[i])
        out.append(document if document.created_at == at else msgspec.structs.replace(document, created_at=at))
    return out
