"""Live values to plain data: the saving half of the state converter (`checkpoint.values`).

The plain form of a value (every tag below is what `loading` reads back):

- ``None``, ``bool``, ``float`` (``inf`` and ``nan`` too), ``bytes`` and ``str`` stand for
  themselves, and so does an ``int`` that fits msgpack's 64 bits (a larger one is
  ``["i", "<digits>"]``);
- everything else is a list whose first item is a tag: ``["l", *items]`` a list,
  ``["t", *items]`` a tuple, ``["s", *items]`` a set, ``["f", *items]`` a frozenset,
  ``["q", maxlen, *items]`` a deque, ``["d", {key: value}]`` a dict whose keys are all ASCII
  strings, ``["m", [key, value, ...]]`` any other dict, ``["o", [key, value, ...]]`` an
  OrderedDict, ``["dd", factory, [key, value, ...]]`` a defaultdict, ``["a", type, {field:
  value}]`` an attrs instance, ``["e", type, member]`` an enum member, ``["T", type]`` a class,
  ``["R", version, [words], gauss]`` a `random.Random`, ``["A", id]`` an `ActorRef`,
  ``["S", name]`` a shared object, and ``["r", n]`` the n-th mutable value already saved (so
  that aliasing and cycles survive).

Mutable values (lists, dicts, sets, deques, attrs instances, random generators) are numbered in
the order they are first met; `loading` numbers them in the same order.
"""

from __future__ import annotations

import collections
import enum
import random
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Final

import attrs

from spaceactors.checkpoint.names import Unnameable, display, type_name
from spaceactors.ref import ActorRef

INT_MIN: Final = -(1 << 63)
INT_MAX: Final = (1 << 64) - 1
SELF: Final[frozenset[type]] = frozenset({float, bool, type(None), bytes})
"""Types that always stand for themselves (``str`` and ``int`` need a look first)."""


