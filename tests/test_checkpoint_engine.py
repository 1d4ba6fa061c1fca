"""A plain actor system checkpointed at a quiescent point and resumed in a fresh Trio run
continues exactly: the same events, in the same order, at the same times."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
import trio

import spaceactors as sa
from spaceactors.checkpoint import engine, quiescence

END = 60.0


class DeepCopies:
    """A stand-in converter: deep copies (the state never leaves the process)."""

    def save_actor(self, actor: object, *, path: str, shared: Mapping[str, object]) -> object:
        state = {k: v for k, v in vars(actor).items() if k != "ctx"}
        return copy.deepcopy(state, {id(v): v for v in shared.values()})

    def restore_actor(self, cls: type, data: Any, *, shared: Any, refs: Any) -> Any:
        actor = cls.__new__(cls)
        vars(actor).update(copy.deepcopy(data, {id(v): v for v in shared.values()}))
        return actor

    def save_value(self, value: object, *, where: str, shared: Mapping[str, object]) -> object:
        return copy.deepcopy(value, {id(v): v for v in shared.values()})

    def restore_value(self, data: object, *, shared: Any, refs: Any) -> Any:
        return copy.deepcopy(data, {id(v): v for v in shared.values()})


VALUES = DeepCopies()


class Pinger(sa.Actor):
    """Ticks on a timer, counts, and pings random peers through the router."""

    def __init__(self, peers: list[str], period: float) -> None:
        self.peers = peers
        self.period = period
        self.count = 0
        self.seen: list[str] = []

    async def on_start(self) -> None:
        self.ctx.every(self.period, "tick")
        self.ctx.subscribe("news.*")

    async def handle(self, message: object) -> object:
        if message == "tick":
            self.count += 1
            rng = self.ctx.system.rng(f"{self.ctx.name}/{self.count}")
            await self.ctx.send(rng.choice(self.peers), f"ping {self.count}")
            if self.count % 3 == 0:
                await self.ctx.publish("news.count", f"{self.ctx.name} at {self.count}")
            if self.count % 7 == 0:
                self.ctx.after(0.5, "late")
            if self.count == 11 and self.ctx.name == "p1":
                raise RuntimeError("eleven")  # a crash: restarted by its supervisor
        else:
            self.seen.append(str(message))
        return None


NAMES = [f"p{i}" for i in range(6)]


async def build(system: sa.ActorSystem) -> None:
    group = await system.spawn_supervisor("group", max_restarts=5, within=30.0)
    for i, name in enumerate(NAMES):
        spec = sa.ChildSpec(name, Pinger, (NAMES, 1.0 + (i % 3)))
        if i < 3:
            await group.start_child(spec)
        else:
            await system.spawn(Pinger, NAMES, 1.0 + (i % 3), name=name)


async def main(
    resume: dict[str, Any] | None = None, at: float | None = None, out: list[Any] | None = None
) -> list[Any]:
    watch = quiescence.Quiescence()
    trio.lowlevel.add_instrument(watch)
    async with sa.open_system(seed=3, trace=True) as system:
        if resume is None:
            await build(system)
        else:
            await engine.restore(system, resume["engine"], engine.Restoring(VALUES, {}))
            problems: list[Any] = []

            def restore_order() -> bool:
                problems.extend(quiescence.restore_task_order(resume["tasks"]))
                quiescence.restore_scheduler_state(resume["scheduler"])
                return True

            watch.wait(restore_order)
        if at is not None and out is not None:

            def take() -> bool:
                if trio.current_time() < at or engine.busy(system) is not None:
                    return False
                out.append(
                    {
                        "engine": engine.capture(system, engine.Saving(VALUES, {})),
                        "tasks": quiescence.task_order(),
                        "scheduler": quiescence.scheduler_state(),
                        "events": system.trace.count if system.trace else 0,
                    }
                )
                return True

            watch.wait(take)
        await trio.sleep_until(END)
        assert system.trace is not None
        events = list(system.trace.events)
    if resume is not None:
        assert problems == [[], []], problems
    return [(e.time, e.kind.value, e.actor, e.peer, e.message_type, e.detail) for e in events]


@pytest.mark.parametrize("at", [5.0, 12.5, 30.0])
def test_a_resumed_run_continues_the_same_events(at: float) -> None:
    whole = sa.run(main, seed=9)
    saved: list[Any] = []
    interrupted = sa.run(main, None, at, saved, seed=9)
    assert interrupted == whole  # taking the checkpoint changed nothing
    (point,) = saved
    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(point["engine"]["time"])
    rest = sa.run(main, point, clock=clock, seed=9)
    assert rest == whole[point["events"] :]
