"""A plain actor system checkpointed at a quiescent point and resumed in a fresh Trio run
continues exactly: the same events, in the same order, at the same times."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import spaceactors as sa
from tests.checkpoint_support import resumed_clock, traced_run

END = 60.0


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


main = functools.partial(traced_run, build, END)
"""The run: built, or resumed (`traced_run`)."""


@pytest.mark.parametrize("at", [5.0, 12.5, 30.0])
def test_a_resumed_run_continues_the_same_events(at: float) -> None:
    whole = sa.run(main, seed=9)
    saved: list[Any] = []
    interrupted = sa.run(main, None, at, saved, seed=9)
    assert interrupted == whole  # taking the checkpoint changed nothing
    (point,) = saved
    rest = sa.run(main, point, clock=resumed_clock(point), seed=9)
    assert rest == whole[point["events"] :]
