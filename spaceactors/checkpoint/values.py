"""The state converter: actors' state and messages to plain data for a checkpoint, and back.

Plain data is what msgpack writes without extensions: ``None``, ``bool``, ``int`` (64 bits),
``float``, ``str``, ``bytes``, ``list`` and ``dict`` with ``str`` keys. Every value converts
exactly: a tuple stays a tuple, an int stays an int, a key keeps its type, ``nan`` and
``-0.0`` survive, a deque keeps its ``maxlen``, and a value met twice inside one saved document
(the same list in two fields, a cycle) is one value again after restoring.

What can be saved: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``; ``list``,
``tuple``, ``dict`` (any keys that can be saved), ``set``, ``frozenset``,
``collections.deque``, ``OrderedDict`` and ``defaultdict`` (with a class or no default
factory); enum members; attrs instances (frozen and slotted too; their fields are saved
value by value); ``random.Random`` (its state); `ActorRef` (as its actor id); classes
(attrs classes, enums, `Actor` subclasses and the builtin types above); and any object
passed in ``shared`` (saved by its name, restored as the same object). Anything else raises
`CheckpointError` naming where it was found.

An actor's state is, by default, its attributes (``__dict__`` and ``__slots__``) minus the
engine's ``ctx``. A class that defines both ``snapshot_state(self) -> object`` and
``restore_state(self, state: object) -> None`` is saved by those instead: the value
``snapshot_state()`` returns is saved as above, and a restored actor (built with
``cls.__new__``, its ``__init__`` does not run) gets it back through ``restore_state``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

import attrs

from spaceactors.actor import Actor
from spaceactors.checkpoint import loading, saving
from spaceactors.checkpoint.names import Unnameable, display, type_name
from spaceactors.errors import CheckpointError
from spaceactors.ref import ActorRef

ENGINE_ATTRIBUTES: Final = frozenset({"ctx"})
"""Attributes the engine sets on an actor; never part of its saved state."""
VALUE_ADVICE: Final = (
    "checkpoints save None, bool, int, float, str, bytes, builtin containers, deques, enums, "
    "attrs instances, random.Random, ActorRefs and the run's shared objects"
)


@attrs.frozen
class _Plan:
    """How one actor class is saved and restored (built once per class)."""

    name: str
    hooks: bool
    slots: tuple[str, ...]
    has_dict: bool


_PLANS: dict[type, _Plan] = {}


def save_actor(actor: Actor, *, path: str, shared: Mapping[str, object]) -> dict[str, object]:
    """One actor's state as plain data.

    Args:
        actor: the live actor.
        path: the actor's name or path, used in error messages (``"ship-7"``).
        shared: objects saved by name, not by value (``{"world": world}``): the same objects
            must be passed to `restore_actor`.

    Returns:
        ``{"class": "module:qualname", "attributes": {name: saved}}`` by default, or
        ``{"class": ..., "snapshot": saved}`` for a class with ``snapshot_state``.

    Raises:
        CheckpointError: a value cannot be saved; the message names the actor, the field path
            and the type, and what to do.
    """
    cls = type(actor)
    plan = _plan(cls, path)
    saver = saving.Saver(shared)
    if plan.hooks:
        try:
            state = actor.snapshot_state()  # type: ignore[attr-defined]
        except Exception as exc:
            raise CheckpointError(
                f"{path}: {cls.__qualname__}.snapshot_state() raised {type(exc).__name__}: {exc}"
            ) from exc
        try:
            return {"class": plan.name, "snapshot": saver.save(state)}
        except (saving.Refused, RecursionError) as refused:
            raise _save_error(
                refused, path, "the value snapshot_state() returned", _hook_advice(cls)
            ) from None
    try:
        return {"class": plan.name, "attributes": saver.fields(_attributes(actor, plan))}
    except (saving.Refused, RecursionError) as refused:
        advice = (
            f"give {cls.__qualname__} snapshot_state()/restore_state(), "
            "or keep it out of the actor's attributes"
        )
        raise _save_error(refused, path, "field", advice) from None


def restore_actor(
    cls: type[Actor],
    data: object,
    *,
    shared: Mapping[str, object],
    refs: Callable[[int], ActorRef],
    where: str | None = None,
) -> Actor:
    """Rebuild an actor from what `save_actor` returned (``cls.__new__``; no ``__init__``).

    Args:
        cls: the actor's class; it must be the class the data was saved from.
        data: the saved state.
        shared: the objects passed to `save_actor`, by the same names.
        refs: the `ActorRef` of an actor id, in the restored system.
        where: names the actor in error messages (default: the class name).

    Raises:
        CheckpointError: the data is not the saved state of a `cls` (wrong class, tags,
            types or shapes; unknown shared names or actor ids), or ``restore_state``
            raised; the message says where.
    """
    where = where or cls.__qualname__
    plan = _plan(cls, where)
    if type(data) is not dict or data.get("class") != plan.name:
        saved = data.get("class") if type(data) is dict else None
        raise CheckpointError(
            f"{where}: the saved state is not a {plan.name} actor's"
            + (f" (it was saved from {str(saved)[:80]!r})" if type(saved) is str else "")
        )
    expected = "snapshot" if plan.hooks else "attributes"
    if data.keys() != {"class", expected}:
        raise CheckpointError(
            f"{where}: a saved {cls.__qualname__} holds the keys 'class' and {expected!r}, "
            f"not {sorted(str(key)[:40] for key in data)}"
        )
    loader = loading.Loader(shared, refs)
    actor = cls.__new__(cls)
    if plan.hooks:
        state = _load(loader, data["snapshot"], where, "snapshot")
        try:
            actor.restore_state(state)  # type: ignore[attr-defined]
        except Exception as exc:
            raise CheckpointError(
                f"{where}: {cls.__qualname__}.restore_state() raised {type(exc).__name__}: {exc}"
            ) from exc
        return actor
    attributes = data["attributes"]
    if type(attributes) is not dict:
        raise CheckpointError(f"{where}: the saved attributes must be a map")
    for name in attributes:
        _set(actor, plan, name, _load(loader, attributes[name], where, f"field {name!r}"))
    return actor


def save_value(value: object, *, where: str, shared: Mapping[str, object]) -> object:
    """One value (a queued message, a timer's message, a pending reliable message) as plain
    data.

    Args:
        value: the value to save.
        where: what the value is, for error messages (``"mailbox of 'ship-7', message 3"``).
        shared: objects saved by name (see `save_actor`).

    Raises:
        CheckpointError: the value, or something inside it, cannot be saved; the message
            names `where`, the path inside the value and the type.
    """
    try:
        return saving.Saver(shared).save(value)
    except (saving.Refused, RecursionError) as refused:
        raise _save_error(refused, where, "the value", VALUE_ADVICE) from None


def restore_value(
    data: object,
    *,
    shared: Mapping[str, object],
    refs: Callable[[int], ActorRef],
    where: str = "saved value",
) -> object:
    """The value `save_value` saved as `data`.

    Raises:
        CheckpointError: `data` is not what `save_value` writes (wrong tags, types, shapes;
            unknown shared names or actor ids); the message names `where` and the path.
    """
    return _load(loading.Loader(shared, refs), data, where, "value")


def _plan(cls: type, where: str) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    if not isinstance(cls, type) or not issubclass(cls, Actor):
        raise CheckpointError(f"{where}: {display(type(cls))} {cls!r} is not an Actor class")
    try:
        name = type_name(cls)
    except Unnameable as exc:
        raise CheckpointError(f"{where}: the actor class {exc}") from None
    snapshot = callable(getattr(cls, "snapshot_state", None))
    restore = callable(getattr(cls, "restore_state", None))
    if snapshot != restore:
        has, lacks = ("snapshot_state", "restore_state")[:: 1 if snapshot else -1]
        raise CheckpointError(
            f"{where}: {cls.__qualname__} defines {has}() but not {lacks}(); "
            "define both, or neither to save its attributes"
        )
    slots: list[str] = []
    for klass in reversed(cls.__mro__):
        declared = vars(klass).get("__slots__", ())
        for slot in (declared,) if isinstance(declared, str) else declared:
            if slot in ("__dict__", "__weakref__") or slot in ENGINE_ATTRIBUTES:
                continue
            mangled = f"_{klass.__name__.lstrip('_')}{slot}" if slot.startswith("__") else slot
            if mangled not in slots:
                slots.append(mangled)
    has_dict = any("__dict__" in vars(klass) for klass in cls.__mro__ if klass is not object)
    plan = _PLANS[cls] = _Plan(name, snapshot, tuple(slots), has_dict)
    return plan


def _attributes(actor: Actor, plan: _Plan) -> dict[str, object]:
    attributes: dict[str, object] = {}
    for slot in plan.slots:
        try:
            attributes[slot] = getattr(actor, slot)
        except AttributeError:
            continue  # never set: restored unset too
    if plan.has_dict:
        for name, value in vars(actor).items():
            if name not in ENGINE_ATTRIBUTES:
                attributes[name] = value
    return attributes


def _set(actor: Actor, plan: _Plan, name: object, value: object) -> None:
    if type(name) is not str or name in ENGINE_ATTRIBUTES:
        raise CheckpointError(f"{plan.name}: {str(name)[:40]!r} is not an attribute it may have")
    if name in plan.slots:
        object.__setattr__(actor, name, value)
    elif plan.has_dict:
        vars(actor)[name] = value
    else:
        raise CheckpointError(
            f"{plan.name}: the saved attribute {name[:40]!r} has no slot in the class "
            "(saved by another version of the code?)"
        )


def _load(loader: loading.Loader, data: object, where: str, what: str) -> object:
    try:
        return loader.load(data)
    except loading.Bad as bad:
        inner = bad.where()
        at = f"{what} at '{inner}'" if inner else what
        raise CheckpointError(f"{where}: cannot restore the {at}: {bad.what}") from None
    except RecursionError:
        raise CheckpointError(f"{where}: cannot restore the {what}: nested too deep") from None


def _hook_advice(cls: type) -> str:
    return f"make {cls.__qualname__}.snapshot_state() return only what a checkpoint saves"


def _save_error(
    refused: saving.Refused | RecursionError, where: str, what: str, advice: str
) -> CheckpointError:
    if isinstance(refused, RecursionError):
        return CheckpointError(
            f"{where}: the {what} is nested too deep for a checkpoint to save; {advice}"
        )
    inner = refused.where()
    at = f" at '{inner}'" if inner else ""
    subject = f"field '{inner}'" if what == "field" else what + at
    return CheckpointError(
        f"{where}: {subject} holds {refused.what}, which a checkpoint cannot save; {advice}"
    )
