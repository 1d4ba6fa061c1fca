"""Cases a second try at breaking the engine found, each of a kind issue 11 named: a stop whose
caller gives up still stops the child for good (what it reports is what it does); an exception
whose repr raises is a crash like any other (one bad handler never takes the system down); a
pause window never crashes a service, and covers an actor restarted during it."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import spaceactors as sa


class SlowStop(sa.Actor):
    async def handle(self, message: object) -> object:
        return message

    async def on_stop(self) -> None:
        await trio.sleep(3.0)


@pytest.mark.parametrize("how", ["ref.stop", "supervisor.stop", "stop_child"])
async def test_a_stop_whose_caller_gives_up_still_stops_the_child_for_good(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    async with sa.open_system() as system:
        if how == "supervisor.stop":
            group = await system.spawn_supervisor("g", children=[sa.ChildSpec("a", SlowStop)])
            ref, stop = group.child("a"), group.stop
        else:
            ref = await system.spawn(SlowStop, name="a", shutdown=10.0)
            stop = ref.stop if how == "ref.stop" else lambda: system.user.stop_child("a")
        with trio.move_on_after(1.0):
            await stop()
        await trio.sleep(10.0)
        assert ref.status().state is sa.ActorState.STOPPED
        assert not ref.alive
        names = [info.name for info in system.user.which_children()]
        assert "a" not in names
        assert "g" not in names
        with pytest.raises(sa.ActorNotFound):
            system.lookup("a")
        again = await system.spawn(SlowStop, name="a")  # the name is free again
        assert again.alive


class Hangs(sa.Actor):
    async def handle(self, message: object) -> object:
        return message

    async def on_stop(self) -> None:
        await trio.sleep(math.inf)


async def test_the_shutdown_deadline_holds_even_if_the_caller_of_stop_left(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Hangs, name="h", shutdown=5.0)
        with trio.move_on_after(1.0):
            await ref.stop()
        await trio.sleep(3.5)
        assert ref.status().state is sa.ActorState.STOPPING  # on_stop has until t=5
        await trio.sleep(1.0)
        assert ref.status().state is sa.ActorState.STOPPED  # hard-cancelled at t=5 anyway


class Unprintable(Exception):
    def __repr__(self) -> str:
        raise ValueError("no repr")

    def __str__(self) -> str:
        raise ValueError("no str")


class Raises(sa.Actor):
    def __init__(self, where: str = "") -> None:
        self.where = where

    async def on_start(self) -> None:
        if self.where == "on_start":
            raise Unprintable()

    async def handle(self, message: object) -> object:
        if message == "raise":
            raise Unprintable()
        return message

    async def on_stop(self) -> None:
        if self.where == "on_stop":
            raise Unprintable()


async def test_an_exception_whose_repr_raises_is_a_crash_like_any_other(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        bystander = await system.spawn(Raises, name="bystander")
        ref = await system.spawn(Raises, name="a")
        with pytest.raises(sa.ActorCrashed, match="its repr raised"):
            await ref.ask("raise")
        assert await ref.ask("again") == "again"
        assert ref.status().restarts == 1
        stops_badly = await system.spawn(Raises, "on_stop", name="b")
        await stops_badly.stop()
        with pytest.raises(sa.StartFailed, match="its repr raised"):
            await system.spawn(Raises, "on_start", name="c")
        assert await bystander.ask("still here") == "still here"


class Plain(sa.Actor):
    async def handle(self, message: object) -> object:
        if message == "crash":
            raise RuntimeError("crash")
        return message


async def test_a_pause_window_on_a_stopping_actor_never_crashes_a_service(
    autojump_clock: trio.testing.MockClock,
) -> None:
    windows = [sa.PauseActor(actors=["w"], start=1.0 + i / 10, duration=0.05) for i in range(20)]
    async with sa.open_system(faults=sa.FaultPlan(windows), trace=True) as system:
        other = await system.spawn(Plain, name="other")
        stopping = await system.spawn(SlowStop, name="w", shutdown=10.0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stopping.stop)
            await trio.sleep(4.0)
        assert system.trace is not None
        crashes = [e for e in system.trace.events if e.kind is sa.EventKind.CRASH]
        assert crashes == []
        assert await other.ask("fine") == "fine"


async def test_a_pause_covers_an_actor_restarted_during_its_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.PauseActor(actors=["p"], start=1.0, duration=10.0)])
    async with sa.open_system(faults=plan) as system:
        group = await system.spawn_supervisor(
            "g",
            strategy=sa.Strategy.ONE_FOR_ALL,
            children=[sa.ChildSpec("p", Plain), sa.ChildSpec("q", Plain)],
        )
        p, q = group.child("p"), group.child("q")
        await trio.sleep(2.0)
        assert p.status().state is sa.ActorState.PAUSED
        await q.send("crash")
        await trio.sleep(1.0)
        assert p.status().restarts == 1
        assert p.status().state is sa.ActorState.PAUSED  # t=3: still inside the window
        with pytest.raises(sa.AskTimeout):
            await p.ask("hi", timeout=1.0)
        await trio.sleep(8.0)  # the window closed at t=11
        assert p.status().state is sa.ActorState.RUNNING
        assert await p.ask("hi") == "hi"
