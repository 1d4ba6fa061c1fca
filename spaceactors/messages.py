"""The space protocol: what ships, stations and the runtime say to each other, as attrs values.

Every class validates its fields at construction (finite floats, non-negative quantities,
non-empty names, severities in range) and raises `InvalidMessage` naming the field. Durations are
float seconds; times ("last updated") are simulation seconds, as read from ``trio.current_time()``.

The seed tutorial sent a docking *request* as a ``DockingPermission``; here a ship asks with
`RequestDocking` (ship → station) and the station answers with `DockingPermission`, `MarketPrices`
or `ServiceAvailability` (station → ship, in a `StationToShip` envelope).
"""

from __future__ import annotations

import enum
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from spaceactors.checks import short_repr
from spaceactors.errors import InvalidMessage

ActorId = int
"""An actor's numeric id on the wire: 0 <= id < 2**63."""

_MAX_ACTOR_ID = 2**63
_MAX_BERTH = 2**32
_Validator = Callable[[object, "attrs.Attribute[Any]", object], None]
MIN_SEVERITY, MAX_SEVERITY = 1, 10


# --- field validators -------------------------------------------------------------------------


def _fail(
    inst: object, attribute: attrs.Attribute[Any], what: str, value: object, at: str = ""
) -> InvalidMessage:
    return InvalidMessage(
        f"{type(inst).__name__}.{attribute.name}{at} {what}, got {short_repr(value)}"
    )


def _not_finite(value: object) -> str | None:
    """What is wrong with `value` as a finite number (an int or a float, not a bool), or None."""
    if type(value) is float:
        return None if math.isfinite(value) else "must be finite"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    try:
        return None if math.isfinite(value) else "must be finite"
    except OverflowError:  # an int beyond a float's range
        return "must be finite (it is beyond a float's range)"


