"""``await system.checkpoint(path)`` in a program's own actor system, then
``open_system(resume_from=path)`` or ``spaceactors.run(main, resume_from=path)``: the resumed
run ends with the same trace hash and the same actor states as the run never interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

import spaceactors as sa
from spaceactors.checkpoint import StateFile

END = 40.0
NAMES = ["a", "b", "c", "d"]


class Counter(sa.Actor):
    """Ticks on a timer, pings a peer chosen by its seeded generator, crashes once, and
    schedules a late message through the router now and then."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.ticks = 0
        self.heard: list[str] = []

    async def on_start(self) -> None:
        self.ctx.every(self.period, "tick")

    async def handle(self, message: object) -> object:
        if message != "tick":
            self.heard.append(str(message))
            return None
        self.ticks += 1
        rng = self.ctx.system.rng(f"{self.ctx.name}/{self.ticks}")
        await self.ctx.send(rng.choice(NAMES), f"{self.ctx.name}:{self.ticks}")
        if self.ticks % 4 == 0:
            self.ctx.system.router.send_later(2.25, rng.choice(NAMES), f"late {self.ticks}")
        if self.ticks == 9 and self.ctx.name == "b":
            raise RuntimeError("nine")  # restarted by its supervisor: its state starts again
        return None


async def build(system: sa.ActorSystem) -> None:
    group = await system.spawn_supervisor("group", max_restarts=5, within=30.0)
    for i, name in enumerate(NAMES):
        await group.start_child(sa.ChildSpec(name, Counter, (1.0 + i % 2,)))


def outcome(system: sa.ActorSystem) -> dict[str, Any]:
    assert system.trace is not None
    states, restarts = {}, {}
    for name in NAMES:
        cell = system.lookup(name)._cell
        states[name] = {k: v for k, v in vars(cell.actor).items() if k != "ctx"}  # type: ignore[union-attr]
        restarts[name] = cell.restarts  # type: ignore[union-attr]
    return {
        "hash": system.trace.hash,
        "count": system.trace.count,
        "states": states,
        "restarts": restarts,
        "dead": system.dead_letters.total,
    }


async def whole() -> dict[str, Any]:
    async with sa.open_system(seed=3, trace=True) as system:
        await build(system)
        await trio.sleep_until(END)
        return outcome(system)


async def program(
    path: Path, moments: tuple[float, ...] = (), stop: bool = False, resume: bool = False
) -> dict[str, Any] | None:
    """The program: checkpointed at each of `moments` still to come; with `stop`, it ends
    at the last one (as if killed); with `resume`, it opens its system from `path`."""
    async with sa.open_system(seed=3, trace=True, resume_from=path if resume else None) as system:
        if not system.resumed:
            await build(system)
        for moment in moments:
            if trio.current_time() < moment:
                await trio.sleep_until(moment)
                written = await system.checkpoint(path)
                assert written.sim_time == moment
        if stop:
            return None
        await trio.sleep_until(END)
        return outcome(system)


@pytest.fixture(scope="module")
def uninterrupted() -> dict[str, Any]:
    result: dict[str, Any] = sa.run(whole, seed=9)
    assert result["restarts"]["b"] == 2  # the run holds crashes and restarts
    return result


@pytest.mark.parametrize(
    "moments", [(0.5,), (7.5,), (9.75,), (4.5, 13.5, 22.5), (18.5,), (31.5,), (39.5,)]
)
def test_a_run_resumed_from_its_file_ends_as_if_never_stopped(
    tmp_path: Path, uninterrupted: dict[str, Any], moments: tuple[float, ...]
) -> None:
    path = tmp_path / "run.db"
    assert sa.run(program, path, moments, seed=9) == uninterrupted  # checkpoints change nothing
    path.unlink()
    assert sa.run(program, path, moments, True, seed=9) is None  # killed at the last one
    with StateFile.open(path) as state:
        assert [c.sim_time for c in state.checkpoints()] == list(moments[-3:])
    assert sa.run(program, path, moments, resume_from=path) == uninterrupted
    assert sa.run(program, path, moments, False, True, seed=9) == uninterrupted
