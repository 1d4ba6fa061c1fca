"""How often the command's process switches threads while it serves the observation server.

The observation server runs in a thread of its own (`spaceactors.observe`), beside the run. A
thread that wants the interpreter waits for the one holding it to let go, which CPython asks
for every `sys.getswitchinterval` seconds (5 ms by default); answering one request takes the
server a dozen such hand-overs (accepting, reading, writing, waking), so on a run going flat
out a ``/status`` answer took 80 ms at the median. While it observes a run, the command asks
for a hand-over every millisecond instead (measured on the 10k-ship fleet: ``/status`` p50 35
ms and p99 60-64 ms, against 83 ms and 131 ms; observing then cost 4-10% of the run's speed).
It does so for its own process only, and puts back what it found when the run ends (docs/cli.md,
"Memory"). The library itself never changes it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

SWITCH_INTERVAL = 0.001
"""Seconds between two thread switches while the command observes a run."""

log = logging.getLogger("spaceactors.cli")


@contextlib.contextmanager
def quick_switching(observing: bool) -> Iterator[None]:
    """Switch threads every `SWITCH_INTERVAL` seconds within the block when `observing`
    (else change nothing); the interval found is put back on leaving it."""
    if not observing:
        yield
        return
    saved = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    log.debug(
        "threads switch every %g s while the run is observed (was %g s)", SWITCH_INTERVAL, saved
    )
    try:
        yield
    finally:
        sys.setswitchinterval(saved)
