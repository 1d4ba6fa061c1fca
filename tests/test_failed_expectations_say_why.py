"""An expectation that fails says why: the value the run measured and the threshold it missed
(``ships docked: 153 < 1000``), in the summary and in the command's report."""

from __future__ import annotations

import functools
import operator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import sim
from spaceactors.cli.report import render_summary
from spaceactors.sim.world import Expectation

OPERATORS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
numbers = st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False)


def a_summary(**fields: object) -> sim.Summary:
    counts = "ships stations messages dockings refusals evictions trades distress_calls"
    counts += " rescues unanswered hazard_entries fuel_exhausted restarts dead_letters"
    values: dict[str, object] = dict.fromkeys([*counts.split(), "ship_updates"], 0)
    values |= {"scenario": "s", "seed": 0, "duration": 600.0, "messages_by_type": {}}
    values |= {"traded_units": 0.0, "max_answer_time": None, "cargo_imbalance": 0.0}
    values |= {"wall_seconds": 0.0, **fields}
    return sim.Summary(**values)  # type: ignore[arg-type]


def checked(expectation: tuple[str, Any], summary: sim.Summary) -> tuple[str, bool, str]:
    return sim.expectations.check(Expectation(*expectation), summary)


def test_the_issue_example_reads_as_measured_against_threshold() -> None:
    verdict = sim.compare("ships docked", 153, ">=", 1000)
    assert not verdict
    assert verdict.why == "ships docked: 153 < 1000"
    assert sim.compare("ships docked", 1000, ">=", 1000)


@given(measured=numbers, op=st.sampled_from(list(OPERATORS)), threshold=numbers)
def test_a_comparison_holds_as_its_operator_and_its_why_states_the_opposite(
    measured: float, op: str, threshold: float
) -> None:
    verdict = sim.compare("value", measured, op, threshold, unit="s")
    assert bool(verdict) is OPERATORS[op](measured, threshold)
    if verdict:
        assert verdict.why == ""
        return
    what, relation = verdict.why.split(": ", 1)
    shown, negation, bound = relation.replace(" s", "").split(" ")
    assert what == "value"
    assert negation != op
    # What the report shows is true of the numbers it shows (never "0.3 < 0.3").
    assert OPERATORS[negation](float(shown), float(bound))
    assert not OPERATORS[op](float(shown), float(bound))


def test_a_bad_operator_or_label_is_a_scenario_error() -> None:
    with pytest.raises(sim.ScenarioError, match=r"compare\(op\) must be one of"):
        sim.compare("x", 1, "=>", 2)
    with pytest.raises(sim.ScenarioError, match=r"compare\(what\)"):
        sim.compare("", 1, ">=", 2)


@pytest.mark.parametrize(
    ("expectation", "summary", "why"),
    [
        (
            sim.at_least("dockings", lambda s: s.dockings, 1_000, per=600, duration=600),
            a_summary(dockings=153),
            "dockings: 153 < 1000",
        ),
        (
            sim.every_distress_answered_within(120.0),
            a_summary(distress_calls=2, rescues=2, max_rescue_time=131.5),
            "the slowest rescue: 131.5 s > 120 s",
        ),
        (
            sim.every_distress_answered_within(120.0),
            a_summary(distress_calls=2, rescues=1, max_rescue_time=50.0, longest_wait=300.0),
            "a call still waiting for a rescuer: 300 s > 120 s",
        ),
        (
            sim.no_cargo_lost(),
            a_summary(cargo_units=40.0, cargo_imbalance=2.5),
            "cargo units unaccounted for: 2.5 >= 1e-06",
        ),
    ],
)
def test_every_ready_made_expectation_says_what_it_measured(
    expectation: tuple[str, Any], summary: sim.Summary, why: str
) -> None:
    assert checked(expectation, summary)[1:] == (False, why)


def test_a_plain_false_and_a_verdict_and_a_pass_are_reported_as_such() -> None:
    summary = a_summary(trades=1)
    assert checked(("plain", lambda s: s.trades > 1), summary)[1:] == (
        False,
        "the check returned False",
    )
    both = ("both", lambda s: sim.compare("ships", s.ships, "==", 0) and sim.compare(
        "trades", s.trades, ">=", 2
    ))
    assert checked(both, summary)[1:] == (False, "trades: 1 < 2")
    assert checked(("held", lambda s: sim.compare("trades", s.trades, ">", 0)), summary)[1:] == (
        True,
        "",
    )


@sim.scenario(name="too-few", duration=60.0, description="an expectation the run misses")
async def too_few(world: sim.World) -> None:
    await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
    world.expect(*sim.at_least("trades", lambda s: s.trades, 30, per=60, duration=world.duration))
    world.expect("one station", lambda s: sim.compare("stations", s.stations, "==", 1))


def test_a_failed_run_reports_the_measured_value_and_the_threshold() -> None:
    summary = sa.run(functools.partial(sim.run_scenario, too_few, seed=1), seed=1)
    assert summary.expectations == (
        ("at least 30 trades (30 per 60 s of run)", False, "trades: 0 < 30"),
        ("one station", True, ""),
    )
    report = render_summary(summary)
    assert "FAIL at least 30 trades (30 per 60 s of run) (trades: 0 < 30)" in report


@pytest.mark.parametrize("name", ["asteroid-convoy", "distress-rescue", "trade-route"])
def test_the_shipped_scenarios_say_why_when_their_expectations_fail(name: str) -> None:
    # Every message lost: what the scenario expects of its ships fails, and says why.
    plan = sa.FaultPlan([sa.DropMessages(probability=1.0)])
    run = functools.partial(sim.run_scenario, sim.load(name), seed=0, faults=plan)
    summary = sa.run(run, seed=0)
    failed = [(description, why) for description, ok, why in summary.expectations if not ok]
    assert failed
    for description, why in failed:
        assert why, description
        assert not why.startswith("the check returned"), description
