"""The conversation store: conversations, their messages, votes, suspended runs awaiting approval, and each
user's preferences. The document store: the versions of documents the document tools write, and the edits
suggested for them.

Every implementation (memory, Redis, SQL) passes one contract suite per Protocol
(`tests/contract/test_conversation_store.py`, `tests/contract/test_document_store.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

    from chatstream.models import Conversation, Document, Message, Preferences, Suggestion, SuspendedRun, Vote

__all__ = ["ConversationStore", "DocumentStore"]


class ConversationStore(Protocol):
    """Durable chat history. Listing is by recency; messages come back oldest first."""

    async def get_conversation(self, conversation_id: str) -> Conversation | None: ...

    async def put_conversation(self, conversation: Conversation) -> None:
        """Create or replace a conversation record (and index it for its user)."""
        ...

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
        """The user's conversations, most recently updated first (ties: greater id first), optionally of one
        channel and one visibility.

        Cursors are conversation ids, as the Vercel chatbot's `/api/history`: `starting_after` lists the
        `limit` conversations that follow that one in this order (older), `ending_before` the `limit` that
        precede it (newer, the ones nearest to it), still most recent first. A cursor that is not one of the
        user's conversations gives `[]` (the API refuses it before asking).
        """
        ...

    async def delete_conversation(self, conversation_id: str) -> Conversation | None:
        """Delete a conversation with its messages, votes and suspended runs; return what was deleted."""
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

    async def list_messages(
        self, conversation_id: str, *, limit: int | None = None, before: str | None = None
    ) -> list[Message]:
        """The `limit` most recent messages (all when None), oldest first. With `before` (a message id),
        only messages older than that one: how a client pages back. An unknown `before` gives `[]`."""
        ...

    async def truncate(self, conversation_id: str, keep: int) -> tuple[int, int]:
        """Keep the `keep` most recent messages, and the votes on them; return `(kept, deleted)`."""
        ...

    async def rewind(
        self, conversation_id: str, message_id: str, *, replacement: Message | None = None
    ) -> list[str] | None:
        """Remove message `message_id` and every message after it, with their votes; then, when given, append
        `replacement`. One atomic step: no reader sees the history half rewound.

        How regenerate (remove an answer and what follows) and edit (replace a user message, drop what
        follows) change history. Returns the removed ids, oldest first; None, changing nothing, when the
        message is not in the conversation (or the conversation does not exist).
        """
        ...

    async def vote(self, vote: Vote) -> bool:
        """Store a vote, replacing the one on the same message. False (nothing stored) when the message is not
        in the conversation."""
        ...

    async def list_votes(self, conversation_id: str) -> list[Vote]:
        """The conversation's votes, in message order."""
        ...

    async def get_preferences(self, user_id: str) -> Preferences | None: ...

    async def put_preferences(self, preferences: Preferences) -> None:
        """Create or replace a user's preferences."""
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


class DocumentStore(Protocol):
    """Documents by version, and suggestions on them. Documents belong to their user, not to a conversation:
    deleting a conversation leaves the documents written in it (as in the Vercel chatbot)."""

    async def save_document(self, document: Document) -> Document:
        """Append a version; return it as stored. Its `created_at` is kept strictly increasing per document:
        a version not later than the last one is stored 1 ms after it (two saves in one millisecond)."""
        ...

    async def get_document(self, document_id: str) -> Document | None:
        """The latest version, or None."""
        ...

    async def list_versions(self, document_id: str) -> list[Document]:
        """Every version, oldest first (`[]` for an unknown id)."""
        ...

    async def delete_versions_after(self, document_id: str, timestamp: int) -> list[Document]:
        """Delete the versions created after `timestamp` (epoch ms, strictly later), and the suggestions made
        for them, atomically; return the deleted versions, oldest first."""
        ...

    async def save_suggestions(self, suggestions: Sequence[Suggestion]) -> None:
        """Store suggestions (replacing any with the same id)."""
        ...

    async def list_suggestions(self, document_id: str) -> list[Suggestion]:
        """The document's suggestions, every version's, oldest first (ties: by id)."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
