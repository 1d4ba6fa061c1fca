"""The simulation's own messages, beside the space protocol of `spaceactors.messages`.

The protocol carries what ships and stations would say over the air (RequestDocking,
DockingPermission, TradeOffer, DistressSignal, FormationRequest, MarketUpdate, ...); these carry
what the simulation adds: the world telling a ship what its sensors see, scenario orders, and
the replies of trades and rescues.
"""

from __future__ import annotations

import attrs

from spaceactors.messages import CargoItem, DistressSignal, EmergencyType, TradeOffer
from spaceactors.sim.physics import Point

# --- the world to a ship (its sensors) ---------------------------------------------------------


@attrs.frozen
class Arrived:
    """The ship reached the point it was steering to, and stopped there."""

    point: Point


@attrs.frozen
class FuelExhausted:
    """The tank is empty: the ship drifts."""


@attrs.frozen
class HazardEntered:
    """The ship is inside a hazard's radius."""

    hazard: str
    center: Point
    radius: float


@attrs.frozen
class HazardCleared:
    """The ship is out of the hazard (or it ended)."""

    hazard: str


# --- scenario orders ---------------------------------------------------------------------------


@attrs.frozen
class Emergency:
    """Something went wrong aboard: the ship stops and calls for help."""

    emergency_type: EmergencyType
    severity: int = 5


@attrs.frozen
class Sabotage:
    """Makes the ship's handler raise: a crash on purpose, to exercise restarts."""


# --- ships and stations ------------------------------------------------------------------------


@attrs.frozen
class Trade:
    """Ship → station: a trade; `trade_id` makes a repeat after a crash return the same result."""

    trade_id: int
    ship: str
    offer: TradeOffer
    fuel: float = 0.0  # fuel units to buy as well


@attrs.frozen
class TradeResult:
    """Station → ship: what changed hands (the reply to `Trade`)."""

    trade_id: int
    sold: tuple[CargoItem, ...]  # what the station bought from the ship
    bought: tuple[CargoItem, ...]  # what the ship bought
    fuel: float
    credits: float  # to the ship; negative when it paid


@attrs.frozen
class Undock:
    """Ship → station: the ship left `berth`."""

    ship: str
    berth: int


@attrs.frozen
class Evicted:
    """Station → ship: its stay outlasted the berth's lease; the berth is gone."""


@attrs.frozen
class Depart:
    """Ship → itself: time to leave the berth."""


@attrs.frozen
class Distress:
    """A distress call on a sector's topic: who calls, and the protocol's signal."""

    ship: str
    signal: DistressSignal


@attrs.frozen
class CollectOffers:
    """Ship → itself: the window for rescue offers closed."""


@attrs.frozen
class RescueOffer:
    """Able ship → distressed ship: it can come, from `distance` metres away."""

    ship: str
    distance: float


@attrs.frozen
class RescueAccepted:
    """Distressed ship → the nearest offer: come to `point`."""

    ship: str
    point: Point


@attrs.frozen
class RescueDeclined:
    """Rescuer → distressed ship: it can no longer come."""

    ship: str


@attrs.frozen
class Rescued:
    """Rescuer → distressed ship: alongside; fuel and repairs transferred."""

    ship: str
    fuel: float


@attrs.frozen
class BerthCheck:
    """Station → itself: free berths whose ship is gone or overstayed."""


@attrs.frozen
class MarketTick:
    """Station → itself: let stocks drift and publish the sector's market update."""


@attrs.frozen
class MarketShock:
    """Scenario → station: a commodity's stock is multiplied by `factor`."""

    commodity: str
    factor: float
