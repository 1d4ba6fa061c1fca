"""Argument checks shared by every public constructor and call: one wording, one error type.

Every bad argument -- a wrong type (a bool where a number is due included), NaN, an infinity
where none is allowed, an integer too large for a float, a value out of range -- raises
``ValueError`` or the documented subclass the caller names (`InvalidSpec` for specs, options and
fault rules, `InvalidMessage` for protocol messages, ...), never ``TypeError`` or
``OverflowError``. The message names the argument as the user wrote it and shows the value
through `short_repr`, so a 4,000-digit integer or a deeply nested list never floods a log.
"""

from __future__ import annotations

import math
import reprlib
import sys

SHORT = 60
"""Longest value `short_repr` shows, in characters."""

_LOG10_2 = math.log10(2)


class _Short(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = SHORT
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 3 * SHORT:  # ~54 digits; repr() refuses past 4,300
            digits = int(abs(x).bit_length() * _LOG10_2) + 1
            return f"{'-' if x < 0 else ''}<int of about {digits} digits>"
        return super().repr_int(x, level)


_SHORT = _Short()


def short_repr(value: object) -> str:
    """`repr(value)` cut to about `SHORT` characters, for error messages.

    Never raises: huge integers are described by their size, deep or huge containers are
    elided, and an object whose ``repr`` fails is shown by its type.
    """
    try:
        text = _SHORT.repr(value)
    except Exception:  # a repr that raises, RecursionError on pathological nesting
        text = f"<{type(value).__name__} object>"
    return shorten(text)


def describe(error: BaseException | None) -> str:
    """``repr(error)`` for logs, dead letters and statuses; never raises (an exception whose
    ``__repr__`` or ``__str__`` raises is described by its type)."""
    try:
        return repr(error)
    except Exception:
        return f"<{type(error).__name__} (its repr raised)>"


def shorten(text: str) -> str:
    """`text` cut to about `SHORT` characters (for names and words quoted in messages)."""
    return text if len(text) <= SHORT + 5 else text[:SHORT] + "..."


def number(name: str, value: object, error: type[ValueError] = ValueError) -> float:
    """`value` as a float: an int or a float (not a bool, not NaN) that a float can hold.

    Infinities pass (callers that refuse them say so); use `finite` for finite numbers.

    Raises:
        error: with a message naming `name`.
    """
    if type(value) is float:
        if value != value:
            raise error(f"{name} must be a number, got nan")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{name} must be a number, got {short_repr(value)}")
    try:
        result = float(value)
    except OverflowError:
        raise error(
            f"{name} is too large: {short_repr(value)} is beyond a float's range "
            f"(±{sys.float_info.max:.3g})"
        ) from None
    if result != result:
        raise error(f"{name} must be a number, got nan")
    return result


def finite(name: str, value: object, error: type[ValueError] = ValueError) -> float:
    """`number`, and finite."""
    result = number(name, value, error)
    if not math.isfinite(result):
        raise error(f"{name} must be finite, got {result}")
    return result


def seconds(
    name: str,
    value: object,
    error: type[ValueError] = ValueError,
    *,
    zero: bool = True,
    infinite: bool = False,
) -> float:
    """A duration in seconds: >= 0 (> 0 unless `zero`), finite unless `infinite`."""
    result = number(name, value, error)
    if result < 0 or (result == 0 and not zero) or (result == math.inf and not infinite):
        bound = ">= 0" if zero else "> 0"
        kind = "a number of seconds" if infinite else "a finite number of seconds"
        raise error(f"{name} must be {kind} {bound}, got {short_repr(value)}")
    return result


def positive(name: str, value: object, error: type[ValueError] = ValueError) -> float:
    """A finite number > 0."""
    result = finite(name, value, error)
    if result <= 0:
        raise error(f"{name} must be > 0, got {short_repr(value)}")
    return result


def fraction(
    name: str, value: object, error: type[ValueError] = ValueError, *, one: bool = True
) -> float:
    """A number in [0, 1] (or [0, 1) unless `one`)."""
    result = number(name, value, error)
    if not (0.0 <= result <= 1.0) or (result == 1.0 and not one):
        interval = "[0, 1]" if one else "[0, 1)"
        raise error(f"{name} must be in {interval}, got {short_repr(value)}")
    return result


def integer(
    name: str,
    value: object,
    error: type[ValueError] = ValueError,
    *,
    low: int = 0,
    high: int | None = None,
) -> int:
    """An int (not a bool) with ``low <= value <= high``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be an int, got {short_repr(value)}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise error(f"{name} must be an int {bound}, got {short_repr(value)}")
    return value


def name(what: str, value: object, error: type[ValueError] = ValueError) -> str:
    """A name (of an actor, a supervisor, a child, a topic, a scenario...): a non-empty
    string that UTF-8 can encode (no lone surrogate such as ``"\\udc80"``), so every trace,
    log and wire format can carry it.

    Raises:
        error: with a message naming `what`.
    """
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} must be a non-empty string, got {short_repr(value)}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise error(
                f"{what} must be text UTF-8 can encode, got {short_repr(value)}: "
                f"a lone surrogate {value[exc.start]!r} at index {exc.start}"
            ) from None
    return value
