"""Field validators and converters of the protocol's attrs classes (`spaceactors.messages`).

Each raises `InvalidMessage` naming the field: finite floats, non-negative quantities, non-empty
names, ids and severities in range, tuples of the right items, read-only commodity tables.
"""

from __future__ import annotations

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


def _regions(items: Iterable[str]) -> tuple[str, ...]:
    return (items,) if isinstance(items, str) else typing.cast("tuple[str, ...]", _as_tuple(items))
