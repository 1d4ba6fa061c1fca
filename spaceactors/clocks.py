"""The clocks a run can take, and `RunControl`: pause, resume, step and speed for a running run.

Two clocks, both Trio clocks (``trio.run(..., clock=...)``, `spaceactors.run`'s ``clock=``):

- virtual time, ``trio.testing.MockClock(autojump_threshold=0)``: time jumps to the next
  deadline whenever every task waits, so the run goes flat out;
- `ScaledClock`: the wall clock times a speed factor (2.0 runs twice as fast as real time),
  which can change, or stop, while the run goes on.

`RunControl` steers either. Pausing freezes time: in virtual time it turns the autojump off
(nothing waiting for a deadline wakes up; what is runnable now still runs, at the same instant);
on a `ScaledClock` it stops the clock. ``step(S)`` lets time advance exactly S seconds and
freezes it again; ``set_speed(F)`` changes a `ScaledClock`'s rate (virtual time has no speed:
it runs flat out). Trio reads a clock only between two batches of tasks, and sleeps for as long
as the clock tells it; so every change wakes the run loop (through the run's
`trio.lowlevel.TrioToken`) to ask again.
"""

from __future__ import annotations

import contextlib
import math
import time
import weakref
from typing import Literal

import trio
import trio.testing

from spaceactors.checks import short_repr

MAX_SPEED = 1e6
"""The fastest a `ScaledClock` may run, in simulated seconds per real second."""

_LONGEST_SLEEP = 86400.0  # what a stopped clock tells Trio (Trio caps its sleeps to a day)


def _nothing() -> None:
    """Run on the Trio thread to wake its loop (it then asks the clock again)."""


def check_speed(factor: object) -> float:
    """`factor` as a speed: a finite number > 0 and <= `MAX_SPEED`.

    Raises:
        ValueError: it is not one (the message says what was given).
    """
    if isinstance(factor, bool) or not isinstance(factor, int | float):
        raise ValueError(f"speed must be a number, got {short_repr(factor)}")
    if not (0 < factor <= MAX_SPEED):  # also refuses nan
        raise ValueError(
            f"speed must be > 0 and <= {MAX_SPEED:g} (simulated seconds per real second), "
            f"got {short_repr(factor)}; to stop the clock, pause it"
        )
    return float(factor)


class ScaledClock(trio.abc.Clock):
    """The wall clock times `speed`, which can change, and which can be paused.

    Time starts at 0 when the run starts and advances `speed` seconds per real second
    (`time.perf_counter`) while running; paused, it stands still. Changing the speed or
    pausing never makes time jump: it goes on from where it stands.

    Args:
        speed: simulated seconds per real second (> 0, <= `MAX_SPEED`).

    Raises:
        ValueError: `speed` is not a valid speed.
    """

    def __init__(self, speed: float = 1.0) -> None:
        self._speed = check_speed(speed)
        self._paused = False
        self._real_base = time.perf_counter()
        self._base = 0.0
        self._token: trio.lowlevel.TrioToken | None = None

    def __repr__(self) -> str:
        state = "paused" if self._paused else f"x{self._speed:g}"
        return f"<ScaledClock {state} at t={self.current_time():.6g}>"

    # --- trio.abc.Clock -------------------------------------------------------------------

    def start_clock(self) -> None:
        self._real_base = time.perf_counter()
        self._base = 0.0

    def current_time(self) -> float:
        if self._paused:
            return self._base
        return self._base + self._speed * (time.perf_counter() - self._real_base)

    def deadline_to_sleep_time(self, deadline: float) -> float:
        if self._paused:
            return _LONGEST_SLEEP
        return max(0.0, (deadline - self.current_time()) / self._speed)

    # --- steering -------------------------------------------------------------------------

    @property
    def speed(self) -> float:
        """Simulated seconds per real second while running."""
        return self._speed

    @speed.setter
    def speed(self, factor: float) -> None:
        factor = check_speed(factor)
        self._rebase()
        self._speed = factor
        self._wake()

    @property
    def paused(self) -> bool:
        """True while the clock stands still."""
        return self._paused

    def pause(self) -> None:
        """Stop the clock (a no-op if it is stopped)."""
        self._rebase()
        self._paused = True
        self._wake()

    def resume(self) -> None:
        """Start the clock again from where it stands (a no-op if it runs)."""
        self._rebase()
        self._paused = False
        self._wake()

    def bind(self, token: trio.lowlevel.TrioToken) -> None:
        """Wake this run's loop on every change (`RunControl` binds it for you)."""
        self._token = token

    def _rebase(self) -> None:
        self._base = self.current_time()
        self._real_base = time.perf_counter()

    def _wake(self) -> None:
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(_nothing)


ClockKind = Literal["virtual", "wall"]

_CONTROLS: weakref.WeakKeyDictionary[trio.abc.Clock, RunControl] = weakref.WeakKeyDictionary()


def run_control() -> RunControl:
    """The `RunControl` of the current Trio run (one per clock, made on first use).

    Raises:
        RuntimeError: called outside a Trio run.
    """
    clock = trio.lowlevel.current_clock()
    control = _CONTROLS.get(clock)
    if control is None:
        control = _CONTROLS[clock] = RunControl(clock)
    return control


