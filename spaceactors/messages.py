"""The space protocol: what ships, stations and the runtime say to each other, as attrs values.

Every class validates its fields at construction (finite floats, non-negative quantities,
non-empty names, severities in range) and raises `InvalidMessage` naming the field. Durations are
float seconds; times ("last updated") are simulation seconds, as read from ``trio.current_time()``.

The seed tutorial sent a docking *request* as a ``DockingPermission``; here a ship asks with
`RequestDocking` (ship → station) and the station answers with `DockingPermission`, `MarketPrices`
or `ServiceAvailability` (station → ship, in a `StationToShip` envelope).

The runtime's control messages (`Shutdown`, `Pause`, `Resume`, `GetStatus`, `ActorStatus`) live
in `spaceactors.control` and the field validators in `spaceactors.fields`; this module re-exports
the control messages, so the whole protocol is importable from here.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from spaceactors import reprs
from spaceactors.checks import short_repr
from spaceactors.control import (
    ActorState,
    ActorStatus,
    ControlCommand,
    GetStatus,
    Pause,
    Resume,
    Shutdown,
)
from spaceactors.errors import InvalidMessage
from spaceactors.fields import (
    _MAX_BERTH,
    MAX_SEVERITY,
    MIN_SEVERITY,
    ActorId,
    _actor_id,
    _as_tuple,
    _commodity_table,
    _finite,
    _flag,
    _instance_of,
    _int_in,
    _items_of,
    _name,
    _non_negative,
    _read_only,
    _region_names,
    _regions,
)

__all__ = [
    "MAX_SEVERITY",
    "MIN_SEVERITY",
    "PROTOCOL_TYPES",
    "UNIONS",
    "ActorControl",
    "ActorId",
    "ActorMessage",
    "ActorState",
    "ActorStatus",
    "CargoItem",
    "ControlCommand",
    "DistressSignal",
    "DockingPermission",
    "EmergencyType",
    "FormationRequest",
    "FormationType",
    "GetStatus",
    "HazardType",
    "MarketPrices",
    "MarketUpdate",
    "NavigationHazard",
    "Pause",
    "RequestDocking",
    "ResourceRequest",
    "Resume",
    "ServiceAvailability",
    "ShipMessage",
    "ShipSpecs",
    "ShipToShip",
    "ShipToStation",
    "Shutdown",
    "StationMessage",
    "StationToShip",
    "SystemBroadcast",
    "SystemMessage",
    "TradeOffer",
    "Vec3",
    "WeatherAlert",
    "WeatherSeverity",
]


# --- converters of protocol-specific fields ---------------------------------------------------


def _cargo(items: Iterable[CargoItem]) -> tuple[CargoItem, ...]:
    return typing.cast("tuple[CargoItem, ...]", _as_tuple(items))


def _requests(items: Iterable[ResourceRequest]) -> tuple[ResourceRequest, ...]:
    return typing.cast("tuple[ResourceRequest, ...]", _as_tuple(items))



# --- supporting types -------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Vec3(reprs.CodeRepr):
    """A point or a vector in space, in metres (or metres per second)."""

    x: float = attrs.field(default=0.0, validator=_finite)
    y: float = attrs.field(default=0.0, validator=_finite)
    z: float = attrs.field(default=0.0, validator=_finite)

    def __add__(self, other: Vec3) -> Vec3:
        return Vec3(self.x + other.x, self.y + other.y, self.z + other.z)

    def __sub__(self, other: Vec3) -> Vec3:
        return Vec3(self.x - other.x, self.y - other.y, self.z - other.z)

    def __mul__(self, factor: float) -> Vec3:
        return Vec3(self.x * factor, self.y * factor, self.z * factor)

    __rmul__ = __mul__

    def length(self) -> float:
        """Euclidean norm."""
        return math.sqrt(self.x * self.x + self.y * self.y + self.z * self.z)

    def distance_to(self, other: Vec3) -> float:
        """Euclidean distance between two points."""
        return (self - other).length()


class FormationType(reprs.CodeEnum):
    """How ships in a formation hold station around their leader."""

    CONVOY = "convoy"
    DEFENSIVE = "defensive"
    EXPLORATION = "exploration"


class EmergencyType(reprs.CodeEnum):
    """What a distressed ship is suffering from."""

    ENGINE_FAILURE = "engine_failure"
    HULL_BREACH = "hull_breach"
    CREW_MEDICAL = "crew_medical"
    PIRATE = "pirate"


class HazardType(reprs.CodeEnum):
    """Kinds of navigation hazard announced to a sector."""

    ASTEROID = "asteroid"
    DEBRIS = "debris"
    ENERGY_STORM = "energy_storm"
    PIRATES = "pirates"


class WeatherSeverity(reprs.CodeEnum):
    """Space-weather severity, ordered by `level` (1 = low … 4 = extreme)."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    EXTREME = "extreme"

    @property
    def level(self) -> int:
        """1 for LOW up to 4 for EXTREME, for comparisons."""
        return list(WeatherSeverity).index(self) + 1


