"""Expectations: the checks a scenario states about its run, and the ready-made ones.

An expectation is a description and a check on the run's `Summary`. Each one measures exactly
what its words say; one that cannot mean anything in this run (a rescue time with no distress
call, an event the run ends before) is reported as *not checked*, never passed unseen: the
check raises `NotChecked`, or `World.expect(..., needs=seconds)` says how long a run it needs.
Thresholds that grow with the run's length scale with it (`scaled`), and say so.

An expectation that fails says why: a check returns a `Verdict` (``compare("ships docked",
s.ships_docked, ">=", 1000)`` fails as ``ships docked: 153 < 1000``), and the ready-made ones
all do. A check that returns a plain ``False`` is reported as such.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from spaceactors.checks import short_repr
from spaceactors.errors import SpaceActorsError
from spaceactors.sim import arguments
from spaceactors.sim.arguments import ScenarioError

if TYPE_CHECKING:
    from spaceactors.sim.scenario import Summary

NOT_CHECKED = "not checked: "
"""How the `why` of an expectation that was not checked begins (``Summary.expectations``)."""


def _of(kind: type) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise ScenarioError(
                f"Verdict({attribute.name}) must be a {kind.__name__}, got {short_repr(value)}"
            )

    return check


@attrs.frozen
class Verdict:
    """What a check found: whether it held, and (when it did not) why, with the value measured.

    It is true when the expectation held, so ``compare(...) and compare(...)`` and ``not``
    work as on a bool; the first failing part of an ``and`` is the one reported.

    Raises:
        ScenarioError: `held` is not a bool or `why` not a string.
    """

    held: bool = attrs.field(validator=_of(bool))
    why: str = attrs.field(default="", validator=_of(str))

    def __bool__(self) -> bool:
        return self.held


Check = Callable[["Summary"], bool | Verdict]
"""An expectation's check: a bool, or a `Verdict` that says why it failed."""

_OPERATORS: Final[dict[str, tuple[Callable[[Any, Any], bool], str]]] = {
    ">=": (operator.ge, "<"),
    ">": (operator.gt, "<="),
    "<=": (operator.le, ">"),
    "<": (operator.lt, ">="),
    "==": (operator.eq, "!="),
    "!=": (operator.ne, "=="),
}


