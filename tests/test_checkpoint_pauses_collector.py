"""A checkpoint's capture, decoding and rebuild run with the cyclic garbage collector held off
(it would scan the whole run's heap for nothing), and leave it exactly as they found it: on,
off, or after a failure. Reading a counter for a checkpoint takes no number from it."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.checkpoint.driver import Checkpointer
from spaceactors.checkpoint.writer import decode, encode
from spaceactors.counters import peek
from spaceactors.delivery import DeliverySchedule
from spaceactors.errors import StateFileError
from spaceactors.sim import persist
from spaceactors.sim.loading import shipped

SEED = 3
SCENARIO = next(scenario for scenario in shipped() if scenario.name == "distress-rescue")


@pytest.fixture(params=[True, False], ids=["collector-on", "collector-off"])
def collector(request: pytest.FixtureRequest) -> Iterator[bool]:
    """The collector as the user left it before the run (on or off); put back after."""
    was = gc.isenabled()
    if request.param:
        gc.enable()
    else:
        gc.disable()
    try:
        yield request.param
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def checkpointed(capture: Any, every: float = 5.0) -> tuple[Checkpointer, list[bool]]:
    """A run of 20 virtual seconds with a checkpoint every `every` s; what the collector was
    when the sink got each one."""
    after: list[bool] = []
    checkpoints = Checkpointer(every, lambda doc: after.append(gc.isenabled()))

    async def main() -> None:
        checkpoints.attach(capture)
        for _ in range(20):  # (a quiescent point each virtual second)
            await trio.sleep(1.0)
        checkpoints.detach()

    sa.run(main, seed=SEED, clock=trio.testing.MockClock(autojump_threshold=0))
    return checkpoints, after


def test_the_capture_runs_with_the_collector_off_and_leaves_it_as_found(collector: bool) -> None:
    during: list[bool] = []

    def capture() -> dict[str, Any]:
        during.append(gc.isenabled())
        return {"time": trio.current_time()}

    checkpoints, after = checkpointed(capture)
    assert checkpoints.taken == 3  # at 5, 10 and 15 s
    assert during == [False] * 3
    assert after == [collector] * 3
    assert gc.isenabled() is collector


def test_a_failed_capture_leaves_the_collector_as_found(collector: bool) -> None:
    def capture() -> dict[str, Any]:
        raise sa.CheckpointError("actor 'x': field 'y' cannot be saved")

    checkpoints, _ = checkpointed(capture)
    assert isinstance(checkpoints.error, sa.CheckpointError)
    assert gc.isenabled() is collector


def test_decoding_leaves_the_collector_as_found_whether_it_succeeds_or_not(
    collector: bool,
) -> None:
    doc = {"time": 1.5, "rows": [[i, f"s{i}", {"x": float(i)}] for i in range(100)]}
    assert decode(encode(doc), "here") == doc
    assert gc.isenabled() is collector
    with pytest.raises(StateFileError, match="truncated: not a checkpoint"):
        decode(encode(doc)[:-7], "truncated")
    assert gc.isenabled() is collector


def run_scenario(
    resume_from: dict[str, Any] | None = None,
) -> tuple[sim.Summary, list[dict[str, Any]]]:
    taken: list[dict[str, Any]] = []

    def sink(doc: dict[str, Any]) -> None:
        taken.append(msgpack.unpackb(msgpack.packb(doc, use_bin_type=True), raw=False))

    async def main() -> sim.Summary:
        return await sim.run_scenario(
            SCENARIO,
            seed=SEED,
            duration=300.0,
            checkpoints=Checkpointer(100.0, sink) if resume_from is None else None,
            resume_from=resume_from,
        )

    clock = trio.testing.MockClock(autojump_threshold=0)
    if resume_from is not None:
        clock.jump(resume_from["time"])
    return sa.run(main, seed=SEED, clock=clock), taken


def test_the_rebuild_runs_with_the_collector_off_and_the_resumed_run_ends_the_same(
    collector: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, taken = run_scenario()
    assert gc.isenabled() is collector
    rebuilding: list[bool] = []
    real = persist.restore_world

    def restore_world(*args: Any, **kwargs: Any) -> persist.Pending:
        rebuilding.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(persist, "restore_world", restore_world)
    resumed, _ = run_scenario(resume_from=taken[-1])
    assert rebuilding == [False]
    assert gc.isenabled() is collector
    assert resumed.trace_hash == whole.trace_hash
    assert resumed.ship_updates == whole.ship_updates


def test_peeking_at_a_counter_takes_no_number_from_it() -> None:
    counter = itertools.count(41)
    first, counter = peek(counter)
    again, counter = peek(counter)
    assert (first, again, next(counter), next(counter)) == (41, 41, 41, 42)


async def test_reading_the_schedules_next_sequence_takes_none(autojump_clock: Any) -> None:
    schedule = DeliverySchedule()
    before = [schedule.next_sequence for _ in range(3)]
    assert before == [before[0]] * 3
    schedule.restore([], 7)
    assert [schedule.next_sequence, schedule.next_sequence] == [7, 7]


def test_a_checkpoint_takes_no_automatic_name_nor_world_sequence() -> None:
    """Checkpointing a run (reading the system's automatic names, the world's event sequence
    and trade ids) changes nothing a later spawn, event or trade gets: the checkpointed run's
    summary and trace hash are the plain run's."""

    async def main(every: float | None) -> tuple[sim.Summary, list[str], int]:
        worlds: list[sim.World] = []
        checkpoints = None if every is None else Checkpointer(every, lambda doc: None)
        summary = await sim.run_scenario(
            SCENARIO,
            seed=SEED,
            duration=120.0,
            keep_world=worlds.append,
            checkpoints=checkpoints,
        )
        system = worlds[0].system
        names = [f"auto-{next(system._auto_names)}"]
        return summary, names, persist.next_sequence(worlds[0])

    def run(every: float | None) -> tuple[sim.Summary, list[str], int]:
        return sa.run(main, every, seed=SEED, clock=trio.testing.MockClock(autojump_threshold=0))

    plain = run(None)
    often = run(0.5)
    assert often[0].trace_hash == plain[0].trace_hash
    assert often[1:] == plain[1:]


def test_a_checkpoint_encoded_in_pieces_is_byte_for_byte_msgpacks() -> None:
    """The writer packs large lists and dicts a piece at a time (the run gets the GIL back
    between pieces): the bytes are those of one msgpack call, whatever the shape."""
    row = {"name": "ship-1", "x": 1.5, "cargo": ["d", {"ore": 10.0}], "big": 2**63}
    many = {f"ship-{i}": dict(row, n=i) for i in range(300)}
    doc: dict[str, Any] = {
        "time": 4.5,
        "world": {"state": ["d", {"bodies": ["d", many], "empty": [], "none": {}}]},
        "engine": {"children": [dict(row, n=i, inner=list(range(i % 130))) for i in range(500)]},
        "exact": [[i] * 64 for i in range(65)],  # 64 and 65 items: either side of a piece
        "mixed": [1, "é", b"\x00", None, True, -1.0, *[{"k": list(range(70))}] * 3] * 20,
    }
    assert encode(doc) == msgpack.packb(doc, use_bin_type=True)
    assert decode(encode(doc), "here") == doc
