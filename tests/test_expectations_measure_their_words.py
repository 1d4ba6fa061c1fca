"""Each expectation measures what its words say, scales with the run or says the run it needs,
and reports "not checked" rather than passing when the run gave it nothing to check."""

from __future__ import annotations

import functools

import attrs
import pytest

import spaceactors as sa
from spaceactors import sim
from spaceactors.sim.world import Expectation

SHIPPED = ["asteroid-convoy", "distress-rescue", "trade-route"]


def run(scenario: sim.Scenario, duration: float | None = None, seed: int = 0) -> sim.Summary:
    return sa.run(
        functools.partial(sim.run_scenario, scenario, seed=seed, duration=duration), seed=seed
    )


def a_summary(**fields: object) -> sim.Summary:
    counts = "ships stations messages dockings refusals evictions trades distress_calls"
    counts += " rescues unanswered hazard_entries fuel_exhausted restarts dead_letters"
    values: dict[str, object] = dict.fromkeys([*counts.split(), "ship_updates"], 0)
    values |= {"scenario": "s", "seed": 0, "duration": 600.0, "messages_by_type": {}}
    values |= {"traded_units": 0.0, "max_answer_time": None, "cargo_imbalance": 0.0}
    values |= {"wall_seconds": 0.0, **fields}
    return sim.Summary(**values)  # type: ignore[arg-type]


def checked(expectation: tuple[str, object], summary: sim.Summary) -> tuple[str, bool, str]:
    description, check = expectation
    return sim.expectations.check(Expectation(description, check), summary)  # type: ignore[arg-type]


def test_a_rescuer_alongside_after_131_s_is_not_an_answer_within_120_s() -> None:
    # The input: accepted within 2 s, alongside only 131 s after the call.
    summary = a_summary(distress_calls=1, rescues=1, max_answer_time=2.0, max_rescue_time=131.0)
    description, ok, why = checked(sim.every_distress_answered_within(120.0), summary)
    assert (ok, why) == (False, "the slowest rescue: 131 s > 120 s")
    assert "alongside" in description
    assert "120 s" in description
    assert checked(sim.every_distress_answered_within(131.0), summary)[1]


@pytest.mark.parametrize("seconds", [100.0, 113.0, 120.0, 135.0, 157.0, 200.0])
def test_answered_within_holds_exactly_when_every_rescuer_came_in_time(seconds: float) -> None:
    summary = run(sim.load("distress-rescue"))
    _, ok, _ = checked(sim.every_distress_answered_within(seconds), summary)
    assert summary.max_rescue_time is not None
    assert ok == (summary.max_rescue_time <= seconds)


@pytest.mark.parametrize(("waited", "ok"), [(10.0, True), (200.0, False)])
def test_a_call_still_waiting_at_the_end_fails_only_once_it_waited_too_long(
    waited: float, ok: bool
) -> None:
    summary = a_summary(distress_calls=1, unanswered=1, longest_wait=waited)
    assert checked(sim.every_distress_answered_within(120.0), summary)[1] is ok


def test_expectations_with_nothing_to_check_say_so() -> None:
    no_calls = checked(sim.every_distress_answered_within(120.0), a_summary())
    assert no_calls[1:] == (True, "not checked: no distress call was made")
    no_cargo = checked(sim.no_cargo_lost(), a_summary())
    assert no_cargo[1:] == (True, "not checked: there was no cargo to lose")
    lost = checked(sim.no_cargo_lost(), a_summary(cargo_units=10.0, cargo_imbalance=1.0))
    assert lost[1:] == (False, "cargo units unaccounted for: 1 >= 1e-06")


def test_a_run_without_cargo_reports_no_cargo_lost_as_not_checked() -> None:
    @sim.scenario(duration=60.0)
    async def empty(world: sim.World) -> None:
        await world.add_ship("drifter", (0.0, 0.0, 0.0), sector="deep")
        world.expect(*sim.no_cargo_lost())

    summary = run(empty)
    assert summary.passed
    assert summary.not_checked == ["no cargo lost"]


def test_thresholds_scale_with_the_run_and_say_their_rate() -> None:
    assert sim.scaled(1_000, per=600, duration=60) == 100
    assert sim.scaled(24, per=3600, duration=10) == 1
    assert sim.scaled(1_000, per=600, duration=1200) == 2000
    with pytest.raises(ValueError, match="duration"):
        sim.scaled(1, per=600, duration=0)
    description, check = sim.at_least("dockings", lambda s: s.dockings, 1_000, per=600, duration=60)
    assert description == "at least 100 dockings (1,000 per 600 s of run)"
    assert check(a_summary(dockings=100))
    assert not check(a_summary(dockings=99))


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("duration", [30.0, 60.0, 300.0, 700.0, None])
def test_a_shipped_scenario_holds_at_a_short_and_its_default_duration(
    name: str, duration: float | None
) -> None:
    summary = run(sim.load(name), duration)
    failed = [e for e in summary.expectations if not e[1]]
    assert summary.passed, failed
    if duration is None:  # its own length checks every expectation
        assert summary.not_checked == []
    for description in summary.not_checked:  # each says the run it needs
        why = next(why for d, _, why in summary.expectations if d == description)
        assert f"this one lasted {summary.duration:g} s" in why


def test_the_large_fleet_scales_its_dockings_with_the_duration() -> None:
    from spaceactors.scenarios import large_fleet

    summary = run(large_fleet.large_fleet, 60.0)  # the input: 1,000 dockings expected
    assert summary.expectations[0] == ("at least 100 dockings (1,000 per 600 s of run)", True, "")
    assert summary.passed
    assert summary.not_checked == []
    assert summary.dockings >= 100
    shorter = run(large_fleet.large_fleet, 20.0)
    assert shorter.passed
    assert shorter.not_checked == ["at least 34 dockings (1,000 per 600 s of run)"]


def test_an_expectation_needing_a_longer_run_is_not_checked_and_says_why() -> None:
    @sim.scenario(duration=100.0)
    async def short(world: sim.World) -> None:
        await world.add_ship("drifter", (0.0, 0.0, 0.0), sector="deep")
        world.expect("a long thing happened", lambda s: False, needs=500.0)
        world.expect("a short thing happened", lambda s: True, needs=50.0)

    summary = run(short)
    assert summary.expectations == (
        (
            "a long thing happened",
            True,
            "not checked: it needs a run longer than 500 s, this one lasted 100 s",
        ),
        ("a short thing happened", True, ""),
    )
    assert not run(short, 600.0).passed


def test_events_scheduled_after_the_end_are_reported() -> None:
    summary = run(sim.load("trade-route"), 700.0)
    assert summary.unrun_events == (1200.0,)  # the crash; the shock at 600 s ran
    assert attrs.evolve(summary, wall_seconds=0.0) == attrs.evolve(
        run(sim.load("trade-route"), 700.0), wall_seconds=0.0
    )
