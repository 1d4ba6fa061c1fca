"""A base for rule-based state machine tests that drive an actor system in virtual time.

Hypothesis' own `RuleBasedStateMachine` calls its rules synchronously, so it cannot await an
actor system. `ActorSystemMachine` keeps its model (rules with argument strategies,
preconditions, invariants) and runs the steps inside one async test, drawing each step from
``st.data()``::

    class Convoy(sa.testing.ActorSystemMachine):
        faults = sa.FaultPlan([sa.DropMessages(probability=0.1)])

        async def setup(self) -> None:
            self.ship = await self.system.spawn(Ship, name="ship-1")

        @sa.testing.rule(cargo=st.integers(1, 100))
        async def load(self, cargo: int) -> None: ...

        @sa.testing.invariant
        def nothing_lost(self) -> None: ...

    @given(data=st.data())
    async def test_convoy(data: st.DataObject, autojump_clock: trio.testing.MockClock) -> None:
        await Convoy.run(data)

The machine draws the system seed first (Hypothesis prints it with the falsifying example,
and the failure's notes repeat it), opens the system with a trace, runs `setup`, then up to
`max_steps` steps, checking the invariants after each; then waits until the system is idle,
runs `teardown` and checks that no task outlived the system. Trio's task order is seeded from
the system seed too, so that the run repeats: when an example fails for good, its case file
(seeds, start time, fault plan, steps) goes to `cases_folder`, and ``spaceactors replay`` or
`spaceactors.testing.replay` runs it again, trace hash for trace hash.

A failure reads top to bottom: the error's message leads with what broke and when
(``invariant nothing_lost broke after step 2 send(n=12): ...``), the first note lists the
example's (shrunk) steps, and the last line says how to replay it
(``reproduce with: spaceactors replay <path>``).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any, ClassVar, TypeVar

import attrs
import trio
from hypothesis import strategies as st

from spaceactors.faultplan import FaultPlan
from spaceactors.system import ActorSystem, open_system
from spaceactors.testing.casefile import Step, Where
from spaceactors.testing.invariants import assert_no_task_leaked, task_count, wait_until_idle
from spaceactors.trace import Trace
from spaceactors.virtual import seeded_scheduler

M = TypeVar("M", bound="ActorSystemMachine")
RuleFunction = Callable[..., Awaitable[None]]


@attrs.frozen
class _Rule:
    function: RuleFunction
    arguments: dict[str, st.SearchStrategy[Any]]
    precondition: Callable[[Any], bool] | None

    def allows(self, machine: ActorSystemMachine) -> bool:
        return self.precondition is None or self.precondition(machine)


def rule(**arguments: st.SearchStrategy[Any]) -> Callable[[RuleFunction], RuleFunction]:
    """Mark an async method as a step, its keyword arguments drawn from `arguments`."""

    def mark(function: RuleFunction) -> RuleFunction:
        function.__spaceactors_rule__ = arguments  # type: ignore[attr-defined]
        return function

    return mark


def precondition(check: Callable[[Any], bool]) -> Callable[[RuleFunction], RuleFunction]:
    """Only take the rule below this decorator when ``check(machine)`` is true."""

    def mark(function: RuleFunction) -> RuleFunction:
        function.__spaceactors_precondition__ = check  # type: ignore[attr-defined]
        return function

    return mark


def invariant(function: Callable[[M], None]) -> Callable[[M], None]:
    """Mark a method as an invariant: checked after `setup` and after every step."""
    function.__spaceactors_invariant__ = True  # type: ignore[attr-defined]
    return function


class ActorSystemMachine:
    """Subclass it; define `setup`, rules, invariants and optionally `teardown`."""

    faults: ClassVar[FaultPlan | st.SearchStrategy[FaultPlan] | None] = None
    """The fault plan for every run, or a strategy that draws one per run."""
    max_restarts: ClassVar[int] = 100
    within: ClassVar[float] = 1.0
    """The ``user`` supervisor's restart intensity during the run."""
    settle_timeout: ClassVar[float] = 3600.0
    """How long, in virtual seconds, the system may take to become idle after the last step."""
    cases_folder: ClassVar[str | None] = ".spaceactors/cases"
    """Where a failing example's case file and trace go (relative to the current directory);
    None writes none."""

    system: ActorSystem
    seed: int
    steps_taken: list[str]
    """The steps run so far in this example, as calls (``send(n=12)``)."""
    settled: bool = False
    """Whether the steps are over and the system became idle."""

    async def setup(self) -> None:
        """Spawn the actors under test (``self.system`` is open)."""

    async def teardown(self) -> None:
        """Final checks once the steps ran and the system became idle (still open)."""

    @classmethod
    def _rules(cls) -> list[_Rule]:
        rules = []
        for name in sorted(dir(cls)):
            function = getattr(cls, name)
            arguments = getattr(function, "__spaceactors_rule__", None)
            if arguments is not None:
                check = getattr(function, "__spaceactors_precondition__", None)
                rules.append(_Rule(function, arguments, check))
        if not rules:
            raise TypeError(f"{cls.__name__} has no @rule methods")
        return rules

    def check_invariants(self) -> None:
        """Run every @invariant method.

        Raises:
            AssertionError: an invariant failed; its message now leads with the invariant's
                name and when it broke (``invariant nothing_lost broke after step 2
                send(n=12): ...``).
        """
        __tracebackhide__ = True
        for name in sorted(dir(type(self))):
            function = getattr(type(self), name)
            if getattr(function, "__spaceactors_invariant__", False):
                with _leading(f"invariant {name} broke {_when(self)}"):
                    function(self)

    @classmethod
    async def run(
        cls: type[M], data: st.DataObject, *, max_steps: int = 30, seed: int | None = None
    ) -> M:
        """Run one example: draw a seed (unless given), a fault plan (if `faults` is a
        strategy) and up to `max_steps` steps, in the current Trio run.

        When the example fails for good (Hypothesis' final, shrunk run), its case file is
        written to `cases_folder` and the failure's last line says how to replay it
        (``reproduce with: spaceactors replay <path>``; see `spaceactors.testing.replay`).
        """
        __tracebackhide__ = True  # pytest shows the test's frames, not the machine's
        test = _caller(sys._getframe(1))  # the test that awaits this run, before any await
        if seed is None:
            seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        plan = cls.faults
        if isinstance(plan, st.SearchStrategy):
            plan = data.draw(plan, label="faults")
        example = Example(seed, seed, trio.current_time(), plan)
        try:
            return await cls.play(example, _Drawn(data, max_steps).choose)
        except Exception as exc:
            from spaceactors.testing.replay import report_failure  # it imports this module

            # The report reads: the exception's message (it leads with what broke and when),
            # then the shrunk steps, then the seed and how to replay it (last).
            exc.add_note(
                _steps_report([_call(step.rule, step.arguments) for step in example.steps])
            )
            report_failure(cls, test, example, exc)
            raise

    @classmethod
    async def play(cls: type[M], example: Example, choose: Chooser) -> M:
        """Run `example` (its seeds, start time and plan), taking each step from `choose`.

        `choose(index, enabled)` returns the rule and arguments of step `index`, or None to
        stop; the steps taken are appended to ``example.steps`` as they start, and the trace
        is ``example.trace``. Time must be virtual for a run to repeat.
        """
        __tracebackhide__ = True
        machine = cls()
        machine.seed = example.seed
        machine.steps_taken = []
        rules = cls._rules()
        before = task_count()
        with seeded_scheduler(example.scheduler_seed):
            async with open_system(
                seed=example.seed,
                trace=example.trace,
                faults=example.faults,
                max_restarts=cls.max_restarts,
                within=cls.within,
            ) as system:
                machine.system = system
                await machine.setup()
                machine.check_invariants()
                for index in itertools.count():
                    enabled = [candidate for candidate in rules if candidate.allows(machine)]
                    chosen = choose(index, enabled)
                    if chosen is None:
                        break
                    rule, kwargs = chosen
                    example.steps.append(Step(rule.function.__name__, kwargs))
                    call = _call(rule.function.__name__, kwargs)
                    machine.steps_taken.append(call)
                    with _leading(f"step {index} {call} failed"):
                        await rule.function(machine, **kwargs)
                    machine.check_invariants()
                machine.settled = True
                with _leading("the system did not settle after the last step"):
                    await wait_until_idle(system, timeout=cls.settle_timeout)
                machine.check_invariants()
                with _leading("teardown failed"):
                    await machine.teardown()
        assert_no_task_leaked(before)
        return machine


