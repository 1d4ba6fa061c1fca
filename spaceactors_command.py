"""The ``spaceactors`` console script's entry point, outside the `spaceactors` package.

Importing `spaceactors` takes a while (the whole engine, Trio, attrs...). A module inside the
package would run only after the package's ``__init__`` was imported, so a SIGINT or SIGTERM in
that time would end the command with a traceback or silently. This module imports nothing of
the project until it has installed handlers that record the signal and raise
`KeyboardInterrupt` (`Interrupts`); a signal during the import ends the command with one line
on stderr and its exit code (130, 143). The signals it saw are handed on to
`spaceactors.cli.main`. (``python -m spaceactors`` imports the package first: it cannot be
covered this way.)
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """SIGINT and SIGTERM as the command sees them: recorded in order, and, where the command
    wants it, raised as `KeyboardInterrupt`, even where Python cannot raise.

    Python runs a signal's handler between two bytecodes of the main thread, wherever they
    are. In a weakref callback, a ``__del__`` method or a garbage-collector callback an
    exception cannot propagate: Python prints ``Exception ignored in ...`` with a traceback
    (``sys.unraisablehook``) and goes on, and the interrupt is lost (a signal during an import
    lands in the import system's weakref callbacks). While `hooked`, such an interrupt is taken
    back silently (`take_back`), and a millisecond later a thread has Python call the signal's
    handler again (``_thread.interrupt_main``; called from the hook itself, Python would run
    the handler at its next bytecode, still inside the hook). The handler then raises where
    the program is: the command still stops at once, with one line. Once no longer `hooked`,
    nothing is raised again: the signal is in `seen`, and the command acts on it at its next
    step. Each signal is recorded once in `seen`; a signal that comes in the instant an
    interrupt is raised again counts once (Python merges a signal's pending calls).
    """

    def __init__(self, seen: list[int] | None = None) -> None:
        self.seen: list[int] = [] if seen is None else seen
        """Every SIGINT and SIGTERM that reached the command, in order."""
        self._owed = 0  # interrupts taken back: their handler's next call is not a new signal
        self._lock = threading.Lock()
        self._again_later: list[list[bool]] = []  # per interrupt taken back: raised again yet
        self._hooked = False
        self._previous: Callable[[sys.UnraisableHookArgs], object] = sys.unraisablehook

    def arrived(self, signum: int) -> bool:
        """Record `signum`; False when it is an interrupt raised again (recorded already)."""
        if self._owed:
            self._owed -= 1
            return False
        self.seen.append(signum)
        return True

    def record(self, signum: int, frame: FrameType | None) -> None:
        """A signal handler: record the signal, raise nothing."""
        self.arrived(signum)

    def raise_now(self, signum: int, frame: FrameType | None) -> None:
        """A signal handler: record the signal and raise `KeyboardInterrupt`."""
        self.arrived(signum)
        if _inside(frame, _TAKE_BACK):
            self._again(signum)  # raising in the hook would be one more unraisable error
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def hooked(self) -> Iterator[None]:
        """Take back the interrupts `raise_now` raised where Python could not raise them."""
        previous = self._previous = sys.unraisablehook
        sys.unraisablehook = self.take_back
        self._hooked = True
        try:
            yield
        finally:
            sys.unraisablehook = previous
            with self._lock:
                self._hooked = False
                self._owed -= sum(not sent for (sent,) in self._again_later)
                self._again_later.clear()

    @property
    def owed(self) -> int:
        """Interrupts taken back and not yet raised again."""
        return self._owed

    def take_back(self, unraisable: sys.UnraisableHookArgs) -> None:
        """``sys.unraisablehook``: an interrupt `raise_now` raised is raised again; anything
        else goes to the hook that was in place (a scenario's own errors are still shown)."""
        signum = self._raised_by_handler(unraisable.exc_value)
        if signum is None:
            self._previous(unraisable)
            return
        self._again(signum)

    def _raised_by_handler(self, exc: BaseException | None) -> int | None:
        if not isinstance(exc, KeyboardInterrupt) or not self.seen:
            return None
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is None or tb.tb_frame.f_code is not _RAISE_NOW:
            return None
        return int(tb.tb_frame.f_locals.get("signum", self.seen[-1]))

    def _again(self, signum: int) -> None:
        self._owed += 1
        sent = [False]
        self._again_later.append(sent)
        again = threading.Timer(_AGAIN_AFTER, self._raise_again, (signum, sent))
        again.daemon = True
        again.start()

    def _raise_again(self, signum: int, sent: list[bool]) -> None:
        with self._lock:  # hooked still: the main thread's next bytecode calls raise_now
            if self._hooked and not sent[0]:
                sent[0] = True
                _thread.interrupt_main(signal.Signals(signum))


_AGAIN_AFTER = 0.001
"""Seconds before an interrupt taken back is raised again: enough for the hook to return."""

_RAISE_NOW = Interrupts.raise_now.__code__
_TAKE_BACK = Interrupts.take_back.__code__


def _inside(frame: FrameType | None, code: object) -> bool:
    """`frame` or a frame that called it runs `code`."""
    while frame is not None:
        if frame.f_code is code:
            return True
        frame = frame.f_back
    return False


def main() -> int:
    """Install the handlers, import the command, run it; returns the exit code."""
    interrupts = Interrupts()
    usable = _handle(interrupts.raise_now)
    try:
        with interrupts.hooked():
            from spaceactors.cli import main as command

            if usable:  # until the command handles them: recorded only
                _handle(interrupts.record)
    except KeyboardInterrupt:
        _handle(interrupts.record)  # the last line is written whatever comes
        last = interrupts.seen[-1] if interrupts.seen else signal.SIGINT
        try:
            sys.stderr.write(
                f"spaceactors: interrupted by {signal.Signals(last).name} while starting\n"
            )
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        return _ended(128 + last)
    return _ended(command(interrupts=interrupts))


def _handle(handler: Callable[[int, FrameType | None], None]) -> bool:
    """`handler` for SIGINT and SIGTERM; False outside the main thread (Python's defaults)."""
    try:
        for signum in HANDLED:
            signal.signal(signum, handler)
    except ValueError:
        return False
    return True


def _ended(code: int) -> int:
    """The command has written its last line: a signal from now on (while Python shuts down)
    no longer changes its exit code, so it is ignored until the process exits.

    Ignored (for the whole process), not blocked in this thread: a signal goes to any thread
    of the process that does not block it (threads the run started), and Python puts back the
    default handlers as it shuts down, leaving only an ignored signal ignored, so a signal
    then would end the process by the default action, with no exit code of ours."""
    with contextlib.suppress(ValueError):  # (not the main thread: Python's defaults apply)
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
