"""benchmarks/observing.py does the work it times: a fleet run with the server on, watched by a
client thread whose every request is answered (timings are never asserted)."""

from __future__ import annotations

import pytest

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
    # The server's own CPU clock was read after each request, and only goes forward.
    assert len(watcher.server_cpu) >= len(watcher.latencies)
    used = [cpu for _, cpu in watcher.server_cpu]
    assert used == sorted(used)
    assert used[-1] > 0
    share = watcher.server_share(run.first_tick)
    assert share is None or 0 <= share < 2


def test_the_server_share_is_its_cpu_per_wall_second_from_a_time_on() -> None:
    watcher = observing.Watcher((observing.STATUS,), 1.0)
    watcher.server_cpu = [(9.0, 0.5), (10.0, 1.0), (12.0, 1.2), (14.0, 1.4)]
    assert watcher.server_share(10.0) == pytest.approx(0.1)  # 0.4 CPU s over 4 s
    assert watcher.server_share(13.0) is None  # one sample: no interval


def test_percentile_takes_the_value_at_that_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert observing.percentile(values, 0.99) == 100.0
    assert observing.percentile(values, 0.5) == 51.0
    assert observing.percentile([3.0], 0.99) == 3.0


def test_an_alternating_run_is_split_by_phase_leaving_out_the_margins() -> None:
    watcher = observing.Watcher((observing.STATUS,), 0.5, phase=2.0)
    watcher.started = 100.0
    # Progress every 0.25 s for 8 s: simulated time runs at 3/s while watched ([100, 102),
    # [104, 106)), at 4/s while quiet; intervals ending in a phase's last 0.2 s are left out.
    marks, sim = [], 0.0
    for step in range(33):
        wall = 100.0 + step * 0.25
        marks.append((wall, sim))
        sim += 0.25 * (3.0 if watcher.watching(wall + 0.1) else 4.0)
    assert watcher.watching(100.5) is True
    assert watcher.watching(102.5) is False
    assert watcher.watching(101.9) is None
    run = Run(marks)
    watched_sim, watched_wall, quiet_sim, quiet_wall = observing.phase_rates(run, watcher)  # type: ignore[arg-type]
    assert watched_sim / watched_wall == pytest.approx(3.0)
    assert quiet_sim / quiet_wall == pytest.approx(4.0)
    assert watched_wall == pytest.approx(2 * 1.75)  # each watched phase less its margin
    assert quiet_wall == pytest.approx(2 * 1.75)


class Run:
    def __init__(self, marks: list[tuple[float, float]]) -> None:
        self.marks = marks