Chooser = Callable[[int, list[_Rule]], "tuple[_Rule, dict[str, Any]] | None"]


@attrs.define
class Example:
    """One run of a machine, resolved: what a case file holds, and the run's trace."""

    seed: int
    scheduler_seed: int
    start_time: float
    faults: FaultPlan | None
    steps: list[Step] = attrs.Factory(list)
    trace: Trace = attrs.Factory(Trace)


@attrs.define
class _Drawn:
    """Steps drawn by Hypothesis: first how many, then each rule and its arguments."""

    data: st.DataObject
    max_steps: int
    count: int = 0

    def choose(self, index: int, enabled: list[_Rule]) -> tuple[_Rule, dict[str, Any]] | None:
        if index == 0:
            self.count = self.data.draw(st.integers(0, self.max_steps), label="steps")
        if index >= self.count or not enabled:
            return None
        by_name = {candidate.function.__name__: candidate for candidate in enabled}
        name = self.data.draw(st.sampled_from(list(by_name)), label=f"step {index}")  # printed
        chosen = by_name[name]
        kwargs = self.data.draw(st.fixed_dictionaries(chosen.arguments), label="arguments")
        return chosen, kwargs


_NOT_THE_TEST = ("trio", "hypothesis", "spaceactors", "functools", "_pytest", "pluggy", "outcome")


def _caller(frame: FrameType | None) -> Where | None:
    """The test function among the callers of a run (the first frame outside the tools)."""
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not isinstance(module, str) or module.partition(".")[0] not in _NOT_THE_TEST:
            return Where(str(module), frame.f_code.co_qualname, frame.f_code.co_filename)
        frame = frame.f_back
    return None


def _show(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


def _call(rule: str, kwargs: dict[str, Any]) -> str:
    return f"{rule}({_show(kwargs)})"


def _when(machine: ActorSystemMachine) -> str:
    """When the invariants are being checked: after setup, a step, or once settled."""
    if getattr(machine, "settled", False):
        return "once the system was idle"
    taken = getattr(machine, "steps_taken", [])
    return f"after step {len(taken) - 1} {taken[-1]}" if taken else "after setup"


@contextlib.contextmanager
def _leading(headline: str) -> Iterator[None]:
    """An `AssertionError` raised inside leads its message with `headline` (the same
    exception object, its traceback and notes kept)."""
    try:
        yield
    except AssertionError as exc:
        message = str(exc)
        exc.args = (f"{headline}: {message}" if message else headline,)
        raise


def _steps_report(steps: list[str]) -> str:
    """The steps of the failing example (Hypothesis has shrunk them), one per line."""
    if not steps:
        return "spaceactors: the example failed before its first step"
    lines = [f"  step {index}: {call}" for index, call in enumerate(steps)]
    return "\n".join([f"spaceactors: the example's {len(steps)} step(s), after setup:", *lines])


__all__ = [
    "ActorSystemMachine",
    "Example",
    "invariant",
    "precondition",
    "rule",
]
