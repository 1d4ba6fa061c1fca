"""What an actor (or supervisor) reports is what it does, on every restart path and while stopping.

OTP's rule: a restarted process starts fresh. A paused actor that is restarted, however the
restart comes about, reports RUNNING and handles its messages; a pause sent while it is
restarting is for the new incarnation, which reports PAUSED and handles nothing until resumed.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

import spaceactors as sa

RUNNING, PAUSED = sa.ActorState.RUNNING, sa.ActorState.PAUSED


class Worker(sa.Actor):
    """Answers what it is asked; "boom" crashes it, ("slow-boom", s) crashes after s seconds."""

    async def handle(self, message: object) -> object:
        if message == "boom":
            raise RuntimeError(f"{self.ctx.name} crashed")
        if isinstance(message, tuple) and message[0] == "slow-boom":
            await trio.sleep(message[1])
            raise RuntimeError(f"{self.ctx.name} crashed late")
        if isinstance(message, tuple) and message[0] == "sleep":
            await trio.sleep(message[1])
        return message


async def handles(ref: sa.ActorRef, within: float = 1.0) -> bool:
    """Whether the actor answers an ask within `within` seconds."""
    with trio.move_on_after(within):
        return bool(await ref.ask("ping") == "ping")
    return False


async def agrees(ref: sa.ActorRef) -> None:
    """Status and behaviour say the same thing."""
    state = ref.status().state
    assert state in (RUNNING, PAUSED)
    assert await handles(ref) == (state is RUNNING), f"reports {state} but does otherwise"


async def test_a_paused_permanent_actor_restarted_by_shutdown_reports_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The issue's input."""
    async with sa.open_system() as system:
        ref = await system.spawn(Worker, name="worker", restart=sa.Restart.PERMANENT)
        ref.pause()
        await ref.send(sa.Shutdown())
        assert await ref.ask("hello", timeout=1.0) == "hello"
        status = ref.status()
        assert (status.state, status.restarts) == (RUNNING, 1)


Restarter = Callable[[sa.ActorSystem, sa.ActorRef], Awaitable[None]]


async def by_shutdown(system: sa.ActorSystem, ref: sa.ActorRef) -> None:
    await ref.send(sa.Shutdown())


async def by_crash_with_pause_pending(system: sa.ActorSystem, ref: sa.ActorRef) -> None:
    # The pause is sent while it handles the message that crashes it: never obeyed.
    ref.resume()
    await ref.send(("slow-boom", 1.0))
    await trio.sleep(0.5)
    ref.pause()


async def by_sibling_crash(system: sa.ActorSystem, ref: sa.ActorRef) -> None:
    await system.send("first", "boom")


async def by_supervisor_restart(system: sa.ActorSystem, ref: sa.ActorRef) -> None:
    await system.send("first", "boom")  # the group gives up at once; "user" restarts it


async def by_terminate_and_restart_child(system: sa.ActorSystem, ref: sa.ActorRef) -> None:
    group: sa.Supervisor = system.user.child("group")
    await group.terminate_child("second")
    await group.restart_child("second")


