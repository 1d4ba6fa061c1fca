"""Once a supervisor (or the whole system) is stopping, its entry points refuse new work.

``start_child``, ``restart_child``, ``system.spawn`` and ``spawn_supervisor`` raise
``ActorUnavailable`` instead of handing out a ref that the stop then hard-cancels; a child whose
start a stop overtook is stopped within its shutdown policy (its ``on_stop`` runs).
``terminate_child`` during a stop waits for the child to be stopped, as the stop does.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import spaceactors as sa

Log = list[str]


class Slow(sa.Actor):
    """Takes `start_takes` to start and `stop_takes` to stop; logs both."""

    def __init__(self, log: Log, start_takes: float = 0.0, stop_takes: float = 3.0) -> None:
        self.log = log
        self.start_takes = start_takes
        self.stop_takes = stop_takes

    async def on_start(self) -> None:
        await trio.sleep(self.start_takes)
        self.log.append(f"start {self.ctx.name}")

    async def handle(self, message: object) -> object:
        return message

    async def on_stop(self) -> None:
        await trio.sleep(self.stop_takes)
        self.log.append(f"stop {self.ctx.name}")


def slow(name: str, log: Log, **options: float) -> sa.ChildSpec:
    return sa.ChildSpec(name, Slow, (log,), dict(options), shutdown=math.inf)


async def stopping(system: sa.ActorSystem, log: Log) -> sa.Supervisor:
    """A supervisor whose only child takes 3 s to stop."""
    return await system.spawn_supervisor("group", children=[slow("old", log)])


async def test_start_child_while_the_supervisor_is_stopping_raises_actor_unavailable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The issue's input."""
    log: Log = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        group = await stopping(system, log)
        nursery.start_soon(group.stop)
        await trio.sleep(1.0)
        with pytest.raises(sa.ActorUnavailable, match="'root/user/group' is stopping"):
            await group.start_child(slow("new", log))
        with pytest.raises(sa.ActorNotFound):
            system.lookup("new")  # nothing kept: the name is free
        with pytest.raises(sa.ActorUnavailable, match="is stopping"):
            await group.start_child(sa.SupervisorSpec("sub"))
    assert log == ["start old", "stop old"]


async def test_restart_child_while_the_supervisor_is_stopping_raises_actor_unavailable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        group = await system.spawn_supervisor(
            "group", children=[slow("old", log), slow("spare", log, stop_takes=0.0)]
        )
        await group.terminate_child("spare")
        nursery.start_soon(group.stop)
        await trio.sleep(1.0)
        with pytest.raises(sa.ActorUnavailable, match="cannot restart 'spare'"):
            await group.restart_child("spare")
    assert "start spare" in log
    assert log.count("start spare") == 1


async def test_terminate_child_while_the_supervisor_is_stopping_waits_for_the_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        group = await stopping(system, log)
        nursery.start_soon(group.stop)
        await trio.sleep(1.0)
        await group.terminate_child("old")
        assert trio.current_time() == pytest.approx(3.0)
        assert log == ["start old", "stop old"]


