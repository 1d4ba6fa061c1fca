"""Plain data to live values: the restoring half of the state converter.

Reads what `spaceactors.checkpoint.saving` writes (its docstring lists the tags). Every way the
data can be wrong (an unknown tag, a wrong shape, a type the file may not name, a reference to
nothing) raises `Bad` with the path where it was found; nothing is imported or executed, and no
class's ``__init__`` runs (attrs instances are built with ``__new__`` and then validated).
"""

from __future__ import annotations

import collections
import enum
import random
import sys
import types
from collections.abc import Callable, Mapping
from typing import Final

import attrs

from spaceactors.checkpoint.names import Unnameable, resolve
from spaceactors.ref import ActorRef

PLAIN: Final[frozenset[type]] = frozenset({float, str, int, bool, type(None), bytes})
MAX_DIGITS: Final = 4000  # a saved big int longer than this is not one we wrote


class Bad(Exception):
    """Data that cannot be restored; `path` collects where, innermost segment first."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what
        self.path: list[str] = []

    def where(self) -> str:
        return "".join(reversed(self.path)).removeprefix(".")


def _kind(data: object) -> str:
    return "null" if data is None else type(data).__name__


class Loader:
    """Restores plain data into values; one per restored document (refs count within it)."""

    __slots__ = ("memo", "refs", "shared")

    def __init__(self, shared: Mapping[str, object], refs: Callable[[int], ActorRef]) -> None:
        self.memo: list[object] = []
        self.shared = shared
        self.refs = refs

    def load(self, data: object) -> object:
        """The value `data` stands for. Raises `Bad`."""
        cls = type(data)
        if cls in PLAIN:
            return data
        if cls is not list:
            raise Bad(f"a {_kind(data)} where a saved value belongs")
        if not data:
            raise Bad("an empty list where a tagged value belongs")
        tag = data[0]  # type: ignore[index]
        loader = LOADERS.get(tag) if type(tag) is str else None
        if loader is None:
            raise Bad(f"unknown tag {str(tag)[:40]!r}")
        return loader(self, data)  # type: ignore[arg-type]

    def each(self, data: list[object], start: int) -> list[object]:
        """The values of ``data[start:]``."""
        out: list[object] = []
        load = self.load
        try:
            for item in data[start:]:
                out.append(item if type(item) in PLAIN else load(item))
        except Bad as bad:
            bad.path.append(f"[{len(out)}]")
            raise
        return out

    def pairs(self, data: object, into: dict[object, object]) -> None:
        """Fill `into` from a flat ``[key, value, ...]`` list."""
        if type(data) is not list or len(data) % 2:
            raise Bad(f"expected a [key, value, ...] list, got {_describe(data)}")
        load = self.load
        for index in range(0, len(data), 2):
            try:
                key = load(data[index])
            except Bad as bad:
                bad.path.append(f"<key {index // 2}>")
                raise
            try:
                into[key] = load(data[index + 1])
            except Bad as bad:
                bad.path.append(f"[{_short(key)}]")
                raise
            except TypeError:
                raise Bad(f"key {index // 2} is an unhashable {_kind(key)}") from None


def _describe(data: object) -> str:
    return f"a list of {len(data)}" if type(data) is list else f"a {_kind(data)}"


def _short(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _shape(data: list[object], size: int, what: str) -> None:
    if len(data) != size:
        raise Bad(f"{what} must be a list of {size}, got {len(data)}")


def _type(name: object, kind: Callable[[type], bool], what: str) -> type:
    try:
        cls = resolve(name)
    except Unnameable as exc:
        raise Bad(str(exc)) from None
    if not kind(cls):
        raise Bad(f"type {name!r} is not {what}")
    return cls


def _big_int(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "a big int")
    digits = data[1]
    if type(digits) is not str or not 0 < len(digits) <= MAX_DIGITS:
        raise Bad(f"a big int must be a string of up to {MAX_DIGITS} digits")
    body = digits.removeprefix("-")
    if not (body.isascii() and body.isdigit()):
        raise Bad(f"a big int must be written in decimal digits, got {digits[:40]!r}")
    return int(digits)


def _list(loader: Loader, data: list[object]) -> object:
    out: list[object] = []
    loader.memo.append(out)
    out.extend(loader.each(data, 1))
    return out


def _tuple(loader: Loader, data: list[object]) -> object:
    return tuple(loader.each(data, 1))


def _set(loader: Loader, data: list[object]) -> object:
    out: set[object] = set()
    loader.memo.append(out)
    load = loader.load
    for index, item in enumerate(data[1:]):
        try:
            out.add(load(item))
        except Bad as bad:
            bad.path.append(f"{{{index}}}")
            raise
        except TypeError:
            raise Bad(f"element {index} of a set is unhashable") from None
    return out


def _frozenset(loader: Loader, data: list[object]) -> object:
    items = loader.each(data, 1)
    try:
        return frozenset(items)
    except TypeError:
        raise Bad("an element of a frozenset is unhashable") from None


def _deque(loader: Loader, data: list[object]) -> object:
    if len(data) < 2:
        raise Bad("a deque must be ['q', maxlen, *items]")
    maxlen = data[1]
    if maxlen is not None and (type(maxlen) is not int or not 0 <= maxlen <= sys.maxsize):
        raise Bad(
            f"a deque's maxlen must be null or an int from 0 to {sys.maxsize}, "
            f"got {_describe(maxlen)}"
        )
    if maxlen is not None and len(data) - 2 > maxlen:
        raise Bad(f"a deque holds {len(data) - 2} items, more than its maxlen {maxlen}")
    out: collections.deque[object] = collections.deque(maxlen=maxlen)
    loader.memo.append(out)
    out.extend(loader.each(data, 2))
    return out


def _dict(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "a dict")
    items = data[1]
    if type(items) is not dict:
        raise Bad(f"a dict's items must be a map, got {_describe(items)}")
    out: dict[str, object] = {}
    loader.memo.append(out)
    load = loader.load
    for key, item in items.items():
        if type(key) is not str:
            raise Bad(f"a map key must be a string, got {_kind(key)}")
        try:
            out[key] = item if type(item) in PLAIN else load(item)
        except Bad as bad:
            bad.path.append(f"[{_short(key)}]")
            raise
    return out


def _mapping(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "a dict")
    out: dict[object, object] = {}
    loader.memo.append(out)
    loader.pairs(data[1], out)
    return out


def _ordered(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "an OrderedDict")
    out: collections.OrderedDict[object, object] = collections.OrderedDict()
    loader.memo.append(out)
    loader.pairs(data[1], out)
    return out


def _proxy(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "a read-only mapping")
    out: dict[object, object] = {}
    loader.pairs(data[1], out)
    return types.MappingProxyType(out)


def _defaultdict(loader: Loader, data: list[object]) -> object:
    _shape(data, 3, "a defaultdict")
    out: collections.defaultdict[object, object] = collections.defaultdict()
    loader.memo.append(out)
    factory = data[1]
    if factory is not None:
        if type(factory) is not list or len(factory) != 2 or factory[0] != "T":
            raise Bad("a defaultdict's factory must be null or ['T', type]")
        out.default_factory = _type(factory[1], lambda cls: True, "a class")
    loader.pairs(data[2], out)
    return out


def _attrs(loader: Loader, data: list[object]) -> object:
    _shape(data, 3, "an attrs instance")
    cls = _type(data[1], attrs.has, "an attrs class")
    values = data[2]
    if type(values) is not dict:
        raise Bad(f"the fields of {cls.__qualname__} must be a map, got {_describe(values)}")
    names = _field_names(cls)
    if values.keys() != names:
        missing = sorted(names - values.keys())
        extra = sorted(str(key)[:40] for key in values.keys() - names)
        raise Bad(
            f"{cls.__qualname__} has fields {sorted(names)}; the data "
            + (f"lacks {missing}" if missing else "")
            + (" and " if missing and extra else "")
            + (f"has unknown {extra}" if extra else "")
            + " (saved by another version of the code?)"
        )
    try:
        instance: object = object.__new__(cls)
    except TypeError:  # a subclass of a builtin type (int, tuple, ...): not one we save
        raise Bad(f"{cls.__qualname__} cannot be built without calling it") from None
    loader.memo.append(instance)
    load = loader.load
    setter = object.__setattr__
    for name, item in values.items():
        try:
            setter(instance, name, item if type(item) in PLAIN else load(item))
        except Bad as bad:
            bad.path.append(f".{name}")
            raise
    if _CACHED_HASH.get(cls, False):
        setter(instance, "_attrs_cached_hash", None)
    if _VALIDATED[cls]:  # (attrs.validate of a class without validators does nothing)
        try:
            attrs.validate(instance)  # type: ignore[arg-type]
        except Exception as exc:  # a validator's own error type: say it as ours
            raise Bad(f"{cls.__qualname__} refuses the saved fields: {exc}") from None
    return instance


_NAMES: dict[type, frozenset[str]] = {}
_CACHED_HASH: dict[type, bool] = {}
_VALIDATED: dict[type, bool] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _NAMES.get(cls)
    if names is None:
        fields = attrs.fields(cls)
        names = _NAMES[cls] = frozenset(field.name for field in fields)
        slots = {name for klass in cls.__mro__ for name in vars(klass).get("__slots__", ())}
        _CACHED_HASH[cls] = "_attrs_cached_hash" in slots
        _VALIDATED[cls] = any(field.validator is not None for field in fields)
    return names


def _enum(loader: Loader, data: list[object]) -> object:
    if len(data) == 4 and data[2] is None:
        return _flags(data)
    _shape(data, 3, "an enum member")
    cls = _type(data[1], lambda cls: issubclass(cls, enum.Enum), "an enum")
    member = cls.__members__.get(data[2]) if type(data[2]) is str else None  # type: ignore[attr-defined]
    if member is None:
        raise Bad(f"{cls.__qualname__} has no member {str(data[2])[:40]!r}")
    return member


def _flags(data: list[object]) -> object:
    """A combination of flags, saved by its bits: ``["e", type, None, bits]``."""
    cls = _type(data[1], lambda cls: issubclass(cls, enum.Flag), "a Flag enum")
    bits = data[3]
    if type(bits) is not int:
        raise Bad(f"the bits of a {cls.__qualname__} must be an int, got {_kind(bits)}")
    try:
        return cls(bits)
    except Exception as exc:  # the enum's own refusal (invalid bits), said as ours
        raise Bad(f"{bits} is not a {cls.__qualname__}: {exc}") from None


def _class(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "a class")
    return _type(data[1], lambda cls: True, "a class")


def _random(loader: Loader, data: list[object]) -> object:
    _shape(data, 4, "a random.Random")
    version, words, gauss = data[1], data[2], data[3]
    if type(version) is not int or type(words) is not list:
        raise Bad("a random.Random must be ['R', version, [words], gauss]")
    if not all(type(word) is int for word in words) or type(gauss) not in (float, type(None)):
        raise Bad("a random.Random's state must be ints and a float or null")
    generator = random.Random(0)
    loader.memo.append(generator)
    try:
        generator.setstate((version, tuple(words), gauss))
    except (ValueError, TypeError, OverflowError) as exc:
        raise Bad(f"a random.Random's state is not one Python wrote: {exc}") from None
    return generator


def _actor_ref(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "an actor ref")
    actor_id = data[1]
    if type(actor_id) is not int or actor_id < 0:
        raise Bad(f"an actor ref must hold an actor id (an int >= 0), got {_describe(actor_id)}")
    try:
        return loader.refs(actor_id)
    except Exception as exc:  # whatever the engine's lookup raises, said as ours
        raise Bad(f"it refers to actor #{actor_id}, which cannot be found: {exc}") from None


def _shared(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "a shared object")
    name = data[1]
    if type(name) is not str or name not in loader.shared:
        known = ", ".join(sorted(loader.shared)) or "none"
        raise Bad(f"it refers to shared object {str(name)[:40]!r}, not given (given: {known})")
    return loader.shared[name]


def _ref(loader: Loader, data: list[object]) -> object:
    _shape(data, 2, "a reference")
    index = data[1]
    if type(index) is not int or not 0 <= index < len(loader.memo):
        raise Bad(f"a reference to value {str(index)[:40]}, which was not restored before it")
    return loader.memo[index]


LoadFn = Callable[[Loader, list[object]], object]
LOADERS: Final[dict[str, LoadFn]] = {
    "i": _big_int,
    "l": _list,
    "t": _tuple,
    "s": _set,
    "f": _frozenset,
    "q": _deque,
    "d": _dict,
    "m": _mapping,
    "o": _ordered,
    "p": _proxy,
    "dd": _defaultdict,
    "a": _attrs,
    "e": _enum,
    "T": _class,
    "R": _random,
    "A": _actor_ref,
    "S": _shared,
    "r": _ref,
}
