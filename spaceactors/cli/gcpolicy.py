"""The command's memory policy for a run (``spaceactors run --gc tuned``, the default).

Python's cyclic garbage collector scans every tracked object in a full collection. A
10,000-ship world holds some 600,000 of them (about 60 per actor), built once and alive to the
end, so full collections (every ~2 s of a run flat out) cost 300-500 ms each, holding the GIL:
about 40% of the run's time, and an observation server stalled for as long; while the world
is built, the same full collections rescan the growing heap (some 1.3 CPU s of a 10,000-ship
build). So this policy collects the young generation only after `GEN0` allocations from the
moment the world is handed over to be built, and once it is built (its first tick; a resumed
world: once rebuilt) moves everything alive into the collector's permanent generation
(`gc.freeze`: never scanned again): nearly no collection runs during the build or the run,
each one short.

A library must not change the collector's settings for the whole process behind its user's
back: the command may, and says so (docs/cli.md, "Memory"). `TunedGC.restore` puts back what it
found (the command runs in-process in tests and tools), and ``--gc python`` keeps Python's own.
The benchmarks (`benchmarks.fleet`, `benchmarks.observing`) apply it the same way.
"""

from __future__ import annotations

import gc
import logging

from spaceactors import sim

GEN0 = 50_000
"""Allocations between two young-generation collections (Python's default is 700): chosen by
measuring the 10,000-ship run, where it leaves about one young collection every 10 s."""
GEN1, GEN2 = 50, 100
"""Young collections per middle one, middle ones per full one."""

log = logging.getLogger("spaceactors.cli")


class TunedGC:
    """The policy for one run: `at_first_tick` as the world is handed over (or `apply` at
    once), `restore` when the run ends (`restore` without either does nothing)."""

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None
        self._applied = False
        self._froze = False

    @property
    def applied(self) -> bool:
        """Whether the whole policy is in force (applied, not yet restored)."""
        return self._applied

    def raise_thresholds(self) -> None:
        """Raise the collection thresholds to (`GEN0`, `GEN1`, `GEN2`) (once)."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(GEN0, GEN1, GEN2)

    def apply(self) -> None:
        """Raise the thresholds (`raise_thresholds`) and freeze what is alive. Objects
        already frozen by someone else are left so (and none are frozen)."""
        if self._applied:
            return
        self.raise_thresholds()
        self._applied = True
        self._froze = gc.get_freeze_count() == 0
        if self._froze:
            gc.freeze()
        log.debug(
            "gc: froze %d objects of the built world; thresholds %s (were %s); --gc python "
            "keeps Python's own",
            gc.get_freeze_count(),
            (GEN0, GEN1, GEN2),
            self._saved,
        )

    def restore(self) -> None:
        """Put back the thresholds found, and unfreeze what `apply` froze."""
        saved, self._saved = self._saved, None
        self._applied = False
        if saved is None:
            return
        gc.set_threshold(*saved)
        if self._froze:
            gc.unfreeze()
            self._froze = False

    def at_first_tick(self, world: sim.World) -> None:
        """A ``keep_world``: raise the thresholds now, as the world is about to be built, and
        apply the whole policy at its first tick (its build done)."""
        self.raise_thresholds()
        world.at(0.0, self.apply)
