"""A run's summary counts what its trace holds: dead letters (the shutdown's included),
restarts, messages, by reason and in total, for every shipped scenario."""

from __future__ import annotations

import collections
import functools

import pytest

import spaceactors as sa
from spaceactors import sim
from spaceactors.cli import render_summary
from spaceactors.scenarios import large_fleet
from spaceactors.trace import EventKind, Trace


def traced_run(
    scenario: sim.Scenario, duration: float | None, seed: int = 0
) -> tuple[sim.Summary, Trace, set[str]]:
    """The run's summary, its whole trace, and the names of its ships and stations."""
    trace = Trace(keep=10_000_000)
    worlds: list[sim.World] = []
    summary = sa.run(
        functools.partial(
            sim.run_scenario,
            scenario,
            seed=seed,
            duration=duration,
            trace=trace,
            keep_world=worlds.append,
        ),
        seed=seed,
    )
    return summary, trace, {*worlds[0].ships, *worlds[0].stations}


def assert_counts_agree(summary: sim.Summary, trace: Trace, world_actors: set[str]) -> None:
    assert trace.count == len(trace.events)  # nothing fell out of memory
    kinds = collections.Counter(event.kind for event in trace.events)
    letters = collections.Counter(e.detail for e in trace.of_kind(EventKind.DEAD_LETTER))
    assert summary.dead_letters == kinds[EventKind.DEAD_LETTER]
    assert summary.dead_letters_by_reason == dict(letters)
    restarts = [e for e in trace.of_kind(EventKind.RESTART) if e.actor in world_actors]
    assert summary.restarts == len(restarts)
    # No fault plan: each transmission on the trace is one delivery or reliable send.
    assert summary.messages + summary.reliable_sends == kinds[EventKind.SEND]
    sends = collections.Counter(e.message_type for e in trace.of_kind(EventKind.SEND))
    for name, count in summary.messages_by_type.items():
        assert count <= sends[name], name


def test_the_trade_route_summary_counts_the_dead_letters_its_trace_holds() -> None:
    # The input: the summary said 1 where the trace held more (the shutdown's).
    summary, trace, actors = traced_run(sim.load("trade-route"), None)
    on_trace = trace.of_kind(EventKind.DEAD_LETTER)
    assert summary.dead_letters == len(on_trace) >= 2
    assert summary.dead_letters_by_reason["left_in_mailbox"] >= 1  # left when the run ended
    assert summary.restarts == 1 == len(trace.of_kind(EventKind.RESTART))
    assert_counts_agree(summary, trace, actors)


@pytest.mark.parametrize("name", ["asteroid-convoy", "distress-rescue", "trade-route"])
@pytest.mark.parametrize("duration", [60.0, 300.0, 1300.0])
def test_every_shipped_scenarios_summary_counts_its_trace(name: str, duration: float) -> None:
    summary, trace, actors = traced_run(sim.load(name), duration, seed=3)
    assert_counts_agree(summary, trace, actors)


def test_a_small_large_fleet_summary_counts_its_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(large_fleet, "SHIPS", 200)
    summary, trace, actors = traced_run(large_fleet.large_fleet, 120.0)
    assert summary.dockings > 0
    assert_counts_agree(summary, trace, actors)


def test_the_command_prints_the_dead_letters_by_reason() -> None:
    summary, trace, _ = traced_run(sim.load("trade-route"), 600.0)
    text = render_summary(summary)
    reasons = collections.Counter(e.detail for e in trace.of_kind(EventKind.DEAD_LETTER))
    line = next(line for line in text.splitlines() if line.strip().startswith("dead letters"))
    assert line.split()[2] == str(sum(reasons.values()))
    for reason, count in reasons.items():
        assert f"{count} {reason}" in line
