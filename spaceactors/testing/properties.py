"""Recording a plain Hypothesis property's example, so that a failing one becomes a case file.

The pytest plugin wraps every Hypothesis test (`record`): while an example runs, every system
it opens (`open_system`, or `spaceactors.run` in a sync test) is recorded: its seed and one
trace of all their events. An async test's Trio task order is seeded from its arguments
(`sa.seeded_scheduler`). When the example fails for good (Hypothesis' final, shrunk run) and
opened at least one system, its case goes to `CASES_FOLDER` and the failure ends with
``reproduce with: spaceactors replay <path>``, as a machine's does. A test that opens no system
is left alone.

What the case holds: the test's arguments (what Hypothesis drew, the values of ``st.data()``
draws in order, and parametrize values), the virtual clocks among its fixtures, the seeds, the
start time, the trace hash. A test that takes another fixture (``tmp_path``, say), or runs on
the wall clock, cannot be replayed: its failure says so in a note instead.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import inspect
import json
import weakref
from collections.abc import Callable, Collection
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import control
from hypothesis import strategies as st

from spaceactors.recording import recording
from spaceactors.testing.casefile import Case, CaseError, Draws, Where, encode_value
from spaceactors.trace import DEFAULT_KEEP, Trace, TraceEvent
from spaceactors.trace_chain import ChainHash
from spaceactors.virtual import seeded_scheduler

CASES_FOLDER = ".spaceactors/cases"
"""Where a failing property's case file and trace go (relative to the current directory)."""
INNER_TESTS: weakref.WeakKeyDictionary[Callable[..., Any], Callable[..., Any]] = (
    weakref.WeakKeyDictionary()
)
"""A Hypothesis test -> its own inner function, kept before pytest-trio replaces the inner
test with its runner (the pytest plugin fills it in; a replay calls the function itself)."""


class Mismatch(Exception):
    """A recorded step or draw that the test no longer takes as it was."""


@attrs.define(eq=False)
class PropertyExample:
    """One run of a property: its arguments, and what the systems it opened recorded.

    A `spaceactors.recording.SystemRecorder`: each system opened while it records adds its
    seed, and its events go to one hash (as `Trace.hash` of them all, in order).
    """

    arguments: dict[str, Any]
    clocks: dict[str, float]
    scheduler_seed: int
    start_time: float
    virtual: bool = True
    fixtures: list[str] = attrs.Factory(list)
    """The test's fixtures other than clocks (which a replay cannot give)."""
    seeds: list[int] = attrs.Factory(list)
    count: int = 0
    events: collections.deque[TraceEvent] = attrs.Factory(
        lambda: collections.deque(maxlen=DEFAULT_KEEP)
    )
    _hash: ChainHash = attrs.Factory(ChainHash)

    @property
    def hash(self) -> str:
        """The trace hash of every event the example's systems recorded."""
        return self._hash.hexdigest()

    def opened(self, seed: int, trace: Trace | None) -> Trace:
        self.seeds.append(seed)
        if trace is None:
            trace = Trace(keep=0)  # the example keeps the events
        trace.sinks.append(self)  # a TraceSink: `write` and `close` below
        return trace

    def closed(self, trace: Trace) -> None:
        trace.sinks = [sink for sink in trace.sinks if sink is not self]

    def write(self, event: TraceEvent, line: str) -> None:
        self._hash.add(line)
        self.count += 1
        self.events.append(event)

    def close(self) -> None:
        """Nothing to close: the example is written as a whole when it fails."""


@attrs.define(eq=False)
class RecordingData:
    """Hypothesis' ``st.data()`` object, recording every value drawn from it."""

    data: st.DataObject
    drawn: list[Any] = attrs.Factory(list)

    def draw(self, strategy: st.SearchStrategy[Any], label: object = None) -> Any:
        value = self.data.draw(strategy, label)
        self.drawn.append(value)
        return value

    def __repr__(self) -> str:
        return repr(self.data)


@attrs.define(eq=False)
class ReplayedData:
    """Stands for ``st.data()`` in a replay: each draw gives the next recorded value."""

    values: tuple[Any, ...]
    index: int = 0

    def draw(self, strategy: st.SearchStrategy[Any], label: object = None) -> Any:
        if self.index >= len(self.values):
            raise Mismatch(f"it draws more than the {len(self.values)} value(s) the case recorded")
        self.index += 1
        return self.values[self.index - 1]