class Refused(Exception):
    """A value that cannot be saved; `path` collects where, innermost segment first."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.path: list[str] = []

    def where(self) -> str:
        """The path from the saved value to the refused one: ``offers[2].socket``."""
        return "".join(reversed(self.path)).removeprefix(".")


class Saver:
    """Saves values into plain data; one per saved document, so aliasing holds within it."""

    __slots__ = ("memo", "n")

    def __init__(self, shared: Mapping[str, object]) -> None:
        self.memo: dict[int, int | str] = {id(obj): name for name, obj in shared.items()}
        self.n = 0

    def save(self, value: object) -> object:
        """The plain form of `value`. Raises `Refused`."""
        cls = type(value)
        if cls is float or (cls is str and value.isascii()):  # type: ignore[attr-defined]
            return value
        if cls in SELF:
            return value
        if cls is int:
            return value if INT_MIN <= value <= INT_MAX else ["i", str(value)]  # type: ignore[operator]
        seen = self.memo.get(id(value))
        if seen is not None:
            return ["r", seen] if type(seen) is int else ["S", seen]
        saver = SAVERS.get(cls)
        if saver is None:
            saver = plan(cls)
        return saver(self, value)

    def mutable(self, value: object) -> None:
        self.memo[id(value)] = self.n
        self.n += 1

    def items(self, tag: str, values: object) -> list[object]:
        out: list[object] = [tag]
        save = self.save
        try:
            for item in values:  # type: ignore[attr-defined]
                out.append(item if type(item) in SELF else save(item))
        except Refused as refused:
            refused.path.append(f"[{len(out) - 1}]")
            raise
        return out

    def pairs(self, mapping: Mapping[object, object]) -> list[object]:
        out: list[object] = []
        save = self.save
        for key, item in mapping.items():
            try:
                out.append(save(key))
            except Refused as refused:
                refused.path.append(f"<key {_short(key)}>")
                raise
            try:
                out.append(save(item))
            except Refused as refused:
                refused.path.append(f"[{_short(key)}]")
                raise
        return out

    def fields(self, names: Mapping[str, object]) -> dict[str, object]:
        out: dict[str, object] = {}
        save = self.save
        for name, item in names.items():
            try:
                out[name] = item if type(item) in SELF else save(item)
            except Refused as refused:
                refused.path.append(f".{name}")
                raise
        return out


def _short(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _str(saver: Saver, value: str) -> object:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Refused(
            f"a str with a lone surrogate {value[exc.start]!r} at index {exc.start}, "
            "which no state file can encode"
        ) from None
    return value


def _list(saver: Saver, value: list[object]) -> object:
    saver.mutable(value)
    return saver.items("l", value)


def _tuple(saver: Saver, value: tuple[object, ...]) -> object:
    return saver.items("t", value)


def _set(saver: Saver, value: set[object]) -> object:
    saver.mutable(value)
    return _elements(saver, "s", value)


def _frozenset(saver: Saver, value: frozenset[object]) -> object:
    return _elements(saver, "f", value)


def _elements(saver: Saver, tag: str, value: set[object] | frozenset[object]) -> object:
    out: list[object] = [tag]
    save = saver.save
    for item in value:
        try:
            out.append(save(item))
        except Refused as refused:
            refused.path.append(f"{{{_short(item)}}}")
            raise
    return out


def _deque(saver: Saver, value: collections.deque[object]) -> object:
    saver.mutable(value)
    out = saver.items("q", value)
    out.insert(1, value.maxlen)
    return out


def _dict(saver: Saver, value: dict[object, object]) -> object:
    saver.mutable(value)
    for key in value:
        if type(key) is not str or not key.isascii():
            return ["m", saver.pairs(value)]
    out: dict[str, object] = {}
    save = saver.save
    try:
        for key, item in value.items():
            out[key] = item if type(item) in SELF else save(item)  # type: ignore[index]
    except Refused as refused:
        refused.path.append(f"[{key!r}]")
        raise
    return ["d", out]


def _ordered(saver: Saver, value: collections.OrderedDict[object, object]) -> object:
    saver.mutable(value)
    return ["o", saver.pairs(value)]


def _defaultdict(saver: Saver, value: collections.defaultdict[object, object]) -> object:
    saver.mutable(value)
    factory = value.default_factory
    if factory is not None and not isinstance(factory, type):
        refused = Refused(
            f"a defaultdict whose default_factory is {_short(factory)}: only a class "
            "(list, int, an attrs class, ...) or None can be saved"
        )
        raise refused
    try:
        saved_factory = None if factory is None else ["T", type_name(factory)]
    except Unnameable as exc:
        raise Refused(
            f"a defaultdict whose default_factory is a class a checkpoint cannot name ({exc})"
        ) from None
    return ["dd", saved_factory, saver.pairs(value)]


def _random(saver: Saver, value: random.Random) -> object:
    saver.mutable(value)
    version, words, gauss = value.getstate()
    return ["R", version, list(words), gauss]


def _actor_ref(saver: Saver, value: ActorRef) -> object:
    return ["A", value.id]


SaveFn = Callable[[Saver, object], object]
SAVERS: dict[type, SaveFn] = {
    str: _str,  # type: ignore[dict-item]
    list: _list,  # type: ignore[dict-item]
    tuple: _tuple,  # type: ignore[dict-item]
    set: _set,  # type: ignore[dict-item]
    frozenset: _frozenset,  # type: ignore[dict-item]
    dict: _dict,  # type: ignore[dict-item]
    collections.deque: _deque,  # type: ignore[dict-item]
    collections.OrderedDict: _ordered,  # type: ignore[dict-item]
    collections.defaultdict: _defaultdict,  # type: ignore[dict-item]
    random.Random: _random,  # type: ignore[dict-item]
    ActorRef: _actor_ref,  # type: ignore[dict-item]
}
"""The saver of each type met so far: exact types only (a subclass gets its own plan)."""


def plan(cls: type) -> SaveFn:
    """Build (and keep) the saver of a type met for the first time."""
    saver: SaveFn
    if attrs.has(cls):
        saver = _attrs_saver(cls)
    elif isinstance(cls, type) and issubclass(cls, enum.Enum):
        saver = _enum_saver(cls)
    elif issubclass(cls, type):
        saver = _class
    else:
        saver = _refuse
    SAVERS[cls] = saver
    return saver


def _attrs_saver(cls: type) -> SaveFn:
    try:
        name = type_name(cls)
    except Unnameable as exc:
        what = f"a {display(cls)} ({exc})"
        return lambda saver, value: _raise(Refused(what))
    names = tuple(field.name for field in attrs.fields(cls))
    get_all = attrgetter(*names) if len(names) > 1 else None

    def save_attrs(saver: Saver, value: object) -> object:
        saver.mutable(value)
        if get_all is not None:
            try:
                values = get_all(value)
            except AttributeError:
                values = tuple(_field(value, field) for field in names)
        else:
            values = tuple(_field(value, field) for field in names)
        return ["a", name, saver.fields(dict(zip(names, values, strict=True)))]

    return save_attrs


def _field(value: object, name: str) -> object:
    try:
        return getattr(value, name)
    except AttributeError:
        refused = Refused(f"a {display(type(value))} whose field {name!r} is not set")
        raise refused from None


def _enum_saver(cls: type[enum.Enum]) -> SaveFn:
    try:
        name = type_name(cls)
    except Unnameable as exc:
        what = f"a {display(cls)} ({exc})"
        return lambda saver, value: _raise(Refused(what))
    return lambda saver, value: ["e", name, value.name]  # type: ignore[attr-defined]


def _class(saver: Saver, value: object) -> object:
    try:
        return ["T", type_name(value)]  # type: ignore[arg-type]
    except Unnameable as exc:
        raise Refused(f"the class {display(value)} ({exc})") from None  # type: ignore[arg-type]


def _refuse(saver: Saver, value: object) -> object:
    raise Refused(f"a {display(type(value))}")


def _raise(refused: Refused) -> object:
    raise refused
