"""A simulation's part of a checkpoint: the world's state, and the runner's.

The world (bodies, ship records, stations and their markets, hazards, storms, metrics, the
tick service's next tick) is data and is saved as data. What a scenario's build declared as
code (events for `World.at`, expectations for `World.expect`) is not: a resumed run calls the
build again with the world *declaring* (`World.declaring`), so that adding ships, stations or
hazards changes nothing (the checkpoint holds them) while `at` and `expect` register their
callables again; the events still to come are those the checkpoint names, by the order the
build declared them in. A build is deterministic (seeded), so it declares the same events in
the same order; one that declares fewer, or adds a ship the checkpoint lacks, is refused with
`CheckpointError`. An event scheduled while the run went on (not by the build) cannot be
saved: a checkpoint with one pending raises `CheckpointError` naming it.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from spaceactors.counters import peek
from spaceactors.errors import CheckpointError

if TYPE_CHECKING:
    from spaceactors.checkpoint.context import Restoring, Saving, Values
    from spaceactors.sim.world import World
    from spaceactors.system import ActorSystem

FORMAT = 2
"""The version of the simulation's part of a checkpoint."""

STATE = (
    "records",
    "ships",
    "stations",
    "station_states",
    "hazards",
    "storms",
    "metrics",
    "event_errors",
    "trajectories",
    "inside",
    "intercepts",
    "sectors",
)
"""The world's attributes a checkpoint saves as data (one value: shared objects stay shared);
its fleet (the bodies' arrays) is saved apart, column by column (`Fleet.save`)."""

CLOCK = ("step", "duration", "started", "ends_at", "first_tick", "next_tick")
"""The world's times (floats, or None)."""


def shared(world: World) -> dict[str, object]:
    """The world's objects that actors hold, saved by name in an actor's state: the world
    itself and each station's state (a station actor and the world share it)."""
    found: dict[str, object] = {"world": world}
    for name, state in world.station_states.items():
        found[f"station_state:{name}"] = state
    return found


def save_world(world: World, saving: Saving) -> dict[str, Any]:
    """The world's state as plain data (at a quiescent point).

    Raises:
        CheckpointError: an event scheduled during the run is pending, or a value cannot be
            saved (named).
    """
    for when, sequence, _ in world._events:
        if sequence >= world.declared_events:
            raise CheckpointError(
                f"an event scheduled during the run, due at "
                f"{when - world.started:g} s, cannot be saved (only the build's events can)"
            )
    return {
        "format": FORMAT,
        "state": saving.value({name: getattr(world, name) for name in STATE}, "the world"),
        "fleet": world.fleet.save(),
        "clock": {name: getattr(world, name) for name in CLOCK},
        "finished": world.finished.is_set(),
        "events": sorted([when, sequence] for when, sequence, _ in world._events),
        "declared_events": world.declared_events,
        "build_from": world.build_from,
        "sequence": _peek(world, "_sequence"),
        "trade_ids": _peek(world, "trade_ids"),
    }


def _restore_fleet(world: World, doc: Mapping[str, Any]) -> None:
    """Rebuild the world's fleet and its bodies (views of its rows) from `Fleet.save`'s."""
    from spaceactors.sim.fleet import Fleet
    from spaceactors.sim.physics import Body, link_leaders

    fleet = Fleet()
    fleet.load(doc, Body.view)
    link_leaders(fleet)
    world.fleet = fleet
    world.bodies = dict(zip(fleet.names, fleet.views, strict=True))


def _peek(world: World, name: str) -> int:
    value, counter = peek(getattr(world, name))
    setattr(world, name, counter)
    return value


@attrs.frozen
class Pending:
    """The build's events a checkpoint has still to run, and the world's next sequence."""

    events: dict[int, float]  # sequence -> when (on the run's clock)
    sequence: int
    build_from: int  # the sequence of the build's first event


def restore_world(world: World, doc: Mapping[str, Any], restoring: Restoring) -> Pending:
    """Put the world `doc` holds into `world` (a fresh one of the resumed run), after the
    engine's `rebuild` (the world names actors).

    Raises:
        CheckpointError: `doc` is not the world's state of this format, or is damaged.
    """
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise CheckpointError(
            f"the checkpoint's world is not of a format this spaceactors reads (format {FORMAT})"
        )
    try:
        state = restoring.value(doc["state"])
        for name in STATE:
            setattr(world, name, state[name])
        _restore_fleet(world, doc["fleet"])
        for name in CLOCK:
            value = doc["clock"][name]
            setattr(world, name, None if value is None else float(value))
        if doc["finished"]:
            world.finished.set()
        world.trade_ids = itertools.count(int(doc["trade_ids"]))
        world.declared_events = int(doc["declared_events"])
        world.build_from = int(doc["build_from"])
        pending = Pending(
            {int(s): float(t) for t, s in doc["events"]},
            int(doc["sequence"]),
            world.build_from,
        )
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"the checkpoint's world is damaged: {exc!r}") from None
    restoring.shared.update(shared(world))
    return pending


