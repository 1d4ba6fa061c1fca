"""The cyclic garbage collector held off while a checkpoint is captured, decoded or rebuilt.

Each of these makes hundreds of thousands of containers (a 10,000-ship checkpoint is about a
million lists and dicts) and frees none of them: the collector, triggered every few hundred
allocations, would scan them, and the whole heap (every actor of the run) at each full
collection, for nothing. Measured on the 10,000-ship fleet, that was most of the checkpoint's
pause and of the resume (benchmarks/checkpoint.py). Reference counting still frees what is
dropped; the collector is put back as it was found, whatever happens.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector inside the block, if it was enabled; enable it
    again on the way out (an exception too). Nested blocks leave it to the outermost."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