def compare(
    what: str, measured: float, op: str, threshold: float, *, unit: str = ""
) -> Verdict:
    """Whether ``measured <op> threshold`` holds; if not, the verdict says so with both
    values: ``compare("ships docked", 153, ">=", 1000).why == "ships docked: 153 < 1000"``.

    Args:
        what: what was measured, as the report names it.
        measured: the value the run gave.
        op: one of ``>=``, ``>``, ``<=``, ``<``, ``==``, ``!=``.
        threshold: the value it is held against.
        unit: appended to both numbers (``"s"`` reads ``250 s > 180 s``).

    Raises:
        ScenarioError: `what` is not a non-empty string, `op` not one of the above, `measured`
            or `threshold` not a number (NaN and bools included), `unit` not a string.
    """
    arguments.name("compare(what)", what)
    if not isinstance(op, str) or op not in _OPERATORS:
        raise ScenarioError(
            f"compare(op) must be one of {', '.join(_OPERATORS)}, got {short_repr(op)}"
        )
    for label, value in (("measured", measured), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ScenarioError(f"compare({label}) must be a number, got {short_repr(value)}")
    if not isinstance(unit, str):
        raise ScenarioError(f"compare(unit) must be a string, got {short_repr(unit)}")
    test, negation = _OPERATORS[op]
    if test(measured, threshold):
        return Verdict(True)
    shown, bound = _numbers(measured, threshold)
    suffix = f" {unit}" if unit else ""
    return Verdict(False, f"{what}: {shown}{suffix} {negation} {bound}{suffix}")


def _numbers(measured: object, threshold: object) -> tuple[str, str]:
    """Both values, short, and never shown equal when they differ (0.30000000000000004)."""

    def short(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.6g}"
        return f"{value}"

    shown, bound = short(measured), short(threshold)
    if shown == bound and measured != threshold:
        return repr(measured), repr(threshold)
    return shown, bound


@attrs.frozen
class Expectation:
    """A named check on the finished run's summary; `needs` is the shortest run (seconds)
    in which the check means anything (a shorter run reports it as not checked)."""

    description: str
    check: Check
    needs: float | None = None


class NotChecked(SpaceActorsError):
    """Raised by an expectation's check when the run gives it nothing to check; the message
    says why (``"no distress call was made"``). The expectation is reported as not checked:
    it neither fails the run nor counts as met."""


def scaled(count: float, *, per: float, duration: float) -> int:
    """`count` for a run of `per` seconds, scaled to a run of `duration` seconds: the
    threshold of an expectation about a rate (``scaled(1000, per=600, duration=60)`` is 100).
    Rounded up, and at least 1.

    Raises:
        ScenarioError: `count` is not a finite number >= 0, `per` or `duration` is not a
            finite number of seconds > 0 (a bool, NaN, an infinity or a huge integer
            included), or the scaled threshold is beyond a float's range.
    """
    return _scaled("scaled", count, per, duration)


def _scaled(caller: str, count: object, per: object, duration: object) -> int:
    number = arguments.non_negative(f"{caller}(count)", count)
    length = arguments.seconds(f"{caller}(per)", per, zero=False)
    run = arguments.seconds(f"{caller}(duration)", duration, zero=False)
    need = number * run / length
    if not math.isfinite(need):
        raise ScenarioError(
            f"{caller}(count={number:g}, per={length:g}, duration={run:g}) asks for a "
            "threshold beyond a float's range"
        )
    return max(1, math.ceil(need))


def check(expectation: Expectation, summary: Summary) -> tuple[str, bool, str]:
    """``(description, held, why)`` for one expectation on a finished run: `why` says what
    went wrong (a check that raised fails), or begins with `NOT_CHECKED`."""
    description = expectation.description
    if expectation.needs is not None and summary.duration <= expectation.needs:
        return (
            description,
            True,
            f"{NOT_CHECKED}it needs a run longer than {expectation.needs:g} s, "
            f"this one lasted {summary.duration:g} s",
        )
    try:
        result = expectation.check(summary)
        held = bool(result)
    except NotChecked as exc:
        return description, True, f"{NOT_CHECKED}{exc}"
    except Exception as exc:  # a broken check fails its expectation, with why
        return description, False, f"{type(exc).__name__}: {exc}"
    if held:
        return description, True, ""
    why = result.why if isinstance(result, Verdict) else ""
    return description, False, why or f"the check returned {short_repr(result)}"


# --- expectations users reach for -------------------------------------------------------------

CARGO_TOLERANCE = 1e-6
"""How many units of cargo `no_cargo_lost` lets rounding account for."""



def every_distress_answered_within(seconds: float) -> tuple[str, Check]:
    """Every distress call was answered, a rescuer alongside the caller, within `seconds` of
    the call (`Summary.max_rescue_time`). A call still waiting when the run ends fails it only
    once it has waited longer than `seconds` (`Summary.longest_wait`); a run without any
    distress call leaves it not checked.

    Raises:
        ScenarioError: `seconds` is not a finite number of seconds >= 0.
    """
    seconds = arguments.seconds("every_distress_answered_within(seconds)", seconds)

    def answered(summary: Summary) -> Verdict:
        if not summary.distress_calls:
            raise NotChecked("no distress call was made")
        rescue, wait = summary.max_rescue_time or 0.0, summary.longest_wait or 0.0
        if wait > rescue:
            return compare("a call still waiting for a rescuer", wait, "<=", seconds, unit="s")
        return compare("the slowest rescue", rescue, "<=", seconds, unit="s")

    return f"every distress call answered (a rescuer alongside) within {seconds:g} s", answered


def no_cargo_lost() -> tuple[str, Check]:
    """Cargo is conserved: every unit is in a hold or a store, or was made or used by a
    station (crashes in the middle of trades included). A run with no cargo anywhere leaves
    it not checked."""

    def conserved(summary: Summary) -> Verdict:
        if not summary.cargo_units and not summary.traded_units:
            raise NotChecked("there was no cargo to lose")
        return compare("cargo units unaccounted for", summary.cargo_imbalance, "<", CARGO_TOLERANCE)

    return "no cargo lost", conserved


def at_least(
    what: str, value: Callable[[Summary], float], count: float, *, per: float, duration: float
) -> tuple[str, Check]:
    """``value(summary) >= scaled(count, per=per, duration=duration)``, described with the
    threshold and the rate it comes from (``"at least 100 dockings (1,000 per 600 s)"``); a
    failure says what was measured (``dockings: 53 < 100``).

    Raises:
        ScenarioError: `what` is not a non-empty string, `value` is not callable, or `count`,
            `per` or `duration` is refused by `scaled`.
    """
    arguments.name("at_least(what)", what)
    if not callable(value):
        raise ScenarioError(f"at_least(value) must be a function, got {short_repr(value)}")
    need = _scaled("at_least", count, per, duration)
    return (
        f"at least {need:,} {what} ({count:,g} per {per:g} s of run)",
        lambda summary: compare(what, value(summary), ">=", need),
    )
