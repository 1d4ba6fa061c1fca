"""A scenario's duration and step: a run that can end, or a `ScenarioError` saying why."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from spaceactors import sim
from spaceactors.sim.scenario import MAX_TICKS, MIN_STEP

seconds = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)


async def _build(world: sim.World) -> None:
    pass


@given(duration=seconds, step=seconds)
def test_a_scenario_is_a_run_that_ends_or_a_scenario_error(duration: object, step: object) -> None:
    try:
        made = sim.Scenario("s", _build, duration=duration, step=step)  # type: ignore[arg-type]
    except sim.ScenarioError as error:
        message = str(error)
    else:
        message = ""
    if message:
        assert len(message) < 200  # values are cut, not echoed in full
        return
    assert 0 < made.duration < math.inf
    assert MIN_STEP <= made.step < math.inf
    assert made.duration / made.step <= MAX_TICKS


@given(duration=seconds)
def test_a_run_length_is_finite_positive_and_countable_or_refused(duration: object) -> None:
    shipped = sim.Scenario("s", _build, duration=60.0, step=2.0)
    try:
        length = shipped.run_length(duration)  # type: ignore[arg-type]
    except sim.ScenarioError:
        return
    if duration is None:
        assert length == 60.0
    else:
        assert 0 < length < math.inf
        assert length / 2.0 <= MAX_TICKS
