"""A trade-route economy: haulers buy where goods are cheap and sell where they are dear.

Three stations in two sectors price ore, water and metals differently; twelve haulers fly
loops between them, docking (and queueing when the berths are full), trading and refuelling.
Their trades move the prices, which the stations publish on their sector's market topic. At
10 minutes a market shock floods Vesta with ore; at 20 minutes one hauler's computer crashes
mid-flight and it resumes from its last consistent state.
"""

from __future__ import annotations

from spaceactors import sim

STATIONS = {
    "ceres": ((0.0, 0.0, 0.0), "belt", {"ore": 6.0, "water": 9.0, "metals": 30.0, "fuel": 2.0}),
    "vesta": ((40_000.0, 10_000.0, 0.0), "belt", {"ore": 12.0, "water": 5.0, "metals": 24.0}),
    "pallas": (
        (20_000.0, 45_000.0, 0.0),
        "outer",
        {"ore": 15.0, "water": 12.0, "metals": 18.0, "fuel": 2.5},
    ),
}


@sim.scenario(duration=3600.0)
async def trade_route(world: sim.World) -> None:
    """Twelve haulers trade between three stations; prices move, a shock and a crash happen."""
    for name, (position, sector, prices) in STATIONS.items():
        await world.add_station(name, position, sector=sector, berths=2, prices=prices)
    loops = [("ceres", "vesta"), ("vesta", "pallas"), ("pallas", "ceres"), ("ceres", "pallas")]
    for i in range(12):
        route = loops[i % len(loops)]
        start = STATIONS[route[0]][0]
        await world.add_ship(
            f"hauler-{i + 1}",
            (start[0] + 500.0 * i, start[1] - 2000.0, 0.0),
            route=route,
            cargo={"ore": 20.0, "water": 10.0},
            capacity=120.0,
            credits=2000.0,
            stay=60.0,
        )
    world.at(600.0, lambda: world.market_shock("vesta", "ore", 3.0))
    world.at(1200.0, lambda: world.crash("hauler-3"))
    # Thresholds scale with the run (`--duration`); what counts on an event, or on the time
    # a hauler needs to reach its first station, says how long a run it needs.
    trades = sim.at_least("trades", lambda s: s.trades, 24, per=3600, duration=world.duration)
    world.expect(*trades, needs=60)  # a minute to reach the first station
    world.expect(
        "every hauler docked somewhere",
        lambda s: sim.compare("haulers docked", s.ships_docked, "==", len(world.ships)),
        needs=300,
    )
    world.expect(*sim.no_cargo_lost())
    world.expect(
        "hauler-3, crashed at 1,200 s, was restarted",
        lambda s: sim.compare(
            "restarts of hauler-3", world.ships["hauler-3"].status().restarts, ">=", 1
        ),
        needs=1200,
    )
