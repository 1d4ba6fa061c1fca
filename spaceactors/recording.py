"""Watching every system a block of code opens: how a test's example is recorded.

`spaceactors.testing` records a failing property's example this way: the seed of each system
the example opened and one trace of all their events, whatever the test passed as ``trace``.
The core only calls the recorder; it never imports the testing package.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Protocol

from spaceactors.trace import Trace


class SystemRecorder(Protocol):
    """Told about each `open_system` inside `recording` (in the task that opens it)."""

    def opened(self, seed: int, trace: Trace | None) -> Trace:
        """A system opens with `seed` and `trace` (None: the caller asked for none); returns
        the trace the system records to (`trace` itself, or a new one)."""
        ...

    def closed(self, trace: Trace) -> None:
        """The system that `opened` returned `trace` for has stopped."""
        ...


_RECORDER: contextvars.ContextVar[SystemRecorder | None] = contextvars.ContextVar(
    "spaceactors_recorder", default=None
)


def current_recorder() -> SystemRecorder | None:
    """The recorder of the enclosing `recording` block, or None."""
    return _RECORDER.get()


@contextlib.contextmanager
def recording(recorder: SystemRecorder) -> Iterator[None]:
    """Tell `recorder` about every system opened inside the block (and in the tasks and Trio
    runs it starts, which inherit the context)."""
    token = _RECORDER.set(recorder)
    try:
        yield
    finally:
        _RECORDER.reset(token)


__all__ = ["SystemRecorder", "current_recorder", "recording"]
