"""How the command meets SIGINT (Ctrl-C) and SIGTERM: stop at the next tick, then at once.

During a run, Trio's `trio.open_signal_receiver` takes the first signal: it sets the run's stop
event, so the run ends before its next tick, its trace is flushed and the summary so far is
printed. The watcher then hands the signals back, so a second one raises `KeyboardInterrupt` at
once, the way Trio does by default (where it is safe to); SIGTERM takes the same way, through
SIGINT. Outside the run (loading a scenario, printing) a signal raises `KeyboardInterrupt` at
once. Every `KeyboardInterrupt` that reaches the command's `main` ends it with one line and the
exit code of the signal that ended it: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

import trio

HANDLED = (signal.SIGINT, signal.SIGTERM)

_Handler = Callable[[int, FrameType | None], object]


def exit_code(signum: int) -> int:
    """The shell's code for a command that a signal ended: 128 + its number (130, 143)."""
    return 128 + signum


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def is_interrupt(exc: BaseException) -> bool:
    """`exc` is a `KeyboardInterrupt`, or a group holding one (as Trio's nurseries raise it)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(KeyboardInterrupt)[0] is not None
    return False


class Signals:
    """The signals that reached the command, and the handlers it uses in each phase.

    Signal handlers can only be set in the main thread: called from another thread, the
    command leaves signals alone (Python's defaults apply).
    """

    def __init__(self) -> None:
        self.first: int | None = None
        """The signal that stopped the run (its summary says ``interrupted at``)."""
        self.ending: int | None = None
        """The signal that raised `KeyboardInterrupt`, when the command's handler saw it
        (None when Trio's did: then it was SIGINT)."""
        self.phase = "starting"
        """What the command was doing, for the line an interrupt ends with."""
        self.usable = threading.current_thread() is threading.main_thread()

    @property
    def ended_by(self) -> int:
        """The signal that ends the command now."""
        return self.ending if self.ending is not None else signal.SIGINT

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Outside Trio: SIGINT and SIGTERM raise `KeyboardInterrupt` at once."""
        with self._handlers(self._raise, self._raise):
            yield

    @contextlib.contextmanager
    def for_trio(self) -> Iterator[None]:
        """Around ``trio.run``: SIGINT is Trio's own (a `KeyboardInterrupt` raised where it
        is safe to), and SIGTERM goes the same way, by raising SIGINT."""
        with self._handlers(signal.default_int_handler, self._forward):
            yield

    async def watch(
        self, stop: trio.Event, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Set `stop` on the first SIGINT or SIGTERM, then give both back (see the module)."""
        if not self.usable:
            task_status.started()
            return
        with trio.open_signal_receiver(*HANDLED) as received:
            task_status.started()
            async for signum in received:
                self.first = signum
                self.phase = "stopping the run"
                stop.set()
                return

    @contextlib.contextmanager
    def _handlers(self, on_sigint: _Handler, on_sigterm: _Handler) -> Iterator[None]:
        if not self.usable:
            yield
            return
        saved = {signum: signal.getsignal(signum) for signum in HANDLED}
        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield
        finally:
            for signum, handler in saved.items():
                signal.signal(signum, handler)

    def _raise(self, signum: int, frame: FrameType | None) -> None:
        self.ending = signum
        raise KeyboardInterrupt

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.ending = signum
        signal.raise_signal(signal.SIGINT)