@attrs.frozen(repr=False)
class ShipSpecs(reprs.CodeRepr):
    """A ship's hull: class name, length (m), mass (t) and cargo capacity (units)."""

    ship_class: str = attrs.field(validator=_name)
    length: float = attrs.field(validator=_non_negative)
    mass: float = attrs.field(validator=_non_negative)
    cargo_capacity: float = attrs.field(validator=_non_negative)


@attrs.frozen(repr=False)
class CargoItem(reprs.CodeRepr):
    """A quantity of one commodity and what each unit is worth, in credits."""

    item_type: str = attrs.field(validator=_name)
    quantity: float = attrs.field(validator=_non_negative)
    unit_value: float = attrs.field(validator=_non_negative)


@attrs.frozen(repr=False)
class ResourceRequest(reprs.CodeRepr):
    """A wish to buy a quantity of one commodity at no more than `max_price` per unit."""

    resource_type: str = attrs.field(validator=_name)
    quantity: float = attrs.field(validator=_non_negative)
    max_price: float = attrs.field(validator=_non_negative)


# --- what ships say (to ships or to stations) -------------------------------------------------


@attrs.frozen(repr=False)
class RequestDocking(reprs.CodeRepr):
    """Ship → station: ask for a berth, declaring hull and cargo."""

    ship_specs: ShipSpecs = attrs.field(validator=_instance_of(ShipSpecs))
    cargo_manifest: tuple[CargoItem, ...] = attrs.field(
        default=(), converter=_cargo, validator=_items_of(CargoItem)
    )


@attrs.frozen(repr=False)
class FormationRequest(reprs.CodeRepr):
    """Ship → ship: join a formation and hold the given position."""

    formation_type: FormationType = attrs.field(validator=_instance_of(FormationType))
    position: Vec3 = attrs.field(validator=_instance_of(Vec3))


@attrs.frozen(repr=False)
class TradeOffer(reprs.CodeRepr):
    """Ship → ship or station: goods offered in exchange for goods requested."""

    offering: tuple[CargoItem, ...] = attrs.field(
        default=(), converter=_cargo, validator=_items_of(CargoItem)
    )
    requesting: tuple[ResourceRequest, ...] = attrs.field(
        default=(), converter=_requests, validator=_items_of(ResourceRequest)
    )


@attrs.frozen(repr=False)
class DistressSignal(reprs.CodeRepr):
    """Ship → anyone: an emergency at a location, severity 1 (minor) to 10 (critical)."""

    emergency_type: EmergencyType = attrs.field(validator=_instance_of(EmergencyType))
    location: Vec3 = attrs.field(validator=_instance_of(Vec3))
    severity: int = attrs.field(validator=_int_in(MIN_SEVERITY, MAX_SEVERITY + 1))


ShipMessage = RequestDocking | FormationRequest | TradeOffer | DistressSignal
"""What a ship says: the `content` of a `ShipToStation` or `ShipToShip` envelope."""


# --- what stations answer (to ships) ----------------------------------------------------------


