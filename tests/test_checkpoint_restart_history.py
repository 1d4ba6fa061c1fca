"""A nested supervisor resumed from a checkpoint keeps its restart history (its intensity
window): a crash after the resume that the run that never stopped answered by giving up is
answered by giving up, at the same moment, not by one more restart."""

from __future__ import annotations

import functools
from typing import Any

import pytest

import spaceactors as sa
from tests.checkpoint_support import resumed_clock, traced_run

END = 12.0


class Crasher(sa.Actor):
    """Crashes on every tick of its timer (each incarnation sets it again)."""

    async def on_start(self) -> None:
        self.ctx.after(1.0, "tick")

    async def handle(self, message: object) -> object:
        raise RuntimeError("tick")


async def build(system: sa.ActorSystem) -> None:
    group = await system.spawn_supervisor(
        "group", max_restarts=4, within=100.0, restart=sa.Restart.TEMPORARY
    )
    await group.start_child(sa.ChildSpec("crasher", Crasher))


main = functools.partial(traced_run, build, END)
"""The run: built, or resumed (`traced_run`)."""


@pytest.mark.parametrize("at", [2.5, 3.5])
def test_a_resumed_supervisor_gives_up_when_it_did(at: float) -> None:
    whole = sa.run(main, seed=9)
    assert [row[0] for row in whole if row[1] == "give_up"] == [5.0]  # the 5th crash
    saved: list[Any] = []
    assert sa.run(main, None, at, saved, seed=9) == whole
    (point,) = saved
    rest = sa.run(main, point, clock=resumed_clock(point), seed=9)
    assert rest == whole[point["events"] :]