@pytest.mark.parametrize(
    ("strategy", "max_restarts", "backoff", "restart"),
    [
        pytest.param(sa.Strategy.ONE_FOR_ONE, 3, None, by_shutdown, id="shutdown-permanent"),
        pytest.param(sa.Strategy.ONE_FOR_ONE, 3, None, by_crash_with_pause_pending, id="crash"),
        pytest.param(sa.Strategy.ONE_FOR_ALL, 3, None, by_sibling_crash, id="one-for-all"),
        pytest.param(sa.Strategy.REST_FOR_ONE, 3, None, by_sibling_crash, id="rest-for-one"),
        pytest.param(
            sa.Strategy.ONE_FOR_ALL,
            3,
            sa.Backoff(initial=2.0, maximum=2.0),
            by_sibling_crash,
            id="after-backoff",
        ),
        pytest.param(sa.Strategy.ONE_FOR_ONE, 0, None, by_supervisor_restart, id="supervisor"),
        pytest.param(
            sa.Strategy.ONE_FOR_ONE, 3, None, by_terminate_and_restart_child, id="restart-child"
        ),
    ],
)
async def test_a_paused_actor_restarts_running_and_handles_messages(
    autojump_clock: trio.testing.MockClock,
    strategy: sa.Strategy,
    max_restarts: int,
    backoff: sa.Backoff | None,
    restart: Restarter,
) -> None:
    async with sa.open_system(max_restarts=10) as system:
        await system.spawn_supervisor(
            "group",
            strategy=strategy,
            max_restarts=max_restarts,
            backoff=backoff,
            children=[sa.ChildSpec("first", Worker), sa.ChildSpec("second", Worker)],
        )
        ref = system.lookup("second")
        ref.pause()
        await trio.sleep(0.1)
        assert ref.status().state is PAUSED
        assert not await handles(ref)
        before = ref.status().restarts
        await restart(system, ref)
        await trio.sleep(5.0)  # restarted by now (backoff included)
        assert ref.status().state is RUNNING
        assert await handles(ref)
        # Counted when its own supervisor restarts it (not by a call, nor with its supervisor).
        by_own_supervisor = restart not in (by_terminate_and_restart_child, by_supervisor_restart)
        assert ref.status().restarts == before + by_own_supervisor
        ref.pause()  # and pausing the new incarnation still works
        await trio.sleep(0.1)
        await agrees(ref)
        assert ref.status().state is PAUSED


async def test_a_pause_sent_while_restarting_is_obeyed_by_the_new_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        await system.spawn_supervisor(
            "group",
            backoff=sa.Backoff(initial=2.0, maximum=2.0),
            children=[sa.ChildSpec("worker", Worker)],
        )
        ref = system.lookup("worker")
        await ref.send("boom")
        await trio.sleep(1.0)  # waiting for its backoff
        assert ref.status().state is sa.ActorState.RESTARTING
        ref.pause()
        await trio.sleep(2.0)
        assert ref.status().state is PAUSED
        await agrees(ref)
        ref.resume()
        assert await handles(ref)
        assert ref.status().state is RUNNING


async def test_a_restart_called_off_is_not_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        group = await system.spawn_supervisor(
            "group",
            backoff=sa.Backoff(initial=5.0, maximum=5.0),
            children=[sa.ChildSpec("worker", Worker)],
        )
        ref = system.lookup("worker")
        await ref.send("boom")
        await trio.sleep(1.0)
        assert ref.status().restarts == 0  # decided, but not made yet
        await group.terminate_child("worker")
        await trio.sleep(10.0)
        status = ref.status()
        assert (status.state, status.restarts) == (sa.ActorState.STOPPED, 0)
        assert [c.running for c in group.which_children()] == [False]
        assert group.count_children().active == 0


async def test_an_actor_being_stopped_reports_stopping_and_refuses_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Worker, name="worker", shutdown=math.inf)
        await ref.send(("sleep", 3.0))
        await trio.sleep(0.5)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.stop)
            await trio.sleep(1.0)
            status = ref.status()
            assert (status.state, ref.alive) == (sa.ActorState.STOPPING, True)
            with pytest.raises(sa.ActorUnavailable, match=r"'worker' .* is stopping"):
                await ref.send("late")
            with pytest.raises(sa.ActorUnavailable, match="is stopping"):
                await ref.ask("late")
            with pytest.raises(sa.ActorUnavailable):
                ref.pause()
        assert ref.status().state is sa.ActorState.STOPPED
        assert not ref.alive
        letters = [(d.message, d.reason) for d in system.dead_letters.recent()]
        refused = sa.DeadLetterReason.ACTOR_STOPPED
        assert letters == [("late", refused), ("late", refused), (sa.Pause(), refused)]


async def test_a_supervisor_being_stopped_reports_not_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        group = await system.spawn_supervisor(
            "group", children=[sa.ChildSpec("worker", Worker, shutdown=math.inf)]
        )
        await system.send("worker", ("sleep", 3.0))
        await trio.sleep(0.5)
        assert group.running
        async with trio.open_nursery() as nursery:
            nursery.start_soon(group.stop)
            await trio.sleep(1.0)
            assert not group.running
            assert system.lookup("worker").status().state is sa.ActorState.STOPPING
        assert not group.running
        assert [c.name for c in system.user.which_children()] == []
