"""The state-machine base and the invariant checks of `spaceactors.testing`."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import testing as sat

QUICK = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class Tally(sa.Actor):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        self.seen.append(message)
        return None


class Counting(sat.ActorSystemMachine):
    """Sends numbers reliably; `broken` makes the tally process 13 twice."""

    broken = False

    async def setup(self) -> None:
        self.seen: list[int] = []
        self.sent: dict[int, int] = {}
        self.steps: list[str] = []
        await self.system.spawn(Tally, self.seen, name="tally")

    @sat.rule(n=st.integers(0, 20))
    async def send(self, n: int) -> None:
        self.steps.append("send")
        if n not in self.sent:
            self.sent[n] = await self.system.reliable.send("tally", n)
            if self.broken and n == 13:
                self.seen.append(13)

    @sat.precondition(lambda machine: len(machine.sent) >= 3)
    @sat.rule()
    async def wait(self) -> None:
        assert len(self.sent) >= 3, "the precondition is honoured"
        self.steps.append("wait")
        await trio.sleep(1)

    async def teardown(self) -> None:
        sat.assert_exactly_once(self.system, self.sent, self.seen)
        sat.assert_no_reliable_message_lost(self.system)


@QUICK
@given(data=st.data())
async def test_a_machine_runs_rules_checks_invariants_and_settles(
    data: Any, autojump_clock: trio.testing.MockClock
) -> None:
    machine = await Counting.run(data, max_steps=15)
    assert machine.system.reliable.pending_count() == 0
    assert set(machine.steps) <= {"send", "wait"}


def test_a_failing_machine_reports_the_seed_that_reproduces_it() -> None:
    class Broken(Counting):
        broken = True

    # Generation only: shrinking works, but takes seconds we need not spend here.
    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
    )
    @given(data=st.data())
    def check(data: Any) -> None:
        run = functools.partial(Broken.run, data, max_steps=40)
        trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))

    with pytest.raises(AssertionError, match=r"13 .* processed 2x") as failure:
        check()
    notes = "\n".join(getattr(failure.value, "__notes__", []))
    assert "system seed" in notes
    seed = int(notes.split("system seed ")[1].split(";")[0])

    # The same seed and steps fail again: the report is a reproduction, not a hint.
    async def replay() -> None:
        async with sa.open_system(seed=seed) as system:
            seen: list[int] = []
            await system.spawn(Tally, seen, name="tally")
            sent = {13: await system.reliable.send("tally", 13)}
            seen.append(13)
            await sat.wait_until_idle(system)
            with pytest.raises(AssertionError, match="processed 2x"):
                sat.assert_exactly_once(system, sent, seen)

    trio.run(replay, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_machine_without_rules_is_refused() -> None:
    class Empty(sat.ActorSystemMachine):
        pass

    with pytest.raises(TypeError, match="no @rule methods"):
        Empty._rules()


async def test_wait_until_idle_names_what_keeps_the_system_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Tally, [], name="tally")
        ref.pause()
        await system.send(ref, 1)
        with pytest.raises(AssertionError, match="tally has 1 queued"):
            await sat.wait_until_idle(system, timeout=5)
        ref.resume()
        await sat.wait_until_idle(system, timeout=5)


async def test_restart_intensity_is_checked_on_the_trace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.CrashActor(actors="tally", every=2)])
    async with sa.open_system(trace=True, faults=plan, max_restarts=100, within=1) as system:
        await system.spawn(Tally, [], name="tally")
        for n in range(10):
            await system.send("tally", n)
        await sat.wait_until_idle(system)
        sat.assert_restarts_within_intensity(system)  # 5 restarts, intensity 100
        assert system.trace is not None
        for _ in range(101):  # what a supervisor that ignored its intensity would leave
            system.trace.record(sa.EventKind.RESTART, "tally", peer="root/user")
            await trio.sleep(0.001)
        with pytest.raises(AssertionError, match=r"'root/user' restarted 10\d times within 1 s"):
            sat.assert_restarts_within_intensity(system)


async def test_a_group_restart_counts_as_one_restart_decision(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # one_for_all restarts every child for one crash: OTP counts that once, and so does the check.
    crew = [sa.ChildSpec(f"c{i}", Tally, ([],)) for i in range(4)]
    plan = sa.FaultPlan([sa.CrashActor(actors="c0", nth=1)])
    async with sa.open_system(trace=True, faults=plan) as system:
        await system.spawn_supervisor(
            "crew", strategy=sa.Strategy.ONE_FOR_ALL, max_restarts=1, within=5.0, children=crew
        )
        await system.send("c0", 1)
        await trio.sleep(1)
        assert system.trace is not None
        assert len(system.trace.of_kind(sa.EventKind.RESTART)) == 4
        sat.assert_restarts_within_intensity(system)


async def test_a_task_left_running_is_reported_as_leaked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = sat.task_count()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
        await trio.lowlevel.checkpoint()
        with pytest.raises(AssertionError, match="1 tasks outlived"):
            sat.assert_no_task_leaked(before)
        nursery.cancel_scope.cancel()
    sat.assert_no_task_leaked(before)
