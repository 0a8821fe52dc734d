"""In-process `ConversationStore`: the default, and the twin of the Redis one."""

from __future__ import annotations

import msgspec

from chatstream.models import Conversation, Message, SuspendedRun, now_ms

__all__ = ["MemoryConversationStore"]


class MemoryConversationStore:
    def __init__(self) -> None:
        self._conversations: dict[str, Conversation] = {}
        self._messages: dict[str, list[Message]] = {}
        self._runs: dict[str, SuspendedRun] = {}

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        return self._conversations.get(conversation_id)

    async def put_conversation(self, conversation: Conversation) -> None:
        self._conversations[conversation.id] = conversation
        self._messages.setdefault(conversation.id, [])

    async def list_conversations(
        self, user_id: str, *, channel: str | None = None, limit: int = 20
    ) -> list[Conversation]:
        mine = [
            c
            for c in self._conversations.values()
            if c.user_id == user_id and (channel is None or c.channel == channel)
        ]
        mine.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
        return mine[:limit]

    async def delete_conversation(self, conversation_id: str) -> Conversation | None:
        conversation = self._conversations.pop(conversation_id, None)
        self._messages.pop(conversation_id, None)
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

    async def list_messages(self, conversation_id: str, *, limit: int | None = None) -> list[Message]:
        messages = self._messages.get(conversation_id, [])
        return list(messages if limit is None else messages[-limit:] if limit > 0 else [])

    async def truncate(self, conversation_id: str, keep: int) -> tuple[int, int]:
        messages = self._messages.get(conversation_id, [])
        kept = messages[-keep:] if keep > 0 else []
        deleted = len(messages) - len(kept)
        self._messages[conversation_id] = kept
        return len(kept), deleted

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
