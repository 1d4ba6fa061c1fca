"""What every benchmark shares: one timed run, warm-up plus best-of-N, and the printed report.

Each version of a benchmark (actor or raw) is an async function ``f(n) -> Run`` that times its
own hot part with `time.perf_counter` (setup and teardown stay outside the timing), and where a
ratio is budgeted on it, with `time.process_time` too (``Run.cpu``), and returns how many
messages, round trips, hops or actors it verifiably handled. Every run gets a fresh
``trio.run`` with the default clock, after a ``gc.collect()`` so no run pays for the previous
one's garbage.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trio

clock = time.perf_counter
"""The one clock every benchmark times with."""
cpu_clock = time.process_time
"""CPU time of the process (every thread), measured beside `clock` where a ratio is budgeted."""


@dataclass(frozen=True)
class Run:
    """One run: how long its timed part took and how much it verifiably did.

    Benchmarks that report them also fill `teardown` (seconds to stop what the run started) and
    `memory` (bytes still allocated by the timed part, in a traced run).
    """

    seconds: float
    count: int
    teardown: float = 0.0
    memory: int = 0
    cpu: float | None = None
    """CPU seconds of the process in the timed part (`cpu_clock`), for the benchmarks that
    measure it: steadier than wall time on a shared machine. `best_of` then ranks by it."""
    teardown_cpu: float = 0.0
    """CPU seconds of the teardown, where `teardown` is measured."""


@dataclass(frozen=True)
class Options:
    """How the suite runs: `scale` divides every size (10 for ``--quick``)."""

    repeat: int = 3
    scale: int = 1

    def size(self, full: int) -> int:
        return max(1, full // self.scale)


Version = Callable[[int], Awaitable[Run]]


def best_of(version: Version, n: int, repeat: int) -> Run:
    """One warm-up run, then the fastest of `repeat` runs, each checked to have done `n`."""
    best: Run | None = None
    for attempt in range(repeat + 1):
        gc.collect()
        run = trio.run(version, n)
        if run.count != n:
            raise RuntimeError(f"{version.__qualname__}({n}) counted {run.count}, expected {n}")
        if attempt and (best is None or _cost(run) < _cost(best)):
            best = run
    assert best is not None
    return best


def _cost(run: Run) -> float:
    return run.seconds if run.cpu is None else run.cpu


class Traced:
    """Bytes allocated (and still alive) inside `traced_memory`; 0 when not tracing."""

    grown = 0


@contextmanager
def traced_memory(enabled: bool) -> Iterator[Traced]:
    """Trace Python allocations inside the block (when `enabled`): ``.grown`` is the growth of
    `tracemalloc`'s current traced memory. Tracing slows everything down: never time with it."""
    traced = Traced()
    if not enabled:
        yield traced
        return
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        yield traced
        gc.collect()
        traced.grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


# --- printing: label, figure, unit, detail ------------------------------------------------


def header(name: str, what: str) -> None:
    print(f"\n{name}: {what}")


def show(label: str, figure: str, unit: str = "", detail: str = "") -> None:
    print(f"  {label:<22}{figure:>12}  {unit:<15}{detail}".rstrip())


def show_rate(label: str, run: Run, unit: str) -> float:
    """Print and return ``count / seconds``; with the rate per CPU second too when measured
    (then that is returned, the figure ratios are budgeted on)."""
    rate = run.count / run.seconds
    detail = f"{run.seconds * 1e3:9,.1f} ms"
    if run.cpu is None:
        show(label, f"{rate:,.0f}", unit, detail)
        return rate
    cpu_rate = run.count / run.cpu
    show(label, f"{rate:,.0f}", unit, f"{detail}; {cpu_rate:,.0f} per CPU s")
    return cpu_rate


def show_time(label: str, run: Run, per: str) -> float:
    """Print and return the run's seconds, with the time per item; with its CPU time too
    when measured (then the CPU seconds are returned, the figure ratios are budgeted on)."""
    detail = f"{run.seconds / run.count * 1e6:9.2f} µs/{per}"
    if run.cpu is not None:
        detail += f"; CPU {run.cpu / run.count * 1e6:.2f} µs/{per}"
    show(label, f"{run.seconds * 1e3:,.1f}", "ms", detail)
    return run.seconds if run.cpu is None else run.cpu


def target(label: str, measured: float, bound: float, *, at_most: bool = False, fmt: str) -> bool:
    """Print one target of the design note with PASS/MISS; return whether it was met."""
    ok = measured <= bound if at_most else measured >= bound
    wanted = f"{'<=' if at_most else '>='} {bound:{fmt}}"
    show(f"target {label}", f"{measured:{fmt}}", wanted, "PASS" if ok else "MISS")
    return ok
