"""Reliable delivery's streams: exact de-dup state bounded by what is in flight, batched
cumulative acknowledgements that never slow a retry or a waiter, and outcomes that stay
unambiguous with bounded memory."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa
import spaceactors.outcomes
from spaceactors.reliable import Reliable


class Ledger(sa.Actor):
    def __init__(self, handled: list[Any]) -> None:
        self.handled = handled

    async def handle(self, message: object) -> None:
        if isinstance(message, float):
            await trio.sleep(message)  # a long job
        self.handled.append(message)


def streams_of(ref: sa.ActorRef) -> list[Any]:
    receiver = ref._cell._receiver
    return [] if receiver is None else list(receiver.streams.values())


async def test_a_lost_message_holds_out_of_order_numbers_only_until_its_retry_lands(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    lose_first = sa.DropMessages(probability=1.0, scope=sa.Scope(message_types="str"), stop=0.5)
    async with sa.open_system(seed=1, faults=sa.FaultPlan([lose_first])) as system:
        ref = await system.spawn(Ledger, handled, name="ledger")
        first = await system.reliable.send(ref, "lost once", jitter=0.0)
        for n in range(500):
            await system.reliable.send(ref, n)
        await trio.sleep(0.1)
        (stream,) = streams_of(ref)
        assert (stream.low, len(stream.above)) == (0, 500)  # all wait behind number 0
        assert len(stream.unacked) == 501
        receipt = await system.reliable.delivered(first)
        assert receipt.attempts == 2
        assert (stream.low, stream.above, len(stream.unacked)) == (501, set(), 0)
        assert system.reliable.pending_count() == 0
    assert sorted(handled, key=str) == sorted(["lost once", *range(500)], key=str)


async def test_acknowledgements_come_in_batches_not_one_per_message(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    acks: list[int] = []
    acknowledge = Reliable.acknowledge

    def counted(self: Reliable, stream: Any, low: int, sacked: list[int]) -> None:
        acks.append(low)
        acknowledge(self, stream, low, sacked)

    monkeypatch.setattr(Reliable, "acknowledge", counted)
    handled: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Ledger, handled, name="ledger", mailbox_size=1024)
        ids = [await system.reliable.send(ref, n) for n in range(1000)]
        await system.reliable.delivered(ids[-1])
        assert system.reliable.stats().acknowledged == 1000
    assert handled == list(range(1000))
    assert 1 <= len(acks) <= 1000 // 64 + 2  # one per drain or per 64 handled
    assert acks == sorted(acks)  # cumulative ...
    assert acks[-1] == 1000  # ... up to the last


async def test_a_batch_delays_neither_a_waiter_nor_causes_a_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Ledger, handled, name="ledger")
        quick = await system.reliable.send(ref, "quick")
        unwatched = await system.reliable.send(ref, "unwatched")
        await ref.send(30.0)  # then a 30 s job, with both acknowledgements still batched
        receipt = await system.reliable.delivered(quick)
        assert receipt.latency == 0.0
        await trio.sleep(5.0)  # past the retry timeout: the due retry finds it handled
        stats = system.reliable.stats()
        assert (stats.retried, stats.acknowledged, stats.pending) == (0, 2, 0)
        assert (await system.reliable.delivered(unwatched)).attempts == 1
    assert handled == ["quick", "unwatched"]  # (the long job was cut short by the close)


async def test_the_stream_of_a_sender_that_stopped_is_forgotten(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Courier(sa.Actor):
        async def handle(self, message: object) -> None:
            target, count = message  # type: ignore[misc]
            for n in range(count):
                await self.ctx.system.reliable.send(target, n, sender=self.ctx.self_ref)

    handled: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Ledger, handled, name="ledger")
        for round_ in range(20):
            courier = await system.spawn(Courier, name=f"courier-{round_}")
            await courier.send((ref, 5))
            await trio.sleep(0.1)
            assert len(streams_of(ref)) == 1
            await courier.stop()
            assert streams_of(ref) == []  # idle: forgotten when the sender stopped
        assert len(handled) == 100
        stopping = await system.spawn(Courier, name="courier-last")
        ref.pause()  # its messages stay in flight while it stops
        await stopping.send((ref, 3))
        await trio.sleep(0.1)
        await stopping.stop()
        assert len(streams_of(ref)) == 1  # in flight: kept ...
        ref.resume()
        await trio.sleep(0.1)
        assert streams_of(ref) == []  # ... until the last acknowledgement
    assert len(handled) == 103


async def test_old_deliveries_still_report_as_delivered_without_details(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Ledger, handled, name="ledger", mailbox_size=4096)
        count = sa.KEEP_RECEIPTS + 100
        ids = [await system.reliable.send(ref, n) for n in range(count)]
        await system.reliable.delivered(ids[-1])
        assert await system.reliable.delivered(ids[0]) == sa.Receipt(ids[0], None, None)
        assert await system.reliable.delivered(ids[99]) == sa.Receipt(ids[99], None, None)
        recent = await system.reliable.delivered(ids[100])
        assert (recent.attempts, recent.latency) == (1, 0.0)
        for bad in (0, -1, ids[-1] + 1, 2**70):
            with pytest.raises(sa.UnknownMessage, match=f"no reliable message has the id {bad}"):
                await system.reliable.delivered(bad)
    assert len(handled) == count


async def test_past_the_failure_cap_the_oldest_failures_are_forgotten_never_guessed(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spaceactors.outcomes, "KEEP_FAILURES", 3)
    monkeypatch.setattr(spaceactors.outcomes, "KEEP_RECEIPTS", 4)
    handled: list[Any] = []
    lose_strings = sa.DropMessages(probability=1.0, scope=sa.Scope(message_types="str"))
    async with sa.open_system(faults=sa.FaultPlan([lose_strings]), trace=True) as system:
        ref = await system.spawn(Ledger, handled, name="ledger")
        early = await system.reliable.send(ref, 1)
        await system.reliable.delivered(early)
        lost = [
            await system.reliable.send(ref, f"lost {n}", max_retries=0, jitter=0.0)
            for n in range(8)
        ]
        await trio.sleep(5.0)
        late = await system.reliable.send(ref, 2)
        assert system.reliable.stats().failures_forgotten == 5
        forgotten = [e.message_id for e in system.trace.events if e.kind is sa.EventKind.FORGET]
        assert forgotten == lost[:5]
        for message_id in lost[4:]:  # kept as failures, or among the last 4 to finish
            with pytest.raises(sa.DeliveryFailed):
                await system.reliable.delivered(message_id)
        for message_id in [early, *lost[:4]]:  # could be a forgotten failure: not guessed
            with pytest.raises(sa.OutcomeForgotten, match=f"reliable message {message_id} is"):
                await system.reliable.delivered(message_id)
        assert (await system.reliable.delivered(late)).attempts == 1
    assert handled == [1, 2]
