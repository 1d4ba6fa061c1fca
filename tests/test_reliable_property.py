"""A property over random fault plans and up to 50,000 messages in flight: each reliable message
is processed once if delivered, never if it failed, never twice; and every id `send` returned
gets a receipt or `DeliveryFailed` from `delivered`, when asked and again long after.

Every message is sent before any outcome is asked, so all of them are in flight together.
Hypothesis draws the count (mostly up to 3,000, one example in five up to 50,000, and one
explicit example at 50,000), the fault plan (loss, duplication, delays up to 10 s, reordering,
crashes, at random probabilities), the receivers, the senders and the ordering.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import testing as sat


class Sink(sa.Actor):
    """Appends the key of each message it processes to a shared list (outliving crashes)."""

    def __init__(self, processed: list[int]) -> None:
        self.processed = processed

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        self.processed.append(message)
        return None


class Source(sa.Actor):
    async def handle(self, message: object) -> object:
        return None


@attrs.frozen
class Load:
    """What one example sends: `count` messages from `senders` actors to `sinks` actors."""

    seed: int
    count: int
    sinks: int
    senders: int
    ordering: str  # "unordered", "ordered", or "mixed" (every other message ordered)
    max_retries: int
    timeout: float


SMALL = st.integers(1, 3_000)
counts = st.one_of(SMALL, SMALL, SMALL, SMALL, st.integers(3_001, 50_000))
loads = st.builds(
    Load,
    seed=st.integers(0, 2**32 - 1),
    count=counts,
    sinks=st.integers(1, 4),
    senders=st.integers(1, 3),
    ordering=st.sampled_from(["unordered", "ordered", "mixed"]),
    max_retries=st.integers(0, 8),
    timeout=st.sampled_from([0.5, 1.0, 2.0]),
)
long_delays = st.builds(
    sa.DelayMessages,
    probability=sat.probabilities(0.3),
    maximum=st.sampled_from([5.0, 10.0]),
)
crashes = st.one_of(
    st.builds(sa.CrashActor, actors=st.just("sink-*"), every=st.integers(50, 20_000)),
    st.builds(sa.CrashActor, actors=st.just("sink-*"), probability=st.sampled_from([0.001, 0.01])),
)
plans = st.builds(
    lambda rules, delay, crash: sa.FaultPlan(
        [*rules, *([delay] if delay else []), *([crash] if crash else [])]
    ),
    st.lists(sat.message_faults(max_probability=0.5), max_size=4),
    st.none() | long_delays,
    st.none() | crashes,
)
THE_WORST = sa.FaultPlan(
    [
        sa.DropMessages(probability=0.1),
        sa.DuplicateMessages(probability=0.05),
        sa.ReorderMessages(probability=0.05),
        sa.DelayMessages(probability=0.2, maximum=10.0),
        sa.CrashActor(actors="sink-*", every=10_000),
    ]
)


async def run_load(load: Load, plan: sa.FaultPlan) -> None:
    processed: list[int] = []
    async with sa.open_system(seed=load.seed, faults=plan, max_restarts=10_000) as system:
        room = 2 * load.count + 64
        sinks = [
            await system.spawn(Sink, processed, name=f"sink-{i}", mailbox_size=room)
            for i in range(load.sinks)
        ]
        sources = [await system.spawn(Source, name=f"source-{i}") for i in range(load.senders)]
        sent: dict[int, int] = {}
        for n in range(load.count):
            ordered = load.ordering == "ordered" or (load.ordering == "mixed" and n % 2 == 0)
            sent[n] = await system.reliable.send(
                sinks[n % load.sinks],
                n,
                sender=sources[n % load.senders],
                ordered=ordered,
                max_retries=load.max_retries,
                timeout=load.timeout,
                max_delay=10.0,
            )
        first = {n: await outcome(system, message_id) for n, message_id in sent.items()}
        await trio.sleep(30.0)  # stale copies still on the way land, and must change nothing
        later = {n: await outcome(system, message_id) for n, message_id in sent.items()}
        assert later == first, "an outcome changed once settled"
        assert system.reliable.stats().pending == 0
        sat.assert_no_reliable_message_lost(system)
        sat.assert_exactly_once(system, sent, processed)
    counts = collections.Counter(processed)
    wrong = {
        n: (said, counts.get(n, 0))
        for n, said in first.items()
        if counts.get(n, 0) != (1 if said == "delivered" else 0)
    }
    assert not wrong, f"(outcome, times processed) disagree: {dict(list(wrong.items())[:10])}"


async def outcome(system: sa.ActorSystem, message_id: int) -> str:
    """ "delivered" or "failed"; anything else `delivered` raises is an ambiguous outcome."""
    try:
        receipt = await system.reliable.delivered(message_id)
    except sa.DeliveryFailed:
        return "failed"
    assert receipt.message_id == message_id
    return "delivered"


@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,  # a fixed set of examples: the big counts occur in every run, in bounded time
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(load=loads, plan=plans)
@example(load=Load(7, 50_000, 4, 3, "mixed", 20, 1.0), plan=THE_WORST)
async def test_exactly_once_and_never_ambiguous_under_random_faults(
    autojump_clock: trio.testing.MockClock, load: Load, plan: Any
) -> None:
    with trio.fail_after(100_000):  # virtual seconds: a stuck retry loop fails, not hangs
        await run_load(load, plan)