async def test_a_start_that_a_stop_overtakes_raises_and_the_child_stops_gracefully(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        group = await system.spawn_supervisor("group")

        async def start_new() -> None:
            with pytest.raises(sa.ActorUnavailable, match="is stopping"):
                await group.start_child(slow("new", log, start_takes=2.0, stop_takes=1.0))

        nursery.start_soon(start_new)
        await trio.sleep(1.0)  # "new" is in its on_start
        await group.stop()
        assert log == ["start new", "stop new"]  # not hard-cancelled: on_stop ran
        assert trio.current_time() == pytest.approx(3.0)


@pytest.mark.parametrize("how", ["spawn", "spawn_supervisor", "start_child", "nested"])
async def test_spawning_on_a_closing_system_raises_actor_unavailable(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    log: Log = []
    outcomes: list[BaseException | object] = []

    class SpawnsWhenStopping(sa.Actor):
        async def handle(self, message: object) -> object:
            return message

        async def on_stop(self) -> None:
            system = self.ctx.system
            try:
                if how == "spawn":
                    outcomes.append(await system.spawn(Slow, log, name="late"))
                elif how == "spawn_supervisor":
                    outcomes.append(await system.spawn_supervisor("late"))
                elif how == "start_child":
                    outcomes.append(await system.user.start_child(slow("late", log)))
                else:
                    sub: sa.Supervisor = system.user.child("fleet")
                    outcomes.append(await sub.start_child(slow("late", log)))
            except sa.ActorUnavailable as error:
                outcomes.append(error)

    async with sa.open_system() as system:
        await system.spawn_supervisor(
            "fleet", children=[sa.ChildSpec("spawner", SpawnsWhenStopping)]
        )
    [outcome] = outcomes
    assert isinstance(outcome, sa.ActorUnavailable)
    assert "is stopping" in str(outcome)
    assert "start late" not in log


async def test_spawning_after_the_system_closed_raises_actor_unavailable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        pass
    with pytest.raises(sa.ActorUnavailable, match="'root/user' is not running"):
        await system.spawn(Slow, [], name="late")
    with pytest.raises(sa.ActorUnavailable):
        await system.spawn_supervisor("late")


async def test_sending_to_an_actor_being_stopped_for_good_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        ref = await system.spawn(Slow, log, name="old", shutdown=math.inf)
        nursery.start_soon(ref.stop)
        await trio.sleep(1.0)  # in on_stop
        with pytest.raises(sa.ActorUnavailable, match=r"'old' .* is stopping"):
            ref.try_send("late")
        with pytest.raises(sa.ActorUnavailable):
            await system.send("old", "late")
        with pytest.raises(sa.ActorUnavailable):
            await ref.ask("late", timeout=1.0)
    assert log == ["start old", "stop old"]
    assert [d.message for d in system.dead_letters.recent()] == ["late"] * 3


async def test_a_sender_waiting_for_room_is_refused_when_the_stop_begins(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        ref = await system.spawn(Slow, log, name="old", shutdown=math.inf, mailbox_size=1)
        ref.pause()
        await ref.send("fills the mailbox")
        refused = trio.Event()

        async def sender() -> None:
            with pytest.raises(sa.ActorUnavailable, match="is stopping"):
                await ref.send("waits for room")
            refused.set()

        nursery.start_soon(sender)
        await trio.sleep(1.0)
        nursery.start_soon(ref.stop)
        with trio.fail_after(0.5):  # at once, not after the 3 s on_stop
            await refused.wait()


async def test_timers_set_by_a_stopping_actor_are_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    errors: list[BaseException] = []

    class LateTimer(sa.Actor):
        async def handle(self, message: object) -> object:
            return message

        async def on_stop(self) -> None:
            for arm in (lambda: self.ctx.after(1.0, "late"), lambda: self.ctx.every(1.0, "t")):
                try:
                    arm()
                except sa.ActorUnavailable as error:
                    errors.append(error)

    async with sa.open_system() as system:
        ref = await system.spawn(LateTimer, name="timed")
        await ref.stop()
        await trio.sleep(5.0)
    assert len(errors) == 2
    assert all("'timed'" in str(error) for error in errors)


async def test_a_child_terminated_while_it_starts_is_not_handed_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system, trio.open_nursery() as nursery:
        group = await system.spawn_supervisor("group")

        async def start_new() -> None:
            with pytest.raises(sa.ActorUnavailable, match="'new' of 'root/user/group'"):
                await group.start_child(slow("new", log, start_takes=2.0, stop_takes=1.0))

        nursery.start_soon(start_new)
        await trio.sleep(1.0)  # "new" is in its on_start
        await group.terminate_child("new")
        assert log == ["start new", "stop new"]
        assert group.running
        assert group.which_children() == []
