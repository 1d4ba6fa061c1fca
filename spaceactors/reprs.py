"""Reprs that are Python: what a failing test prints can be pasted back into it.

Every public value that can appear in a printed example (a fault plan, its rules, a `Scope`, a
protocol message or enum) has a repr that evaluates, after ``import spaceactors as sa``, to an
equal value: ``sa.FaultPlan([sa.DropMessages(probability=0.1)])``. Fields left at their default
are left out. Hypothesis prints these values with the same repr (`_repr_pretty_`), not with its
own constructor-style rendering of attrs classes.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import attrs

if TYPE_CHECKING:
    from attrs import AttrsInstance

PREFIX = "sa."
"""How the reprs name the package: ``import spaceactors as sa``, as the docs do."""


def code(value: object) -> str:
    """`value` as Python source that evaluates to an equal value (given ``sa``).

    Containers are rendered item by item, a read-only mapping as a plain dict (the classes
    that hold one convert it back), a non-finite float as ``float('inf')``.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, tuple):
        items = [code(item) for item in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(code(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{code(k)}: {code(v)}" for k, v in value.items()) + "}"
    return repr(value)


def pretty(value: object, printer: Any, cycle: bool) -> None:
    """Hypothesis' pretty-printer hook: print the same text as `repr`."""
    printer.text(repr(value))


class CodeRepr:
    """Base of attrs value classes whose repr is a call: ``sa.Name(field=value, ...)``.

    The class must be declared with ``repr=False`` so that attrs keeps this repr.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        parts = []
        for field in attrs.fields(cast("type[AttrsInstance]", type(self))):
            if not field.init:
                continue
            value = getattr(self, field.name)
            default = field.default
            if (
                default is not attrs.NOTHING
                and not isinstance(default, attrs.Factory)  # type: ignore[arg-type]
                and type(value) is type(default)
                and value == default
            ):
                continue
            parts.append(f"{field.alias}={code(value)}")
        return f"{PREFIX}{type(self).__name__}({', '.join(parts)})"

    _repr_pretty_ = pretty


class CodeEnum(enum.Enum):
    """Base of the public enums: the repr is ``sa.Name.MEMBER``."""

    def __repr__(self) -> str:
        return f"{PREFIX}{type(self).__name__}.{self.name}"


# An enum's body refuses _sunder_ names; set after the class exists, the hook is inherited.
CodeEnum._repr_pretty_ = pretty  # type: ignore[attr-defined]
