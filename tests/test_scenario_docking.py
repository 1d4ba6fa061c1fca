"""The docking scenario behind `make run`: berths are never double-booked and nobody is lost."""

from __future__ import annotations

import re

import trio.testing

from spaceactors.scenarios.docking import run_docking


async def test_every_ship_docks_once_and_berths_are_never_shared(
    autojump_clock: trio.testing.MockClock,
) -> None:
    report = await run_docking(ships=9, berths=3, stay=20.0)
    assert report.dockings == 9
    assert report.crashes == 1  # ship-2's engine fails once; its supervisor restarts it
    occupied: dict[int, str] = {}
    for line in report.log:
        if match := re.search(r"(ship-\d+) docked at berth (\d+)", line):
            ship, berth = match[1], int(match[2])
            assert berth not in occupied, (
                f"berth {berth} given to {ship} while {occupied[berth]} is there"
            )
            assert 0 <= berth < 3
            occupied[berth] = ship
        elif match := re.search(r"(ship-\d+) left berth (\d+)", line):
            assert occupied.pop(int(match[2])) == match[1]
    assert occupied == {}
    assert report.refusals > 0  # more ships than berths: some had to wait


async def test_the_crashed_ship_is_restarted_and_still_docks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    report = await run_docking(ships=3, berths=3)
    assert [line.split()[1:] for line in report.log if "ship-2" in line][:3] == [
        ["ship-2", "engine", "failure"],
        ["ship-2", "restarted", "by", "its", "supervisor"],
        ["ship-2", "docked", "at", "berth", "2"],
    ]