def _finite(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    problem = _not_finite(value)
    if problem is not None:
        raise _fail(inst, attribute, problem, value)


def _non_negative(inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    _finite(inst, attribute, value)
    if value < 0:
        raise _fail(inst, attribute, "must be non-negative", value)


def _name(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise _fail(inst, attribute, "must be a non-empty string", value)


def _flag(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise _fail(inst, attribute, "must be a bool", value)


def _int_in(low: int, high: int) -> _Validator:
    """Validator: an int (not a bool) with ``low <= value < high``."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(inst, attribute, "must be an int", value)
        if not low <= value < high:
            raise _fail(inst, attribute, f"must be in [{low}, {high - 1}]", value)

    return check


_actor_id = _int_in(0, _MAX_ACTOR_ID)


def _instance_of(*types: type) -> _Validator:
    names = " | ".join(t.__name__ for t in types)

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, types):
            raise _fail(inst, attribute, f"must be {names}", value)

    return check


def _items_of(item_type: type) -> _Validator:
    """Validator: a tuple whose every item is an `item_type` (names the bad index)."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise _fail(inst, attribute, "must be a tuple", value)
        for index, item in enumerate(value):
            if not isinstance(item, item_type):
                raise _fail(inst, attribute, f"must be {item_type.__name__}", item, f"[{index}]")

    return check


def _region_names(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _items_of(str)(inst, attribute, value)
    for index, name in enumerate(typing.cast("tuple[str, ...]", value)):
        if not name.strip():
            raise _fail(inst, attribute, "must be a non-empty string", name, f"[{index}]")


def _commodity_table(*, non_negative: bool) -> _Validator:
    """Validator: a mapping from non-empty commodity names to finite (optionally >= 0) numbers."""

    def check(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, Mapping):
            raise _fail(inst, attribute, "must be a mapping of commodity -> number", value)
        for key, number in value.items():
            if not isinstance(key, str) or not key.strip():
                raise _fail(inst, attribute, "keys must be non-empty commodity names", key)
            problem = _not_finite(number)
            if problem == "must be a number":
                raise _fail(inst, attribute, problem, number, f"[{short_repr(key)}]")
            if problem is not None or (non_negative and number < 0):
                problem = "must be finite and non-negative" if non_negative else "must be finite"
                raise _fail(inst, attribute, problem, number, f"[{short_repr(key)}]")

    return check


def _read_only(table: Mapping[str, float]) -> Mapping[str, float]:
    # Messages are shared between actors (a broadcast hands one object to thousands), so
    # their tables must not be mutable behind the validators' back.
    return MappingProxyType(dict(table)) if isinstance(table, Mapping) else table


def _as_tuple(items: Any) -> Any:
    # Iterables become tuples; anything else (or a lone string) is left for the validator to
    # name and refuse.
    if isinstance(items, Iterable) and not isinstance(items, str | bytes | Mapping):
        return tuple(items)
    return items


def _cargo(items: Iterable[CargoItem]) -> tuple[CargoItem, ...]:
    return typing.cast("tuple[CargoItem, ...]", _as_tuple(items))


def _requests(items: Iterable[ResourceRequest]) -> tuple[ResourceRequest, ...]:
    return typing.cast("tuple[ResourceRequest, ...]", _as_tuple(items))


def _regions(items: Iterable[str]) -> tuple[str, ...]:
    return (items,) if isinstance(items, str) else typing.cast("tuple[str, ...]", _as_tuple(items))


# --- supporting types -------------------------------------------------------------------------


@attrs.frozen
class Vec3:
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


class FormationType(enum.Enum):
    """How ships in a formation hold station around their leader."""

    CONVOY = "convoy"
    DEFENSIVE = "defensive"
    EXPLORATION = "exploration"


class EmergencyType(enum.Enum):
    """What a distressed ship is suffering from."""

    ENGINE_FAILURE = "engine_failure"
    HULL_BREACH = "hull_breach"
    CREW_MEDICAL = "crew_medical"
    PIRATE = "pirate"


class HazardType(enum.Enum):
    """Kinds of navigation hazard announced to a sector."""

    ASTEROID = "asteroid"
    DEBRIS = "debris"
    ENERGY_STORM = "energy_storm"
    PIRATES = "pirates"


class WeatherSeverity(enum.Enum):
    """Space-weather severity, ordered by `level` (1 = low … 4 = extreme)."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    EXTREME = "extreme"

    @property
    def level(self) -> int:
        """1 for LOW up to 4 for EXTREME, for comparisons."""
        return list(WeatherSeverity).index(self) + 1


@attrs.frozen
class ShipSpecs:
    """A ship's hull: class name, length (m), mass (t) and cargo capacity (units)."""

    ship_class: str = attrs.field(validator=_name)
    length: float = attrs.field(validator=_non_negative)
    mass: float = attrs.field(validator=_non_negative)
    cargo_capacity: float = attrs.field(validator=_non_negative)


@attrs.frozen
class CargoItem:
    """A quantity of one commodity and what each unit is worth, in credits."""

    item_type: str = attrs.field(validator=_name)
    quantity: float = attrs.field(validator=_non_negative)
    unit_value: float = attrs.field(validator=_non_negative)


@attrs.frozen
class ResourceRequest:
    """A wish to buy a quantity of one commodity at no more than `max_price` per unit."""

    resource_type: str = attrs.field(validator=_name)
    quantity: float = attrs.field(validator=_non_negative)
    max_price: float = attrs.field(validator=_non_negative)


# --- what ships say (to ships or to stations) -------------------------------------------------


@attrs.frozen
class RequestDocking:
    """Ship → station: ask for a berth, declaring hull and cargo."""

    ship_specs: ShipSpecs = attrs.field(validator=_instance_of(ShipSpecs))
    cargo_manifest: tuple[CargoItem, ...] = attrs.field(
        default=(), converter=_cargo, validator=_items_of(CargoItem)
    )


@attrs.frozen
class FormationRequest:
    """Ship → ship: join a formation and hold the given position."""

    formation_type: FormationType = attrs.field(validator=_instance_of(FormationType))
    position: Vec3 = attrs.field(validator=_instance_of(Vec3))


@attrs.frozen
class TradeOffer:
    """Ship → ship or station: goods offered in exchange for goods requested."""

    offering: tuple[CargoItem, ...] = attrs.field(
        default=(), converter=_cargo, validator=_items_of(CargoItem)
    )
    requesting: tuple[ResourceRequest, ...] = attrs.field(
        default=(), converter=_requests, validator=_items_of(ResourceRequest)
    )


@attrs.frozen
class DistressSignal:
    """Ship → anyone: an emergency at a location, severity 1 (minor) to 10 (critical)."""

    emergency_type: EmergencyType = attrs.field(validator=_instance_of(EmergencyType))
    location: Vec3 = attrs.field(validator=_instance_of(Vec3))
    severity: int = attrs.field(validator=_int_in(MIN_SEVERITY, MAX_SEVERITY + 1))


ShipMessage = RequestDocking | FormationRequest | TradeOffer | DistressSignal
"""What a ship says: the `content` of a `ShipToStation` or `ShipToShip` envelope."""


# --- what stations answer (to ships) ----------------------------------------------------------


@attrs.frozen
class DockingPermission:
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


@attrs.frozen
class MarketPrices:
    """Station → ship: unit prices per commodity as of simulation time `last_updated`."""

    commodities: Mapping[str, float] = attrs.field(
        converter=_read_only, validator=_commodity_table(non_negative=True)
    )
    last_updated: float = attrs.field(validator=_non_negative)


@attrs.frozen
class ServiceAvailability:
    """Station → ship: which services the station offers right now."""

    repairs: bool = attrs.field(validator=_flag)
    refueling: bool = attrs.field(validator=_flag)
    crew_quarters: bool = attrs.field(validator=_flag)


StationMessage = DockingPermission | MarketPrices | ServiceAvailability
"""What a station answers a ship: the `content` of a `StationToShip` envelope."""


# --- what the world announces ----------------------------------------------------------------


@attrs.frozen
class NavigationHazard:
    """A hazard of some radius (m) around a location."""

    location: Vec3 = attrs.field(validator=_instance_of(Vec3))
    radius: float = attrs.field(validator=_non_negative)
    hazard_type: HazardType = attrs.field(validator=_instance_of(HazardType))


@attrs.frozen
class MarketUpdate:
    """Price changes (credits per unit, may be negative) for commodities in one sector."""

    sector: str = attrs.field(validator=_name)
    price_changes: Mapping[str, float] = attrs.field(
        converter=_read_only, validator=_commodity_table(non_negative=False)
    )


@attrs.frozen
class WeatherAlert:
    """Space weather of some severity over named regions."""

    affected_regions: tuple[str, ...] = attrs.field(converter=_regions, validator=_region_names)
    severity: WeatherSeverity = attrs.field(validator=_instance_of(WeatherSeverity))


SystemMessage = NavigationHazard | MarketUpdate | WeatherAlert
"""What the world announces to everyone: the `content` of a `SystemBroadcast` envelope."""


# --- what the runtime understands from anyone ------------------------------------------------


@attrs.frozen
class Shutdown:
    """Stop the actor gracefully: `on_stop` runs; a transient actor is not restarted."""


@attrs.frozen
class Pause:
    """Stop consuming the mailbox until `Resume`; senders feel backpressure meanwhile."""


@attrs.frozen
class Resume:
    """Resume consuming the mailbox after `Pause`."""


@attrs.frozen
class GetStatus:
    """Ask the runtime for the actor's status."""


ControlCommand = Shutdown | Pause | Resume | GetStatus
"""What the runtime obeys from anyone: the `command` of an `ActorControl` envelope."""


class ActorState(enum.Enum):
    """Where an actor is in its life, as `GetStatus` reports it."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"  # between incarnations
    STOPPING = "stopping"  # stopping for good: ends its message and on_stop, takes no new ones
    STOPPED = "stopped"


@attrs.frozen
class ActorStatus:
    """The runtime's answer to `GetStatus`."""

    actor_id: ActorId = attrs.field(validator=_actor_id)
    name: str = attrs.field(validator=_name)
    state: ActorState = attrs.field(validator=_instance_of(ActorState))
    mailbox_depth: int = attrs.field(validator=_int_in(0, _MAX_ACTOR_ID))
    mailbox_size: int = attrs.field(validator=_int_in(1, _MAX_ACTOR_ID))
    restarts: int = attrs.field(validator=_int_in(0, _MAX_ACTOR_ID))
    handled: int = attrs.field(validator=_int_in(0, _MAX_ACTOR_ID))
    last_error: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_instance_of(str))
    )


# --- envelopes --------------------------------------------------------------------------------


@attrs.frozen
class ShipToShip:
    """Envelope: one ship to another."""

    sender: ActorId = attrs.field(validator=_actor_id)
    recipient: ActorId = attrs.field(validator=_actor_id)
    content: ShipMessage = attrs.field(validator=_instance_of(*typing.get_args(ShipMessage)))


@attrs.frozen
class ShipToStation:
    """Envelope: a ship to a station (docking requests, trade offers, distress calls)."""

    sender: ActorId = attrs.field(validator=_actor_id)
    recipient: ActorId = attrs.field(validator=_actor_id)
    content: ShipMessage = attrs.field(validator=_instance_of(*typing.get_args(ShipMessage)))


@attrs.frozen
class StationToShip:
    """Envelope: a station's answer to a ship."""

    sender: ActorId = attrs.field(validator=_actor_id)
    recipient: ActorId = attrs.field(validator=_actor_id)
    content: StationMessage = attrs.field(validator=_instance_of(*typing.get_args(StationMessage)))


@attrs.frozen
class SystemBroadcast:
    """Envelope: an announcement to everyone."""

    sender: ActorId = attrs.field(validator=_actor_id)
    content: SystemMessage = attrs.field(validator=_instance_of(*typing.get_args(SystemMessage)))


@attrs.frozen
class ActorControl:
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
