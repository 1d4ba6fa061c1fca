"""A fault rule that does nothing in a run is reported: by `system.faults.unmatched()`, on the
trace when the system closes, and in the summary `spaceactors run` prints."""

from __future__ import annotations

import functools

import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.cli import render_summary
from spaceactors.trace import EventKind


class Echo(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


async def run_plan(plan: sa.FaultPlan, seconds: float = 10.0) -> tuple[list[str], list[str]]:
    """Run two echo actors under `plan` for `seconds`; (unmatched() at the end, trace details)."""
    async with sa.open_system(trace=True, faults=plan) as system:
        a = await system.spawn(Echo, name="ship-1")
        await system.spawn(Echo, name="station")
        for _ in range(5):
            await system.router.route(a, "ping")
        await trio.sleep(seconds)
        assert system.faults is not None
        found = [str(u) for u in system.faults.unmatched()]
    assert system.trace is not None
    traced = [e.detail for e in system.trace.of_kind(EventKind.UNMATCHED)]
    return found, traced


async def test_a_crash_rule_whose_pattern_matches_no_actor_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.CrashActor(actors="shp-*", nth=1, name="typo")])
    found, traced = await run_plan(plan)
    assert found == traced == ["typo: no actor matched actors 'shp-*'"]


async def test_only_the_dead_patterns_of_each_kind_of_rule_are_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan(
        [
            sa.CrashActor(actors=["ship-*", "ghost"], every=100),
            sa.SlowActor(actors="nobody", seconds=1.0),
            sa.PauseActor(actors="station", start=1.0, duration=1.0),
            sa.DropMessages(probability=0.5, scope=sa.Scope(actors="phantom-*")),
            sa.Partition(groups=[["ship-1"], ["elsewhere"]], start=1.0),
        ]
    )
    found, traced = await run_plan(plan)
    assert (
        found
        == traced
        == [
            "CrashActor: no actor matched actors 'ghost'",
            "SlowActor: no actor matched actors 'nobody'",
            "DropMessages: no actor matched scope.actors 'phantom-*'",
            "Partition: no actor matched group 2 'elsewhere'",
        ]
    )


async def test_a_rule_whose_window_opens_after_the_run_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.DropMessages(start=3600.0, name="late")])
    found, traced = await run_plan(plan, seconds=10.0)
    assert found == traced
    assert len(found) == 1
    assert found[0].startswith("late: its window opens at 3600 s, after the run ended (at 10")


async def test_a_message_rule_whose_scope_covered_nothing_is_reported(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan(
        [
            sa.DuplicateMessages(scope=sa.Scope(message_types="TradeOfer"), name="typo"),
            sa.DelayMessages(scope=sa.Scope(message_types="str"), name="used"),
        ]
    )
    found, _ = await run_plan(plan)
    assert found == ["typo: no message in its scope was sent while it was on"]


async def test_rules_that_acted_are_not_reported(autojump_clock: trio.testing.MockClock) -> None:
    plan = sa.FaultPlan([sa.CrashActor(actors="ship-*", nth=2), sa.DropMessages(probability=0.5)])
    found, traced = await run_plan(plan)
    assert found == traced == []


def test_the_summary_of_a_run_names_the_rules_that_did_nothing() -> None:
    plan = sa.FaultPlan(
        [
            sa.CrashActor(actors="haulr-*", nth=1, name="typo"),
            sa.DropMessages(probability=0.1, start=5000.0, name="late"),
        ]
    )
    scenario = sim.load("trade-route")
    summary = sa.run(
        functools.partial(sim.run_scenario, scenario, seed=0, duration=300.0, faults=plan)
    )
    assert summary.unmatched_faults == (
        "typo: no actor matched actors 'haulr-*'",
        "late: its window opens at 5000 s, after the run ended (at 300 s)",
    )
    text = render_summary(summary)
    assert "faults       2 rule(s) did nothing:" in text
    assert "    typo: no actor matched actors 'haulr-*'" in text


async def test_rules_that_never_fired_are_reported_and_those_that_did_are_not(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan(
        [
            sa.DropMessages(probability=0.0, name="drop-p0"),
            sa.CrashActor(actors=["a"], every=1, start=2.0, stop=2.0, name="empty-window"),
            sa.PauseActor(actors=["a"], start=1.0, duration=0.0, name="pause-0"),
            sa.SlowActor(actors=["a"], seconds=0.0, name="slow-0"),
            sa.CrashActor(actors=["a"], nth=1000, name="nth-1000"),
            sa.DuplicateMessages(probability=1.0, name="duplicates"),
            sa.SlowActor(actors=["a"], seconds=0.5, name="slow"),
        ]
    )
    async with sa.open_system(faults=plan, trace=True) as system:
        ref = await system.spawn(Echo, name="a")
        for n in range(5):
            await system.send(ref, n)
            await trio.sleep(1.0)
    assert system.faults is not None
    reported = [(u.rule.name, u.reason) for u in system.faults.unmatched()]
    assert reported == [
        (name, "it never fired while it was on")
        for name in ["drop-p0", "empty-window", "pause-0", "slow-0", "nth-1000"]
    ]