def record(
    test: Callable[..., Any],
    fixtures: Collection[str] = (),
    on_example: Callable[[], None] | None = None,
) -> Callable[..., Any]:
    """Wrap a Hypothesis test's inner function so that its failing example is saved as a case
    (the pytest plugin does this for every Hypothesis test).

    Args:
        fixtures: the names of the test's arguments that are pytest fixtures (a replay can
            give only a virtual clock); the rest are Hypothesis' and parametrize's values.
        on_example: called as each example starts (the plugin clears the captured log, so that
            a failure shows the log of the example that failed, not of every example before).
    """
    if getattr(test, "__spaceactors_recorded__", False):
        return test
    if inspect.iscoroutinefunction(test):

        @functools.wraps(test)
        async def recorded_async(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True  # pytest shows the test's own frames
            example, kwargs = _start(kwargs, fixtures, on_example)
            try:
                with recording(example), seeded_scheduler(example.scheduler_seed):
                    return await test(*args, **kwargs)
            except Exception as exc:
                _report(test, example, exc)
                raise

        wrapper: Callable[..., Any] = recorded_async
    else:

        @functools.wraps(test)
        def recorded_sync(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            example, kwargs = _start(kwargs, fixtures, on_example)
            try:
                with recording(example):
                    return test(*args, **kwargs)
            except Exception as exc:
                _report(test, example, exc)
                raise

        wrapper = recorded_sync
    wrapper.__spaceactors_recorded__ = True  # type: ignore[attr-defined]
    return wrapper


def _start(
    kwargs: dict[str, Any], fixtures: Collection[str], on_example: Callable[[], None] | None
) -> tuple[PropertyExample, dict[str, Any]]:
    """The example's record, and the arguments to call the test with (``st.data()`` recorded)."""
    if on_example is not None:
        on_example()
    clocks = {
        name: float(value.autojump_threshold)
        for name, value in kwargs.items()
        if isinstance(value, trio.testing.MockClock)
    }
    called = {
        name: RecordingData(value) if isinstance(value, st.DataObject) else value
        for name, value in kwargs.items()
    }
    # A method's `self` is no argument: a replay calls the method on a new instance.
    arguments = {
        name: value
        for name, value in called.items()
        if name not in clocks and name != "self" and name not in fixtures
    }
    try:
        clock = trio.lowlevel.current_clock()
    except RuntimeError:  # a sync test: `spaceactors.run` inside seeds and times its own runs
        virtual, start = True, 0.0
    else:
        virtual, start = isinstance(clock, trio.testing.MockClock), trio.current_time()
    example = PropertyExample(arguments, clocks, scheduler_seed(arguments), start, virtual)
    example.fixtures = sorted(name for name in kwargs if name in fixtures and name not in clocks)
    return example, called


def scheduler_seed(arguments: dict[str, Any]) -> int:
    """Trio's task-order seed for an example: a hash of its arguments (0 when they cannot be
    saved, since such an example cannot be replayed anyway)."""
    try:
        text = json.dumps(_encoded(arguments), sort_keys=True, allow_nan=False)
    except CaseError:
        return 0
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def _encoded(arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        name: encode_value(_saved(value), f"argument {name!r}")
        for name, value in arguments.items()
        if not isinstance(value, RecordingData)  # drawn during the run: known only at its end
    }


def _saved(value: Any) -> Any:
    return Draws(tuple(value.drawn)) if isinstance(value, RecordingData) else value


def failed_for_good() -> bool:
    """Whether a failure now is final: Hypothesis' last run of the shrunk example (or no
    Hypothesis search at all), not one of the examples it tries while searching."""
    return not control.currently_in_test_context() or control.current_build_context().is_final


def _report(test: Callable[..., Any], example: PropertyExample, exc: BaseException) -> None:
    """Save the failing example as a case, if it failed for good and opened a system, and end
    the failure's notes with the line that replays it."""
    if not failed_for_good():
        return  # Hypothesis is still searching or shrinking
    if not example.seeds or getattr(exc, "__spaceactors_reproduce__", None) is not None:
        return  # not an engine test, or a machine inside already saved its own case
    from spaceactors.testing.replay import end_with, write_case  # it imports this module

    try:
        case = _case(test, example, exc)
        line = f"reproduce with: spaceactors replay {write_case(case, example.events)}"
    except (CaseError, OSError) as error:
        line = f"spaceactors: no case file for this example: {error}"
    end_with(exc, example.seeds[0], example.hash, line)


def _case(test: Callable[..., Any], example: PropertyExample, exc: BaseException) -> Case:
    """The case of a failing example.

    Raises:
        CaseError: it cannot be replayed (the message says why).
    """
    if not example.virtual:
        raise CaseError(
            "the test ran on the wall clock, where a replay cannot repeat it: take the "
            "`virtual_clock` fixture"
        )
    if example.fixtures:
        names = ", ".join(repr(name) for name in example.fixtures)
        raise CaseError(
            f"the test takes the fixture(s) {names}, which a replay cannot give (it gives "
            "`virtual_clock`, Hypothesis' and parametrize's values): draw the value instead"
        )
    if "<locals>" in test.__qualname__:
        raise CaseError(
            f"{test.__qualname__} is defined inside a function: a replay cannot find it"
        )
    from spaceactors.testing.replay import module_file, one_line

    return Case(
        test=Where(test.__module__, test.__qualname__, module_file(test.__module__)),
        machine=None,
        seed=example.seeds[0],
        scheduler_seed=example.scheduler_seed,
        start_time=example.start_time,
        faults=None,
        steps=(),
        failure=one_line(exc),
        trace_hash=example.hash,
        trace_events=example.count,
        arguments={name: _saved(value) for name, value in example.arguments.items()},
        clocks=example.clocks,
    )


def replay_arguments(case: Case) -> tuple[dict[str, Any], trio.testing.MockClock | None]:
    """The arguments to call a property with, from its case, and the clock its run takes."""
    clock = None
    if case.clocks:
        clock = trio.testing.MockClock(autojump_threshold=min(case.clocks.values()))
    arguments: dict[str, Any] = {
        name: ReplayedData(value.values) if isinstance(value, Draws) else value
        for name, value in case.arguments.items()
    }
    arguments.update((name, clock) for name in case.clocks)
    return arguments, clock


__all__ = [
    "CASES_FOLDER",
    "INNER_TESTS",
    "Mismatch",
    "PropertyExample",
    "record",
    "replay_arguments",
    "scheduler_seed",
]
