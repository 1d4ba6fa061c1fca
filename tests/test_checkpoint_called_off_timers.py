"""A timer called off before a checkpoint still wakes the schedule that held it when its time
comes (its entry stays in the heap until then): a resumed run must do the same, or the tasks
woken together at that instant differ, Trio's seeded shuffle of them draws differently, and
the run goes on otherwise than the one that never stopped."""

from __future__ import annotations

from typing import Any

import pytest
import trio

import spaceactors as sa
from tests.checkpoint_support import resume_from_point, resumed_clock, rows, take_at
from tests.test_checkpoint_engine import build

END = 40.0
CALLED_OFF = 3.25  # no actor's timer falls due then: only the called-off entry wakes the schedule


class Canceller(sa.Actor):
    """Sets timers and calls them off at once: their entries wait in the heap until due."""

    async def on_start(self) -> None:
        self.ctx.after(CALLED_OFF, "never").cancel()
        self.ctx.every(CALLED_OFF + 0.5, "never either").cancel()

    async def handle(self, message: object) -> object:
        raise AssertionError(f"a called-off timer delivered {message!r}")


async def main(
    resume: dict[str, Any] | None = None, at: float | None = None, out: list[Any] | None = None
) -> list[Any]:
    async with sa.open_system(seed=3, trace=True) as system:
        if resume is None:
            await build(system)
            await system.spawn(Canceller, name="canceller")
        else:
            check = await resume_from_point(system, resume)
        if at is not None and out is not None:
            take_at(system, at, out)
        if trio.current_time() < CALLED_OFF:  # a task of the run's own wakes with the entry
            await trio.sleep_until(CALLED_OFF)
        await trio.sleep_until(END)
        events = rows(system)
    if resume is not None:
        check()
    return events


@pytest.mark.parametrize("at", [1.5, 2.5])
def test_a_called_off_timer_still_wakes_the_resumed_schedule(at: float) -> None:
    whole = sa.run(main, seed=9)
    saved: list[Any] = []
    assert sa.run(main, None, at, saved, seed=9) == whole
    (point,) = saved
    rest = sa.run(main, point, clock=resumed_clock(point), seed=9)
    assert rest == whole[point["events"] :]
