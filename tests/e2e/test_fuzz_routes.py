"""`scripts/fuzz_routes.py`'s core, bounded, against a real `python -m app` with memory backends.

About 30 generated requests a route (fixed seed, so a failure reproduces with
`.venv/bin/python scripts/fuzz_routes.py --seed 20261201 --per-route 30`): none may be answered with a 5xx
(the documented 502 of a plain answer whose run failed upstream aside), none may lose its connection, and
the server may log no traceback.
"""

from __future__ import annotations

import time

import pytest

from scripts.fuzz_routes import LogWatch, Target, fuzz_env, print_report, run_fuzz
from tests.support.server import OTHER_TOKEN, TOKEN, ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SEED = 20261201
PER_ROUTE = 30


def test_no_route_answers_5xx_or_drops_the_connection_or_logs_a_traceback() -> None:
    started = time.monotonic()
    with ServerProcess(fuzz_env()) as server:
        target = Target("127.0.0.1", server.port, TOKEN, OTHER_TOKEN, server.log)
        report = run_fuzz(target, seed=SEED, per_route=PER_ROUTE)
    # What it logged while stopping counts too.
    report.log_tracebacks, report.log_unhandled = LogWatch(server.log).totals()
    print_report(report, details=5)  # shown by pytest when an assertion below fails
    failures = {kind: report.count(kind) for kind in report.FAILING if report.count(kind)}
    assert report.aborted is None
    assert report.server_alive
    assert failures == {}, [f"{f.kind} {f.route}\n{f.request}\n=> {f.detail[:2000]}" for f in report.findings[:5]]
    assert (report.log_tracebacks, report.log_unhandled) == (0, 0)
    assert all(stats.sent >= PER_ROUTE for route, stats in report.routes.items() if not route.startswith("("))
    assert time.monotonic() - started < 40
