"""A shipped scenario checkpointed as it runs and resumed from a checkpoint in a fresh Trio run
ends as the run that never stopped: the same events after the checkpoint, the same summary."""

from __future__ import annotations

from typing import Any

import attrs
import msgpack
import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.checkpoint.driver import Checkpointer
from spaceactors.sim.loading import shipped

SEED = 4
SCENARIOS = {scenario.name: scenario for scenario in shipped()}


def run(
    name: str,
    duration: float,
    *,
    every: float | None = None,
    resume_from: dict[str, Any] | None = None,
    seed: int = SEED,
    faults: sa.FaultPlan | None = None,
) -> tuple[sim.Summary, list[Any], list[dict[str, Any]]]:
    taken: list[dict[str, Any]] = []
    events: list[Any] = []
    worlds: list[sim.World] = []

    def sink(doc: dict[str, Any]) -> None:  # through msgpack, as a state file holds it
        doc = dict(doc, trace_count=worlds[0].system.trace.count)
        taken.append(msgpack.unpackb(msgpack.packb(doc, use_bin_type=True), raw=False))

    async def main() -> sim.Summary:
        summary = await sim.run_scenario(
            SCENARIOS[name],
            seed=seed,
            duration=duration,
            faults=faults,
            trace=sa.Trace(keep=10**7),
            keep_world=worlds.append,
            checkpoints=None if every is None else Checkpointer(every, sink),
            resume_from=resume_from,
        )
        trace = worlds[0].system.trace
        assert trace is not None
        events.extend(trace.events)
        return summary

    clock = trio.testing.MockClock(autojump_threshold=0)
    if resume_from is not None:
        clock.jump(resume_from["time"])
    summary = sa.run(main, seed=seed, clock=clock)
    return summary, events, taken


def comparable(summary: sim.Summary) -> sim.Summary:
    """A summary less its wall-clock figure (the trace hash stays)."""
    return attrs.evolve(summary, wall_seconds=0.0)


LENGTHS = {"large-fleet": (40.0, 15.0)}
"""(duration, checkpoint interval) where the default (600 s, every 150 s) is too long a test."""


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_resumed_from_any_checkpoint_the_run_ends_the_same(name: str) -> None:
    duration, every = LENGTHS.get(name, (600.0, 150.0))
    whole, events, _ = run(name, duration)
    checked, checkpointed, taken = run(name, duration, every=every)
    assert checkpointed == events  # taking checkpoints changed nothing
    assert comparable(checked) == comparable(whole)
    assert len(taken) >= 2
    for point in taken:
        resumed, rest, _ = run(name, duration, resume_from=point)
        assert rest == events  # the saved events, then the same ones as never stopping
        assert comparable(resumed) == comparable(whole)
