"""The progress display of ``spaceactors run`` on stderr: simulated time, speed, restarts, ETA.

On a terminal it is a `rich` progress bar redrawn in place (the engine's log lines appear above
it); on anything else (a file, a pipe: ``--progress always 2>run.log``) it is one plain line
every ``--progress-every`` seconds of wall time, and one at the end, never ``\\r`` frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from spaceactors import sim

DEFAULT_EVERY = 10.0
"""Seconds of wall time between two plain lines (``--progress-every``)."""


def speed(progress: sim.Progress) -> float | None:
    """Simulated seconds per wall-clock second so far (None before any wall time passed);
    a resumed run's counts only what it simulated itself."""
    wall = progress.wall_seconds
    return (progress.sim_time - progress.origin) / wall if wall > 0 else None


def eta(progress: sim.Progress) -> float | None:
    """Wall-clock seconds until the run ends at the speed so far (None while unknown)."""
    rate = speed(progress)
    if rate is None or rate <= 0:
        return None
    return max(progress.duration - progress.sim_time, 0.0) / rate


def clock_text(seconds: float | None) -> str:
    """A wall-clock duration as ``"42 s"``, ``"3:07"`` or ``"1:02:03"`` (``"?"`` if unknown)."""
    if seconds is None:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def speed_text(progress: sim.Progress) -> str:
    rate = speed(progress)
    return "?x" if rate is None else f"{rate:,.3g}x" if rate < 1000 else f"{rate:,.0f}x"


def status_line(name: str, progress: sim.Progress) -> str:
    """The plain line: where the run is, how fast it goes, restarts so far, time left."""
    done = min(progress.sim_time / progress.duration, 1.0) if progress.duration else 1.0
    wall = progress.wall_seconds
    rate = progress.messages / wall if wall > 0 else 0.0
    return (
        f"{name}: t={progress.sim_time:,.0f}/{progress.duration:,.0f} s ({done:.0%}), "
        f"speed {speed_text(progress)}, {rate:,.0f} msg/s, {progress.actors:,} actors, "
        f"{progress.restarts:,} restarts, ETA {clock_text(eta(progress))}"
    )


class ProgressDisplay:
    """Called with each `sim.Progress` of a run (`sim.run_scenario`'s ``progress``).

    `terminal`: a rich bar redrawn in place; otherwise a plain line when `every` seconds of
    `clock` passed since the last one (and the last state at `close`). A stderr that is full
    or closed ends the display, never the run.
    """

    def __init__(
        self,
        err: TextIO,
        name: str,
        *,
        terminal: bool,
        every: float = DEFAULT_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.err: TextIO | None = err
        self.name = name
        self.every = every
        self.clock = clock
        self._last_line = clock()
        self._unshown: sim.Progress | None = None
        self._bar: Progress | None = None
        self._task = None
        if terminal:
            console = Console(file=err, force_terminal=True, highlight=False, emoji=False)
            self._bar = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                TextColumn("{task.fields[status]}", markup=False),
                console=console,
                auto_refresh=False,  # redrawn at each update: no thread
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(name, total=1.0, status="starting")
            self._guard(self._bar.start)

    def __call__(self, progress: sim.Progress) -> None:
        if self.err is None:
            return
        if self._bar is not None and self._task is not None:
            bar, task = self._bar, self._task
            done = progress.sim_time / progress.duration if progress.duration else 1.0
            status = (
                f"t={progress.sim_time:,.0f}/{progress.duration:,.0f} s  "
                f"{speed_text(progress)}  {progress.restarts:,} restarts  "
                f"ETA {clock_text(eta(progress))}"
            )
            self._guard(lambda: bar.update(task, completed=min(done, 1.0), status=status))
            self._guard(lambda: bar.refresh())
            return
        now = self.clock()
        if now - self._last_line >= self.every:
            self._last_line = now
            self._unshown = None
            self._guard(lambda: self._write(status_line(self.name, progress) + "\n"))
        else:
            self._unshown = progress

    def line(self, text: str) -> None:
        """Write a line of the log on stderr: above the bar while it is shown."""
        if self.err is None:
            return
        bar = self._bar
        if bar is not None and bar.live.is_started:
            self._guard(
                lambda: bar.console.print(
                    text, markup=False, highlight=False, emoji=False, soft_wrap=True
                )
            )
        else:
            self._guard(lambda: self._write(text + "\n"))

    def close(self) -> None:
        """End the display: the bar stays as last drawn; a plain one writes the last state."""
        if self._bar is not None:
            self._guard(self._bar.stop)
        elif self._unshown is not None:
            last, self._unshown = self._unshown, None
            self._guard(lambda: self._write(status_line(self.name, last) + "\n"))

    def _write(self, text: str) -> None:
        if self.err is not None:
            self.err.write(text)
            self.err.flush()

    def _guard(self, action: Callable[[], object]) -> None:
        if self.err is None:
            return
        try:
            action()
        except (OSError, ValueError):
            self.err = None
