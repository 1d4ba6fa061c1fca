"""Taking checkpoints as a run goes: every so many seconds of the run's clock, at the first
quiescent point where the run can be checkpointed (`spaceactors.checkpoint.quiescence`).

The capture runs synchronously in Trio's run loop, outside every task; what it returns (plain
data) goes to `sink`, which must not block the run for long (a writer thread's queue). With a
`background` writer the run only forks there, and the child captures, encodes and writes.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from spaceactors.checkpoint.collector import collector_paused
from spaceactors.checkpoint.quiescence import Quiescence
from spaceactors.checks import seconds
from spaceactors.errors import CheckpointError

if TYPE_CHECKING:
    from spaceactors.checkpoint.forked import ForkedWriter

Capture = Callable[[], dict[str, Any] | None]
"""Returns the run's state, or None when this quiescent point is no moment for one."""
Ready = Callable[[], bool]
"""Whether this quiescent point is a moment for a checkpoint (`Capture` would not return
None)."""


class Checkpointer:
    """Takes a checkpoint every `every` seconds of the run's clock (virtual time), handing
    each to `sink`.

    Args:
        every: seconds of the run's clock between two checkpoints (> 0).
        sink: called with each checkpoint (plain data), in the run loop: it must return fast.
        at_once: take the first at the first moment for one once attached (else `every`
            seconds after).

    Raises:
        ValueError: `every` is not a positive, finite number of seconds.
    """

    def __init__(
        self, every: float, sink: Callable[[dict[str, Any]], None], *, at_once: bool = False
    ) -> None:
        self.every = seconds("every", every, zero=False)
        if not math.isfinite(self.every):
            raise ValueError(f"every must be finite, got {every!r}")
        self.sink = sink
        self.at_once = at_once
        self.taken = 0
        """Checkpoints handed to `sink` so far."""
        self.pauses: list[tuple[float, float]] = []
        """Each checkpoint's pause of the run: (wall, CPU) seconds its capture took."""
        self.error: Exception | None = None
        """What stopped the checkpoints (a `CheckpointError` naming what cannot be saved, or
        what `sink` raised); `on_error` was told."""
        self.on_error: Callable[[Exception], None] | None = None
        """Called (in the run loop) when a checkpoint fails: no more are taken."""
        self.origin: float | None = None
        """When the run started, on its clock: a resumed run takes its checkpoints at the
        same multiples of `every` from there as the run it continues (None: from `attach`)."""
        self.final_at: float | None = None
        """Also take one at the last moment for one before this time of the run's clock
        (the run's end: a checkpoint to extend the run from), if none was taken there."""
        self.background: ForkedWriter | None = None
        """Take each checkpoint in a child process that captures, encodes and writes it
        (`spaceactors.checkpoint.forked`): the run pauses only to fork, and `sink` is not
        called. Needs the `ready` check of `attach`."""
        self._watch: Quiescence | None = None
        self._due = math.inf
        self._last = -math.inf

    def attach(self, capture: Capture, ready: Ready | None = None) -> None:
        """Start taking checkpoints of the current run (from inside it), the first `every`
        seconds from now. `ready` says whether a quiescent point is a moment for one (needed
        by a `background` writer, which captures in the child: there it is too late to find
        out).

        Raises:
            ValueError: a `background` writer without `ready`.
        """
        if self.background is not None and ready is None:
            raise ValueError("a background writer needs ready= (its capture runs in a child)")
        self.detach()
        now = trio.current_time()
        self._due = now + (0.0 if self.at_once else self.every)
        if not self.at_once and self.origin is not None:  # (resumed: the run's own cadence)
            self._due = self._next(self.origin, now)
        self._last = -math.inf if self.at_once else trio.current_time()
        watch = self._watch = Quiescence()

        def waiter() -> bool:
            now = trio.current_time()
            if now < self._due and not self._final(now):
                return False
            try:
                wall, cpu = time.perf_counter(), time.process_time()
                if self.background is not None:
                    assert ready is not None
                    if not ready():
                        return False  # no moment for one: the next quiescent point is tried
                    self.background.take(_captured(capture), now)
                    self.pauses.append((time.perf_counter() - wall, time.process_time() - cpu))
                else:
                    with collector_paused():
                        taken = capture()
                    if taken is None:
                        return False
                    self.pauses.append((time.perf_counter() - wall, time.process_time() - cpu))
                    self.sink(taken)
            except Exception as exc:  # (Trio would disable the instrument and log it)
                self.error = exc
                if self.on_error is not None:
                    self.on_error(exc)
                return True
            self.taken += 1
            self._last = now
            self._due = self._next(self._due, now)
            return False

        watch.wait(waiter)
        trio.lowlevel.add_instrument(watch)

    def close(self) -> None:
        """Stop taking checkpoints and wait for the `background` writer's last one.

        Raises:
            CheckpointError, StateFileError: the last checkpoint failed (the background
                writer's `close`).
        """
        self.detach()
        if self.background is not None:
            self.background.close()

    def _next(self, due: float, now: float) -> float:
        """The first time after `now` that lies a whole number of `every` from `due`: worked
        out, not stepped to (a tiny `every` would take a step per tick's worth of them, in the
        run loop where no signal is handled), and strictly after `now` even where `every` is
        below the clock's precision at `now` (adding it would change nothing)."""
        if due > now:
            return due
        behind = (now - due) / self.every  # intervals since `due` (inf for a tiny `every`)
        if behind >= 2.0**53:  # beyond the float grid at `now`: the very next instant
            return math.nextafter(now, math.inf)
        after = due + (math.floor(behind) + 1) * self.every
        return after if after > now else math.nextafter(now, math.inf)

    def _final(self, now: float) -> bool:
        """True at a quiescent point after which the clock jumps to `final_at` or beyond
        (the last moment before it), if no checkpoint was taken at this instant yet."""
        if self.final_at is None or now <= self._last:
            return False
        wait = trio.lowlevel.current_statistics().seconds_to_next_deadline
        return now < self.final_at and self.final_at - now <= wait

    def detach(self) -> None:
        """Stop taking checkpoints."""
        if self._watch is not None:
            with contextlib.suppress(KeyError):  # (removed already)
                trio.lowlevel.remove_instrument(self._watch)
            self._watch = None


def _captured(capture: Capture) -> Callable[[], dict[str, Any]]:
    def captured() -> dict[str, Any]:
        doc = capture()
        if doc is None:  # `ready` said it was a moment for one
            raise CheckpointError("the run was not at a moment for a checkpoint after all")
        return doc

    return captured
