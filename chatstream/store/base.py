"""The conversation store: conversations, their messages, and suspended runs awaiting approval."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chatstream.models import Conversation, Message, SuspendedRun

__all__ = ["ConversationStore"]


class ConversationStore(Protocol):
    """Durable chat history. Listing is by recency; messages come back oldest first."""

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def put_conversation(self, conversation: Conversation) -> None:
        """Create or replace a conversation record (and index it for its user)."""
        ...

    async def list_conversations(
        self, user_id: str, *, channel: str | None = None, limit: int = 20
    ) -> list[Conversation]:
        """The user's conversations, most recently updated first, optionally of one channel."""
        ...

    async def delete_conversation(self, conversation_id: str) -> Conversation | None:
        """Delete a conversation with its messages and suspended runs; return what was deleted."""
        ...

    async def save_message(self, message: Message) -> None:
        """Append a message, or replace the stored one with the same id (an assistant message that grows
        across an approval). Touches the conversation's `updated_at`. Does nothing when the conversation does
        not exist: a run that ends after its conversation was deleted leaves no message behind."""
        ...

    async def save_message_once(self, message: Message) -> bool:
        """Store `message` unless a message with its id already carries its `run_id`, atomically; True when
        stored. How instances that find a run's producer dead store its partial answer exactly once: the
        first stores it, the others (and a producer that already stored its own) win nothing. A message of
        another run with the same id (the first half of an answer paused for approval) is replaced. Nothing
        is stored into a conversation that does not exist (deleted meanwhile). The run's own final
        `save_message` replaces whatever this stored."""
        ...

    async def get_message(self, conversation_id: str, message_id: str) -> Message | None: ...

    async def list_messages(self, conversation_id: str, *, limit: int | None = None) -> list[Message]:
        """The `limit` most recent messages (all when None), oldest first."""
        ...

    async def truncate(self, conversation_id: str, keep: int) -> tuple[int, int]:
        """Keep the `keep` most recent messages; return `(kept, deleted)`."""
        ...

    async def save_suspended_run(self, run: SuspendedRun) -> None: ...

    async def get_suspended_run(self, run_id: str) -> SuspendedRun | None: ...

    async def take_suspended_run(self, run_id: str) -> SuspendedRun | None:
        """Remove and return a suspended run, atomically: of two concurrent callers one gets None."""
        ...

    async def ping(self) -> None:
        """Raise `BackendUnavailableError` when the backend is unreachable."""
        ...

    async def aclose(self) -> None: ...
