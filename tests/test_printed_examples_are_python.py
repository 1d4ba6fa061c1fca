"""What a failing fault test prints is Python: every public value it can show evaluates, with
``import spaceactors as sa``, to an equal value, so it can be pasted back into the test."""

from __future__ import annotations

import enum
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.vendor.pretty import pretty

import spaceactors as sa
from spaceactors import messages as m
from spaceactors import testing as sat
from spaceactors.faultplan import EVERYTHING

NAMESPACE = {"sa": sa}
ACTORS = ["bank", "teller-1", "teller-2"]


def assert_pastes_back(value: object) -> None:
    text = repr(value)
    assert text.startswith("sa."), text
    assert eval(text, dict(NAMESPACE)) == value, text
    # Hypothesis prints a drawn value with its own pretty-printer: the same text.
    assert pretty(value) == text


names = st.text(min_size=1, max_size=8).filter(str.strip)
scopes = st.builds(
    sa.Scope,
    message_types=st.lists(names, max_size=2),
    actors=st.lists(names, max_size=2),
    topics=st.lists(names, max_size=2),
)
named_rules = st.builds(
    sa.DropMessages,
    name=st.none() | names,
    start=st.floats(0, 100),
    stop=st.none() | st.floats(100, 200),
    probability=st.floats(0, 1),
    scope=scopes,
)
plans = sat.fault_plans(ACTORS, max_rules=6, max_probability=1.0)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(message=sat.any_message())
def test_every_protocol_message_prints_as_python(message: object) -> None:
    assert_pastes_back(message)


@settings(max_examples=100)
@given(plan=plans)
def test_every_drawn_fault_plan_prints_as_python(plan: sa.FaultPlan) -> None:
    assert_pastes_back(plan)
    assert repr(plan).startswith("sa.FaultPlan([")
    for rule in plan.rules:
        assert_pastes_back(rule)


@given(
    rule=sat.message_faults(1.0)
    | sat.actor_faults(ACTORS)
    | sat.partitions(ACTORS)
    | named_rules
    | st.builds(sa.CrashActor, actors=st.lists(names, min_size=1), every=st.integers(1, 9))
)
def test_every_drawn_rule_prints_as_python(rule: object) -> None:
    assert_pastes_back(rule)


@given(schedule=sat.crash_schedules(ACTORS))
def test_crash_schedules_print_as_python(schedule: tuple[sa.CrashActor, ...]) -> None:
    assert eval(repr(schedule), dict(NAMESPACE)) == schedule


@given(scope=scopes)
def test_scopes_print_as_python(scope: sa.Scope) -> None:
    assert_pastes_back(scope)


PUBLIC_ENUMS = [
    cls
    for cls in vars(sa).values()
    if isinstance(cls, type)
    and issubclass(cls, enum.Enum)
    and cls.__module__
    in {
        "spaceactors.messages",
        "spaceactors.control",
        "spaceactors.policy",
        "spaceactors.topics",
    }
]


@given(
    backoff=st.builds(
        sa.Backoff,
        initial=st.floats(0.001, 1.0),
        maximum=st.floats(1.0, 60.0),
        jitter=st.floats(0.0, 1.0, exclude_max=True),
        reset_after=st.none() | st.floats(1.0, 100.0),
    )
)
def test_a_backoff_prints_as_python(backoff: sa.Backoff) -> None:
    assert_pastes_back(backoff)


@pytest.mark.parametrize("member", [member for cls in PUBLIC_ENUMS for member in cls])
def test_public_enums_print_as_python(member: enum.Enum) -> None:
    assert repr(member) == f"sa.{type(member).__name__}.{member.name}"
    assert_pastes_back(member)


def test_every_protocol_class_has_a_strategy_that_was_checked_above() -> None:
    # The property above covers a class only if the package's strategies draw it.
    assert set(m.PROTOCOL_TYPES) <= set(sat.STRATEGIES)
    for union in m.UNIONS:
        assert set(typing.get_args(union)) <= set(sat.STRATEGIES)


def test_the_issue_plan_prints_as_the_constructor_call() -> None:
    plan = sa.FaultPlan([sa.DropMessages(probability=0.35), sa.CrashActor(actors=["bank"], nth=3)])
    assert repr(plan) == (
        "sa.FaultPlan([sa.DropMessages(probability=0.35), sa.CrashActor(actors=('bank',), nth=3)])"
    )
    assert repr(sa.FaultPlan([])) == "sa.FaultPlan([])"
    assert repr(EVERYTHING) == "sa.Scope()"


def test_a_falsifying_example_prints_the_plan_as_python_not_a_private_helper() -> None:
    @settings(
        database=None, derandomize=True, max_examples=200, phases=[Phase.generate, Phase.shrink]
    )
    @given(plan=sat.fault_plans(ACTORS), data=st.data())
    def check(plan: sa.FaultPlan, data: Any) -> None:
        data.draw(sat.fault_plans(ACTORS), label="faults")
        assert len(plan.rules) < 2

    with pytest.raises(AssertionError) as failure:
        check()
    report = "\n".join(failure.value.__notes__)
    assert "_plan(" not in report
    printed = report.split("plan=", 1)[1].split(",\n", 1)[0]
    assert printed.startswith("sa.FaultPlan([")
    plan = eval(printed, dict(NAMESPACE))
    assert isinstance(plan, sa.FaultPlan)
    assert len(plan.rules) == 2
    assert "Draw 1 (faults): sa.FaultPlan([" in report
