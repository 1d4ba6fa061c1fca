"""benchmarks/observing.py does the work it times: a fleet run with the server on, watched by a
client in a process of its own whose every request is answered (timings are never asserted)."""

from __future__ import annotations

import json

import pytest

from benchmarks import observing, watching


def test_a_watched_fleet_run_does_all_its_work_and_every_request_is_answered() -> None:
    run, watcher = observing.run_once(
        200, lambda: observing.Watcher((observing.STATUS, "/metrics"), 0.01)
    )
    assert watcher is not None
    assert watcher.failures == 0, watcher.errors
    assert watcher.latencies  # the client's lines were read
    assert run.summary.ships == 200
    assert run.summary.ship_updates == 200 * run.ticks > 0
    assert all(0 < latency < 60 for _, latency in watcher.latencies)
    # The server's own CPU clock was read meanwhile, and only goes forward.
    used = [cpu for _, cpu in watcher.server_cpu]
    assert used == sorted(used)
    share = watcher.server_share(run.first_tick)
    assert share is None or 0 <= share < 2


def test_the_client_s_lines_count_failures_and_time_status_requests() -> None:
    watcher = observing.Watcher((observing.STATUS, "/metrics"), 1.0)
    lines = [
        {"path": observing.STATUS, "sent": 1.0, "seconds": 0.03, "status": 200},
        {"path": "/metrics", "sent": 2.0, "seconds": 0.02, "status": 200},
        {"path": observing.STATUS, "sent": 3.0, "seconds": 0.5, "status": 500},
        {"path": "/metrics", "sent": 4.0, "error": "TimeoutError()"},
    ]
    watcher.read("\n".join(json.dumps(line) for line in lines))
    assert watcher.latencies == [(1.0, 0.03)]
    assert watcher.answers == [1.0, 2.0]  # every path answered
    assert watcher.failures == 2
    assert watcher.errors == [f"{observing.STATUS}: 500", "/metrics: TimeoutError()"]


def test_the_server_share_is_its_cpu_per_wall_second_from_a_time_on() -> None:
    watcher = observing.Watcher((observing.STATUS,), 1.0)
    watcher.server_cpu = [(9.0, 0.5), (10.0, 1.0), (12.0, 1.2), (14.0, 1.4)]
    assert watcher.server_share(10.0) == pytest.approx(0.1)  # 0.4 CPU s over 4 s
    assert watcher.server_share(13.0) is None  # one sample: no interval


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
    assert watching.watching(101.9, 100.0, None) is True  # no phases: always watched
    run = Run(marks)
    # an answer in each counted watched interval's span, one in a margin, one while quiet
    watcher.answers = [100.3, 101.0, 101.9, 103.0, 104.6]
    sums = observing.phase_rates(run, watcher)  # type: ignore[arg-type]
    watched_sim, watched_wall, quiet_sim, quiet_wall, answers = sums
    assert watched_sim / watched_wall == pytest.approx(3.0)
    assert quiet_sim / quiet_wall == pytest.approx(4.0)
    assert watched_wall == pytest.approx(2 * 1.75)  # each watched phase less its margin
    assert quiet_wall == pytest.approx(2 * 1.75)
    assert answers == 3  # not the one in a margin, nor the one while quiet
    assert observing.slowdown(sums) == pytest.approx(0.75)
    # 3.5 s watched did what 2.625 s quiet do: 0.875 s lost over 3 answers
    assert observing.cost_per_answer(sums) == pytest.approx(0.875 / 3)


class Run:
    def __init__(self, marks: list[tuple[float, float]]) -> None:
        self.marks = marks
