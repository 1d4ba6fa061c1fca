"""A failing state machine's report reads top to bottom: the invariant that broke (in the
exception's message), then the shrunk steps, then how to reproduce it."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import testing as sat


class Ledger(sa.Actor):
    """Adds up deposits, with a planted bug: a deposit of 7 counts twice."""

    def __init__(self) -> None:
        self.total = 0

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        self.total += 2 * message if message == 7 else message
        return self.total


class Books(sat.ActorSystemMachine):
    """Deposits into a ledger; the books must balance after every step."""

    fail_in: str = "invariant"

    async def setup(self) -> None:
        self.expected = 0
        self.held = 0
        self.ledger = await self.system.spawn(Ledger, name="ledger")

    @sat.rule(amount=st.integers(1, 10))
    async def deposit(self, amount: int) -> None:
        self.held = int(await self.ledger.ask(amount))  # type: ignore[call-overload]
        self.expected += amount
        if self.fail_in == "step":
            assert self.held == self.expected, f"the ledger answered {self.held}"

    @sat.rule()
    async def wait(self) -> None:
        await trio.sleep(1.0)

    @sat.invariant
    def books_balance(self) -> None:
        if self.fail_in == "invariant":
            assert self.held == self.expected, (
                f"ledger holds {self.held}, deposits add up to {self.expected}"
            )

    async def teardown(self) -> None:
        if self.fail_in == "teardown":
            assert self.held == self.expected, f"at the end the ledger holds {self.held}"


def failure_of(machine: type[Books]) -> BaseException:
    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,  # the same search every run: never a run that misses the bug
        phases=[Phase.generate, Phase.shrink],
    )
    @given(data=st.data())
    def check(data: Any) -> None:
        run = functools.partial(machine.run, data, max_steps=8)
        trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))

    with pytest.raises(AssertionError) as failure:
        check()
    return failure.value


def steps_of(notes: list[str]) -> list[str]:
    (report,) = [note for note in notes if "step(s), after setup" in note]
    return [line.strip() for line in report.splitlines()[1:]]


def test_the_report_leads_with_the_invariant_then_the_steps_then_the_reproduction() -> None:
    error = failure_of(Books)
    message = str(error)
    assert message.startswith("invariant books_balance broke after step ")
    assert "deposit(amount=7): ledger holds " in message.splitlines()[0]
    notes: list[str] = error.__notes__
    steps = steps_of(notes)
    assert steps[-1].endswith("deposit(amount=7)")  # the step after which it broke
    assert message.startswith(
        f"invariant books_balance broke after {steps[-1].replace(':', '')}: ledger holds 14"
    )
    # shrunk: nothing but the deposit that breaks the books
    assert steps == ["step 0: deposit(amount=7)"]
    order = [
        next(i for i, note in enumerate(notes) if "step(s), after setup" in note),
        next(i for i, note in enumerate(notes) if "system seed" in note),
    ]
    assert order == sorted(order)
    # Hypothesis' own lines follow, and name the rule drawn, not a private object.
    report = "\n".join(notes)
    assert "_Rule(" not in report
    assert "'deposit'" in report


def test_an_invariant_broken_right_after_setup_says_so() -> None:
    class Unbalanced(Books):
        async def setup(self) -> None:
            await super().setup()
            self.expected = 1

    error = failure_of(Unbalanced)
    assert str(error).startswith("invariant books_balance broke after setup: ledger holds 0")
    assert "spaceactors: the example failed before its first step" in error.__notes__


@pytest.mark.parametrize(
    ("phase", "headline"),
    [
        ("step", "step 0 deposit(amount=7) failed: the ledger answered 14"),
        ("teardown", "teardown failed: at the end the ledger holds 14"),
    ],
)
def test_a_failed_step_or_teardown_leads_with_where_it_failed(phase: str, headline: str) -> None:
    machine = type("Failing", (Books,), {"fail_in": phase})
    error = failure_of(machine)
    assert str(error).startswith(headline)
    assert steps_of(error.__notes__)[-1] == "step 0: deposit(amount=7)"


async def test_a_leak_says_how_many_tasks_were_alive_before_and_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = sat.task_count()
    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(trio.sleep_forever)
        await trio.lowlevel.checkpoint()
        with pytest.raises(AssertionError) as leak:
            sat.assert_no_task_leaked(before)
        nursery.cancel_scope.cancel()
    assert str(leak.value) == (
        f"2 tasks outlived the system: {before + 2} alive, {before} before it opened"
    )
