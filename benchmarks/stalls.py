"""How long a Trio run stops, as the run itself sees it: the longest stretch of wall-clock
time between two of its scheduler's events (a task step starting or ending).

A run going flat out switches tasks every few microseconds; a stretch without a switch is the
run loop busy outside every task (a checkpoint's capture runs there, in an instrument), a
task step that took long, or the main thread waiting for the GIL while another thread (a
checkpoint's writer packing megabytes with msgpack) holds it. Each stretch is recorded with the
main thread's CPU time in it (`time.thread_time`): wall far above CPU is time spent waiting.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import trio

NOTED = 0.001
"""Stretches shorter than this (seconds, wall) are not kept."""


@attrs.frozen
class Stretch:
    """One stretch: it started `at` (`time.perf_counter`), lasted `wall` seconds, of which the
    run's thread spent `cpu` seconds on the CPU."""

    at: float
    wall: float
    cpu: float


class Stalls(trio.abc.Instrument):
    """A Trio instrument that keeps every stretch of at least `NOTED` seconds."""

    def __init__(self) -> None:
        self.stretches: list[Stretch] = []
        self._wall = time.perf_counter()
        self._cpu = time.thread_time()

    def _mark(self) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        if wall - self._wall >= NOTED:
            self.stretches.append(Stretch(self._wall, wall - self._wall, cpu - self._cpu))
        self._wall, self._cpu = wall, cpu

    def before_task_step(self, task: Any) -> None:
        self._mark()

    def after_task_step(self, task: Any) -> None:
        self._mark()

    def longest(self, start: float, end: float) -> Stretch:
        """The longest stretch that overlaps [`start`, `end`] (`time.perf_counter` seconds)."""
        inside = [s for s in self.stretches if s.at < end and s.at + s.wall > start]
        return max(inside, key=lambda s: s.wall, default=Stretch(start, 0.0, 0.0))

    def longest_outside(self, windows: list[tuple[float, float]]) -> Stretch:
        """The longest stretch that overlaps none of `windows`."""
        outside = [
            s
            for s in self.stretches
            if not any(s.at < end and s.at + s.wall > start for start, end in windows)
        ]
        return max(outside, key=lambda s: s.wall, default=Stretch(0.0, 0.0, 0.0))
