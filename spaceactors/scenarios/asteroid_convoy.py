"""A convoy through an asteroid field: a leader flies from Ceres to Vesta with four ships
holding station astern; an asteroid field appears across the lane, and ships that find
themselves inside it steer out and round it. Halfway, the field grows a second cluster and
space weather slows the sector down."""

from __future__ import annotations

import spaceactors as sa
from spaceactors import sim


@sim.scenario(duration=1800.0)
async def asteroid_convoy(world: sim.World) -> None:
    """A five-ship convoy crosses an asteroid field; ships in a hazard steer out of it."""
    await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
    await world.add_station("vesta", (60_000.0, 0.0, 0.0), sector="belt")
    await world.add_ship("leader", (1_000.0, 0.0, 0.0), route=("vesta", "ceres"), stay=120.0)
    followers = [f"escort-{i}" for i in range(1, 5)]
    for i, name in enumerate(followers, start=1):
        await world.add_ship(name, (1_000.0 - 300.0 * i, 200.0, 0.0))
    world.at(1.0, lambda: world.formation("leader", followers, sa.FormationType.CONVOY))
    world.at(
        30.0,
        lambda: world.hazard("field-a", (25_000.0, 0.0, 0.0), 3_000.0, sector="belt"),
    )
    world.at(
        400.0,
        lambda: world.hazard(
            "field-b", (45_000.0, 500.0, 0.0), 2_000.0, sector="belt", duration=600.0
        ),
    )
    world.at(600.0, lambda: world.weather("belt", sa.WeatherSeverity.HIGH, 300.0))
    world.expect(
        "the convoy met the field",
        lambda s: sim.compare("hazard entries", s.hazard_entries, ">=", 1),
        needs=300,
    )

    def leader_docked(_: sim.Summary) -> sim.Verdict:
        places = sorted(station for ship, station in world.metrics.docked_at if ship == "leader")
        return sim.Verdict(
            "vesta" in places, f"the leader docked at: {', '.join(places) or 'no station'}"
        )

    world.expect("the leader reached Vesta and docked", leader_docked, needs=600)
    world.expect(*sim.no_cargo_lost())
