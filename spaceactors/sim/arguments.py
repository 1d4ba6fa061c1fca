"""The simulation's argument checks: every bad value a scenario passes is a `ScenarioError`.

`ScenarioError` is a ``ValueError``; its message names the argument as the scenario wrote it
(``add_ship(max_speed=...)``) and shows the value cut short (see `spaceactors.checks`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from spaceactors import checks
from spaceactors.checks import short_repr
from spaceactors.errors import SpaceActorsError


class ScenarioError(SpaceActorsError, ValueError):
    """A scenario asked for something impossible (an unknown ship, a duplicate station, a
    negative fuel load, a NaN position...)."""


MAX_DISTANCE = 1e15
"""Metres: the largest coordinate, offset, radius or spacing (about a tenth of a light-year).
Beyond it the squares of distances the physics takes (for the whole fleet at once, in numpy
arrays) would overflow a float."""
LIGHT_SPEED = 299_792_458.0
"""m/s: no ship flies faster (its `max_speed`, its velocity)."""
MAX_ACCEL = 1e6
"""m/s²: the largest thrust (about 100,000 g)."""


def point(name: str, value: object) -> tuple[float, float, float]:
    """A point in space: a sequence of three finite numbers (metres), each within
    ±`MAX_DISTANCE`."""
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__len__"):
        raise ScenarioError(f"{name} must be a point (x, y, z), got {short_repr(value)}")
    items: Any = value
    if len(items) != 3:
        raise ScenarioError(f"{name} must be a point (x, y, z), got {short_repr(value)}")
    x, y, z = items
    if _plain(x) and _plain(y) and _plain(z):  # the common case: no message to write
        return (x, y, z)
    x, y, z = (
        at_most(f"{name}[{i}]", finite(f"{name}[{i}]", item), MAX_DISTANCE, "m", both=True)
        for i, item in enumerate(items)
    )
    return (x, y, z)


def at_most(
    name: str, value: float, bound: float, unit: str, *, both: bool = False, why: str = ""
) -> float:
    """`value` (a checked number) if it is at most `bound` (in size, with `both`)."""
    if (abs(value) if both else value) > bound:
        within = f"within ±{bound:g}" if both else f"at most {bound:,.10g}"
        raise ScenarioError(f"{name} must be {within} {unit}{why}, got {value:g}")
    return value


def distance(name: str, value: object) -> float:
    """A length in metres, >= 0 and at most `MAX_DISTANCE`."""
    return at_most(name, non_negative(name, value), MAX_DISTANCE, "m")


def _plain(value: object) -> bool:
    """A float within ±`MAX_DISTANCE` (so finite): what every number check here accepts as
    it is (others are checked fully, with a message that names them, made only then)."""
    return type(value) is float and -MAX_DISTANCE <= value <= MAX_DISTANCE  # (nan: False)


def _plain_name(value: object) -> bool:
    """A non-blank ASCII string: a name every name check accepts (others: checked fully)."""
    return type(value) is str and value.isascii() and not value.isspace() and value != ""


def finite(name: str, value: object) -> float:
    """A finite number."""
    return checks.finite(name, value, ScenarioError)


def non_negative(name: str, value: object) -> float:
    """A finite number >= 0."""
    result = checks.finite(name, value, ScenarioError)
    if result < 0:
        raise ScenarioError(f"{name} must be >= 0, got {short_repr(value)}")
    return result


def positive(name: str, value: object) -> float:
    """A finite number > 0."""
    return checks.positive(name, value, ScenarioError)


def seconds(name: str, value: object, *, zero: bool = True) -> float:
    """A finite duration in seconds, >= 0 (> 0 unless `zero`)."""
    return checks.seconds(name, value, ScenarioError, zero=zero)


def integer(name: str, value: object, *, low: int = 0, high: int | None = None) -> int:
    """An int (not a bool) in [low, high]."""
    return checks.integer(name, value, ScenarioError, low=low, high=high)


def name(what: str, value: object) -> str:
    """A non-empty string."""
    return checks.name(what, value, ScenarioError)


def table(what: str, value: object, *, strictly_positive: bool = False) -> dict[str, float]:
    """A mapping of non-empty names to finite numbers >= 0 (> 0 if `strictly_positive`)."""
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{what} must be a mapping of name -> number, got {short_repr(value)}")
    check = positive if strictly_positive else non_negative
    checked = {}
    for key, number in value.items():
        label = key if _plain_name(key) else name(f"{what} key", key)
        plain = type(number) is float and number < math.inf  # (the common case: no message)
        if not (plain and (number > 0.0 if strictly_positive else number >= 0.0)):
            number = check(f"{what}[{short_repr(key)}]", number)
        checked[label] = number
    return checked


def names(what: str, value: object) -> tuple[str, ...]:
    """A list or tuple of non-empty names."""
    if not isinstance(value, list | tuple):
        raise ScenarioError(f"{what} must be a list of names, got {short_repr(value)}")
    if all(_plain_name(item) for item in value):  # the common case: no message to write
        return tuple(value)
    return tuple(name(f"{what}[{i}]", item) for i, item in enumerate(value))


MAX_BERTHS = 2**16
"""The most berths a station can have."""


def world_step(step: object) -> float:
    """`World(step=...)`: the tick, finite seconds > 0."""
    try:
        return seconds("step", step, zero=False)
    except ScenarioError:
        raise ScenarioError(
            f"the tick step must be a positive, finite number of seconds, got {short_repr(step)}"
        ) from None


def station(
    station_name: object,
    position: object,
    sector: object,
    berths: object,
    prices: object,
    stock: object,
    services: object,
    market_interval: object,
    lease: object,
) -> None:
    """The arguments of `World.add_station`."""
    from spaceactors.messages import ServiceAvailability

    name("add_station(name)", station_name)
    point("add_station(position)", position)
    name("add_station(sector)", sector)
    if type(berths) is int and berths < 1:
        raise ScenarioError(f"station {station_name!r} needs at least one berth, got {berths}")
    integer("add_station(berths)", berths, low=1, high=MAX_BERTHS)
    if prices is not None:
        table("add_station(prices)", prices, strictly_positive=True)
    non_negative("add_station(stock)", stock)
    if services is not None and not isinstance(services, ServiceAvailability):
        raise ScenarioError(
            f"add_station(services) must be a sa.ServiceAvailability, got {short_repr(services)}"
        )
    seconds("add_station(market_interval)", market_interval, zero=False)
    seconds("add_station(lease)", lease, zero=False)


def ship(
    ship_name: object,
    position: object,
    route: object,
    cargo: object,
    numbers: Mapping[str, object],
    stay: object,
    sector: object,
) -> None:
    """The arguments of `World.add_ship`; `numbers` are its quantities by argument name."""
    name("add_ship(name)", ship_name)
    point("add_ship(position)", position)
    names("add_ship(route)", route)
    for label, value in numbers.items():
        strictly = label in ("max_speed", "max_accel")
        if _plain(value) and (value > 0.0 if strictly else value >= 0.0):  # type: ignore[operator]
            continue  # the common case: no message to write
        (positive if strictly else non_negative)(f"add_ship({label})", value)
    speed, accel = float(numbers["max_speed"]), float(numbers["max_accel"])  # type: ignore[arg-type]
    at_most("add_ship(max_speed)", speed, LIGHT_SPEED, "m/s", why=" (the speed of light)")
    at_most("add_ship(max_accel)", accel, MAX_ACCEL, "m/s²")
    if cargo is not None:
        load = sum(table("add_ship(cargo)", cargo).values())
        capacity = float(numbers["capacity"])  # type: ignore[arg-type]
        if load > capacity:
            raise ScenarioError(
                f"add_ship(cargo) holds {load:g} units, more than its capacity {capacity:g}"
            )
    seconds("add_ship(stay)", stay)
    if sector is not None:
        name("add_ship(sector)", sector)


def at(time: object, action: object) -> None:
    """The arguments of `World.at`."""
    seconds("at(time)", time)
    if not callable(action):
        raise ScenarioError(f"at(action) must be a function, got {short_repr(action)}")


def expectation(description: object, check: object) -> None:
    """The arguments of `World.expect`."""
    name("expect(description)", description)
    if not callable(check):
        raise ScenarioError(f"expect(check) must be a function, got {short_repr(check)}")


def hazard(
    hazard_name: object,
    center: object,
    radius: object,
    sector: object,
    kind: object,
    duration: object,
) -> None:
    """The arguments of `World.hazard`."""
    from spaceactors.messages import HazardType

    name("hazard(name)", hazard_name)
    point("hazard(center)", center)
    distance("hazard(radius)", radius)
    name("hazard(sector)", sector)
    if not isinstance(kind, HazardType):
        raise ScenarioError(f"hazard(hazard_type) must be a sa.HazardType, got {short_repr(kind)}")
    if duration is not None:
        seconds("hazard(duration)", duration, zero=False)


def weather(sector: object, severity: object, duration: object) -> None:
    """The arguments of `World.weather`."""
    from spaceactors.messages import WeatherSeverity

    name("weather(sector)", sector)
    if not isinstance(severity, WeatherSeverity):
        raise ScenarioError(
            f"weather(severity) must be a sa.WeatherSeverity, got {short_repr(severity)}"
        )
    seconds("weather(duration)", duration, zero=False)


def emergency(kind: object, severity: object) -> None:
    """The arguments of `World.emergency`."""
    from spaceactors.messages import MAX_SEVERITY, MIN_SEVERITY, EmergencyType

    if not isinstance(kind, EmergencyType):
        raise ScenarioError(
            f"emergency(emergency_type) must be a sa.EmergencyType, got {short_repr(kind)}"
        )
    integer("emergency(severity)", severity, low=MIN_SEVERITY, high=MAX_SEVERITY)


def formation(followers: object, kind: object, spacing: object) -> tuple[str, ...]:
    """The arguments of `World.formation`; returns the followers as a tuple."""
    from spaceactors.messages import FormationType

    if not isinstance(kind, FormationType):
        raise ScenarioError(
            f"formation(formation) must be a sa.FormationType, got {short_repr(kind)}"
        )
    distance("formation(spacing)", spacing)
    return names("formation(followers)", followers)
