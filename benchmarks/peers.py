"""Peers: tell, ask and spawn on spaceactors, raw Trio and the other Python actor engines.

Workloads, the same on every engine (its own idiom for each step):

- **tell**: N one-way messages to one counting actor, then one request/reply (inside the
  timing) reading the count back, which must equal N.
- **ask**: N sequential request/replies to one actor that returns the message; every reply
  is checked.
- **spawn**: N idle actors started and ready (each has run its start and waits on its
  mailbox); their teardown (stopping them all) is timed apart and printed, not compared.

Engines: raw Trio (tasks on 64-slot memory channels: the floor), spaceactors, pykka
(``ThreadingActor``: a thread per actor), thespian (``ActorSystem("simpleSystemBase")``: every
actor in the caller's thread) and triotp (Trio gen_servers: ``cast``, ``call``). A peer that is
not installed is reported and skipped: ``pip install '.[bench]'`` installs them.

Sizes: 50,000 tells, 10,000 asks, 2,000 spawns (a tenth with ``--quick``); pykka, a thread
per actor, asks 5,000 times and spawns 1,000. The cost of a spawn grows with the number of
actors alive (the garbage collector walks them all), so the spawns stay at one size for all.

Every figure is the median of the repeats (after one warm-up run), per operation: process CPU
time (`time.process_time`, every thread of the process) first, because it is what an engine
costs and moves least on a shared machine; wall time beside it. Ratios are CPU time against
spaceactors' (and spaceactors' against raw Trio's), measured in the same run.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from benchmarks import peers_threads, peers_trio
from benchmarks.harness import Options, header
from benchmarks.peers_trio import Engine, Sample

NAME = "peers"
SIZES = {"tell": 50_000, "ask": 10_000, "spawn": 2_000}
WORKLOADS = {
    "tell": "one-way messages to 1 counting actor, then 1 read of the count",
    "ask": "sequential request/replies to 1 actor",
    "spawn": "idle actors started and ready",
}
SPREAD = 1.3
"""Runs further apart than this (slowest CPU / fastest) print their range beside the median."""
INSTALL = "not installed (pip install '.[bench]')"

ENGINES: dict[str, Callable[[], Engine]] = {
    "raw trio": peers_trio.raw_trio,
    "spaceactors": peers_trio.spaceactors,
    "pykka": peers_threads.pykka,
    "thespian": peers_threads.thespian,
    "triotp": peers_trio.triotp,
}
"""Each engine's loader: it raises `ImportError` when the engine is not installed."""


@dataclass(frozen=True)
class Figure:
    """One engine's medians on one workload, per operation (seconds)."""

    n: int
    cpu: float
    wall: float
    teardown_cpu: float
    teardown_wall: float
    cpu_low: float
    cpu_high: float


def measure(label: str, workload: Callable[[int], Sample], n: int, repeat: int) -> Figure:
    """One warm-up run, then the medians of `repeat` runs, each checked to have done `n`.

    Raises:
        RuntimeError: a run did not do its work (the message names `label`).
    """
    samples: list[Sample] = []
    for attempt in range(repeat + 1):
        gc.collect()
        sample = workload(n)
        if sample.count != n:
            raise RuntimeError(f"{label}({n}) counted {sample.count}, expected {n}")
        if attempt:
            samples.append(sample)

    def per_op(field: Callable[[Sample], float]) -> float:
        return statistics.median(field(sample) for sample in samples) / n

    return Figure(
        n,
        cpu=per_op(lambda s: s.cpu),
        wall=per_op(lambda s: s.wall),
        teardown_cpu=per_op(lambda s: s.teardown_cpu),
        teardown_wall=per_op(lambda s: s.teardown_wall),
        cpu_low=min(sample.cpu for sample in samples) / n,
        cpu_high=max(sample.cpu for sample in samples) / n,
    )


def load() -> tuple[list[Engine], list[str]]:
    """The engines that are installed, and the names of those that are not."""
    engines: list[Engine] = []
    missing: list[str] = []
    for name, loader in ENGINES.items():
        try:
            engines.append(loader())
        except ImportError:
            missing.append(name)
    return engines, missing


def size(engine: Engine, workload: str, options: Options) -> int:
    n = options.size(SIZES[workload])
    limit = engine.limits.get(workload)
    return min(n, options.size(limit)) if limit else n


def row(label: str, cpu: str, wall: str, ratio: str = "", detail: str = "") -> None:
    print(f"  {label:<22}{cpu:>10}{wall:>11}  {ratio:<28}{detail}".rstrip())


def report(workload: str, figures: dict[str, Figure], options: Options) -> None:
    n = options.size(SIZES[workload])
    header(f"{NAME} {workload}", f"{n:,} {WORKLOADS[workload]}")
    row("engine", "CPU µs/op", "wall µs/op", "CPU vs spaceactors")
    ours = figures["spaceactors"].cpu
    for label, figure in figures.items():
        ratio = f"{figure.cpu / ours:.2f}x"
        if label == "spaceactors":
            ratio += f"  ({ours / figures['raw trio'].cpu:.2f}x raw trio)"
        detail = f"n = {figure.n:,}  " if figure.n != n else ""
        if figure.cpu_high > SPREAD * figure.cpu_low:
            detail += f"runs {figure.cpu_low * 1e6:.2f} to {figure.cpu_high * 1e6:.2f}"
        row(label, f"{figure.cpu * 1e6:.2f}", f"{figure.wall * 1e6:.2f}", ratio, detail)
    if workload == "spawn":
        for label, figure in figures.items():
            cpu, wall = figure.teardown_cpu * 1e6, figure.teardown_wall * 1e6
            row(f"{label} teardown", f"{cpu:.2f}", f"{wall:.2f}", "", "stopping them all")


def bench(options: Options) -> list[bool]:
    engines, missing = load()
    print(f"\n{NAME}: medians of {options.repeat} (after a warm-up); CPU = time.process_time")
    for engine in engines:
        limits = "".join(f"; {w} n <= {options.size(n):,}" for w, n in engine.limits.items())
        print(f"  {engine.name + ' ' + engine.version:<22}{engine.note}{limits}")
    for name in missing:
        print(f"  {name:<22}{INSTALL}")
    for workload in SIZES:
        figures = {
            engine.name: measure(
                f"{engine.name} {workload}",
                getattr(engine, workload),
                size(engine, workload, options),
                options.repeat,
            )
            for engine in engines
        }
        report(workload, figures, options)
    return []
