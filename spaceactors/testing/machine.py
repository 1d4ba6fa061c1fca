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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import attrs
from hypothesis import note
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
        """Run every @invariant method."""
        for name in sorted(dir(type(self))):
            function = getattr(type(self), name)
            if getattr(function, "__spaceactors_invariant__", False):
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
        rules = cls._rules()
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
                    enabled = [candidate for candidate in rules if candidate.allows(machine)]
                    if not enabled:
                        break
                    chosen = data.draw(st.sampled_from(enabled), label=f"step {step}")
                    kwargs = data.draw(st.fixed_dictionaries(chosen.arguments), label="arguments")
                    note(f"step {step}: {chosen.function.__name__}({_show(kwargs)})")
                    await chosen.function(machine, **kwargs)
                    machine.check_invariants()
                await wait_until_idle(system, timeout=cls.settle_timeout)
                machine.check_invariants()
                await machine.teardown()
            assert_no_task_leaked(before)
        except Exception as exc:
            exc.add_note(
                f"spaceactors: system seed {seed}; rerun this example with "
                f"{cls.__name__}.run(data, seed={seed}) or Hypothesis' printed reproduction"
            )
            raise
        return machine


def _show(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


__all__ = [
    "ActorSystemMachine",
    "invariant",
    "precondition",
    "rule",
]
