"""A large fleet: 10,000 ships trading between 50 stations in 10 sectors.

The scale test of the engine: every ship is an actor under the supervision tree, every station
publishes its market on its sector's topic, and the world integrates 10,000 bodies each tick.
"""

from __future__ import annotations

from spaceactors import sim

SHIPS = 10_000
STATIONS = 50
SECTORS = 10


@sim.scenario(duration=600.0, step=2.0)
async def large_fleet(world: sim.World) -> None:
    """10,000 ships and 50 stations in 10 sectors (the engine's scale test)."""
    layout = world.system.rng("large-fleet layout")
    stations = []
    for i in range(STATIONS):
        sector = f"sector-{i % SECTORS}"
        position = (
            200_000.0 * (i % SECTORS) + layout.uniform(0, 50_000),
            layout.uniform(0, 50_000),
            0.0,
        )
        name = f"station-{i}"
        prices = {
            "ore": layout.uniform(5, 15),
            "water": layout.uniform(3, 10),
            "metals": layout.uniform(15, 35),
            "fuel": 2.0,
        }
        await world.add_station(name, position, sector=sector, berths=8, prices=prices)
        stations.append((name, sector, position))
    by_sector: dict[str, list[str]] = {}
    for name, sector, _ in stations:
        by_sector.setdefault(sector, []).append(name)
    for i in range(SHIPS):
        home, sector, (x, y, _) = stations[i % STATIONS]
        away = layout.choice([s for s in by_sector[sector] if s != home])
        await world.add_ship(
            f"ship-{i}",
            (x + layout.uniform(-20_000, 20_000), y + layout.uniform(-20_000, 20_000), 0.0),
            route=(away, home),
            cargo={"ore": 10.0},
            stay=60.0,
        )
    dockings = sim.at_least(
        "dockings", lambda s: s.dockings, 1_000, per=600, duration=world.duration
    )
    world.expect(*dockings, needs=50)  # ships need most of a minute to reach a station
    world.expect(*sim.no_cargo_lost())