async def declare(
    world: World, build: Callable[[World], Awaitable[None]], pending: Pending
) -> None:
    """Run the scenario's `build` with the world declaring, and keep the events the
    checkpoint holds (after `restore_world`).

    Raises:
        CheckpointError: the build declares events or actors the checkpoint does not match.
    """
    wanted = pending.events
    # The build's events are numbered from where they were (after what a runner's
    # `keep_world` scheduled before it, whatever it schedules this time).
    world._sequence = itertools.count(pending.build_from)
    world.expectations = []
    world.declaring = True
    try:
        await build(world)
    finally:
        world.declaring = False
    kept = [item for item in world._events if item[1] in wanted]
    if len(kept) != len(wanted) or any(wanted[seq] != when for when, seq, _ in kept):
        raise CheckpointError(
            f"the scenario's build declares {len(world._events)} events, which do not match "
            f"the {len(wanted)} the checkpoint has still to run: was it written by another "
            "version of the scenario?"
        )
    heapq.heapify(kept)
    world._events = kept
    world._sequence = itertools.count(pending.sequence)


def extend(world: World, length: float) -> None:
    """Make a restored world's run last `length` seconds in all (from its start): the tick
    service, started after this, ticks on to the new end (a finished world is one no more).

    Raises:
        CheckpointError: the run already stands at or beyond `length`.
    """
    stands = trio.current_time() - world.started
    if length <= stands:
        raise CheckpointError(
            f"the run stands at {stands:g} s already: a duration of {length:g} s would end it "
            "before where it is (give a longer one)"
        )
    if world.started + length != world.ends_at:
        world.duration = length
        world.ends_at = world.started + length
        world.finished = trio.Event()  # (set again once the world makes its new last tick)


@attrs.define
class Runner:
    """What `run_scenario` itself carries from one moment of a run to the next."""

    report_at: float = 0.0  # when the next progress report is due (run's clock)
    end: float = 0.0  # when the run ends (run's clock)
    goods_before: float = 0.0  # the cargo units at the start (the summary's balance)

    def save(self) -> dict[str, float]:
        return {"report_at": self.report_at, "end": self.end, "goods_before": self.goods_before}

    def restore(self, doc: Mapping[str, Any]) -> None:
        try:
            self.report_at = float(doc["report_at"])
            self.end = float(doc["end"])
            self.goods_before = float(doc["goods_before"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint's runner state is damaged: {exc!r}") from None


def next_sequence(world: World) -> int:
    """How many events have been scheduled so far (reading it schedules none)."""
    return _peek(world, "_sequence")


def ready(system: ActorSystem) -> bool:
    """This quiescent point is a moment for a checkpoint (`capture` would not return None)."""
    from spaceactors.checkpoint import engine

    return engine.busy(system) is None


def capture(
    system: ActorSystem, world: World, runner: Runner, values: Values
) -> dict[str, Any] | None:
    """The whole run's state at this quiescent point, or None when this point is no moment
    for one (`engine.busy`).

    Raises:
        CheckpointError: something in the run cannot be saved (named).
    """
    from spaceactors.checkpoint import engine, quiescence

    if not ready(system):
        return None
    trace = system.trace
    return {
        "time": trio.current_time(),
        "trace_count": 0 if trace is None else trace.count,
        "trace": None if trace is None else trace.state(),
        "engine": engine.capture(system, engine.Saving(values, shared(world))),
        "world": save_world(world, engine.Saving(values, {})),
        "runner": runner.save(),
        "tasks": quiescence.task_order(),
        "scheduler": quiescence.scheduler_state(),
    }


async def resume(
    system: ActorSystem,
    world: World,
    build: Callable[[World], Awaitable[None]],
    doc: Mapping[str, Any],
    runner: Runner,
    values: Values,
    length: float | None = None,
    rebuilt: Callable[[], None] | None = None,
) -> Callable[[], None]:
    """Rebuild the run `doc` (from `capture`) holds into `system` and `world`, freshly made
    in a run whose clock stands at the checkpoint's time. Returns the check to call once the
    run is over: it raises `CheckpointError` if the rebuilt run's tasks did not match.

    `rebuilt` is called once everything is rebuilt, while the garbage collector is still
    held off (`collector_paused`): a ``gc.freeze()`` there keeps the collector from scanning
    the million objects of a 10,000-ship rebuild as soon as it runs again.

    `length` (seconds of simulated time in all, from the run's start) moves the run's end:
    a finished run is extended (the world ticks on from where it stopped), a run is ended
    sooner; the build is declared with the world's duration at `length` (`extend`).

    Raises:
        CheckpointError: `doc` cannot be rebuilt here (the message says why), or `length`
            does not lie beyond the checkpoint's time.
    """
    from spaceactors.checkpoint import engine, quiescence
    from spaceactors.checkpoint.collector import collector_paused
    from spaceactors.checkpoint.context import restore_trace

    restoring = engine.Restoring(values, {}, services={"world": world.service()})
    with collector_paused():  # (the rebuild makes the whole world and frees nothing)
        engine.rebuild(system, doc["engine"], restoring)
        pending = restore_world(world, doc["world"], restoring)
        if length is not None:
            extend(world, length)
        await declare(world, build, pending)
        await engine.start(system, doc["engine"], restoring)
        world.find_restarted()
        if rebuilt is not None:
            rebuilt()
    runner.restore(doc["runner"])
    if length is not None:
        runner.end = world.ends_at
    restore_trace(system, doc.get("trace"), where="", as_before="resume it as it was run")
    return quiescence.take_over(doc["tasks"], doc["scheduler"])
