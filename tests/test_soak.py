"""The soak profiles, scaled down: the same fault plans and checks as ``make soak``."""

from __future__ import annotations

import pytest
import trio.testing

from spaceactors.testing.memory import MemoryCheck, MemoryProbe
from spaceactors.testing.soak import main, soak, soak_in_flight


async def test_reliable_delivery_survives_the_soak_fault_plan(
    autojump_clock: trio.testing.MockClock,
) -> None:
    report = await soak(20_000, crash_every=500)
    assert min(report.faults[kind] for kind in ("drop", "duplicate", "delay")) > 0
    assert report.faults["crash"] >= 20
    assert (report.lost, report.processed_twice, report.failed, report.pending) == (0, 0, 0, 0)
    assert report.restarts == report.faults["crash"]
    assert report.ok


def test_the_soak_command_prints_its_figures_and_a_verdict(capsys: object) -> None:
    assert main(["--messages", "2000"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "lost                           0" in out
    assert "verdict             PASS" in out


# --- the in-flight profile, scaled down ---------------------------------------------------


async def test_reliable_delivery_survives_the_in_flight_profile(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """1,000 unacknowledged at once, delays up to 10 s, loss, duplication, reordering and
    crashes: nothing lost, nothing processed twice, every outcome known and consistent."""
    report = await soak_in_flight(8_000, in_flight=1_000, crash_every=400)
    assert report.in_flight == 1_000  # the profile did keep that many in flight
    assert min(report.faults[kind] for kind in ("drop", "duplicate", "delay", "reorder")) > 0
    assert report.faults["crash"] >= 10
    assert report.virtual_seconds > 10.0  # the 10 s delays were waited out
    assert (report.lost, report.processed_twice, report.unknown_outcomes) == (0, 0, 0)
    assert (report.failed, report.pending) == (0, 0)
    assert report.restarts == report.faults["crash"]
    assert report.ok


def test_the_in_flight_command_fails_a_run_too_short_to_show_memory_flat(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """3,000 messages end before the warm-up: whatever else held, memory was not shown flat."""
    assert main(["--profile", "in-flight", "--messages", "3000", "--in-flight", "500"]) == 1
    out = capsys.readouterr().out
    assert "== soak profile: in-flight" in out
    assert "unknown outcomes               0" in out
    assert "processed twice                0" in out
    assert "memory              no samples (the run ended before its warm-up)" in out
    assert out.rstrip().endswith("soak: FAIL")


def test_a_flat_run_passes_the_memory_check_and_a_leak_fails_it() -> None:
    kept: list[object] = []
    for leak in (0, 20):
        probe = MemoryProbe(warm_up=1_000, every=1_000)
        for n in range(1, 20_001):
            kept.extend(object() for _ in range(leak))  # objects kept per message
            probe.passed(n)
        check = probe.result()
        assert len(check.samples) == 20
        assert check.flat is (leak == 0), check.render()
        assert ("flat" if leak == 0 else "GROWING") in check.render()


def test_the_memory_check_compares_peaks_not_single_samples() -> None:
    ebb_and_flow = MemoryCheck(0, 1_000, (100_000, 104_000, 99_000, 103_500, 100_500, 104_000))
    assert ebb_and_flow.growth == 0
    assert ebb_and_flow.flat
    growing = MemoryCheck(0, 1_000, (100_000, 110_000, 120_000, 130_000, 140_000, 150_000))
    assert growing.growth == 30_000  # the later half's peak over the earlier half's
    assert not growing.flat
    assert not MemoryCheck(0, 1_000, (100_000, 100_000)).flat  # too few samples to tell
