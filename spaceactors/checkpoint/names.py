"""Naming types in a checkpoint, and resolving those names back, without running any code.

A type is named ``"module:qualname"`` (``"spaceactors.sim.records:ShipRecord"``). Resolving a
name looks only in modules already imported (`sys.modules`; nothing is ever imported) and reads
the module's and classes' namespaces directly (no ``getattr``, so no module ``__getattr__``
runs). It yields only the types a checkpoint may hold: attrs classes, enums, `Actor`
subclasses, and the few builtin and standard types in `ALLOWED`. Anything else is refused: a
state file is data, never code.
"""

from __future__ import annotations

import collections
import enum
import random
import sys
import types
from typing import Final

import attrs

from spaceactors.actor import Actor

ALLOWED: Final[frozenset[type]] = frozenset(
    {
        bool,
        bytes,
        dict,
        float,
        frozenset,
        int,
        list,
        set,
        str,
        tuple,
        object,
        random.Random,
        collections.deque,
        collections.OrderedDict,
        collections.defaultdict,
    }
)
"""The types a checkpoint may name besides attrs classes, enums and `Actor` subclasses."""

_NAMES: dict[type, str] = {}
_RESOLVED: dict[str, tuple[types.ModuleType, type]] = {}


class Unnameable(Exception):
    """A type that a checkpoint cannot name; the text says why (internal to the converter)."""


def allowed(cls: type) -> bool:
    """True if a checkpoint may name `cls`."""
    if cls in ALLOWED or attrs.has(cls):
        return True
    try:
        return issubclass(cls, (enum.Enum, Actor))
    except TypeError:  # a metaclass that refuses issubclass
        return False


def type_name(cls: type) -> str:
    """The checkpoint's name of `cls`, ``"module:qualname"``.

    Raises:
        Unnameable: `cls` may not be named (see `allowed`), or its name does not lead back to
            it (a class defined inside a function, or rebound under another name).
    """
    name = _NAMES.get(cls)
    if name is not None:
        return name
    if not allowed(cls):
        raise Unnameable(f"{display(cls)} is not a type a checkpoint may name")
    name = f"{cls.__module__}:{cls.__qualname__}"
    if _lookup(name) is not cls:
        raise Unnameable(
            f"{display(cls)} cannot be found again by its name {name!r}: "
            "define it at module level (not inside a function), under its own name"
        )
    _NAMES[cls] = name
    return name


def resolve(name: object) -> type:
    """The type a checkpoint names.

    Raises:
        Unnameable: `name` is not ``"module:qualname"`` of an imported module's attrs class,
            enum, `Actor` subclass or allowed type.
    """
    if type(name) is not str:
        raise Unnameable(f"a type name must be a string, got {type(name).__name__}")
    cached = _RESOLVED.get(name)
    if cached is not None and sys.modules.get(cached[0].__name__) is cached[0]:
        return cached[1]  # (a module loaded again, a scenario file say, is looked up again)
    found = _lookup(name)
    if found is None:
        raise Unnameable(
            f"type {name[:200]!r} is not defined by any imported module (import the module "
            "that defines it first; a scenario file's classes come with the same file)"
        )
    if not isinstance(found, type):
        raise Unnameable(f"{name[:200]!r} names a {type(found).__name__}, not a class")
    if not allowed(found):
        raise Unnameable(f"type {name[:200]!r} may not be restored from a checkpoint")
    _RESOLVED[name] = (sys.modules[name.partition(":")[0]], found)
    return found


def display(cls: type) -> str:
    """How an error message names `cls`: ``socket.socket``, ``int``."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", None) or getattr(cls, "__name__", "?")
    return str(qualname) if module in (None, "builtins") else f"{module}.{qualname}"


def _lookup(name: str) -> object:
    """What ``module:qualname`` names in an imported module (None: nothing)."""
    module_name, colon, qualname = name.partition(":")
    if not colon or not qualname:
        return None
    module = sys.modules.get(module_name)
    if not isinstance(module, types.ModuleType):
        return None
    found: object = module
    for part in qualname.split("."):
        namespace = getattr(found, "__dict__", None)
        if namespace is None:
            return None
        try:
            found = namespace.get(part)
        except TypeError:  # an unhashable part cannot be: str keys only
            return None
        if found is None:
            return None
    return found
