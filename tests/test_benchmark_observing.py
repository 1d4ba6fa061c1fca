"""benchmarks/observing.py does the work it times: a fleet run with the server on, watched by a
client thread whose every request is answered (timings are never asserted)."""

from __future__ import annotations

from benchmarks import observing


def test_a_watched_fleet_run_does_all_its_work_and_every_request_is_answered() -> None:
    run, watcher = observing.run_once(
        200, lambda: observing.Watcher((observing.STATUS, "/metrics"), 0.01)
    )
    assert watcher is not None
    assert watcher.failures == 0, watcher.errors
    assert run.summary.ships == 200
    assert run.summary.ship_updates == 200 * run.ticks > 0
    assert all(0 < latency < 60 for _, latency in watcher.latencies)


def test_percentile_takes_the_value_at_that_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert observing.percentile(values, 0.99) == 100.0
    assert observing.percentile(values, 0.5) == 51.0
    assert observing.percentile([3.0], 0.99) == 3.0
