"""Which run is active per conversation, how to stop it, and idempotency keys: shared by all instances.

The active-run record is a lease on two clocks:

- liveness (`ttl`, a few heartbeats): the producer's process renews it every heartbeat tick, and it expires
  by itself when that process dies or stalls. Readers elsewhere check it (`active`) to learn that a stream
  will never end, and a new run may claim a conversation whose holder's liveness lapsed (`acquire`).
- holding (`hold`, tens of seconds): how long the run keeps its claim while its liveness lapses. A producer
  that was only paused (a saturated event loop, a stopped process) and comes back before anyone claimed the
  conversation renews both and carries on; one whose conversation was claimed meanwhile learns that it lost
  it (`renew` answers False). Without `hold` it equals `ttl`: a lapsed lease is gone for good.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RunRegistry"]


class RunRegistry(Protocol):
    async def acquire(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> str | None:
        """Claim the conversation for `run_id`: alive for `ttl` seconds, held for `hold` (default `ttl`).

        A holder whose liveness lapsed is presumed dead and loses the conversation to this claim. Returns
        None when claimed, or the id of the live run that holds it (the caller answers 409).
        """
        ...

    async def heartbeat(self, conversation_id: str, run_id: str, *, ttl: float, hold: float | None = None) -> bool:
        """`renew` for one run."""
        ...

    async def renew(self, leases: Sequence[tuple[str, str]], *, ttl: float, hold: float | None = None) -> list[bool]:
        """Extend the liveness (`ttl`) and holding (`hold`, default `ttl`) of every `(conversation_id, run_id)`,
        in one round trip. Per lease: True while the run still holds its conversation, also when only its
        liveness had lapsed and nobody claimed the conversation since (liveness is then restored); False once
        it was released, its holding expired, or another run claimed the conversation. Never re-claims a
        conversation that was let go.
        """
        ...

    async def release(self, conversation_id: str, run_id: str) -> None:
        """Give the conversation up, only if `run_id` still holds it."""
        ...

    async def active(self, conversation_id: str) -> str | None:
        """The run holding the conversation, if it is alive (its liveness has not lapsed)."""
        ...

    async def request_stop(self, conversation_id: str) -> str | None:
        """Ask the active run to stop, wherever it runs. Returns its id, or None when none is active."""
        ...

    async def wait_stop(self, run_id: str) -> None:
        """Return once a stop has been requested for `run_id` (the producer races this against its work)."""
        ...

    async def touch_reader(self, run_id: str, *, ttl: float) -> None:
        """Record that someone is reading `run_id`'s stream (wherever it is produced), for `ttl` seconds.

        Readers refresh it while they follow the stream, and a run touches it once as it starts; a run
        whose record lapsed has had no reader for `ttl` seconds (`CHAT_ABANDON_AFTER_SECONDS`). Used only
        when that setting is on.
        """
        ...

    async def reader_seen(self, run_id: str) -> bool:
        """Whether `touch_reader` was called for `run_id` within its `ttl`."""
        ...

    async def claim_idempotency(self, key: str, value: str, *, ttl: float) -> str | None:
        """Bind `key` to `value` unless already bound; return the existing value when it was."""
        ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...