@attrs.frozen(repr=False)
class DockingPermission(reprs.CodeRepr):
    """Station → ship: a berth granted, or a refusal with the estimated wait in seconds."""

    granted: bool = attrs.field(validator=_flag)
    berth_assignment: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(_int_in(0, _MAX_BERTH))
    )
    estimated_wait: float = attrs.field(default=0.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.granted != (self.berth_assignment is not None):
            rule = "a grant needs a berth" if self.granted else "a refusal has no berth"
            raise InvalidMessage(
                f"DockingPermission.berth_assignment: {rule}, "
                f"got {short_repr(self.berth_assignment)}"
            )


@attrs.frozen(repr=False)
class MarketPrices(reprs.CodeRepr):
    """Station → ship: unit prices per commodity as of simulation time `last_updated`."""

    commodities: Mapping[str, float] = attrs.field(
        converter=_read_only, validator=_commodity_table(non_negative=True)
    )
    last_updated: float = attrs.field(validator=_non_negative)


@attrs.frozen(repr=False)
class ServiceAvailability(reprs.CodeRepr):
    """Station → ship: which services the station offers right now."""

    repairs: bool = attrs.field(validator=_flag)
    refueling: bool = attrs.field(validator=_flag)
    crew_quarters: bool = attrs.field(validator=_flag)


StationMessage = DockingPermission | MarketPrices | ServiceAvailability
"""What a station answers a ship: the `content` of a `StationToShip` envelope."""


# --- what the world announces ----------------------------------------------------------------


@attrs.frozen(repr=False)
class NavigationHazard(reprs.CodeRepr):
    """A hazard of some radius (m) around a location."""

    location: Vec3 = attrs.field(validator=_instance_of(Vec3))
    radius: float = attrs.field(validator=_non_negative)
    hazard_type: HazardType = attrs.field(validator=_instance_of(HazardType))


@attrs.frozen(repr=False)
class MarketUpdate(reprs.CodeRepr):
    """Price changes (credits per unit, may be negative) for commodities in one sector."""

    sector: str = attrs.field(validator=_name)
    price_changes: Mapping[str, float] = attrs.field(
        converter=_read_only, validator=_commodity_table(non_negative=False)
    )


@attrs.frozen(repr=False)
class WeatherAlert(reprs.CodeRepr):
    """Space weather of some severity over named regions."""

    affected_regions: tuple[str, ...] = attrs.field(converter=_regions, validator=_region_names)
    severity: WeatherSeverity = attrs.field(validator=_instance_of(WeatherSeverity))


SystemMessage = NavigationHazard | MarketUpdate | WeatherAlert
"""What the world announces to everyone: the `content` of a `SystemBroadcast` envelope."""


# --- envelopes --------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class ShipToShip(reprs.CodeRepr):
    """Envelope: one ship to another."""

    sender: ActorId = attrs.field(validator=_actor_id)
    recipient: ActorId = attrs.field(validator=_actor_id)
    content: ShipMessage = attrs.field(validator=_instance_of(*typing.get_args(ShipMessage)))


@attrs.frozen(repr=False)
class ShipToStation(reprs.CodeRepr):
    """Envelope: a ship to a station (docking requests, trade offers, distress calls)."""

    sender: ActorId = attrs.field(validator=_actor_id)
    recipient: ActorId = attrs.field(validator=_actor_id)
    content: ShipMessage = attrs.field(validator=_instance_of(*typing.get_args(ShipMessage)))


@attrs.frozen(repr=False)
class StationToShip(reprs.CodeRepr):
    """Envelope: a station's answer to a ship."""

    sender: ActorId = attrs.field(validator=_actor_id)
    recipient: ActorId = attrs.field(validator=_actor_id)
    content: StationMessage = attrs.field(validator=_instance_of(*typing.get_args(StationMessage)))


@attrs.frozen(repr=False)
class SystemBroadcast(reprs.CodeRepr):
    """Envelope: an announcement to everyone."""

    sender: ActorId = attrs.field(validator=_actor_id)
    content: SystemMessage = attrs.field(validator=_instance_of(*typing.get_args(SystemMessage)))


@attrs.frozen(repr=False)
class ActorControl(reprs.CodeRepr):
    """Envelope: a control command addressed to one actor."""

    target: ActorId = attrs.field(validator=_actor_id)
    command: ControlCommand = attrs.field(validator=_instance_of(*typing.get_args(ControlCommand)))


ActorMessage = ShipToShip | ShipToStation | StationToShip | SystemBroadcast | ActorControl
"""Every envelope of the protocol: the four that carry a ship's, station's or the world's message,
and `ActorControl`."""

UNIONS: tuple[Any, ...] = (ShipMessage, StationMessage, SystemMessage, ControlCommand, ActorMessage)
"""Every union of the protocol; the codec tags each member with its class name on the wire."""

PROTOCOL_TYPES: tuple[type, ...] = (
    Vec3,
    ShipSpecs,
    CargoItem,
    ResourceRequest,
    ActorStatus,
    *(member for union in UNIONS for member in typing.get_args(union)),
)
"""Every class of the protocol; each can travel on the wire on its own."""
