"""Fleet: the shipped "large-fleet" scenario, 10,000 ship actors and 50 stations, in virtual time.

The scale test of the simulation: 10,000 ships trading between 50 stations in 10 sectors, every
ship an actor under the supervision tree, the world integrating every body each tick (600
simulated seconds at a 2 s step), run by `sim.run_scenario` under `spaceactors.run` (virtual
time, seeded scheduler, seed 1), as ``spaceactors run large-fleet`` runs it. ``--quick`` scales
the fleet down (the 50 stations stay): the scenario is rebuilt around large-fleet's own build
function with `spaceactors.scenarios.large_fleet.SHIPS` set to the size while it builds, and
restored afterwards.

Two phases, timed on the wall clock (`time.perf_counter`) from hooks the runner offers:

- build: from `keep_world` (the world handed over before the scenario builds it) to its first
  tick (a ``world.at(0)`` event): spawning the stations and ships, starting the tick service;
- run: between the first and the last call of the ``progress`` callback (called every
  duration/100 simulated seconds). The ship-updates in that window are the summary's
  ``ship_updates`` times the fraction of the simulated time it covers (the fleet does not
  change size, so every tick updates every ship); the messages are the growth of
  `Progress.messages` (delivered) between the two calls. Printed: ship-updates, simulated
  seconds and messages per wall second, and the shutdown (from the last progress call, at the
  end of the simulated time, to the summary: closing the system with its 10,000 actors).

Each run is checked to have done its work: as many ships as asked, 50 stations, and every ship
updated at every tick (``ship_updates == ships * ticks``). One warm-up run, then the run with
the best ship-updates rate out of `Options.repeat`, each in a fresh ``spaceactors.run`` after a
``gc.collect()``. Target: ship-updates/s >= 1,000,000.

Memory: each run applies the command's garbage-collector policy (``spaceactors run --gc
tuned``, its default: `spaceactors.cli.gcpolicy.TunedGC`: thresholds raised as the world is
handed over, the built world frozen at its first tick, all restored when the run ends), so the
benchmark measures what the command does; ``fleet(..., tuned_gc=False)`` runs with Python's own
settings.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass

import spaceactors as sa
from benchmarks.harness import Options, clock, header, show, target
from spaceactors import sim
from spaceactors.cli.gcpolicy import TunedGC
from spaceactors.scenarios import large_fleet

NAME = "fleet"
SIZE = large_fleet.SHIPS
SEED = 1
UPDATES = 100
TARGET = 1_000_000
"""Ship-updates per wall second at 10,000 ships (design.md's performance budget)."""
"""How many times the runner calls ``progress`` (its default, as the command's progress bar)."""


def scenario_of(ships: int) -> sim.Scenario:
    """large-fleet with `ships` ships: its own build, with ``SHIPS`` set while it runs."""
    shipped = large_fleet.large_fleet

    async def build(world: sim.World) -> None:
        saved = large_fleet.SHIPS
        large_fleet.SHIPS = ships
        try:
            await shipped.build(world)
        finally:
            large_fleet.SHIPS = saved

    return sim.Scenario(shipped.name, build, shipped.description, shipped.duration, shipped.step)


@dataclass
class FleetRun:
    """One run: the wall-clock marks taken by the hooks, and the run's summary."""

    summary: sim.Summary
    ticks: int  # as of the summary (the last progress call comes just before it)
    build: float  # seconds: keep_world -> first tick
    window: float  # seconds: first -> last progress call
    simulated: float  # simulated seconds between the two calls
    messages: int  # messages delivered between the two calls
    shutdown: float  # seconds: last progress call -> summary returned
    first_tick: float  # `clock()` at the world's first tick (the build done)
    cpu: float  # process CPU seconds in the window (`time.process_time`)
    marks: list[tuple[float, float]]  # (`clock()`, sim time) at each progress call
    cpu_build: float = 0.0  # process CPU seconds of the build (keep_world -> first tick)
    cpu_shutdown: float = 0.0  # ... of the shutdown (last progress call -> summary)
    cpu_total: float = 0.0  # ... from keep_world to the summary (build, run, shutdown)

    @property
    def updates(self) -> float:
        """Ship-updates in the window: the run's total times the simulated time it covers."""
        return self.summary.ship_updates * self.simulated / self.summary.duration

    @property
    def rate(self) -> float:
        return self.updates / self.window

    @property
    def cpu_rate(self) -> float:
        """Ship-updates per CPU second of the process (every thread) in the window."""
        return self.updates / self.cpu


async def fleet(
    n: int,
    *,
    duration: float | None = None,
    updates: int = UPDATES,
    observe: bool = False,
    watch: Callable[[str], None] | None = None,
    tuned_gc: bool = True,
) -> FleetRun:
    """Run large-fleet with `n` ships in the current Trio run (virtual time: `spaceactors.run`).

    `observe`: with the observation server on (any free loopback port), whose address goes to
    `watch` as the world is handed over. `tuned_gc`: with the command's memory policy
    (`TunedGC`), as ``spaceactors run`` runs by default."""
    worlds: list[sim.World] = []
    marks: list[tuple[float, sim.Progress, int, float]] = []  # wall, progress, ticks, CPU
    handed: list[float] = []
    first_tick: list[float] = []
    cpu_marks: list[float] = []  # CPU at keep_world, then at the first tick
    memory = TunedGC() if tuned_gc else None

    def keep_world(world: sim.World) -> None:
        handed.append(clock())
        cpu_marks.append(time.process_time())
        worlds.append(world)

        def built() -> None:
            first_tick.append(clock())
            cpu_marks.append(time.process_time())

        world.at(0.0, built)
        if memory is not None:
            memory.at_first_tick(world)
        if watch is not None and world.system.observe_url is not None:
            watch(world.system.observe_url)

    def progress(where: sim.Progress) -> None:
        marks.append((clock(), where, worlds[0].metrics.ticks, time.process_time()))

    try:
        summary = await sim.run_scenario(
            scenario_of(n),
            seed=SEED,
            duration=duration,
            progress=progress,
            updates=updates,
            keep_world=keep_world,
            observe=observe or None,
        )
    finally:
        if memory is not None:
            memory.restore()
    done, cpu_done = clock(), time.process_time()
    if len(marks) < 2:
        raise RuntimeError(f"fleet({n}) had {len(marks)} progress calls, need 2 or more")
    (start, first, _, cpu_start), (end, last, ticks, cpu_end) = marks[0], marks[-1]
    if summary.ships != n or summary.stations != large_fleet.STATIONS:
        raise RuntimeError(
            f"fleet({n}) built {summary.ships} ships and {summary.stations} stations, "
            f"expected {n} and {large_fleet.STATIONS}"
        )
    if summary.ship_updates != n * ticks:
        raise RuntimeError(
            f"fleet({n}) made {summary.ship_updates} ship-updates in {ticks} ticks, "
            f"expected {n * ticks}"
        )
    return FleetRun(
        summary=summary,
        ticks=ticks,
        build=first_tick[0] - handed[0],
        window=end - start,
        simulated=last.sim_time - first.sim_time,
        messages=last.messages - first.messages,
        shutdown=done - end,
        first_tick=first_tick[0],
        cpu=cpu_end - cpu_start,
        marks=[(wall, where.sim_time) for wall, where, _, _ in marks],
        cpu_build=cpu_marks[1] - cpu_marks[0],
        cpu_shutdown=cpu_done - cpu_end,
        cpu_total=cpu_done - cpu_marks[0],
    )


def best_run(n: int, repeat: int) -> FleetRun:
    """One warm-up run, then the best ship-updates rate of `repeat` runs, each in virtual time."""
    best: FleetRun | None = None
    for attempt in range(repeat + 1):
        gc.collect()
        run = sa.run(functools.partial(fleet, n), seed=SEED)
        if attempt and (best is None or run.rate > best.rate):
            best = run
    assert best is not None
    return best


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    chosen = large_fleet.large_fleet
    header(
        NAME,
        f"{chosen.name} with {n:,} ships, {large_fleet.STATIONS} stations: "
        f"{chosen.duration:g} simulated s at a {chosen.step:g} s tick, virtual time",
    )
    run = best_run(n, options.repeat)
    summary = run.summary
    per_ship = run.build / (n + large_fleet.STATIONS) * 1e6
    show("build", f"{run.build * 1e3:,.1f}", "ms", f"{per_ship:9.2f} µs/actor spawned")
    show("run window", f"{run.window:,.2f}", "s", f"{run.simulated:g} simulated s")
    show(
        "ship-updates",
        f"{run.rate:,.0f}",
        "updates/s",
        f"{run.updates:,.0f} updates; {run.cpu_rate:,.0f}/CPU s",
    )
    show("simulated time", f"{run.simulated / run.window:,.1f}", "sim s/s")
    show("messages", f"{run.messages / run.window:,.0f}", "msg/s", f"{run.messages:,} delivered")
    show("shutdown", f"{run.shutdown * 1e3:,.1f}", "ms", "summary, closing the system")
    held = sum(ok for _, ok, _ in summary.expectations)
    show(
        "scenario",
        f"{summary.messages:,}",
        "messages",
        f"{summary.dockings:,} dockings, {summary.trades:,} trades, "
        f"{held}/{len(summary.expectations)} expectations held",
    )
    return [target("ship-updates/s", run.rate, TARGET, fmt=",.0f")]
