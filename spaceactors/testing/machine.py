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
runs `teardown` and checks that no task outlived the system.

A failure reads top to bottom: the error's message leads with what broke and when
(``invariant nothing_lost broke after step 2 send(n=12): ...``), the first note lists the
example's (shrunk) steps, and the notes after it say how to reproduce it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, ClassVar, TypeVar

import attrs
from hypothesis import strategies as st

from spaceactors.faultplan import FaultPlan
from spaceactors.system import ActorSystem, open_system
from spaceactors.testing.invariants import assert_no_task_leaked, task_count, wait_until_idle

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
        strategy) and up to `max_steps` steps, in the current Trio run."""
        if seed is None:
            seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        plan = cls.faults
        if isinstance(plan, st.SearchStrategy):
            plan = data.draw(plan, label="faults")
        machine = cls()
        machine.seed = seed
        machine.steps_taken = []
        rules = cls._rules()
        by_name = {candidate.function.__name__: candidate for candidate in rules}
        before = task_count()
        try:
            async with open_system(
                seed=seed,
                trace=True,
                faults=plan,
                max_restarts=cls.max_restarts,
                within=cls.within,
            ) as system:
                machine.system = system
                await machine.setup()
                machine.check_invariants()
                steps = data.draw(st.integers(0, max_steps), label="steps")
                for step in range(steps):
                    enabled = [name for name, rule in by_name.items() if rule.allows(machine)]
                    if not enabled:
                        break
                    name = data.draw(st.sampled_from(enabled), label=f"step {step}")
                    chosen = by_name[name]
                    kwargs = data.draw(st.fixed_dictionaries(chosen.arguments), label="arguments")
                    call = f"{name}({_show(kwargs)})"
                    machine.steps_taken.append(call)
                    with _leading(f"step {step} {call} failed"):
                        await chosen.function(machine, **kwargs)
                    machine.check_invariants()
                machine.settled = True
                with _leading("the system did not settle after the last step"):
                    await wait_until_idle(system, timeout=cls.settle_timeout)
                machine.check_invariants()
                with _leading("teardown failed"):
                    await machine.teardown()
            assert_no_task_leaked(before)
        except Exception as exc:
            # The report reads: the exception's message (it leads with the invariant that
            # broke), then these notes: the shrunk steps, then how to reproduce it (last).
            exc.add_note(_steps_report(machine.steps_taken))
            exc.add_note(
                f"spaceactors: system seed {seed}; rerun this example with "
                f"{cls.__name__}.run(data, seed={seed}) or Hypothesis' printed reproduction"
            )
            raise
        return machine


def _show(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


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
    "invariant",
    "precondition",
    "rule",
]
