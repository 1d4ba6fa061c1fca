"""Real trace files for the trace tools' tests: a small seeded run in virtual time.

`crew_run` runs a one_for_all supervisor "crew" of two workers, "pilot" and "engineer",
under a fault plan that loses some messages to the pilot; the pilot is told to crash once at
t=10 s (so both restart: the pilot for its crash, the engineer with it), and a message to an
actor that does not exist becomes a dead letter. The same seed writes the same file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import trio

import spaceactors as sa

CRASH_AT = 10.0
"""When the pilot is told to crash (virtual seconds)."""


class Worker(sa.Actor):
    """Answers what it is sent; crashes on "crash"."""

    async def handle(self, message: object) -> object:
        if message == "crash":
            raise RuntimeError(f"{self.ctx.name} was told to crash")
        return message


async def crew_traffic(path: Path, drop: float = 0.3) -> str:
    """The run, writing its trace to `path`; returns its trace hash."""
    plan = sa.FaultPlan([sa.DropMessages(probability=drop, scope=sa.Scope(actors="pilot"))])
    async with sa.open_system(trace=path, faults=plan) as system:
        crew = [sa.ChildSpec("pilot", Worker), sa.ChildSpec("engineer", Worker)]
        await system.spawn_supervisor(
            "crew", strategy=sa.Strategy.ONE_FOR_ALL, max_restarts=5, within=60.0, children=crew
        )
        for n in range(20):
            await system.send("pilot", n)
            await system.send("engineer", n)
            await trio.sleep(1)
            if n == CRASH_AT - 1:
                await system.send("pilot", "crash")
        with contextlib.suppress(sa.ActorNotFound):
            await system.send("nobody", "hello")
        await trio.sleep(1)
        assert system.trace is not None
        return system.trace.hash


def crew_run(path: Path, seed: int = 0, drop: float = 0.3) -> str:
    """Run `crew_traffic` with `seed` in virtual time; returns the trace hash."""
    return sa.run(crew_traffic, path, drop, seed=seed)
