"""The soak profile, scaled down: the same fault plan and checks as ``make soak``."""

from __future__ import annotations

import trio.testing

from spaceactors.testing.soak import main, soak


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
