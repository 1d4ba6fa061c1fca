"""Scaling: large-fleet at 1,000, 10,000 and 100,000 ships; the cost per ship must stay flat.

The same scenario as ``fleet`` (`benchmarks.fleet.fleet`: large-fleet's own build with the
fleet resized, 50 stations, virtual time, seed 1, the command's garbage-collector policy), run
for `TICKS` ticks at each size, once each after one warm-up run at the smallest size.

Per-ship cost: the process CPU seconds (`time.process_time`) from the world handed over to
the summary returned (build: spawning every station and ship; run: `TICKS` ticks; shutdown:
closing the system), divided by ships x `TICKS`: microseconds per ship-tick, everything a ship
costs included. Every size runs the same number of ticks, so the figures compare like with
like; a flat fleet costs the same per ship at every size. Wall-clock figures are printed
beside (the machine may be shared). ``--quick`` runs a tenth of each size.

Targets (design.md): the largest per-ship cost over the smallest <= 1.3; the build of
100,000 ships <= 10 s (wall clock).
"""

from __future__ import annotations

import functools
import gc

import spaceactors as sa
from benchmarks import fleet
from benchmarks.harness import Options, header, show, target
from spaceactors.scenarios import large_fleet

NAME = "scaling"
SIZES = (1_000, 10_000, 100_000)
TICKS = 31
"""Ticks per run: 62 simulated seconds at the scenario's 2 s step, the stations' first market
update (at 60 s) included."""
FLAT = 1.3
"""The most the per-ship cost may grow from the cheapest size to the dearest."""
BUILD_LIMIT = 10.0
"""Seconds (wall) to build the largest fleet."""


def run_at(n: int) -> fleet.FleetRun:
    """large-fleet with `n` ships for `TICKS` ticks, in a fresh virtual-time run."""
    gc.collect()
    duration = TICKS * large_fleet.large_fleet.step
    return sa.run(functools.partial(fleet.fleet, n, duration=duration), seed=fleet.SEED)


def per_ship(run: fleet.FleetRun, n: int) -> float:
    """CPU microseconds per ship-tick: build + run + shutdown over ships x ticks."""
    return run.cpu_total / (n * run.ticks) * 1e6


def bench(options: Options) -> list[bool]:
    sizes = [options.size(size) for size in SIZES]
    header(
        NAME,
        f"{large_fleet.large_fleet.name} at {', '.join(f'{n:,}' for n in sizes)} ships, "
        f"{TICKS} ticks each, virtual time; per-ship cost = CPU (build + run + shutdown) "
        "/ ships / ticks",
    )
    run_at(sizes[0])  # warm-up
    costs: list[float] = []
    largest: fleet.FleetRun | None = None
    for n in sizes:
        run = run_at(n)
        cost = per_ship(run, n)
        costs.append(cost)
        largest = run
        wall = (run.build + run.window + run.shutdown) / (n * run.ticks) * 1e6
        show(
            f"{n:,} ships",
            f"{cost:,.2f}",
            "µs/ship-tick",
            f"CPU: build {run.cpu_build:,.2f} s, run {run.cpu:,.2f} s, shutdown "
            f"{run.cpu_shutdown:,.2f} s; wall: build {run.build:,.2f} s, run "
            f"{run.window:,.2f} s, shutdown {run.shutdown:,.2f} s ({wall:,.2f} µs/ship-tick)",
        )
    assert largest is not None
    ratio = max(costs) / min(costs)
    return [
        target("per-ship cost max/min", ratio, FLAT, at_most=True, fmt=".2f"),
        target(
            f"build {sizes[-1]:,} ships (s)", largest.build, BUILD_LIMIT, at_most=True, fmt=".2f"
        ),
    ]
