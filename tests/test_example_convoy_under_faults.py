"""A property test to copy: a convoy keeps its reliable cargo transfers intact under faults.

The leader of a convoy sends cargo to the other ships with reliable delivery, while Hypothesis
throws a random fault plan at the network (loss, duplication, delays, reordering, partitions)
and crashes, pauses and slows the ships. Whatever it draws, every transfer is either stowed
exactly once or reported failed, and the ships' supervisor restarts within its intensity.

To adapt it: replace `Ship` with your actors, the rules with what your users do, and keep the
invariants. Decorator order: ``@settings`` above ``@given``, and the test takes the
``autojump_clock`` fixture (virtual time); Hypothesis runs each example in a fresh Trio run.
A failure writes its case file and ends with the line that replays it exactly
(``reproduce with: spaceactors replay .spaceactors/cases/...``).
"""

from __future__ import annotations

import itertools
from typing import Any

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import testing as sat

SHIPS = ("ship-1", "ship-2", "ship-3")


class Ship(sa.Actor):
    """Stows the cargo it is offered; `stowed` is shared so it outlives crashes."""

    def __init__(self, stowed: list[str]) -> None:
        self.stowed = stowed

    async def handle(self, message: object) -> object:
        if isinstance(message, sa.TradeOffer):
            for item in message.offering:
                self.stowed.append(item.item_type)
        return None


class Convoy(sat.ActorSystemMachine):
    faults = sat.fault_plans(actors=("leader", *SHIPS), max_rules=3, horizon=30.0)
    max_restarts = 1000  # crashes are part of the plan; intensity is checked on the trace

    async def setup(self) -> None:
        self.stowed: list[str] = []
        self.sent: dict[str, int] = {}
        self.crates = itertools.count(1)
        self.leader = await self.system.spawn(Ship, [], name="leader")
        for name in SHIPS:
            await self.system.spawn(Ship, self.stowed, name=name)

    @sat.rule(
        ship=st.sampled_from(SHIPS),
        quantity=st.integers(1, 50),
        ordered=st.booleans(),
    )
    async def transfer(self, ship: str, quantity: int, ordered: bool) -> None:
        crate = f"crate-{next(self.crates)}"
        offer = sa.TradeOffer(offering=(sa.CargoItem(crate, quantity, 10.0),), requesting=())
        self.sent[crate] = await self.system.reliable.send(
            ship, offer, sender=self.leader, ordered=ordered, max_retries=6, timeout=0.5
        )

    @sat.rule(seconds=st.sampled_from([0.1, 1.0, 5.0]))
    async def sail_on(self, seconds: float) -> None:
        await trio.sleep(seconds)

    @sat.invariant
    def no_crate_stowed_twice(self) -> None:
        assert len(self.stowed) == len(set(self.stowed)), f"stowed twice: {self.stowed}"

    async def teardown(self) -> None:
        sat.assert_no_reliable_message_lost(self.system)
        sat.assert_exactly_once(self.system, self.sent, self.stowed)
        sat.assert_restarts_within_intensity(self.system)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # the clock is reused
)
@given(data=st.data())
async def test_a_convoy_keeps_its_reliable_transfers_intact_under_faults(
    data: Any, autojump_clock: trio.testing.MockClock
) -> None:
    await Convoy.run(data, max_steps=25)
