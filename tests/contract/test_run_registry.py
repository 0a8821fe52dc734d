"""The `RunRegistry` contract: memory, fakeredis and real Redis behave the same.

For the Redis kinds, `env.run_registry()` returns a new instance on its own client each call, so "another
instance" tests really cross connections; the memory twin is one process, so it returns the same object.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from chatstream.runs.registry import RunRegistry
    from tests.contract.conftest import Env


async def test_acquire_is_exclusive(run_registry: RunRegistry) -> None:
    assert await run_registry.active("c1") is None
    assert await run_registry.acquire("c1", "run-1", ttl=10) is None
    assert await run_registry.acquire("c1", "run-2", ttl=10) == "run-1"
    assert await run_registry.active("c1") == "run-1"
    assert await run_registry.acquire("c2", "run-3", ttl=10) is None  # other conversations are free


async def test_acquire_is_exclusive_across_instances(env: Env) -> None:
    registries = [env.run_registry() for _ in range(4)]
    results = await asyncio.gather(*(r.acquire("c1", f"run-{i}", ttl=10) for i, r in enumerate(registries)))
    winners = [i for i, holder in enumerate(results) if holder is None]
    assert len(winners) == 1
    assert all(holder == f"run-{winners[0]}" for holder in results if holder is not None)
    assert await registries[-1].active("c1") == f"run-{winners[0]}"


async def test_lease_expires_without_heartbeat(env: Env) -> None:
    registry = env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=0.3) is None
    await env.elapse(0.45)
    assert await registry.active("c1") is None
    assert await registry.heartbeat("c1", "run-1", ttl=1) is False
    assert await registry.acquire("c1", "run-2", ttl=10) is None
    assert await registry.active("c1") == "run-2"


async def test_heartbeat_extends_only_the_holder(env: Env) -> None:
    registry = env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=0.4) is None
    await env.elapse(0.25)
    assert await registry.heartbeat("c1", "run-1", ttl=0.4) is True
    assert await registry.heartbeat("c1", "intruder", ttl=10) is False
    await env.elapse(0.25)  # 0.5 s after acquire: alive only thanks to the heartbeat
    assert await registry.active("c1") == "run-1"
    await env.elapse(0.3)
    assert await registry.active("c1") is None


async def test_release_only_by_the_holder(env: Env) -> None:
    registry, other = env.run_registry(), env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=10) is None
    await other.release("c1", "run-2")
    assert await registry.active("c1") == "run-1"
    await other.release("c1", "run-1")  # any instance may release on the holder's behalf
    assert await registry.active("c1") is None
    await registry.release("c1", "run-1")  # idempotent
    assert await registry.acquire("c1", "run-2", ttl=10) is None


async def test_stale_release_does_not_free_a_successor(env: Env) -> None:
    registry = env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=0.2) is None
    await env.elapse(0.35)
    assert await registry.acquire("c1", "run-2", ttl=10) is None
    await registry.release("c1", "run-1")  # the crashed-then-revived first producer
    assert await registry.active("c1") == "run-2"


async def test_request_stop_without_active_run(run_registry: RunRegistry) -> None:
    assert await run_registry.request_stop("c1") is None


async def test_stop_reaches_a_waiting_run_from_another_instance(env: Env) -> None:
    producer, api = env.run_registry(), env.run_registry()
    assert await producer.acquire("c1", "run-1", ttl=10) is None
    waiter = asyncio.create_task(producer.wait_stop("run-1"))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    assert await api.request_stop("c1") == "run-1"
    await asyncio.wait_for(waiter, 2.0)


async def test_stop_requested_before_wait_is_not_lost(env: Env) -> None:
    producer, api = env.run_registry(), env.run_registry()
    assert await producer.acquire("c1", "run-1", ttl=10) is None
    assert await api.request_stop("c1") == "run-1"
    await asyncio.wait_for(producer.wait_stop("run-1"), 2.0)


async def test_stop_racing_the_subscription_is_not_lost(env: Env) -> None:
    """Stops fired at every moment around `wait_stop`'s subscription all arrive."""
    producer, api = env.run_registry(), env.run_registry()
    for i in range(15):
        cid, run = f"c{i}", f"run-{i}"
        assert await producer.acquire(cid, run, ttl=10) is None
        waiter = asyncio.create_task(producer.wait_stop(run))
        for _ in range(i % 5):
            await asyncio.sleep(0)
        assert await api.request_stop(cid) == run
        await asyncio.wait_for(waiter, 2.0)


