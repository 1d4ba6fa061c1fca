"""Distress and rescue: eleven ships go about their business in one sector; three of them
suffer emergencies (an engine failure, a hull breach, and a ship that runs its tank dry), call
on the sector's distress topic, and the nearest able ship comes to help each one."""

from __future__ import annotations

import spaceactors as sa
from spaceactors import sim


@sim.scenario(duration=1800.0)
async def distress_rescue(world: sim.World) -> None:
    """Three emergencies in a busy sector; the nearest able ship answers each call."""
    await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
    await world.add_station("vesta", (30_000.0, 20_000.0, 0.0), sector="belt")
    for i in range(10):
        await world.add_ship(
            f"trader-{i + 1}",
            (3_000.0 * i, 2_000.0 * (i % 3), 0.0),
            route=("ceres", "vesta") if i % 2 else ("vesta", "ceres"),
            stay=45.0,
        )
    # A ship with almost no fuel: it runs dry on its way and drifts.
    await world.add_ship("runabout", (10_000.0, -5_000.0, 0.0), route=("vesta",), fuel=1.0)
    world.at(
        300.0, lambda: world.emergency("trader-3", sa.EmergencyType.ENGINE_FAILURE, severity=7)
    )
    world.at(900.0, lambda: world.emergency("trader-8", sa.EmergencyType.HULL_BREACH, severity=9))
    world.expect(*sim.every_distress_answered_within(180.0))
    world.expect(
        "three calls, three rescues",
        lambda s: (
            sim.compare("distress calls", s.distress_calls, "==", 3)
            and sim.compare("rescues", s.rescues, "==", 3)
        ),
        needs=1200,  # the last call comes at 900 s; its rescuer needs time to fly there
    )
    world.expect(*sim.no_cargo_lost())
