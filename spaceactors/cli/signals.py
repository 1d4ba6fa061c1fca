"""How the command meets SIGINT (Ctrl-C) and SIGTERM: stop at the next tick, then at once.

Every signal is recorded, in order, by the command's own handlers (`Signals.seen`): the exit
code is that of the last one, 130 for SIGINT and 143 for SIGTERM.

Outside Trio (parsing, loading a scenario, printing) a signal raises `KeyboardInterrupt` at
once, also where Python cannot raise (a weakref callback, a ``__del__``): there it is raised
again at the next bytecode that can, silently (`spaceactors_command.Interrupts`). Inside Trio
(a run, the demo) no signal ever raises: the handler records it and asks the run's Trio loop,
through its token, to react where it is safe to. The first signal sets the run's
stop event, so the run ends before its next tick, its trace is flushed and the summary so far is
printed; a second one cancels the run at once (`Signals.at_once`), and the session then raises
`KeyboardInterrupt` outside the run. A signal that arrives while Trio starts or ends is recorded
and reacted to as soon as the session can (or, once it ended, ends the command with its code).
So a `KeyboardInterrupt` that a run raises while no signal was seen is the scenario's own: bad
input, not Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import TypeVar

import trio

from spaceactors_command import HANDLED, Interrupts

_Handler = Callable[[int, FrameType | None], object]
_T = TypeVar("_T")


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

    def __init__(self, interrupts: Interrupts | None = None) -> None:
        self._interrupts = Interrupts() if interrupts is None else interrupts
        self.seen: list[int] = self._interrupts.seen
        """Every SIGINT and SIGTERM that reached the command, in order (the console script's
        entry point passes the ones it saw while Python imported the package)."""
        self.first: int | None = None
        """The signal that stopped the run (its summary says ``interrupted at``)."""
        self.at_once = False
        """A signal after the first one cancelled the run at once (no summary)."""
        self.reported = False
        """The command wrote the line that names the signals (the run's summary line)."""
        self.phase = "starting"
        """What the command was doing, for the line an interrupt ends with."""
        self.tracing = False
        """The run writes a trace file (kept up to a second signal: the line says so)."""
        self.usable = threading.current_thread() is threading.main_thread()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._scope: trio.CancelScope | None = None
        self._reacted = 0

    @property
    def ended_by(self) -> int:
        """The signal that ends the command now: the last one seen."""
        return self.seen[-1] if self.seen else signal.SIGINT

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """Outside Trio: SIGINT and SIGTERM raise `KeyboardInterrupt` at once."""
        with self._handlers(self._interrupts.raise_now), self._interrupts.hooked():
            yield

    @contextlib.contextmanager
    def for_trio(self) -> Iterator[None]:
        """Around ``trio.run``: a signal is recorded and handed to the running session
        (`session`); none raises inside Trio."""
        with self._handlers(self._in_trio):
            yield

    def quiet(self) -> None:
        """From now on a signal is only recorded (the command is writing its last line)."""
        if self.usable:
            for signum in HANDLED:
                signal.signal(signum, self._interrupts.record)

    async def session(
        self, run: Callable[[trio.Event], Awaitable[_T]], *, stop_first: bool = True
    ) -> _T:
        """``await run(stop)`` under the signals: the first one sets `stop` (or, without
        `stop_first`, cancels at once), a later one cancels the run; a cancelled run raises
        `KeyboardInterrupt` here, outside it."""
        stop = trio.Event()
        with trio.CancelScope() as scope:
            self._token = trio.lowlevel.current_trio_token()
            self._stop = stop if stop_first else None
            self._scope = scope
            try:
                self._react()  # a signal that came while Trio started
                return await run(stop)
            finally:
                self._token = self._stop = self._scope = None
        raise KeyboardInterrupt  # only a signal cancels this scope

    @contextlib.contextmanager
    def _handlers(self, handler: _Handler) -> Iterator[None]:
        if not self.usable:
            yield
            return
        saved = {signum: signal.getsignal(signum) for signum in HANDLED}
        for signum in HANDLED:
            signal.signal(signum, handler)
        try:
            yield
        finally:
            for signum, previous in saved.items():
                signal.signal(signum, previous)

    def _in_trio(self, signum: int, frame: FrameType | None) -> None:
        if not self._interrupts.arrived(signum):
            return  # an interrupt raised again: the session reacts to it as it starts
        token = self._token
        if token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._react)

    def _react(self) -> None:
        """In the session's Trio loop: act on the signals seen since the last call."""
        if self._scope is None:
            return  # the session ended: the command ends with the signal's code
        while self._reacted < len(self.seen):
            signum = self.seen[self._reacted]
            self._reacted += 1
            if self.first is None and self._stop is not None:
                self.first = signum
                self.phase = "stopping the run"
                self._stop.set()
            else:
                self.at_once = True
                self._scope.cancel()
