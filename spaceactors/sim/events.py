"""The simulation's own messages, beside the space protocol of `spaceactors.messages`.

The protocol carries what ships and stations would say over the air (RequestDocking,
DockingPermission, TradeOffer, DistressSignal, FormationRequest, MarketUpdate, ...); these carry
what the simulation adds: the world telling a ship what its sensors see, scenario orders, and
the replies of trades and rescues. Like the protocol's, every class validates its fields at
construction and raises `InvalidMessage` naming the field.
"""

from __future__ import annotations

from typing import Any

import attrs

from spaceactors.fields import (
    MAX_SEVERITY,
    MIN_SEVERITY,
    _fail,
    _finite,
    _instance_of,
    _int_in,
    _items_of,
    _name,
    _non_negative,
    _not_finite,
)
from spaceactors.messages import (
    CargoItem,
    DistressSignal,
    EmergencyType,
    TradeOffer,
    _cargo,
)
from spaceactors.sim.physics import Point

_MAX_ID = 2**63
_id = _int_in(0, _MAX_ID)


def _point(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, tuple | list) or len(value) != 3:
        raise _fail(inst, attribute, "must be a point (x, y, z)", value)
    for index, coordinate in enumerate(value):
        problem = _not_finite(coordinate)
        if problem is not None:
            raise _fail(inst, attribute, problem, coordinate, f"[{index}]")


# --- the world to a ship (its sensors) ---------------------------------------------------------


@attrs.frozen
class Arrived:
    """The ship reached the point it was steering to, and stopped there."""

    point: Point = attrs.field(validator=_point)


@attrs.frozen
class FuelExhausted:
    """The tank is empty: the ship drifts."""


@attrs.frozen
class HazardEntered:
    """The ship is inside a hazard's radius."""

    hazard: str = attrs.field(validator=_name)
    center: Point = attrs.field(validator=_point)
    radius: float = attrs.field(validator=_non_negative)


@attrs.frozen
class HazardCleared:
    """The ship is out of the hazard (or it ended)."""

    hazard: str = attrs.field(validator=_name)


# --- scenario orders ---------------------------------------------------------------------------


@attrs.frozen
class Emergency:
    """Something went wrong aboard: the ship stops and calls for help."""

    emergency_type: EmergencyType = attrs.field(validator=_instance_of(EmergencyType))
    severity: int = attrs.field(default=5, validator=_int_in(MIN_SEVERITY, MAX_SEVERITY + 1))


@attrs.frozen
class Sabotage:
    """Makes the ship's handler raise: a crash on purpose, to exercise restarts."""


# --- ships and stations ------------------------------------------------------------------------


@attrs.frozen
class Trade:
    """Ship → station: a trade; `trade_id` makes a repeat after a crash return the same result."""

    trade_id: int = attrs.field(validator=_id)
    ship: str = attrs.field(validator=_name)
    offer: TradeOffer = attrs.field(validator=_instance_of(TradeOffer))
    fuel: float = attrs.field(default=0.0, validator=_non_negative)  # fuel to buy


@attrs.frozen
class TradeResult:
    """Station → ship: what changed hands (the reply to `Trade`)."""

    trade_id: int = attrs.field(validator=_id)
    sold: tuple[CargoItem, ...] = attrs.field(
        converter=_cargo, validator=_items_of(CargoItem)
    )  # station bought
    bought: tuple[CargoItem, ...] = attrs.field(
        converter=_cargo, validator=_items_of(CargoItem)
    )  # ship bought
    fuel: float = attrs.field(validator=_non_negative)
    credits: float = attrs.field(validator=_finite)  # to the ship; < 0: it paid


@attrs.frozen
class Undock:
    """Ship → station: the ship left `berth`."""

    ship: str = attrs.field(validator=_name)
    berth: int = attrs.field(validator=_id)


@attrs.frozen
class Evicted:
    """Station → ship: its stay outlasted the berth's lease; the berth is gone."""


@attrs.frozen
class Depart:
    """Ship → itself: time to leave the berth."""


@attrs.frozen
class Distress:
    """A distress call on a sector's topic: who calls, and the protocol's signal."""

    ship: str = attrs.field(validator=_name)
    signal: DistressSignal = attrs.field(validator=_instance_of(DistressSignal))


@attrs.frozen
class CollectOffers:
    """Ship → itself: the window for rescue offers closed."""


@attrs.frozen
class RescueOffer:
    """Able ship → distressed ship: it can come, from `distance` metres away."""

    ship: str = attrs.field(validator=_name)
    distance: float = attrs.field(validator=_non_negative)


@attrs.frozen
class RescueAccepted:
    """Distressed ship → the nearest offer: come to `point`."""

    ship: str = attrs.field(validator=_name)
    point: Point = attrs.field(validator=_point)


@attrs.frozen
class RescueDeclined:
    """Rescuer → distressed ship: it can no longer come."""

    ship: str = attrs.field(validator=_name)


@attrs.frozen
class Rescued:
    """Rescuer → distressed ship: alongside; fuel and repairs transferred."""

    ship: str = attrs.field(validator=_name)
    fuel: float = attrs.field(validator=_non_negative)


@attrs.frozen
class BerthCheck:
    """Station → itself: free berths whose ship is gone or overstayed."""


@attrs.frozen
class MarketTick:
    """Station → itself: let stocks drift and publish the sector's market update."""


@attrs.frozen
class MarketShock:
    """Scenario → station: a commodity's stock is multiplied by `factor`."""

    commodity: str = attrs.field(validator=_name)
    factor: float = attrs.field(validator=_non_negative)
