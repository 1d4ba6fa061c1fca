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

The reference measured in the same run is a deep copy (`copy.deepcopy`) of the same ships'
state, the standard library's generic walk over the same objects. Target: save <= 10 µs per
ship (a tenth of large-fleet's 250 ms checkpoint pause for its 10,000 ships).
"""

from __future__ import annotations

import copy
import gc
import time
from collections.abc import Callable

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


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """The best (wall, cpu) seconds of `repeat` runs after a warm-up, and the last result."""
    best_wall = best_cpu = float("inf")
    result: object = None
    for _ in range(repeat + 1):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    header(NAME, f"save/restore {n:,} ships' and 50 stations' state after {RUN_FOR:g} sim s")
    world = fleet_world(n)
    actors = actors_of(world)
    ships = [(name, actor) for name, actor in actors if isinstance(actor, Ship)]
    shared = {"world": world}
    refs = _no_refs

    def save_all() -> list[dict[str, object]]:
        return [save_actor(actor, path=name, shared=shared) for name, actor in actors]

    def save_ships() -> list[dict[str, object]]:
        return [save_actor(actor, path=name, shared=shared) for name, actor in ships]

    def deepcopy_ships() -> list[object]:
        return [copy.deepcopy((ship.offers, ship.rec)) for _, ship in ships]  # type: ignore[attr-defined]

    ship_wall, ship_cpu, _ = timed(save_ships, options.repeat)
    copy_wall, copy_cpu, _ = timed(deepcopy_ships, options.repeat)
    save_wall, save_cpu, saved = timed(save_all, options.repeat)
    documents: list[dict[str, object]] = saved  # type: ignore[assignment]
    pack = msgpack.Packer(use_bin_type=True)
    encode_wall, _, encoded = timed(lambda: pack.pack(documents), options.repeat)

    def restore_all() -> list[Actor]:
        return [
            restore_actor(type(actor), document, shared=shared, refs=refs)
            for (_, actor), document in zip(actors, documents, strict=True)
        ]

    restore_wall, restore_cpu, _ = timed(restore_all, options.repeat)
    per_ship = ship_cpu / len(ships) * 1e6
    show("save ships", f"{ship_wall * 1e3:,.1f}", "ms", f"{per_ship:6.2f} µs/ship (CPU)")
    show(
        "deepcopy ships (ref)",
        f"{copy_wall * 1e3:,.1f}",
        "ms",
        f"{copy_cpu / len(ships) * 1e6:6.2f} µs/ship (CPU); save is {copy_cpu / ship_cpu:.2f}x it",
    )
    show(
        "save all actors",
        f"{save_wall * 1e3:,.1f}",
        "ms",
        f"{save_cpu / len(actors) * 1e6:6.2f} µs/actor (CPU), {len(actors):,} actors",
    )
    show(
        "msgpack (after pause)",
        f"{encode_wall * 1e3:,.1f}",
        "ms",
        f"{len(encoded) / len(actors):,.0f} bytes/actor",
    )  # type: ignore[arg-type]
    show(
        "restore all actors",
        f"{restore_wall * 1e3:,.1f}",
        "ms",
        f"{restore_cpu / len(actors) * 1e6:6.2f} µs/actor (CPU)",
    )
    return [target("save µs/ship", per_ship, TARGET_US, at_most=True, fmt=".2f")]


def _no_refs(actor_id: int) -> sa.ActorRef:
    raise LookupError(f"no actor #{actor_id} in this benchmark")
