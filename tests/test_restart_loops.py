"""Restarting is a loop, never recursion, and a stop request is served between attempts.

A child that keeps failing to start makes its supervisor retry until the restart intensity is
spent: that must give up cleanly (``SupervisorGaveUp`` to the parent) at any intensity and any
depth of nesting, and a supervisor busy retrying must still answer ``stop()`` within the
shutdown deadline, whatever each failed start costs in time.
"""

from __future__ import annotations

import math
import random

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.trace import EventKind


class Boom(Exception):
    """The failure the tests inject."""


class FailsOnRestart(sa.Actor):
    """Crashes on "crash"; every restart's `on_start` fails (after `start_takes` seconds)."""

    def __init__(self, attempts: list[int], start_takes: float = 0.0) -> None:
        self.attempts = attempts
        self.start_takes = start_takes

    async def on_start(self) -> None:
        self.attempts.append(self.ctx.restarts)
        await trio.sleep(self.start_takes)
        if self.ctx.restarts > 0:
            raise Boom(f"{self.ctx.name} cannot start again")

    async def handle(self, message: object) -> object:
        if message == "crash":
            raise Boom("crash")
        return message


class Echo(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


def nested(depth: int, leaf: sa.ChildSpec, **options: object) -> sa.SupervisorSpec:
    """`depth` supervisors, each the only child of the one above; `options` for each."""
    spec = sa.SupervisorSpec(f"level-{depth}", children=[leaf], **options)  # type: ignore[arg-type]
    for level in range(depth - 1, 0, -1):
        spec = sa.SupervisorSpec(f"level-{level}", children=[spec], **options)  # type: ignore[arg-type]
    return spec


async def test_a_child_failing_every_restart_makes_its_temporary_supervisor_give_up_cleanly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The issue's input: 1000 allowed restarts, each failing to start, and one crash."""
    attempts: list[int] = []
    trace = sa.Trace(keep=50)
    async with sa.open_system(trace=trace) as system:
        bystander = await system.spawn(Echo, name="bystander")
        await system.spawn_supervisor(
            "group",
            restart=sa.Restart.TEMPORARY,
            max_restarts=1000,
            within=60.0,
            children=[sa.ChildSpec("worker", FailsOnRestart, (attempts,))],
        )
        await system.send("worker", "crash")
        await trio.sleep(1.0)  # failed starts take no virtual time: it is all over by then
        assert attempts == list(range(1001))  # the first start, then 1000 failed restarts
        crash = trace.of_kind(EventKind.CRASH)[-1]
        assert (crash.actor, crash.peer) == ("group", "root/user")
        assert crash.detail.startswith("SupervisorGaveUp(")
        assert await bystander.ask("still here") == "still here"
        assert system.user.running
        with pytest.raises(sa.ActorNotFound):
            system.lookup("worker")
    assert system.gave_up is None


@pytest.mark.parametrize(
    ("max_restarts", "depth"),
    [(0, 1), (1, 1), (3, 2), (1000, 1), (5000, 1), (100, 3), (20, 8)],
)
@pytest.mark.parametrize("strategy", list(sa.Strategy), ids=lambda s: s.value)
async def test_giving_up_after_failed_restarts_works_at_any_intensity_and_depth(
    autojump_clock: trio.testing.MockClock, max_restarts: int, depth: int, strategy: sa.Strategy
) -> None:
    attempts: list[int] = []
    async with sa.open_system() as system:
        bystander = await system.spawn(Echo, name="bystander")
        top = nested(
            depth,
            sa.ChildSpec("worker", FailsOnRestart, (attempts,)),
            strategy=strategy,
            max_restarts=max_restarts,
            within=60.0,
        )
        await system.user.start_child(
            sa.SupervisorSpec(
                top.name,
                strategy,
                max_restarts,
                60.0,
                children=[*top.children, sa.ChildSpec("sibling", Echo)],
                restart=sa.Restart.TEMPORARY,
            )
        )
        await system.send("worker", "crash")
        await trio.sleep(1.0)  # failed starts take no virtual time: it is all over by then
        assert [c.name for c in system.user.which_children()] == ["bystander"]
        assert await bystander.ask("ping") == "ping"
        with pytest.raises(sa.ActorNotFound):
            system.lookup("sibling")
        # The innermost supervisor alone makes max_restarts attempts before giving up.
        assert len(attempts) >= 1 + max_restarts
    assert system.gave_up is None


async def stop_within(deadline: float, stop: object) -> float:
    begin = trio.current_time()
    with trio.fail_after(deadline + 1e-9):
        await stop()  # type: ignore[operator]
    return trio.current_time() - begin


@pytest.mark.parametrize(
    ("start_takes", "backoff", "shutdown"),
    [
        pytest.param(0.0, None, 5.0, id="instant-failures"),
        pytest.param(0.0, sa.Backoff(initial=0.5, maximum=4.0), 5.0, id="backoff"),
        pytest.param(30.0, None, 2.0, id="slow-failing-start"),
        pytest.param(30.0, sa.Backoff(initial=0.5, maximum=4.0), 2.0, id="slow-with-backoff"),
        pytest.param(30.0, None, sa.BRUTAL_KILL, id="slow-brutal-kill"),
    ],
)
async def test_a_supervisor_retrying_failed_starts_still_answers_stop(
    autojump_clock: trio.testing.MockClock,
    start_takes: float,
    backoff: sa.Backoff | None,
    shutdown: sa.policy.ShutdownPolicy,
) -> None:
    """An intensity that is never spent: only the stop request ends the retrying."""
    attempts: list[int] = []
    async with sa.open_system() as system:
        bystander = await system.spawn(Echo, name="bystander")
        group = await system.spawn_supervisor(
            "group",
            max_restarts=10**9,
            within=1e6,
            backoff=backoff,
            children=[
                sa.ChildSpec("worker", FailsOnRestart, (attempts, start_takes), shutdown=shutdown)
            ],
        )
        worker = group.child("worker")
        await worker.send("crash")
        spinning = not start_takes and backoff is None  # retries take no virtual time at all
        if spinning:
            for _ in range(200):
                await trio.lowlevel.checkpoint()  # let it retry for a while
        else:
            await trio.sleep(10.0)
        assert len(attempts) > 1
        assert await bystander.ask("ping") == "ping"  # the others keep running meanwhile
        grace = 0.0 if shutdown is sa.BRUTAL_KILL else float(shutdown)
        elapsed = await stop_within(grace, group.stop)
        assert elapsed <= grace
        assert not group.running
        assert [c.name for c in system.user.which_children()] == ["bystander"]
        assert worker.status().state is sa.ActorState.STOPPED
        assert await bystander.ask("ping") == "ping"


@pytest.mark.parametrize("start_takes", [0.0, 30.0])
async def test_leaving_open_system_ends_a_supervisor_that_keeps_failing_to_start(
    autojump_clock: trio.testing.MockClock, start_takes: float
) -> None:
    attempts: list[int] = []
    begin = math.nan
    async with sa.open_system() as system:
        await system.spawn_supervisor(
            "group",
            max_restarts=10**9,
            within=1e6,
            children=[
                sa.ChildSpec("worker", FailsOnRestart, (attempts, start_takes), shutdown=2.0)
            ],
        )
        worker = system.lookup("worker")
        await worker.send("crash")
        if start_takes:
            await trio.sleep(1.0)  # in the middle of a slow start
        else:
            for _ in range(200):  # retries take no virtual time: the clock stands still
                await trio.lowlevel.checkpoint()
        begin = trio.current_time()
    assert trio.current_time() - begin <= 2.0
    assert len(attempts) > 1


async def test_supervisors_nested_a_thousand_deep_start_give_up_and_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[int] = []
    async with sa.open_system() as system:
        top = nested(
            1000,
            sa.ChildSpec("worker", FailsOnRestart, (attempts,)),
            max_restarts=2,
            within=60.0,
            restart=sa.Restart.TEMPORARY,
        )
        outer: sa.Supervisor = await system.user.start_child(top)
        await system.send("worker", "crash")
        await trio.sleep(1.0)
        assert attempts == [0, 1, 2]  # the innermost supervisor gave up and was dropped
        innermost = outer
        for level in range(2, 1000):
            innermost = innermost.child(f"level-{level}")
        assert innermost.which_children() == []
    assert system.gave_up is None
    assert not outer.running


async def test_stopping_a_thousand_deep_chain_still_starting_takes_the_leaf_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[int] = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        top = nested(1000, sa.ChildSpec("leaf", FailsOnRestart, (attempts, 30.0), shutdown=2.0))

        async def start_chain() -> None:
            with pytest.raises(sa.ActorUnavailable, match=r"'level-1' .* stopped while starting"):
                await system.user.start_child(top)

        nursery.start_soon(start_chain)
        await trio.sleep(1.0)  # the leaf is in its 30 s on_start
        assert attempts == [0]
        elapsed = await stop_within(2.0, lambda: system.user.terminate_child("level-1"))
        assert elapsed == pytest.approx(2.0)
        assert system.user.which_children() == []


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    max_restarts=st.integers(0, 60),
    strategy=st.sampled_from(list(sa.Strategy)),
    before=st.integers(0, 2),
    after=st.integers(0, 2),
    backoff=st.none() | st.tuples(st.sampled_from([0.25, 0.5, 1.0]), st.sampled_from([1, 2, 8])),
)
async def test_failed_restarts_give_up_after_exactly_the_intensity(
    autojump_clock: trio.testing.MockClock,
    max_restarts: int,
    strategy: sa.Strategy,
    before: int,
    after: int,
    backoff: tuple[float, int] | None,
) -> None:
    """Whatever the strategy, the siblings and the backoff: the failing child makes the first
    start and exactly `max_restarts` failed restarts, the last one when the backoff says, and
    then its temporary supervisor is dropped while everything else keeps running."""
    attempts: list[int] = []
    siblings = [sa.ChildSpec(f"before-{i}", Echo) for i in range(before)]
    siblings += [sa.ChildSpec("worker", FailsOnRestart, (attempts,))]
    siblings += [sa.ChildSpec(f"after-{i}", Echo) for i in range(after)]
    policy = None if backoff is None else sa.Backoff(backoff[0], backoff[0] * backoff[1])
    async with sa.open_system() as system:
        bystander = await system.spawn(Echo, name="bystander")
        group = await system.spawn_supervisor(
            "group",
            strategy=strategy,
            max_restarts=max_restarts,
            within=1e9,
            backoff=policy,
            children=siblings,
            restart=sa.Restart.TEMPORARY,
        )
        begin = trio.current_time()
        await system.send("worker", "crash")
        expected_end = begin + sum(
            policy.delay(n, random.Random()) for n in range(max_restarts) if policy is not None
        )
        if expected_end > begin:
            await trio.sleep_until(expected_end - 0.01)
            assert group.running  # still retrying: the last delay has not passed
        await trio.sleep_until(expected_end + 0.01)
        assert not group.running
        assert attempts == list(range(max_restarts + 1))
        assert [c.name for c in system.user.which_children()] == ["bystander"]
        assert await bystander.ask("ping") == "ping"
    assert system.gave_up is None
