"""Process-local Prometheus metrics: counters and histograms, rendered in the text exposition format.

Kept dependency-free and off the per-token path: runs report once when they start streaming and once
when they end.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import Counter
from contextvars import ContextVar

__all__ = ["LAG_SAMPLE_SECONDS", "LEASES", "REQUEST_RECEIVED", "Metrics", "sample_loop_lag"]

REQUEST_RECEIVED: ContextVar[float] = ContextVar("chatstream_request_received")
"""`time.perf_counter()` when the request being handled reached our routes (set by the access-log middleware,
the outermost of our router's; each request runs in its own task, so its own context)."""

# Seconds; first-token latency spans sub-millisecond relays to slow upstreams.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds the lease ticker woke up late: a few ms is a healthy loop; seconds mean leases are at risk.
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds from a run-starting request's arrival to its run's task started: well under 1 ms alone on a quiet
# memory-backed instance, a few Redis round trips with Redis, seconds when requests queue behind each other.
_START_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LEASES = ("concurrency", "run")
LAG_SAMPLE_SECONDS = 0.5
"""How often the lifespan's sampler measures the event loop's lag."""


class _Histogram:
    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.count += 1
        self.total += value

    def render(self, name: str) -> list[str]:
        lines = [f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            cumulative += n
            lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
        lines += [
            f'{name}_bucket{{le="+Inf"}} {self.count}',
            f"{name}_sum {self.total:.6f}",
            f"{name}_count {self.count}",
        ]
        return lines


class Metrics:
    """What `/metrics` reports for this instance."""

    def __init__(self) -> None:
        self.runs_ended: Counter[str] = Counter()
        """Runs by how they ended: done, stopped, abandoned, timeout, max_steps, suspended, error (and lost)."""
        self.tokens: Counter[str] = Counter()
        """Input and output tokens used: reported by providers, or estimated from the streamed text where a
        provider reported none (`output_estimated` is the estimated share of `output`)."""
        self.requests: Counter[str] = Counter()
        """Run-starting requests and resumes, and refusals by error code."""
        self.first_token = _Histogram(_BUCKETS)
        """Seconds from a run's start to its first text or reasoning delta."""
        self.loop_lag = _Histogram(_LAG_BUCKETS)
        """Event loop lag: seconds a timer woke up late. Sampled every `LAG_SAMPLE_SECONDS` by the lifespan's
        sampler (`sample_loop_lag`), and by the lease ticker on each beat while runs execute."""
        self.run_start = _Histogram(_START_BUCKETS)
        """Seconds from a run-starting request's arrival at our routes (send, regenerate, approve) to its run's
        task started: routing, auth, body decode, admission, the store and buffer writes, the task's spawn.
        Wall time: queueing behind other requests on a busy loop counts (that is what a client waits)."""
        self.lease_renewal = _Histogram(_LAG_BUCKETS)
        """Seconds from sending one tick's lease renewals to handling their answers (a saturated loop is slow
        to handle them: liveness lapses when this nears 3 heartbeats)."""
        self.leases_lost: Counter[str] = Counter()
        """Runs that lost a lease while still executing: `concurrency` (its slot lapsed: the concurrent-runs
        limit under-counted) or `run` (its conversation was claimed by another run)."""

    def run_started(self) -> None:
        """A run's task has started, for the request being handled: `run_start` observes its time since arrival."""
        received = REQUEST_RECEIVED.get(None)
        if received is not None:
            self.run_start.observe(time.perf_counter() - received)

    def render(self, *, active_runs: int) -> str:
        lines = [
            "# HELP chat_active_runs Runs executing on this instance.",
            "# TYPE chat_active_runs gauge",
            f"chat_active_runs {active_runs}",
            "# HELP chat_runs_ended_total Runs ended on this instance, by outcome.",
            "# TYPE chat_runs_ended_total counter",
            *(f'chat_runs_ended_total{{outcome="{k}"}} {v}' for k, v in sorted(self.runs_ended.items())),
            "# HELP chat_tokens_total Tokens used (output_estimated: the share of output estimated from the text).",
            "# TYPE chat_tokens_total counter",
            *(f'chat_tokens_total{{kind="{k}"}} {v}' for k, v in sorted(self.tokens.items())),
            "# HELP chat_requests_total Requests by kind (run starts, resumes, refusals by code).",
            "# TYPE chat_requests_total counter",
            *(f'chat_requests_total{{kind="{k}"}} {v}' for k, v in sorted(self.requests.items())),
            "# HELP chat_first_token_seconds Time from a run's start to its first streamed token.",
            *self.first_token.render("chat_first_token_seconds"),
            "# HELP chat_run_start_seconds Time from a run-starting request's arrival to its run's task started.",
            *self.run_start.render("chat_run_start_seconds"),
            "# HELP chat_event_loop_lag_seconds Event loop lag: how late a timer woke up (sampler, lease ticker).",
            *self.loop_lag.render("chat_event_loop_lag_seconds"),
            "# HELP chat_lease_renewal_seconds Time for one tick's lease renewals to be answered and handled.",
            *self.lease_renewal.render("chat_lease_renewal_seconds"),
            "# HELP chat_leases_lost_total Executing runs that lost a lease (concurrency slot, conversation).",
            "# TYPE chat_leases_lost_total counter",
            *(f'chat_leases_lost_total{{lease="{k}"}} {self.leases_lost[k]}' for k in LEASES),
        ]
        return "\n".join(lines) + "\n"


async def sample_loop_lag(metrics: Metrics, interval: float = LAG_SAMPLE_SECONDS) -> None:
    """Until cancelled: sleep `interval`, and record how much later than asked the loop woke us up."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        metrics.loop_lag.observe(max(0.0, loop.time() - due))