class RunControl:
    """Pause, resume, step and change the speed of the current Trio run's clock.

    Works on virtual time (``trio.testing.MockClock``) and on a `ScaledClock`; on any other
    clock it only reports (every change raises ``ValueError``). Get it with `run_control`. Call
    its methods in the run's own thread (from another, through ``trio.from_thread.run_sync``
    with the run's token). A step needs `serve` running in a task of the run (the observation
    server runs it).
    """

    def __init__(self, clock: trio.abc.Clock) -> None:
        self.clock = clock
        self._saved: tuple[float, float] | None = None  # a paused MockClock's (threshold, rate)
        self._step_until: float | None = None
        self._step_wanted = trio.Event()
        self._sleeping: trio.CancelScope | None = None  # the wait for a step's end
        self._serving = 0
        if isinstance(clock, ScaledClock):
            clock.bind(trio.lowlevel.current_trio_token())

    @property
    def kind(self) -> ClockKind:
        """``virtual`` for virtual time, else ``wall``."""
        return "virtual" if isinstance(self.clock, trio.testing.MockClock) else "wall"

    @property
    def steerable(self) -> bool:
        """Whether this clock can be paused and stepped."""
        return isinstance(self.clock, trio.testing.MockClock | ScaledClock)

    @property
    def paused(self) -> bool:
        """True while time stands still (a step in progress counts as running)."""
        if isinstance(self.clock, ScaledClock):
            return self.clock.paused
        return self._saved is not None

    @property
    def speed(self) -> float | None:
        """A `ScaledClock`'s speed; 1.0 on the plain wall clock; None in virtual time."""
        if isinstance(self.clock, ScaledClock):
            return self.clock.speed
        return None if self.kind == "virtual" else 1.0

    def now(self) -> float:
        """The clock's current time, in seconds."""
        return self.clock.current_time()

    def _refuse(self, action: str) -> None:
        if not self.steerable:
            raise ValueError(
                f"cannot {action}: this run's clock ({type(self.clock).__name__}) cannot be "
                "steered; run in virtual time or with --clock wall (a ScaledClock)"
            )

    def pause(self) -> None:
        """Freeze time (and end a step in progress). A no-op when paused.

        Raises:
            ValueError: the clock cannot be steered.
        """
        self._refuse("pause")
        self._step_until = None
        clock = self.clock
        if isinstance(clock, ScaledClock):
            clock.pause()
        elif isinstance(clock, trio.testing.MockClock) and self._saved is None:
            self._saved = (clock.autojump_threshold, clock.rate)
            clock.rate = 0.0
            clock.autojump_threshold = math.inf

    def resume(self) -> None:
        """Let time run again (and end a step in progress). A no-op when running.

        Raises:
            ValueError: the clock cannot be steered.
        """
        self._refuse("resume")
        self._step_until = None
        self._run()

    def _run(self) -> None:
        clock = self.clock
        if isinstance(clock, ScaledClock):
            clock.resume()
        elif isinstance(clock, trio.testing.MockClock) and self._saved is not None:
            threshold, rate = self._saved
            self._saved = None
            clock.rate = rate
            clock.autojump_threshold = threshold

    def step(self, seconds: float) -> float:
        """Let time advance `seconds` from now, then freeze it; returns when it will stop.

        Everything due in that span happens, in order, as when running; what is due at the
        end happens too. A step while running runs that long more, then pauses.

        Raises:
            ValueError: `seconds` is not a finite number > 0, or the clock cannot be steered.
            RuntimeError: nothing serves steps (`serve` is not running).
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError(f"step takes a number of seconds, got {short_repr(seconds)}")
        if not (0 < seconds < math.inf):
            raise ValueError(
                f"step takes a finite number of seconds > 0, got {short_repr(seconds)}"
            )
        self._refuse("step")
        if not self._serving:
            raise RuntimeError("cannot step: RunControl.serve is not running in this run")
        until = self.now() + seconds
        self._step_until = until
        self._step_wanted.set()
        if self._sleeping is not None:
            self._sleeping.cancel()  # waiting for an older step's end: wait for this one's
        self._run()
        return until

    def set_speed(self, factor: float) -> float:
        """Run a `ScaledClock` at `factor` simulated seconds per real second.

        Raises:
            ValueError: `factor` is not a valid speed (`check_speed`), or the run is not on a
                `ScaledClock` (virtual time has no speed: it runs flat out).
        """
        factor = check_speed(factor)
        if not isinstance(self.clock, ScaledClock):
            what = "virtual time runs flat out" if self.kind == "virtual" else "a fixed clock"
            raise ValueError(f"cannot set the speed: {what}; use --clock wall for a speed")
        self.clock.speed = factor
        return factor

    async def serve(self) -> None:
        """Serve steps until cancelled: when a step's time comes, freeze time again."""
        self._serving += 1
        try:
            while True:
                await self._step_wanted.wait()
                self._step_wanted = trio.Event()
                while (until := self._step_until) is not None:
                    with trio.CancelScope() as self._sleeping:
                        await trio.sleep_until(until)
                    self._sleeping = None
                    if self._step_until == until and self.now() >= until:  # still this step
                        self.pause()
        finally:
            self._serving -= 1
