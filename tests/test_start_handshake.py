"""The start handshake without ``nursery.start`` (`spaceactors.handshake`): a starter learns
that its child started, or why it did not, in every way a start can end.

A supervisor starts a child that has an ``on_start`` with ``start_soon`` and the starter parks
on a `StartWaiter`. What ``nursery.start`` did by itself must still hold: the starter gets the
child's start error, a starter cancelled meanwhile calls the start off (the child is cancelled,
and ends before the starter raises), and no starter is left waiting when the child's
supervisor stops.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import spaceactors as sa


class Sleeper(sa.Actor):
    """Its start takes forever (until cancelled), and it says when it is cancelled."""

    cancelled: list[str] = []

    async def on_start(self) -> None:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            Sleeper.cancelled.append(self.ctx.name)
            raise


class Refuses(sa.Actor):
    async def on_start(self) -> None:
        raise RuntimeError("no fuel")


class Quick(sa.Actor):
    async def on_start(self) -> None:
        await trio.sleep(1)


async def test_a_started_child_is_running_when_its_spawn_returns(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Quick, name="quick")
        assert ref.status().state is sa.ActorState.RUNNING
        assert trio.current_time() == 1.0


async def test_a_start_that_raises_is_the_starters_error_and_leaves_nothing(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        with pytest.raises(sa.StartFailed, match="no fuel"):
            await system.spawn(Refuses, name="refuses")
        with pytest.raises(sa.ActorNotFound):
            system.lookup("refuses")
        assert system.user.which_children() == []
        await system.spawn(Quick, name="refuses")  # the name is free again


async def test_a_cancelled_starter_calls_the_start_off(
    virtual_clock: trio.testing.MockClock,
) -> None:
    Sleeper.cancelled.clear()
    async with sa.open_system() as system:
        with trio.move_on_after(5) as scope:
            await system.spawn(Sleeper, name="sleeper")
        assert scope.cancelled_caught
        assert Sleeper.cancelled == ["sleeper"]  # it ended before the starter went on
        with pytest.raises(sa.ActorNotFound):
            system.lookup("sleeper")
        assert system.user.which_children() == []
        await system.spawn(Quick, name="sleeper")  # the name is free again


async def test_no_starter_is_left_waiting_when_the_system_closes(
    virtual_clock: trio.testing.MockClock,
) -> None:
    Sleeper.cancelled.clear()
    outcomes: list[BaseException] = []

    async def starter(system: sa.ActorSystem) -> None:
        try:
            await system.spawn(Sleeper, name="sleeper")  # stopped hard after 5 s
        except sa.ActorUnavailable as exc:
            outcomes.append(exc)

    with trio.fail_after(60):  # virtual seconds: a starter left waiting fails, never hangs
        async with trio.open_nursery() as nursery, sa.open_system() as system:
            nursery.start_soon(starter, system)
            await trio.sleep(1)
    assert [type(exc) for exc in outcomes] == [sa.ActorUnavailable]
    assert "sleeper" in str(outcomes[0])
    assert Sleeper.cancelled == ["sleeper"]


async def test_a_batch_whose_start_is_cancelled_leaves_nothing(
    virtual_clock: trio.testing.MockClock,
) -> None:
    Sleeper.cancelled.clear()
    async with sa.open_system() as system:
        specs = [sa.ChildSpec(f"quick-{i}", Quick) for i in range(3)]
        specs.append(sa.ChildSpec("sleeper", Sleeper))
        with trio.move_on_after(5) as scope:
            await system.spawn_many(specs)
        assert scope.cancelled_caught
        assert Sleeper.cancelled == ["sleeper"]
        assert system.user.which_children() == []
        refs = await system.spawn_many(specs[:3])  # every name is free again
        assert [ref.name for ref in refs] == ["quick-0", "quick-1", "quick-2"]


async def test_a_service_that_says_started_twice_is_told_so(
    virtual_clock: trio.testing.MockClock,
) -> None:
    """As Trio's own task status: a second ``started()`` raises ``RuntimeError`` in `serve`
    (a crash of the service after its start), and the start itself succeeded."""
    errors: list[BaseException] = []

    async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            task_status.started()
        except RuntimeError as exc:
            errors.append(exc)
        await trio.sleep_forever()

    async with sa.open_system() as system:
        await system.user.start_child(sa.ServiceSpec("twice", serve))
        assert [str(exc) for exc in errors] == ["called 'started' twice on the same task status"]
