"""The simulation's expectation helpers refuse bad thresholds with a short `ScenarioError`.

`scaled`, `at_least` and `every_distress_answered_within` used to raise ``OverflowError``,
``TypeError``, ``RecursionError`` or a plain ``ValueError`` echoing 100,000 characters, and to
accept bools, NaN (a threshold that can never hold: a silent no-op) and negative thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spaceactors import sim
from spaceactors.checks import SHORT, short_repr

_deep: list[Any] = []
_cursor = _deep
for _ in range(100_000):
    _cursor.append([])
    _cursor = _cursor[0]

NOT_A_NUMBER: list[object] = [
    True,
    False,
    None,
    "5",
    "a" * 100_000,
    [1],
    _deep,
    b"x",
    1j,
    object(),
    math.nan,
]
TOO_LARGE: list[object] = [10**400, 2**1024, -(10**400)]
INFINITE: list[object] = [math.inf, -math.inf]
NEGATIVE: list[object] = [-1, -0.5, -1e-300]
HOSTILE = NOT_A_NUMBER + TOO_LARGE + INFINITE + NEGATIVE


def _value(summary: object) -> float:
    return 1.0


def _at_least(count: Any = 5, per: Any = 600.0, duration: Any = 60.0) -> object:
    return sim.at_least("dockings", _value, count, per=per, duration=duration)


CALLS: dict[str, Callable[[Any], object]] = {
    "scaled(count)": lambda v: sim.scaled(v, per=600.0, duration=60.0),
    "scaled(per)": lambda v: sim.scaled(5, per=v, duration=60.0),
    "scaled(duration)": lambda v: sim.scaled(5, per=600.0, duration=v),
    "at_least(count)": lambda v: _at_least(count=v),
    "at_least(per)": lambda v: _at_least(per=v),
    "at_least(duration)": lambda v: _at_least(duration=v),
    "every_distress_answered_within(seconds)": sim.every_distress_answered_within,
}


@pytest.mark.parametrize("value", HOSTILE, ids=short_repr)
@pytest.mark.parametrize("argument", sorted(CALLS))
def test_a_hostile_threshold_is_a_short_scenario_error_naming_it(
    argument: str, value: object
) -> None:
    with pytest.raises(sim.ScenarioError) as caught:
        CALLS[argument](value)
    message = str(caught.value)
    assert message.startswith(argument), message
    assert len(message) < len(argument) + 3 * SHORT + 80, message


def test_zero_length_runs_and_rates_are_refused() -> None:
    with pytest.raises(sim.ScenarioError, match=r"^scaled\(per\) must be .* > 0, got 0"):
        sim.scaled(5, per=0, duration=60.0)
    with pytest.raises(sim.ScenarioError, match=r"^scaled\(duration\) must be .* > 0, got 0"):
        sim.scaled(5, per=60.0, duration=0)


def test_a_threshold_beyond_a_float_is_refused_not_overflowed() -> None:
    with pytest.raises(sim.ScenarioError, match="beyond a float's range"):
        sim.scaled(1e300, per=1e-300, duration=1e300)


@pytest.mark.parametrize("what", ["", "   ", None, 3, "\ud800 ore", ["x"]])
def test_at_least_refuses_a_bad_description(what: object) -> None:
    with pytest.raises(sim.ScenarioError, match=r"^at_least\(what\) must be"):
        sim.at_least(what, _value, 5, per=600.0, duration=60.0)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [None, 5, "summary.docked"])
def test_at_least_refuses_a_value_that_is_not_a_function(value: object) -> None:
    with pytest.raises(sim.ScenarioError, match=r"^at_least\(value\) must be a function"):
        sim.at_least("dockings", value, 5, per=600.0, duration=60.0)  # type: ignore[arg-type]


finite_positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)


@given(
    st.one_of(st.integers(0, 10**6), st.floats(0, 1e6)),
    finite_positive,
    finite_positive,
)
def test_valid_thresholds_scale_to_a_whole_count_at_least_one(
    count: float, per: float, duration: float
) -> None:
    need = sim.scaled(count, per=per, duration=duration)
    assert isinstance(need, int)
    assert need >= 1
    assert need >= count * duration / per


@given(st.floats(0, 1e6) | st.integers(0, 10**6))
def test_valid_rescue_times_are_accepted_and_said(seconds: float) -> None:
    description, check = sim.every_distress_answered_within(seconds)
    assert f"{float(seconds):g} s" in description
    assert callable(check)
