"""A fault window is open or closed the same way for the timer that announces its edge and for
every decision taken at that instant, wherever the clock stands (a MockClock shared by many
Hypothesis examples can be thousands of seconds from 0)."""

from __future__ import annotations

import random

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import spaceactors as sa

origins = st.floats(0.0, 1e7, allow_nan=False, allow_infinity=False)
offsets = st.floats(0.0, 1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=500, deadline=None)
@given(origin=origins, start=offsets, length=st.floats(1e-9, 1e4))
def test_a_rule_is_on_at_its_opening_instant_and_off_at_its_closing_one(
    origin: float, start: float, length: float
) -> None:
    rule = sa.DropMessages(probability=1.0, start=start, stop=start + length)
    injector = sa.FaultInjector(sa.FaultPlan([rule]), random.Random(0), origin=origin)
    opens, closes = origin + rule.start, origin + rule.start + length
    closes = origin + (start + length)  # exactly as `Tap.install` sets the closing timer
    assert injector.active(rule, opens) == (opens < closes)
    assert not injector.active(rule, closes)


class Account(sa.Actor):
    async def handle(self, message: object) -> None:
        pass


@settings(max_examples=60, deadline=None)
@given(offset=st.floats(0.0, 1e6), duration=st.floats(0.01, 5.0), nth=st.integers(1, 6))
def test_a_restart_at_the_instant_a_pause_ends_is_not_paused_for_ever(
    offset: float, duration: float, nth: int
) -> None:
    """The issue this came from: a crash restarts the actor at the instant its pause closes;
    with the clock far from 0 the restart was taken as inside the window, paused, and never
    resumed. Whatever the offset, every message is handled."""

    async def main() -> None:
        plan = sa.FaultPlan(
            [
                sa.PauseActor(actors="account", duration=duration),
                sa.CrashActor(actors="account", nth=nth),
            ]
        )
        async with sa.open_system(seed=4, faults=plan) as system:
            ref = await system.spawn(Account, name="account")
            ids = [await system.reliable.send(ref, n, max_retries=50) for n in range(10)]
            with trio.fail_after(600.0):
                for mid in ids:
                    await system.reliable.delivered(mid)
            assert ref.status().state is not sa.ActorState.PAUSED

    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(offset)
    trio.run(main, clock=clock)
