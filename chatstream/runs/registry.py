"""Which run is active per conversation, how to stop it, and idempotency keys: shared by all instances.

The active-run record is a lease: the producer refreshes it every heartbeat, and it expires by itself
when the producer's instance dies, which is how readers elsewhere learn that a stream will never end.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RunRegistry"]


class RunRegistry(Protocol):
    async def acquire(self, conversation_id: str, run_id: str, *, ttl: float) -> str | None:
        """Claim the conversation for `run_id` for `ttl` seconds.

        Returns None when claimed, or the id of the run that already holds it (the caller answers 409).
        """
        ...

    async def heartbeat(self, conversation_id: str, run_id: str, *, ttl: float) -> bool:
        """Extend the lease; False when `run_id` no longer holds it."""
        ...

    async def release(self, conversation_id: str, run_id: str) -> None:
        """Give the conversation up, only if `run_id` still holds it."""
        ...

    async def active(self, conversation_id: str) -> str | None:
        """The run currently holding the conversation, if its lease is alive."""
        ...

    async def request_stop(self, conversation_id: str) -> str | None:
        """Ask the active run to stop, wherever it runs. Returns its id, or None when none is active."""
        ...

    async def wait_stop(self, run_id: str) -> None:
        """Return once a stop has been requested for `run_id` (the producer races this against its work)."""
        ...

    async def claim_idempotency(self, key: str, value: str, *, ttl: float) -> str | None:
        """Bind `key` to `value` unless already bound; return the existing value when it was."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
