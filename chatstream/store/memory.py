"""In-process `ConversationStore` and `DocumentStore`: the defaults, and the twins of the Redis and SQL ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from chatstream.models import Conversation, Document, Message, Preferences, Suggestion, SuspendedRun, Vote, now_ms

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MemoryConversationStore", "MemoryDocumentStore"]


class MemoryConversationStore:
    def __init__(self) -> None:
        self._conversations: dict[str, Conversation] = {}
        self._messages: dict[str, list[Message]] = {}
        self._runs: dict[str, SuspendedRun] = {}
        self._votes: dict[str, dict[str, Vote]] = {}
        self._preferences: dict[str, Preferences] = {}

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return self._conversations.get(conversation_id)

    async def put_conversation(self, conversation: Conversation) -> None:
        self._conversations[conversation.id] = conversation
        self._messages.setdefault(conversation.id, [])

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
        mine = [c for c in self._conversations.values() if c.user_id == user_id]
        mine.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
        cursor = starting_after or ending_before
        if cursor is not None:
            at = next((i for i, c in enumerate(mine) if c.id == cursor), None)
            if at is None:
                return []
            mine = mine[at + 1 :] if starting_after is not None else mine[:at]
        picked = [
            c
            for c in mine
            if (channel is None or c.channel == channel) and (visibility is None or c.visibility == visibility)
        ]
        if limit <= 0:
            return []
        return picked[-limit:] if starting_after is None and ending_before is not None else picked[:limit]

    async def delete_conversation(self, conversation_id: str) -> Conversation | None:
        conversation = self._conversations.pop(conversation_id, None)
        self._messages.pop(conversation_id, None)
        self._votes.pop(conversation_id, None)
        for run_id in [r.run_id for r in self._runs.values() if r.conversation_id == conversation_id]:
            del self._runs[run_id]
        return conversation

    async def save_message(self, message: Message) -> None:
        conversation = self._conversations.get(message.conversation_id)
        if conversation is None:
            return  # never into a deleted conversation (a run ending after the delete): see base.py
        messages = self._messages.setdefault(message.conversation_id, [])
        for i, existing in enumerate(messages):
            if existing.id == message.id:
                messages[i] = message
                break
        else:
            messages.append(message)
        self._conversations[conversation.id] = msgspec.structs.replace(conversation, updated_at=now_ms())

    async def save_message_once(self, message: Message) -> bool:
        if not message.run_id:
            raise ValueError("save_message_once needs a message with a run_id")
        # No await between the check and the write: atomic on the event loop.
        if message.conversation_id not in self._conversations:
            return False
        existing = next((m for m in self._messages.get(message.conversation_id, ()) if m.id == message.id), None)
        if existing is not None and existing.run_id == message.run_id:
            return False
        await self.save_message(message)
        return True

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None:
        return next((m for m in self._messages.get(conversation_id, ()) if m.id == message_id), None)

    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, before: str | None = None
    ) -> list[Message]:
        messages = self._messages.get(conversation_id, [])
        if before is not None:
            at = next((i for i, m in enumerate(messages) if m.id == before), None)
            messages = messages[:at] if at is not None else []
        return list(messages if limit is None else messages[-limit:] if limit > 0 else [])

    async def truncate(self, conversation_id: str, keep: int) -> tuple[int, int]:
        messages = self._messages.get(conversation_id, [])
        kept = messages[-keep:] if keep > 0 else []
        deleted = len(messages) - len(kept)
        self._messages[conversation_id] = kept
        self._drop_votes(conversation_id, [m.id for m in messages[:deleted]])
        return len(kept), deleted

    async def rewind(
        self, conversation_id: str, message_id: str, *, replacement: Message | None = None
    ) -> list[str] | None:
        messages = self._messages.get(conversation_id)
        if conversation_id not in self._conversations or messages is None:
            return None
        at = next((i for i, m in enumerate(messages) if m.id == message_id), None)
        if at is None:
            return None
        removed = [m.id for m in messages[at:]]
        del messages[at:]
        self._drop_votes(conversation_id, removed)
        if replacement is not None:
            await self.save_message(replacement)
        return removed

    def _drop_votes(self, conversation_id: str, message_ids: list[str]) -> None:
        votes = self._votes.get(conversation_id)
        if votes:
            for message_id in message_ids:
                votes.pop(message_id, None)

    async def vote(self, vote: Vote) -> bool:
        if not any(m.id == vote.message_id for m in self._messages.get(vote.chat_id, ())):
            return False
        self._votes.setdefault(vote.chat_id, {})[vote.message_id] = vote
        return True

    async def list_votes(self, conversation_id: str) -> list[Vote]:
        votes = self._votes.get(conversation_id, {})
        return [votes[m.id] for m in self._messages.get(conversation_id, ()) if m.id in votes]

    async def get_preferences(self, user_id: str) -> Preferences | None:
        return self._preferences.get(user_id)

    async def put_preferences(self, preferences: Preferences) -> None:
        self._preferences[preferences.user_id] = preferences

    async def save_suspended_run(self, run: SuspendedRun) -> None:
        self._runs[run.run_id] = run

    async def get_suspended_run(self, run_id: str) -> SuspendedRun | None:
        return self._runs.get(run_id)

    async def take_suspended_run(self, run_id: str) -> SuspendedRun | None:
        return self._runs.pop(run_id, None)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class MemoryDocumentStore:
    def __init__(self) -> None:
        self._versions: dict[str, list[Document]] = {}
        self._suggestions: dict[str, dict[str, Suggestion]] = {}

    async def save_document(self, document: Document) -> Document:
        versions = self._versions.setdefault(document.id, [])
        if versions and document.created_at <= versions[-1].created_at:
            document = msgspec.structs.replace(document, created_at=versions[-1].created_at + 1)
        versions.append(document)
        return document

    async def get_document(self, document_id: str) -> Document | None:
        versions = self._versions.get(document_id)
        return versions[-1] if versions else None

    async def list_versions(self, document_id: str) -> list[Document]:
        return list(self._versions.get(document_id, ()))

    async def delete_versions_after(self, document_id: str, timestamp: int) -> list[Document]:
        versions = self._versions.get(document_id, [])
        deleted = [d for d in versions if d.created_at > timestamp]
        if deleted:
            self._versions[document_id] = [d for d in versions if d.created_at <= timestamp]
            suggestions = self._suggestions.get(document_id, {})
            for key in [k for k, s in suggestions.items() if s.document_created_at > timestamp]:
                del suggestions[key]
        return deleted

    async def save_suggestions(self, suggestions: Sequence[Suggestion]) -> None:
        for suggestion in suggestions:
            self._suggestions.setdefault(suggestion.document_id, {})[suggestion.id] = suggestion

    async def list_suggestions(self, document_id: str) -> list[Suggestion]:
        return sorted(self._suggestions.get(document_id, {}).values(), key=lambda s: (s.created_at, s.id))

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
