"""A fault-injected system checkpointed at a quiescent point and resumed in a fresh Trio run
continues exactly: the same faults drawn at the same moments (drops, duplicates, delays,
reorders, crashes, slowdowns, pauses and partitions in their windows), the same events, the
same counts. A resume with another plan, or none, is refused."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import spaceactors as sa
from spaceactors.errors import CheckpointError
from tests.checkpoint_support import begin, resumed_clock, rows
from tests.test_checkpoint_engine import build

END = 40.0
PLAN = sa.FaultPlan(
    [
        sa.DropMessages(probability=0.1, name="drop"),
        sa.DuplicateMessages(probability=0.1),
        sa.DelayMessages(probability=0.3, minimum=0.2, maximum=2.5, start=3.0, stop=30.0),
        sa.ReorderMessages(probability=0.2, max_hold=1.5),
        sa.CrashActor(actors="p2", every=9, name="crashes"),
        sa.SlowActor(actors="p3", seconds=0.3, probability=0.2),
        sa.PauseActor(actors="p4", start=8.0, duration=2.0),
        sa.Partition(groups=[["p0", "p1"], ["p5"]], start=14.0, stop=20.0),
        sa.CrashActor(actors="nobody", nth=1),
    ]
)


async def main(
    resume: dict[str, Any] | None = None,
    at: float | None = None,
    out: list[Any] | None = None,
    plan: sa.FaultPlan | None = PLAN,
) -> dict[str, Any]:
    async with sa.open_system(seed=3, trace=True, faults=plan) as system:
        check = await begin(system, build, resume, at, out)
        if trio.current_time() < 25.0:
            await trio.sleep_until(25.0)
            assert system.faults is not None
            system.faults.disable("drop")  # switched by name, mid-run
        await trio.sleep_until(END)
        assert system.faults is not None
        result = {
            "events": rows(system),
            "injected": dict(system.faults.injected),
            "unmatched": [str(u) for u in system.faults.unmatched()],
            "dead": system.dead_letters.total,
        }
    check()
    return result


@pytest.fixture(scope="module")
def whole() -> dict[str, Any]:
    result: dict[str, Any] = sa.run(main, seed=9)
    kinds = {row[1] for row in result["events"]}
    # The run exercises what the injector keeps: every kind of fault, windows, a pause.
    for kind in ("drop", "duplicate", "delay", "reorder", "crash", "slow", "pause", "partition"):
        assert kind in kinds or kind in result["injected"], (kind, result["injected"])
    return result


@pytest.mark.parametrize("at", [0.5, 4.0, 9.0, 15.5, 21.0, 27.0])
def test_a_faulted_run_resumes_exactly(whole: dict[str, Any], at: float) -> None:
    saved: list[Any] = []
    assert sa.run(main, None, at, saved, seed=9) == whole  # taking it changed nothing
    (point,) = saved
    faults = point["engine"]["faults"]
    if at > 3.0:
        assert faults["injected"], "the checkpoint was to hold faults already injected"
    rest = sa.run(main, point, clock=resumed_clock(point), seed=9)
    assert rest["events"] == whole["events"][point["events"] :]
    assert rest["injected"] == whole["injected"]
    assert rest["unmatched"] == whole["unmatched"]
    assert rest["dead"] == whole["dead"]


def test_held_back_copies_are_in_some_checkpoint(whole: dict[str, Any]) -> None:
    """At least one moment holds delayed copies on the schedule (what makes resuming hard)."""
    held = []
    for at in (4.0, 6.0, 9.0, 12.0):
        saved: list[Any] = []
        sa.run(main, None, at, saved, seed=9)
        held += [e for e in saved[0]["engine"]["faults"]["entries"] if e[2] == "copy"]
    assert held


@pytest.mark.parametrize(
    ("plan", "words"),
    [
        (None, "with a fault plan and the resumed run has none"),
        (sa.FaultPlan([sa.DropMessages(probability=0.5)]), "another fault plan"),
    ],
)
def test_a_resume_with_another_plan_is_refused(plan: sa.FaultPlan | None, words: str) -> None:
    saved: list[Any] = []
    sa.run(main, None, 5.0, saved, seed=9)
    with pytest.raises(CheckpointError, match=words):
        sa.run(main, saved[0], None, None, plan, clock=resumed_clock(saved[0]), seed=9)


def test_a_reliable_copy_a_fault_holds_back_is_refused_naming_it() -> None:
    """The one part of a faulted run a checkpoint does not hold: it is refused, not saved
    wrongly (see docs/long-runs.md)."""
    from spaceactors.checkpoint import engine, quiescence
    from tests.checkpoint_support import VALUES
    from tests.test_checkpoint_reliable import build as reliable_build

    plan = sa.FaultPlan([sa.DelayMessages(probability=1.0, minimum=0.5, maximum=0.5)])
    errors: list[str] = []

    async def scenario() -> None:
        async with sa.open_system(seed=5, faults=plan) as system:
            await reliable_build(system)
            watch = quiescence.Quiescence()

            def held(system: sa.ActorSystem) -> bool:
                pending = system.reliable.state.pending.values()
                return any(e.extra is not None and e.extra.held for e in pending)

            def look() -> bool:
                if engine.busy(system) is not None or not held(system):
                    return False
                try:
                    engine.capture(system, engine.Saving(VALUES, {}))
                except CheckpointError as exc:
                    errors.append(str(exc))
                return True

            watch.wait(look)
            trio.lowlevel.add_instrument(watch)
            await trio.sleep(5.0)
            trio.lowlevel.remove_instrument(watch)

    sa.run(scenario, seed=9)
    (error,) = errors
    assert "\n" not in error
    assert "a fault plan holds copies of it back" in error
    assert "held-back copies are not checkpointed" in error
