"""Checkpoint values: saving and restoring the state of large-fleet's 10,000 ships.

A checkpoint saves every actor's state while the run stands still, so the converter's cost per
actor is the pause a user sees. This benchmark runs large-fleet (virtual time, seed 1) for
`RUN_FOR` simulated seconds, so that ships have flown, docked, traded and learnt prices, then
builds each ship as the engine holds it after ``on_start`` (``world``, ``offers`` and its
``ShipRecord`` as the world last committed it; a ``ctx`` the converter must leave out) and
each station (``world`` and its ``StationState``), and times, on the wall and CPU clocks:

- save: `spaceactors.checkpoint.values.save_actor` of every ship and station, the world
  passed as shared (the capture's part of the pause);
- encode: msgpack of the saved documents, as the state file writes them (done after the pause,
  off the run's thread; shown for scale);
- restore: `restore_actor` of every saved document (part of a resume).

The references measured in the same run: a deep copy (`copy.deepcopy`) of the same ships'
state, the standard library's generic walk over the same objects, and ``rec.snapshot()``, the
copy of its record a ship already makes after every message it handles. Target: save <= 10 µs per
ship (a tenth of large-fleet's 250 ms checkpoint pause for its 10,000 ships), and at most 2x
the ship's own ``rec.snapshot()`` measured in the same run (the figure that holds on any
machine). Run alone: ``python -m benchmarks.checkpoint_values [--quick]``.
"""

from __future__ import annotations

import copy
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgpack

import spaceactors as sa
from benchmarks.fleet import SEED, scenario_of
from benchmarks.harness import Options, header, show, target
from spaceactors import sim
from spaceactors.actor import Actor
from spaceactors.checkpoint.values import restore_actor, save_actor
from spaceactors.scenarios import large_fleet
from spaceactors.sim.ship import Ship
from spaceactors.sim.station import Station

NAME = "checkpoint-values"
SIZE = large_fleet.SHIPS
RUN_FOR = 120.0  # simulated seconds before the ships are saved
TARGET_US = 10.0
TARGET_RATIO = 2.0  # save at most twice the per-message copy of the record


def fleet_world(n: int) -> sim.World:
    """The world of a large-fleet run with `n` ships, after `RUN_FOR` simulated seconds."""
    worlds: list[sim.World] = []

    async def main() -> None:
        await sim.run_scenario(
            scenario_of(n), seed=SEED, duration=RUN_FOR, keep_world=worlds.append
        )

    sa.run(main, seed=SEED)
    return worlds[0]


def actors_of(world: sim.World) -> list[tuple[str, Actor]]:
    """Every ship and station as the engine holds it while it runs."""
    actors: list[tuple[str, Actor]] = []
    for name, record in world.records.items():
        ship = Ship(world)
        ship.rec = record.snapshot()
        ship.ctx = object()  # type: ignore[assignment]  # the engine's: left out of the state
        actors.append((name, ship))
    for name, state in world.station_states.items():
        station = Station(world, state)
        station.ctx = object()  # type: ignore[assignment]
        actors.append((name, station))
    return actors


def timed(work: Callable[[], object], repeat: int) -> tuple[Timing, object]:
    """The best (wall, cpu) seconds of `repeat` runs after a warm-up, and the last result.

    The garbage collector is off while `work` runs, as a capture should run it: the documents
    it builds are new objects, and a full collection over a 10,000-ship heap set off by them
    would cost more than the saving itself."""
    best_wall = best_cpu = float("inf")
    result: object = None
    for _ in range(repeat + 1):
        result = None
        gc.collect()
        gc.disable()
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            result = work()
            best_wall = min(best_wall, time.perf_counter() - wall)
            best_cpu = min(best_cpu, time.process_time() - cpu)
        finally:
            gc.enable()
    return Timing(best_wall, best_cpu), result


@dataclass(frozen=True)
class Timing:
    """The best wall and CPU seconds of one measured step."""

    wall: float
    cpu: float


@dataclass(frozen=True)
class Figures:
    """One measurement: every step's timing, what it covered, and the bytes written."""

    ships: int
    actors: int
    save_ships: Timing
    deepcopy_ships: Timing
    snapshot_ships: Timing
    save_all: Timing
    encode: Timing
    restore_all: Timing
    encoded_bytes: int
    restored_equal: int  # actors whose restored attributes equal the saved ones


