"""The space simulation: ships and stations as actors, a world that ticks, and scenarios.

Write a scenario with `scenario`, build the world in it (`World.add_station`, `World.add_ship`,
`World.at`, `World.expect`), and run it with `run_scenario` or ``spaceactors run``.
"""

from spaceactors.sim.expectations import (
    NotChecked,
    Verdict,
    at_least,
    compare,
    every_distress_answered_within,
    no_cargo_lost,
    scaled,
)
from spaceactors.sim.loading import load, shipped
from spaceactors.sim.market import Commodity, Market
from spaceactors.sim.physics import Body, Point
from spaceactors.sim.records import ShipMode, ShipRecord
from spaceactors.sim.scenario import (
    Progress,
    Scenario,
    ScenarioBroken,
    ScenarioNotFound,
    Summary,
    run_scenario,
    scenario,
)
from spaceactors.sim.ship import Ship
from spaceactors.sim.station import Station, StationState
from spaceactors.sim.world import ScenarioError, World

__all__ = [
    "Body",
    "Commodity",
    "Market",
    "NotChecked",
    "Point",
    "Progress",
    "Scenario",
    "ScenarioBroken",
    "ScenarioError",
    "ScenarioNotFound",
    "Ship",
    "ShipMode",
    "ShipRecord",
    "Station",
    "StationState",
    "Summary",
    "Verdict",
    "World",
    "at_least",
    "compare",
    "every_distress_answered_within",
    "load",
    "no_cargo_lost",
    "run_scenario",
    "scaled",
    "scenario",
    "shipped",
]
