"""Saving a failing example of an `ActorSystemMachine` as a case file, and replaying it.

`report_failure` (called by `ActorSystemMachine.run`) writes the case and its trace and adds
the failure's last line, ``reproduce with: spaceactors replay <path>``; `replay` runs a case
again without Hypothesis; `cases` turns saved cases into pytest regression tests. The format
is in `spaceactors.testing.casefile`.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import trio
import trio.testing

from spaceactors.checks import short_repr
from spaceactors.recording import recording
from spaceactors.testing.casefile import Case, CaseError, Step, Where, encode_value
from spaceactors.testing.machine import ActorSystemMachine, Example, _Rule
from spaceactors.testing.properties import (
    CASES_FOLDER,
    INNER_TESTS,
    Mismatch,
    PropertyExample,
    ReplayedData,
    failed_for_good,
    replay_arguments,
)
from spaceactors.trace import TraceEvent, sink_for, sink_type
from spaceactors.virtual import run as run_virtual
from spaceactors.virtual import seeded_scheduler

REPRODUCE = "reproduce with: spaceactors replay {path}"
"""The last line of a failure that saved its case (the report hook of the failure output)."""


def reproduce_line(exc: BaseException) -> str | None:
    """The ``reproduce with: ...`` line `report_failure` gave `exc`, or None (a hook for
    whatever renders the failure report: the line belongs at its end)."""
    line = getattr(exc, "__spaceactors_reproduce__", None)
    return line if isinstance(line, str) else None


def report_failure(
    machine: type[ActorSystemMachine], test: Where | None, example: Example, exc: BaseException
) -> Path | None:
    """Save the failing `example` of `machine` as a case (Hypothesis' final run only) and end
    the failure's notes with the line that replays it; returns the case's path, or None.

    A case that cannot be saved (a step argument that is no JSON value nor protocol message, a
    machine defined inside a function, a folder that cannot be written) ends the notes with
    ``spaceactors: no case file for this example: <why>`` instead.
    """
    if not failed_for_good():
        return None  # Hypothesis is still searching or shrinking: this example may not stay
    path = None
    try:
        path = save_case(machine, test, example, exc)
        line = (
            "spaceactors: no case file (cases_folder is None)"
            if path is None
            else REPRODUCE.format(path=path)
        )
    except (CaseError, OSError) as error:
        line = f"spaceactors: no case file for this example: {error}"
    end_with(exc, example.seed, example.trace.hash, line)
    return path


def end_with(exc: BaseException, seed: int, trace_hash: str, line: str) -> None:
    """End the failure's notes with the example's seed and trace hash, then `line` (how to
    replay it, or why it cannot be): last, whatever notes Hypothesis adds after."""
    lines = [f"spaceactors: system seed {seed}; trace hash {trace_hash[:16]}", line]
    exc.__spaceactors_reproduce__ = line  # type: ignore[attr-defined]
    for text in lines:
        exc.add_note(text)
    exc.__notes__ = _LastLines(exc.__notes__, lines)


class _LastLines(list[str]):
    """Notes that show `last` at their end, whatever is added after them.

    Hypothesis adds its own notes (the falsifying example, its explanation) once the test
    has raised; a failure report reads to the end, so the line that replays the case stays
    last. A list still (``add_note`` appends to it); reading it gives the new order.
    """

    def __init__(self, notes: list[str], last: list[str]) -> None:
        super().__init__(notes)
        self.last = last

    def _ordered(self) -> list[str]:
        notes = list(super().__iter__())
        return [note for note in notes if note not in self.last] + self.last

    def __iter__(self) -> Iterator[str]:
        return iter(self._ordered())

    def __getitem__(self, index: Any) -> Any:
        return self._ordered()[index]


def save_case(
    machine: type[ActorSystemMachine], test: Where | None, example: Example, exc: BaseException
) -> Path | None:
    """Write the case file and its trace to ``machine.cases_folder``; returns the case's path
    (relative to the current directory when it is inside), or None when the folder is None.

    Raises:
        CaseError: the example cannot be saved (it says why).
        OSError: the folder or the files cannot be written.
    """
    if machine.cases_folder is None:
        return None
    if "<locals>" in machine.__qualname__:
        raise CaseError(
            f"{machine.__qualname__} is defined inside a function, where a replay cannot find "
            "it: define the machine at module level"
        )
    where = Where(machine.__module__, machine.__qualname__, module_file(machine.__module__))
    case = Case(
        test=_relative(test) if test is not None else where,
        machine=where,
        seed=example.seed,
        scheduler_seed=example.scheduler_seed,
        start_time=example.start_time,
        faults=example.faults,
        steps=tuple(example.steps),
        failure=one_line(exc),
        trace_hash=example.trace.hash,
        trace_events=example.trace.count,
    )
    return write_case(case, example.trace.events, Path(machine.cases_folder))


def write_case(case: Case, events: Iterable[TraceEvent], folder: Path = Path(CASES_FOLDER)) -> Path:
    """Write `case` and its trace (`events`) to `folder`; returns the case's path.

    Raises:
        CaseError: the case cannot be encoded (it says what), before anything is written.
        OSError: the folder or the files cannot be written.
    """
    case.to_json()  # refuses what cannot be encoded, before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / case.file_name()
    trace_path = path.with_suffix(".trace.jsonl")
    case = attrs.evolve(case, trace_file=trace_path.name)
    sink = sink_for(trace_path)
    for event in events:
        sink.write(event, event.to_json())
    sink.close()
    path.write_text(case.to_json(), encoding="utf-8")
    return path


@attrs.frozen
class ReplayResult:
    """What replaying a case did."""

    path: str
    case: Case
    passed: bool
    """True when the example no longer fails (the bug is fixed)."""
    failure: str
    """The failure in one line (``AssertionError: ...``); empty when it passed."""
    trace_hash: str
    """The trace hash of the replay: equal to the failing run's while nothing changed."""
    events: int
    error: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    """The exception the example raised, with its traceback; None when it passed."""

    @property
    def same_trace(self) -> bool:
        """Whether the replay's trace hash is the one the case recorded."""
        return self.trace_hash == self.case.trace_hash


def replay(
    path: str | os.PathLike[str], *, trace: str | os.PathLike[str] | None = None
) -> ReplayResult:
    """Run the case file at `path` again: its machine, seeds, fault plan and steps (or its
    property and the property's arguments), in virtual time, without Hypothesis. Call it
    outside any Trio run (it starts its own). It imports the test's module, as pytest would:
    replay only cases you would run as tests.

    Args:
        trace: also write the replay's event trace to this file (``.jsonl`` or ``.sqlite``),
            to compare with the failing run's (``spaceactors trace diff``).

    Raises:
        CaseError: not a case file, or one that no longer fits its test (a module, class,
            function or rule that is gone, a precondition that no longer holds, arguments
            the test no longer takes, draws it no longer makes).
        KeyboardInterrupt: interrupted (Ctrl-C), as itself.
        ValueError: `trace` is not a trace format; OSError: it cannot be written.
    """
    case = Case.read(path)
    if trace is not None:
        sink_type(trace)  # an unknown format is refused before anything runs
    result, events = (
        _replay_property(case, Path(path))
        if case.machine is None
        else _replay_machine(case, Path(path))
    )
    if trace is not None:
        sink = sink_for(trace)
        for event in events:
            sink.write(event, event.to_json())
        sink.close()
    return result


def _replay_machine(case: Case, path: Path) -> tuple[ReplayResult, Iterable[TraceEvent]]:
    machine = load_machine(case, Path(path))
    example = Example(case.seed, case.scheduler_seed, case.start_time, case.faults)
    steps = _Recorded(machine, case.steps)

    async def main() -> None:
        clock = trio.lowlevel.current_clock()
        assert isinstance(clock, trio.testing.MockClock)
        clock.jump(case.start_time)  # the failing run's clock, to the bit
        await machine.play(example, steps.choose)

    error = _outcome(
        lambda: run_virtual(main, seed=case.scheduler_seed), path, machine.__qualname__
    )
    return _result(path, case, error, example.trace.hash, example.trace.count), example.trace.events


def _replay_property(case: Case, path: Path) -> tuple[ReplayResult, Iterable[TraceEvent]]:
    """Call the case's property with its recorded arguments, as the failing run did."""
    test = load_property(case, path)
    arguments, clock = replay_arguments(case)
    try:
        inspect.signature(test).bind(**arguments)
    except TypeError as exc:  # a parameter renamed, added or removed since
        raise CaseError(
            f"{path}: the case no longer fits {case.test.qualname}: it takes other arguments "
            f"now ({exc}; the case gives {', '.join(sorted(arguments)) or 'none'})"
        ) from None
    example = PropertyExample(arguments, case.clocks, case.scheduler_seed, case.start_time)
    if inspect.iscoroutinefunction(test):

        async def main() -> None:
            if clock is not None:
                clock.jump(case.start_time)
            with recording(example), seeded_scheduler(case.scheduler_seed):
                await test(**arguments)

        def call() -> None:
            run_virtual(main, seed=case.scheduler_seed, clock=clock)

    else:

        def call() -> None:
            with recording(example):
                test(**arguments)

    error = _outcome(call, path, case.test.qualname)
    for value in arguments.values():
        if error is None and isinstance(value, ReplayedData) and value.index < len(value.values):
            raise CaseError(
                f"{path}: the case no longer fits {case.test.qualname}: it drew "
                f"{len(value.values)} value(s) from st.data(), the test now draws {value.index}"
            )
    return _result(path, case, error, example.hash, example.count), example.events


def _outcome(
    call: Callable[[], object], path: str | os.PathLike[str], name: str
) -> Exception | None:
    """Run `call`; the exception it raised (the example's failure), or None.

    Raises:
        CaseError: the case no longer fits the test (a recorded step or draw it no longer takes).
    """
    try:
        call()
    except BaseExceptionGroup as group:
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None  # Ctrl-C reaches the caller as itself
        if not isinstance(group, Exception):
            raise
        return _outcome_of(group, path, name)
    except Exception as exc:
        return _outcome_of(exc, path, name)
    return None


def _outcome_of(exc: Exception, path: str | os.PathLike[str], name: str) -> Exception:
    """The example's failure `exc`, unless it says the case no longer fits the test.

    Raises:
        CaseError: the case no longer fits the test.
    """
    mismatch = _mismatch(exc)
    if mismatch is not None:
        raise CaseError(f"{os.fspath(path)}: the case no longer fits {name}: {mismatch}") from None
    return exc


def _result(
    path: str | os.PathLike[str], case: Case, error: Exception | None, trace_hash: str, events: int
) -> ReplayResult:
    return ReplayResult(
        path=os.fspath(path),
        case=case,
        passed=error is None,
        failure="" if error is None else one_line(error),
        trace_hash=trace_hash,
        events=events,
        error=error,
    )


def cases(
    path: str | os.PathLike[str],
) -> Callable[[Callable[[ReplayResult], object]], Callable[[Path], None]]:
    """Turn the case files at `path` (a file, or a folder of ``*.json``; relative to the
    file of the decorated function) into one pytest test each, parametrised by ``case``.

    Each test replays its case and fails while the example fails; once it passes, the
    decorated function is called with the `ReplayResult`, for further checks::

        @sat.cases("cases")
        def test_bank_regressions(result: sat.ReplayResult) -> None:
            assert result.passed

    Raises:
        CaseError: `path` is neither a case file nor a folder.
    """
    import pytest

    if not isinstance(path, str | os.PathLike):
        raise CaseError(f"cases takes a case file or folder, got {short_repr(path)}")

    def decorate(function: Callable[[ReplayResult], object]) -> Callable[[Path], None]:
        if inspect.iscoroutinefunction(function):
            raise CaseError(
                f"@cases: {function.__qualname__} is async, and would never run: make it a plain "
                "def (each replay runs its own Trio run)"
            )
        target = Path(path)
        if not target.is_absolute():
            target = Path(inspect.getfile(function)).parent / target
        if target.is_dir():
            files = sorted(target.glob("*.json"))
        elif target.is_file():
            files = [target]
        else:
            raise CaseError(f"{function.__qualname__}: no case file or folder {target}")

        def test(case: Path) -> None:
            result = replay(case)
            if not result.passed:
                raise AssertionError(
                    f"{case.name} fails again: {result.failure}\n{REPRODUCE.format(path=case)}"
                ) from result.error
            function(result)

        for name in ("__name__", "__qualname__", "__module__", "__doc__"):
            setattr(test, name, getattr(function, name))
        parametrize = pytest.mark.parametrize("case", files, ids=[file.stem for file in files])
        return parametrize(test)

    return decorate


def load_machine(case: Case, path: Path) -> type[ActorSystemMachine]:
    """The machine class a case names, importing its module (by name, else from its file).

    Raises:
        CaseError: the module or class is gone, or is not an `ActorSystemMachine`.
    """
    where = case.machine if case.machine is not None else case.test
    found = _find(where, path, "machine")
    if not (isinstance(found, type) and issubclass(found, ActorSystemMachine)):
        raise CaseError(
            f"{path}: {where.module}.{where.qualname} is not an ActorSystemMachine subclass"
        )
    return found


def load_property(case: Case, path: Path) -> Callable[..., Any]:
    """The function a property's case names (Hypothesis' inner test, without its search),
    bound to a new instance of its class when it is a method.

    Raises:
        CaseError: the module or function is gone, or is not a Hypothesis test.
    """
    where = case.test
    found = _find(where, path, "test")
    handle = getattr(found, "hypothesis", None)
    if handle is None or not callable(found):
        raise CaseError(f"{path}: {where.module}.{where.qualname} is not a Hypothesis test")
    inner = inspect.unwrap(INNER_TESTS.get(found, handle.inner_test))
    owner, _, _ = where.qualname.rpartition(".")
    if owner:
        cls = _find(Where(where.module, owner, where.file), path, "test class")
        if isinstance(cls, type):
            inner = inner.__get__(cls())
    return inner  # type: ignore[no-any-return]


def _find(where: Where, path: Path, what: str) -> Any:
    module = sys.modules.get(where.module)
    if module is None:
        module = _import(where, path, what)
    found: Any = module
    for part in where.qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise CaseError(
                f"{path}: the {what} {where.module}.{where.qualname} no longer exists "
                f"(module {where.module} has no {where.qualname})"
            )
    return found


def _import(where: Where, path: Path, what: str) -> Any:
    """Import `where.module`: from its file (relative to the current directory or to the folder
    holding ``.spaceactors``), its package root put on ``sys.path``; else by name."""
    for root in (Path.cwd(), path.resolve().parent.parent.parent):
        file = None if where.file is None else root / where.file
        if file is not None and file.suffix == ".py" and file.is_file():
            top = file.resolve().parent
            for _ in range(where.module.count(".")):
                top = top.parent
            if str(top) not in sys.path:
                sys.path.insert(0, str(top))
            break
    try:
        return importlib.import_module(where.module)
    except ImportError as exc:
        raise CaseError(
            f"{path}: cannot import {where.module} for the {what} {where.qualname} ({exc}): "
            "it is gone, or the replay runs from another folder than the test did (run it "
            "where you ran pytest)"
        ) from None
    except Exception as exc:
        raise CaseError(f"{path}: importing {where.module} failed: {one_line(exc)}") from None


def _mismatch(exc: BaseException) -> Mismatch | None:
    if isinstance(exc, Mismatch):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _mismatch(inner)
            if found is not None:
                return found
    return None


@attrs.define
class _Recorded:
    machine: type[ActorSystemMachine]
    steps: tuple[Step, ...]

    def choose(self, index: int, enabled: list[_Rule]) -> tuple[_Rule, dict[str, Any]] | None:
        if index >= len(self.steps):
            return None
        step = self.steps[index]
        rules = {rule.function.__name__: rule for rule in self.machine._rules()}
        rule = rules.get(step.rule)
        if rule is None:
            raise Mismatch(f"step {index} calls {step.rule}, which is no rule of it now")
        if rule not in enabled:
            raise Mismatch(f"step {index}: the precondition of {step.rule} is false now")
        if set(step.arguments) != set(rule.arguments):
            raise Mismatch(
                f"step {index}: {step.rule} takes {sorted(rule.arguments)} now, the case "
                f"gives {sorted(step.arguments)}"
            )
        return rule, dict(step.arguments)


def one_line(exc: BaseException) -> str:
    """``Type: the first line of the message`` (pytest's assertion explanations left out)."""
    text = traceback.format_exception_only(type(exc), exc)[0].strip().splitlines()[0]
    return " ".join(text.split())[:500]


def module_file(module: str) -> str | None:
    file = getattr(sys.modules.get(module), "__file__", None)
    return None if file is None else _relative_path(file)


def _relative(test: Where) -> Where:
    return attrs.evolve(test, file=None if test.file is None else _relative_path(test.file))


def _relative_path(file: str) -> str:
    try:
        return Path(file).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return Path(file).as_posix()


_CARRIERS = (
    str(Path(__file__).parent),  # the replay and the machine that run the example
    str(Path(run_virtual.__code__.co_filename)),
    str(Path(trio.__file__).parent),
)


def _from_the_test(error: BaseException) -> str:
    """The error's traceback from its first frame outside the replay's own machinery."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_CARRIERS):
        tb = tb.tb_next
    shown = tb if tb is not None else error.__traceback__
    return "".join(traceback.format_exception(type(error), error, shown)).rstrip()


def render(result: ReplayResult) -> str:
    """The report ``spaceactors replay`` prints (without its last line)."""
    return render_case(result.path, result.case) + render_outcome(result)


def render_case(path: str, case: Case) -> str:
    """What a case holds, as ``spaceactors replay`` prints it before running it."""
    if case.machine is None:
        lines = [f"case {path}: {case.test.module}.{case.test.qualname}, a property"]
        lines += [f"  {name}={value!r}" for name, value in case.arguments.items()]
    else:
        lines = [
            f"case {path}: {case.machine.module}.{case.machine.qualname}, "
            f"seed {case.seed}, {len(case.steps)} step(s)",
            f"  faults: {case.faults!r}",
        ]
    for index, step in enumerate(case.steps):
        shown = ", ".join(f"{name}={value!r}" for name, value in step.arguments.items())
        lines.append(f"  step {index}: {step.rule}({shown})")
    return "\n".join(lines) + "\n"


def render_outcome(result: ReplayResult) -> str:
    """How the replay went (the failure's traceback, the trace hash), without the last line."""
    lines = []
    if result.error is not None:
        lines.append(_from_the_test(result.error))
    same = "the same as" if result.same_trace else "NOT the same as"
    lines.append(f"trace hash {result.trace_hash} ({result.events} events): {same} the failing run")
    return "\n".join(lines) + "\n"


__all__ = [
    "REPRODUCE",
    "ReplayResult",
    "cases",
    "encode_value",
    "load_machine",
    "render",
    "render_case",
    "render_outcome",
    "replay",
    "report_failure",
    "reproduce_line",
    "save_case",
]