async def test_stop_wakes_only_its_own_run(env: Env) -> None:
    producer, api = env.run_registry(), env.run_registry()
    for i in range(3):
        assert await producer.acquire(f"c{i}", f"run-{i}", ttl=10) is None
    waiters = [asyncio.create_task(producer.wait_stop(f"run-{i}")) for i in range(3)]
    await asyncio.sleep(0.1)
    assert await api.request_stop("c1") == "run-1"
    await asyncio.wait_for(waiters[1], 2.0)
    await asyncio.sleep(0.1)
    assert not waiters[0].done()
    assert not waiters[2].done()
    for task in (waiters[0], waiters[2]):
        task.cancel()
    await asyncio.gather(waiters[0], waiters[2], return_exceptions=True)


async def test_many_waiters_on_one_registry(env: Env) -> None:
    producer, api = env.run_registry(), env.run_registry()
    count = 200
    for i in range(count):
        assert await producer.acquire(f"c{i}", f"run-{i}", ttl=10) is None
    waiters = [asyncio.create_task(producer.wait_stop(f"run-{i}")) for i in range(count)]
    await asyncio.sleep(0.2)
    stopped = range(0, count, 10)
    await asyncio.gather(*(api.request_stop(f"c{i}") for i in stopped))
    await asyncio.wait_for(asyncio.gather(*(waiters[i] for i in stopped)), 5.0)
    assert sum(w.done() for w in waiters) == len(stopped)
    for waiter in waiters:
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)


async def test_cancelled_waiter_can_wait_again(env: Env) -> None:
    producer, api = env.run_registry(), env.run_registry()
    assert await producer.acquire("c1", "run-1", ttl=10) is None
    first = asyncio.create_task(producer.wait_stop("run-1"))
    await asyncio.sleep(0.05)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.sleep(1.2)  # let a Redis registry drop the now-unused subscription
    second = asyncio.create_task(producer.wait_stop("run-1"))
    await asyncio.sleep(0.1)
    assert await api.request_stop("c1") == "run-1"
    await asyncio.wait_for(second, 2.0)


async def test_release_clears_the_stop_request(env: Env) -> None:
    registry = env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=10) is None
    assert await registry.request_stop("c1") == "run-1"
    await registry.release("c1", "run-1")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(registry.wait_stop("run-1"), 0.3)


async def test_idempotency_claims(env: Env) -> None:
    registry, other = env.run_registry(), env.run_registry()
    assert await registry.claim_idempotency("user:key-1", "run-1", ttl=10) is None
    assert await other.claim_idempotency("user:key-1", "run-2", ttl=10) == "run-1"
    assert await registry.claim_idempotency("user:key-1", "run-1", ttl=10) == "run-1"
    assert await other.claim_idempotency("user:key-2", "run-2", ttl=10) is None


async def test_idempotency_claims_are_exclusive_under_concurrency(env: Env) -> None:
    registries = [env.run_registry() for _ in range(4)]
    results = await asyncio.gather(*(r.claim_idempotency("k", f"run-{i}", ttl=10) for i, r in enumerate(registries)))
    assert results.count(None) == 1
    winner = f"run-{results.index(None)}"
    assert all(r == winner for r in results if r is not None)


async def test_idempotency_claims_expire(env: Env) -> None:
    registry = env.run_registry()
    assert await registry.claim_idempotency("k", "run-1", ttl=0.2) is None
    await env.elapse(0.35)
    assert await registry.claim_idempotency("k", "run-2", ttl=10) is None
    assert await registry.claim_idempotency("k", "run-3", ttl=10) == "run-2"


async def test_ping(run_registry: RunRegistry) -> None:
    await run_registry.ping()


