"""A signal whose `KeyboardInterrupt` lands where Python cannot raise it: in a ``__del__``, a
weakref callback or a garbage-collector callback. Python would print ``Exception ignored in``
with a traceback and lose the interrupt; the command takes it back silently and raises it at
the next bytecode that can (`spaceactors_command.Interrupts`).

In process, the handler runs inside the finalizer because `signal.raise_signal` runs Python's
pending handlers before it returns. Then one real subprocess: a scenario file that is being
loaded when the signal comes.
"""

from __future__ import annotations

import gc
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from spaceactors.cli.signals import Signals
from spaceactors_command import HANDLED, Interrupts

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMEOUT = 60.0
ENTRY = "import sys, spaceactors_command; sys.exit(spaceactors_command.main())"


@contextmanager
def _raising(interrupts: Interrupts) -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in HANDLED}
    try:
        for signum in HANDLED:
            signal.signal(signum, interrupts.raise_now)
        with interrupts.hooked():
            yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


class _SignalsWhenDropped:
    def __init__(self, signum: int) -> None:
        self.signum = signum

    def __del__(self) -> None:
        signal.raise_signal(self.signum)


def _in_del(signum: int) -> None:
    _SignalsWhenDropped(signum)  # dropped at once: its __del__ runs here


def _in_weakref_callback(signum: int) -> None:
    class Target:
        pass

    target = Target()
    keep = weakref.ref(target, lambda ref: signal.raise_signal(signum))
    del target
    assert keep() is None


def _in_gc_callback(signum: int) -> None:
    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc.callbacks.remove(callback)
            signal.raise_signal(signum)

    gc.callbacks.append(callback)
    gc.collect()


def _in_a_finalizer_of_a_cycle(signum: int) -> None:
    cycle: list[object] = [_SignalsWhenDropped(signum)]
    cycle.append(cycle)
    del cycle
    gc.collect()


PLACES = [_in_del, _in_weakref_callback, _in_gc_callback, _in_a_finalizer_of_a_cycle]


def _busy_after(place: Callable[[int], None], signum: int) -> None:
    """`place` takes the interrupt; it must be raised again here, a moment later."""
    place(signum)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        pass
    raise AssertionError("the interrupt was lost")


@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("signum", HANDLED)
def test_an_interrupt_where_python_cannot_raise_is_raised_next_silently(
    capsys: pytest.CaptureFixture[str], place: Callable[[int], None], signum: int
) -> None:
    interrupts = Interrupts()
    with _raising(interrupts), pytest.raises(KeyboardInterrupt):
        _busy_after(place, signum)
    assert interrupts.seen == [signum]  # recorded once, although its handler ran twice
    assert capsys.readouterr().err == ""


def test_the_commands_signals_take_interrupts_back_outside_trio(
    capsys: pytest.CaptureFixture[str],
) -> None:
    signals = Signals()
    with signals.raising(), pytest.raises(KeyboardInterrupt):
        _busy_after(_in_weakref_callback, signal.SIGTERM)
    assert signals.seen == [signal.SIGTERM]
    assert signals.ended_by == signal.SIGTERM
    assert capsys.readouterr().err == ""


class _RaisesItself:
    def __del__(self) -> None:
        raise KeyboardInterrupt  # the program's own, not a signal's


def test_a_finalizers_own_keyboard_interrupt_is_still_reported() -> None:
    reported: list[BaseException | None] = []
    previous = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: reported.append(unraisable.exc_value)
    try:
        interrupts = Interrupts()
        with _raising(interrupts):
            _RaisesItself()
    finally:
        sys.unraisablehook = previous
    assert len(reported) == 1
    assert isinstance(reported[0], KeyboardInterrupt)
    assert interrupts.seen == []


def test_an_interrupt_taken_back_is_not_a_second_signal_for_the_run() -> None:
    """Taken back just before the run starts, the interrupt is raised again into a handler that
    only records (`Signals.quiet`): it must not count as a second signal (which would stop the
    run at once, with no summary)."""
    interrupts = Interrupts()
    signals = Signals(interrupts)
    with signals.raising():
        try:
            _in_del(signal.SIGINT)
            signals.quiet()  # the interrupt is owed: its next call is not a new signal
        except KeyboardInterrupt:
            pytest.fail("raised before the handlers changed")  # pragma: no cover
        deadline = time.monotonic() + TIMEOUT
        while interrupts.owed:
            assert time.monotonic() < deadline, "the interrupt was never raised again"
    assert signals.seen == [signal.SIGINT]


def test_an_interrupt_taken_back_is_not_raised_again_once_unhooked() -> None:
    """The phase that raises ended before the interrupt was raised again: the signal is in
    `seen` (the command acts on it at its next step), nothing is raised later, and a later
    signal is a new one."""
    interrupts = Interrupts()
    with _raising(interrupts):
        _in_del(signal.SIGTERM)
        assert interrupts.owed == 1
    assert interrupts.owed == 0
    assert interrupts.seen == [signal.SIGTERM]
    assert interrupts.arrived(signal.SIGINT)
    assert interrupts.seen == [signal.SIGTERM, signal.SIGINT]
    assert sys.unraisablehook is not interrupts.take_back


LOADS_SLOWLY = """
import signal, os
from spaceactors import sim


class SignalsWhenDropped:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, in a finalizer


SignalsWhenDropped()
for _ in range(200_000_000):  # loading takes long: Ctrl-C must end it at once
    pass


@sim.scenario(duration=60.0)
async def slow(world):
    pass
"""


def test_ctrl_c_in_a_finalizer_while_a_scenario_loads_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(LOADS_SLOWLY)
    process = subprocess.run(
        [sys.executable, "-c", ENTRY, "run", "slow.py"],
        cwd=tmp_path,
        capture_output=True,
        timeout=TIMEOUT,
    )
    lines = [line for line in process.stderr.decode().splitlines() if line.strip()]
    assert process.returncode == 130, lines
    assert lines == ["spaceactors: interrupted by SIGINT while loading slow.py"], lines
    assert process.stdout == b""
