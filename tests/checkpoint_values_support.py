"""What the checkpoint-value tests share: sample types, a Hypothesis strategy of savable
values, an exact comparison, and the msgpack round trip a state file makes."""

from __future__ import annotations

import collections
import enum
import math
import random
from collections.abc import Callable
from typing import Any

import attrs
import msgpack
from hypothesis import strategies as st

from spaceactors.ref import ActorRef


class Colour(enum.Enum):
    RED = "red"
    GREEN = (1, 2)  # a value that is not a string: members are saved by name


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.Flag):
    """Flags: a combination (R | W) or none at all is a value but not a member."""

    R = 1
    W = 2
    X = 4


@attrs.frozen
class Frozen:
    label: str
    weight: float
    tags: tuple[str, ...] = ()


@attrs.define
class Slotted:
    items: list[object] = attrs.field(factory=list)
    other: object = None


@attrs.define(slots=False)
class Loose:
    name: str
    extra: object = None


@attrs.define(eq=False)
class Node:
    """A node that can point at another (or at itself): cycles through attrs instances."""

    name: str
    next: Node | None = None


def plain_round_trip(data: object) -> object:
    """`data` written and read back as the state file does (msgpack, no ext types)."""
    packed = msgpack.packb(data, use_bin_type=True)
    return msgpack.unpackb(packed, raw=False, strict_map_key=True, use_list=True)


def same(a: object, b: object, seen: dict[int, int] | None = None) -> bool:
    """`a` and `b` are the same value exactly: same types all the way down (tuple vs list,
    int vs float vs bool, key types), nan for nan, the sign of zero, a deque's maxlen, dict
    order, a Random's state, and the same aliasing (`seen` maps ids of `a` to ids of `b`)."""
    seen = {} if seen is None else seen
    if type(a) is not type(b):
        return False
    if type(a) is float:
        assert isinstance(b, float)
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, (type(None), bool, int, str, bytes, enum.Enum, type, ActorRef)):
        return a is b or (not isinstance(a, (enum.Enum, type, ActorRef)) and a == b)
    if id(a) in seen:
        return seen[id(a)] == id(b)
    seen[id(a)] = id(b)
    if isinstance(a, random.Random):
        return a.getstate() == b.getstate()  # type: ignore[attr-defined]
    if isinstance(a, collections.deque):
        assert isinstance(b, collections.deque)
        return a.maxlen == b.maxlen and _same_items(list(a), list(b), seen)
    if isinstance(a, (list, tuple)):
        return _same_items(list(a), list(b), seen)  # type: ignore[call-overload]
    if isinstance(a, collections.defaultdict) and a.default_factory is not b.default_factory:  # type: ignore[attr-defined]
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return _same_items(list(a.keys()), list(b.keys()), {}) and _same_items(
            list(a.values()), list(b.values()), seen
        )
    if isinstance(a, (set, frozenset)):
        assert isinstance(b, (set, frozenset))
        rest = list(b)
        for item in a:
            match = next((i for i, other in enumerate(rest) if same(item, other, {})), None)
            if match is None:
                return False
            del rest[match]
        return not rest
    if attrs.has(type(a)):
        names = [field.name for field in attrs.fields(type(a))]
        return _same_items(
            [getattr(a, name) for name in names], [getattr(b, name) for name in names], seen
        )
    raise AssertionError(f"same() does not compare {type(a)}")


def _same_items(a: list[object], b: list[object], seen: dict[int, int]) -> bool:
    return len(a) == len(b) and all(same(x, y, seen) for x, y in zip(a, b, strict=True))


# --- a strategy of every kind of savable value ----------------------------------------------

floats = st.floats(allow_nan=True, allow_infinity=True)
ints = st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
scalars = st.none() | st.booleans() | ints | floats | st.text(max_size=8) | st.binary(max_size=8)
enums = st.sampled_from([*Colour, *Level]) | st.integers(0, 7).map(Perm)
hashables = st.recursive(
    scalars.filter(lambda v: not (isinstance(v, float) and math.isnan(v))) | enums,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    small = {"max_size": 4}
    return (
        st.lists(inner, **small)
        | st.lists(inner, **small).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, **small)
        | st.dictionaries(hashables, inner, **small)
        | st.sets(hashables, **small)
        | st.frozensets(hashables, **small)
        | st.builds(
            lambda items, maxlen: collections.deque(items[:maxlen], maxlen=maxlen),
            st.lists(inner, **small),
            st.none() | st.integers(0, 5),
        )
        | st.dictionaries(hashables, inner, **small).map(collections.OrderedDict)
        | st.dictionaries(st.integers(), inner, **small).map(
            lambda d: collections.defaultdict(list, d)
        )
        | st.builds(Frozen, st.text(max_size=5), floats, st.lists(st.text(max_size=3)).map(tuple))
        | st.builds(Slotted, st.lists(inner, **small), inner)
        | st.builds(Loose, st.text(max_size=5), inner)
    )


values = st.recursive(
    scalars
    | enums
    | st.sampled_from([Frozen, Colour, int, collections.deque])
    | st.integers(0, 2**32).map(random.Random),
    _containers,
    max_leaves=20,
)
"""Nested values of every supported kind (no refs or shared objects: tests add those)."""


def aliased(make: Callable[[], object]) -> object:
    """One mutable value twice in a list, and in a dict: aliasing that must survive."""
    shared = make()
    return [shared, {"again": shared}, (shared,)]