# -- two clocks: liveness (`ttl`, what readers check) and holding (`hold`, what a paused producer keeps) -----


async def test_lapsed_liveness_looks_dead_but_the_paused_holder_carries_on(env: Env) -> None:
    producer, reader = env.run_registry(), env.run_registry()
    assert await producer.acquire("c1", "run-1", ttl=0.3, hold=10) is None
    await env.elapse(0.45)  # the producer's process stalled: no renewal
    assert await reader.active("c1") is None  # readers elsewhere see a dead producer
    assert await reader.request_stop("c1") is None
    # Nobody claimed the conversation meanwhile: the producer's next renewal keeps it, and it is alive again.
    assert await producer.renew([("c1", "run-1")], ttl=0.3, hold=10) == [True]
    assert await reader.active("c1") == "run-1"
    assert await reader.acquire("c1", "run-2", ttl=10) == "run-1"


async def test_a_claim_on_a_lapsed_holder_takes_the_conversation_over(env: Env) -> None:
    producer, other = env.run_registry(), env.run_registry()
    assert await producer.acquire("c1", "run-1", ttl=0.3, hold=10) is None
    await env.elapse(0.45)
    assert await other.acquire("c1", "run-2", ttl=10, hold=10) is None  # the holder is presumed dead
    # The paused producer comes back: it learns it lost the conversation, and takes nothing back.
    assert await producer.renew([("c1", "run-1")], ttl=10, hold=10) == [False]
    assert await producer.heartbeat("c1", "run-1", ttl=10, hold=10) is False
    assert await other.active("c1") == "run-2"
    await producer.release("c1", "run-1")  # its late release does not free the successor either
    assert await other.active("c1") == "run-2"
    assert await other.renew([("c1", "run-2")], ttl=10, hold=10) == [True]


async def test_holding_expires_too(env: Env) -> None:
    registry = env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=0.2, hold=0.4) is None
    await env.elapse(0.55)  # past both clocks: the lease is gone for good
    assert await registry.renew([("c1", "run-1")], ttl=0.2, hold=0.4) == [False]
    assert await registry.active("c1") is None


async def test_renew_never_reclaims_a_released_conversation(env: Env) -> None:
    registry, other = env.run_registry(), env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=10, hold=30) is None
    await registry.release("c1", "run-1")
    # A renewal that was already on its way when the run let go must not resurrect its lease.
    assert await other.renew([("c1", "run-1")], ttl=10, hold=30) == [False]
    assert await other.active("c1") is None
    assert await other.acquire("c1", "run-2", ttl=10) is None


async def test_renew_answers_per_lease_in_order(env: Env) -> None:
    registry, other = env.run_registry(), env.run_registry()
    for i in range(5):
        assert await registry.acquire(f"c{i}", f"run-{i}", ttl=0.3, hold=10) is None
    await registry.release("c1", "run-1")
    await env.elapse(0.45)
    assert await other.acquire("c3", "run-x", ttl=10) is None  # took over a lapsed one
    leases = [(f"c{i}", f"run-{i}") for i in range(5)]
    assert await registry.renew(leases, ttl=10, hold=10) == [True, False, True, False, True]
    assert [await other.active(f"c{i}") for i in range(5)] == ["run-0", None, "run-2", "run-x", "run-4"]
    assert await registry.renew([], ttl=10, hold=10) == []


async def test_renew_extends_both_clocks(env: Env) -> None:
    registry = env.run_registry()
    assert await registry.acquire("c1", "run-1", ttl=0.3, hold=0.6) is None
    await env.elapse(0.2)
    assert await registry.renew([("c1", "run-1")], ttl=0.3, hold=0.6) == [True]
    await env.elapse(0.2)  # 0.4 s after acquire: alive only thanks to the renewal
    assert await registry.active("c1") == "run-1"
    await env.elapse(0.3)  # 0.7 s: liveness lapsed, still held (0.8 s)
    assert await registry.active("c1") is None
    assert await registry.renew([("c1", "run-1")], ttl=0.3, hold=0.6) == [True]
