"""Process-local Prometheus metrics: counters and histograms, rendered in the text exposition format.

Kept dependency-free and off the per-token path: runs report once when they start streaming and once
when they end.
"""

from __future__ import annotations

import bisect
from collections import Counter

__all__ = ["LEASES", "Metrics"]

# Seconds; first-token latency spans sub-millisecond relays to slow upstreams.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds the lease ticker woke up late: a few ms is a healthy loop; seconds mean leases are at risk.
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LEASES = ("concurrency", "run")


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
        """Seconds between when the lease ticker was due and when it ran (measured while runs execute)."""
        self.lease_renewal = _Histogram(_LAG_BUCKETS)
        """Seconds from sending one tick's lease renewals to handling their answers (a saturated loop is slow
        to handle them: liveness lapses when this nears 3 heartbeats)."""
        self.leases_lost: Counter[str] = Counter()
        """Runs that lost a lease while still executing: `concurrency` (its slot lapsed: the concurrent-runs
        limit under-counted) or `run` (its conversation was claimed by another run)."""

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
            "# HELP chat_event_loop_lag_seconds Event loop lag: how late the lease ticker woke up.",
            *self.loop_lag.render("chat_event_loop_lag_seconds"),
            "# HELP chat_lease_renewal_seconds Time for one tick's lease renewals to be answered and handled.",
            *self.lease_renewal.render("chat_lease_renewal_seconds"),
            "# HELP chat_leases_lost_total Executing runs that lost a lease (concurrency slot, conversation).",
            "# TYPE chat_leases_lost_total counter",
            *(f'chat_leases_lost_total{{lease="{k}"}} {self.leases_lost[k]}' for k in LEASES),
        ]
        return "\n".join(lines) + "\n"
