"""Live values to plain data: the saving half of the state converter (`checkpoint.values`).

The plain form of a value (every tag below is what `loading` reads back):

- ``None``, ``bool``, ``float`` (``inf`` and ``nan`` too), ``bytes`` and ``str`` stand for
  themselves, and so does an ``int`` that fits msgpack's 64 bits (a larger one is
  ``["i", "<digits>"]``);
- everything else is a list whose first item is a tag: ``["l", *items]`` a list,
  ``["t", *items]`` a tuple, ``["s", *items]`` a set, ``["f", *items]`` a frozenset,
  ``["q", maxlen, *items]`` a deque, ``["d", {key: value}]`` a dict whose keys are all ASCII
  strings, ``["m", [key, value, ...]]`` any other dict, ``["o", [key, value, ...]]`` an
  OrderedDict, ``["p", [key, value, ...]]`` a read-only mapping (``types.MappingProxyType``,
  as `spaceactors.fields` freezes a message's tables), ``["dd", factory, [key, value, ...]]``
  a defaultdict, ``["a", type, {field:
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
import keyword
import random
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
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


class SharedNames(Mapping[str, object]):
    """Shared objects by name, fixed once made, with their names by object id worked out once
    (a checkpoint makes a `Saver` per actor and per value: tens of thousands of them)."""

    __slots__ = ("_by_name", "by_id")

    def __init__(self, shared: Mapping[str, object]) -> None:
        self._by_name = dict(shared)
        self.by_id: dict[int, int | str] = dict(
            zip(map(id, self._by_name.values()), self._by_name, strict=True)
        )

    def __getitem__(self, name: str) -> object:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


class Saver:
    """Saves values into plain data; one per saved document, so aliasing holds within it."""

    __slots__ = ("memo", "n")

    def __init__(self, shared: Mapping[str, object]) -> None:
        self.memo: dict[int, int | str] = (
            dict(shared.by_id)
            if type(shared) is SharedNames
            else dict(zip(map(id, shared.values()), shared, strict=True))
        )
        self.n = 0

    def save(self, value: object) -> object:
        """The plain form of `value`. Raises `Refused`."""
        cls = type(value)
        if cls in SELF or (cls is str and value.isascii()):  # type: ignore[attr-defined]
            return value
        saver = SAVERS.get(cls)
        if saver is None:
            saver = plan(cls)
        return saver(self, value)

    def first(self, value: object) -> object:
        """None the first time `value` is met (it gets the next number); else what stands
        for it: a reference to its number, or its shared name."""
        memo = self.memo
        key = id(value)
        seen = memo.get(key)
        if seen is None:
            memo[key] = self.n
            self.n += 1
            return None
        return ["r", seen] if type(seen) is int else ["S", seen]

    def items(self, tag: str, values: Iterable[object]) -> list[object]:
        out: list[object] = [tag]
        append = out.append
        save = self.save
        try:
            for item in values:
                cls = type(item)
                if (
                    cls in SELF
                    or (cls is str and item.isascii())  # type: ignore[attr-defined]
                    or (cls is int and INT_MIN <= item <= INT_MAX)  # type: ignore[operator]
                ):
                    append(item)
                else:
                    append(save(item))
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

    def fields(
        self, names: Iterable[str], values: Iterable[object], *, keys: bool = False
    ) -> dict[str, object]:
        """The named values (attributes, or with `keys` a dict's items) saved."""
        out: dict[str, object] = {}
        save = self.save
        name = ""
        try:
            for name, item in zip(names, values, strict=True):
                cls = type(item)
                if (
                    cls in SELF
                    or (cls is str and item.isascii())  # type: ignore[attr-defined]
                    or (cls is int and INT_MIN <= item <= INT_MAX)  # type: ignore[operator]
                ):
                    out[name] = item
                else:
                    out[name] = save(item)
        except Refused as refused:
            refused.path.append(f"[{name!r}]" if keys else f".{name}")
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
    seen = saver.first(value)
    if seen is not None:
        return seen
    return saver.items("l", value)


def _tuple(saver: Saver, value: tuple[object, ...]) -> object:
    return saver.items("t", value)


def _set(saver: Saver, value: set[object]) -> object:
    seen = saver.first(value)
    if seen is not None:
        return seen
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
    seen = saver.first(value)
    if seen is not None:
        return seen
    out = saver.items("q", value)
    out.insert(1, value.maxlen)
    return out


def _dict(saver: Saver, value: dict[object, object]) -> object:
    seen = saver.first(value)
    if seen is not None:
        return seen
    for key in value:
        if type(key) is not str or not key.isascii():
            return ["m", saver.pairs(value)]
    out = saver.fields(value.keys(), value.values(), keys=True)  # type: ignore[arg-type]
    return ["d", out]


def _ordered(saver: Saver, value: collections.OrderedDict[object, object]) -> object:
    seen = saver.first(value)
    if seen is not None:
        return seen
    return ["o", saver.pairs(value)]


def _proxy(saver: Saver, value: types.MappingProxyType[object, object]) -> object:
    # Not numbered (like a tuple): a read-only view, of a table nobody else holds.
    return ["p", saver.pairs(value)]


def _defaultdict(saver: Saver, value: collections.defaultdict[object, object]) -> object:
    seen = saver.first(value)
    if seen is not None:
        return seen
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
    seen = saver.first(value)
    if seen is not None:
        return seen
    version, words, gauss = value.getstate()
    return ["R", version, list(words), gauss]


def _actor_ref(saver: Saver, value: ActorRef) -> object:
    return ["A", value.id]


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
    """The saver of an attrs class: generated code that reads each field in turn (as attrs
    and cattrs generate theirs), primitives inline, anything else through `Saver.save`."""
    try:
        name = type_name(cls)
    except Unnameable as exc:
        what = f"a {display(cls)} ({exc})"
        return lambda saver, value: _raise(Refused(what))
    names = [field.name for field in attrs.fields(cls)]
    lines = [
        "def save_attrs(saver, value):",
        "    memo = saver.memo",
        "    seen = memo.get(id(value))",
        "    if seen is not None:",
        "        return ['r', seen] if type(seen) is int else ['S', seen]",
        "    memo[id(value)] = saver.n",
        "    saver.n += 1",
        "    save = saver.save",
        "    out = {}",
        "    field = ''",
        "    try:",
        "        pass",  # (a class without fields)
    ]
    for field in names:
        lines += [
            f"        field = {field!r}",
            f"        v = value.{field}"
            if _plain_name(field)
            else f"        v = getattr(value, {field!r})",
            "        t = type(v)",
            f"        out[{field!r}] = v if (t in SELF or (t is str and v.isascii()) or "
            "(t is int and INT_MIN <= v <= INT_MAX)) else save(v)",
        ]
    lines += [
        "    except Refused as refused:",
        "        refused.path.append('.' + field)",
        "        raise",
        "    except AttributeError:",
        "        unset(value, field)",
        "        raise",
        "    return ['a', NAME, out]",
    ]
    namespace: dict[str, object] = {
        "SELF": SELF,
        "INT_MIN": INT_MIN,
        "INT_MAX": INT_MAX,
        "Refused": Refused,
        "NAME": name,
        "unset": _unset,
    }
    exec("\n".join(lines), namespace)
    return namespace["save_attrs"]  # type: ignore[return-value]


def _plain_name(name: str) -> bool:
    """True if ``value.<name>`` reads the attribute `name` (an identifier, not a keyword)."""
    return name.isidentifier() and not keyword.iskeyword(name)


def _unset(value: object, name: str) -> None:
    """Raise `Refused` if the field `name` of `value` is not set (else return)."""
    try:
        getattr(value, name)
    except AttributeError:
        refused = Refused(f"a {display(type(value))} whose field {name!r} is not set")
        raise refused from None


def _enum_saver(cls: type[enum.Enum]) -> SaveFn:
    try:
        name = type_name(cls)
    except Unnameable as exc:
        what = f"a {display(cls)} ({exc})"
        return lambda saver, value: _raise(Refused(what))
    by_id = {id(member): member.name for member in cls.__members__.values()}  # singletons

    def save_enum(saver: Saver, value: object) -> object:
        known = by_id.get(id(value))
        if known is not None:
            return ["e", name, known]
        member: enum.Enum = value  # type: ignore[assignment]
        if isinstance(member, enum.Flag) and type(member.value) is int:
            return ["e", name, None, member.value]  # a combination of flags: by its bits
        raise Refused(f"a {display(cls)} value {member!r} that is none of its members")

    return save_enum


def _class(saver: Saver, value: object) -> object:
    try:
        return ["T", type_name(value)]  # type: ignore[arg-type]
    except Unnameable as exc:
        raise Refused(f"the class {display(value)} ({exc})") from None  # type: ignore[arg-type]


def _refuse(saver: Saver, value: object) -> object:
    shared = saver.memo.get(id(value))  # a shared object of a type that is not saved by value
    if shared is not None:
        return ["r", shared] if type(shared) is int else ["S", shared]
    raise Refused(f"a {display(type(value))}")


def _int(saver: Saver, value: int) -> object:
    return value if INT_MIN <= value <= INT_MAX else ["i", str(value)]


def _raise(refused: Refused) -> object:
    raise refused


SaveFn = Callable[[Saver, object], object]
SAVERS: dict[type, SaveFn] = {
    str: _str,  # type: ignore[dict-item]
    int: _int,  # type: ignore[dict-item]
    list: _list,  # type: ignore[dict-item]
    tuple: _tuple,  # type: ignore[dict-item]
    set: _set,  # type: ignore[dict-item]
    frozenset: _frozenset,  # type: ignore[dict-item]
    dict: _dict,  # type: ignore[dict-item]
    collections.deque: _deque,  # type: ignore[dict-item]
    collections.OrderedDict: _ordered,  # type: ignore[dict-item]
    types.MappingProxyType: _proxy,  # type: ignore[dict-item]
    collections.defaultdict: _defaultdict,  # type: ignore[dict-item]
    random.Random: _random,  # type: ignore[dict-item]
    ActorRef: _actor_ref,  # type: ignore[dict-item]
}
"""The saver of each type met so far: exact types only (a subclass gets its own plan)."""