def measure(n: int, repeat: int) -> Figures:
    """Save and restore the ships and stations of a large-fleet run with `n` ships."""
    world = fleet_world(n)
    actors = actors_of(world)
    ships = [(name, actor) for name, actor in actors if isinstance(actor, Ship)]
    shared = {"world": world}

    def save_all() -> list[dict[str, object]]:
        return [save_actor(actor, path=name, shared=shared) for name, actor in actors]

    def save_ships() -> list[dict[str, object]]:
        return [save_actor(actor, path=name, shared=shared) for name, actor in ships]

    def deepcopy_ships() -> list[object]:
        return [copy.deepcopy((ship.offers, ship.rec)) for _, ship in ships]  # type: ignore[attr-defined]

    def snapshot_ships() -> list[object]:
        return [ship.rec.snapshot() for _, ship in ships]  # type: ignore[attr-defined]

    save_ships_time, _ = timed(save_ships, repeat)
    deepcopy_time, _ = timed(deepcopy_ships, repeat)
    snapshot_time, _ = timed(snapshot_ships, repeat)
    save_all_time, saved = timed(save_all, repeat)
    documents: list[dict[str, object]] = saved  # type: ignore[assignment]
    pack = msgpack.Packer(use_bin_type=True)
    encode_time, encoded = timed(lambda: pack.pack(documents), repeat)

    def restore_all() -> list[Actor]:
        return [
            restore_actor(type(actor), document, shared=shared, refs=_no_refs)
            for (_, actor), document in zip(actors, documents, strict=True)
        ]

    restore_time, restored = timed(restore_all, repeat)
    equal = sum(
        _attributes(before) == _attributes(after)
        for (_, before), after in zip(actors, restored, strict=True)  # type: ignore[call-overload]
    )
    return Figures(
        ships=len(ships),
        actors=len(actors),
        save_ships=save_ships_time,
        deepcopy_ships=deepcopy_time,
        snapshot_ships=snapshot_time,
        save_all=save_all_time,
        encode=encode_time,
        restore_all=restore_time,
        encoded_bytes=len(encoded),  # type: ignore[arg-type]
        restored_equal=equal,
    )


def _attributes(actor: Actor) -> dict[str, object]:
    return {name: value for name, value in vars(actor).items() if name != "ctx"}


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    header(NAME, f"save/restore {n:,} ships' and 50 stations' state after {RUN_FOR:g} sim s")
    got = measure(n, options.repeat)
    if got.restored_equal != got.actors:
        raise RuntimeError(f"{got.actors - got.restored_equal} actors restored differently")
    per_ship = got.save_ships.cpu / got.ships * 1e6
    copied = got.deepcopy_ships.cpu / got.save_ships.cpu
    snapshot = got.save_ships.cpu / got.snapshot_ships.cpu
    rows = [
        ("save ships", got.save_ships, got.ships, "ship", ""),
        (
            "deepcopy ships (ref)",
            got.deepcopy_ships,
            got.ships,
            "ship",
            f"save is {copied:.2f}x faster",
        ),
        (
            "rec.snapshot() (ref)",
            got.snapshot_ships,
            got.ships,
            "ship",
            f"save takes {snapshot:.2f}x this per-message copy",
        ),
        ("save all actors", got.save_all, got.actors, "actor", f"{got.actors:,} actors"),
        (
            "msgpack (after pause)",
            got.encode,
            got.actors,
            "actor",
            f"{got.encoded_bytes / got.actors:,.0f} bytes/actor",
        ),
        ("restore all actors", got.restore_all, got.actors, "actor", ""),
    ]
    for label, timing, count, unit, note in rows:
        per = f"{timing.cpu / count * 1e6:6.2f} µs/{unit} (CPU)"
        show(label, f"{timing.wall * 1e3:,.1f}", "ms", f"{per}; {note}" if note else per)
    return [
        target("save µs/ship", per_ship, TARGET_US, at_most=True, fmt=".2f"),
        target("save / rec.snapshot()", snapshot, TARGET_RATIO, at_most=True, fmt=".2f"),
    ]


def _no_refs(actor_id: int) -> sa.ActorRef:
    raise LookupError(f"no actor #{actor_id} in this benchmark")


if __name__ == "__main__":
    bench(Options(repeat=3, scale=10 if "--quick" in sys.argv[1:] else 1))
