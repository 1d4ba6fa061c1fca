"""Reliable delivery's streams: exact de-dup state bounded by what is in flight, batched
cumulative acknowledgements that never slow a retry or a waiter, and outcomes that stay
unambiguous with bounded memory."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import spaceactors as sa
import spaceactors.outcomes
from spaceactors.receiver import Stream
from spaceactors.reliable import Reliable
from spaceactors.retries import clock_reader


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
        # Numbers 1-500 are one run of settled numbers behind the gap at 0, and the sender
        # keeps only the message in that gap: memory is what is in flight, not what was sent.
        assert (stream.low, stream.starts, stream.ends) == (0, [1], [501])
        assert list(stream.unacked) == [0]
        receipt = await system.reliable.delivered(first)
        assert receipt.attempts == 2
        assert (stream.low, stream.gaps(), len(stream.unacked)) == (501, 0, 0)
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
        for message_id in lost[5:]:  # the last 3 failures are kept
            with pytest.raises(sa.DeliveryFailed):
                await system.reliable.delivered(message_id)
        for message_id in lost[:5]:  # could be a forgotten failure: not guessed
            with pytest.raises(sa.OutcomeForgotten, match=f"reliable message {message_id} is"):
                await system.reliable.delivered(message_id)
        assert (await system.reliable.delivered(early)).attempts == 1  # its receipt is kept
        assert (await system.reliable.delivered(late)).attempts == 1
    assert handled == [1, 2]


class Worker(sa.Actor):
    """Handles one job, then stops for good."""

    async def handle(self, message: object) -> None:
        self.ctx.stop()


async def test_a_long_lived_sender_keeps_no_stream_of_receivers_that_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Dispatcher(sa.Actor):
        async def handle(self, message: object) -> None:
            system = self.ctx.system
            worker = await system.spawn(Worker, restart=sa.Restart.TEMPORARY)
            await system.reliable.delivered(
                await system.reliable.send(worker, "job", sender=self.ctx.self_ref)
            )

    async with sa.open_system() as system:
        dispatcher = await system.spawn(Dispatcher, name="dispatcher")
        for _ in range(300):
            await dispatcher.ask("go")
            await trio.lowlevel.checkpoint()
        assert not dispatcher._cell.outbound  # the workers' streams left with them
        ghost = await system.spawn(Worker, name="ghost")
        await ghost.stop()
        sink = await system.spawn(Ledger, [], name="sink")
        for n in range(50):  # a stopped actor's ref names the stream: accepted, not kept
            await system.reliable.delivered(await system.reliable.send(sink, n, sender=ghost))
        assert not ghost._cell.outbound
        assert streams_of(sink) == []


async def test_a_send_waiting_for_room_is_neither_retried_nor_failed_meanwhile(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system() as system:
        slow = await system.spawn(Ledger, handled, name="slow", mailbox_size=1)
        await slow.send(30.0)  # busy until t=30 ...
        await slow.send("queued")  # ... and the mailbox is full until then
        mid = await system.reliable.send(slow, "reliable", jitter=0.0)
        assert trio.current_time() == 30.0  # it waited for room
        stats = system.reliable.stats()
        assert (stats.retried, stats.failed) == (0, 0)
        receipt = await system.reliable.delivered(mid)  # its retry clock started at t=30
        assert receipt.attempts == 1
    assert handled == [30.0, "queued", "reliable"]


async def test_a_send_cancelled_while_waiting_for_room_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spaceactors.outcomes, "KEEP_FAILURES", 3)
    lose_strings = sa.DropMessages(probability=1.0, scope=sa.Scope(message_types="str"))
    async with sa.open_system(faults=sa.FaultPlan([lose_strings])) as system:
        sink = await system.spawn(Ledger, [], name="sink", mailbox_size=1)
        lost = await system.reliable.send(sink, "lost", max_retries=0, jitter=0.0)
        await trio.sleep(5.0)
        sink.pause()
        await system.reliable.send(sink, 0, max_retries=1000)  # the mailbox is full from now on
        for n in range(10):
            with trio.move_on_after(20.0):
                await system.reliable.send(sink, n, timeout=2.0)  # retries would come at 2 s
        stats = system.reliable.stats()
        assert (stats.sent, stats.failed, stats.failures_forgotten) == (2, 1, 0)
        assert len(system.reliable.state.first_checks) == 1  # the defaults only
        with pytest.raises(sa.DeliveryFailed):  # no cancelled send pushed it out
            await system.reliable.delivered(lost)
        assert [letter.reason for letter in system.dead_letters.recent()] == [
            sa.DeadLetterReason.DELIVERY_FAILED
        ]


async def test_options_of_calls_that_send_nothing_are_not_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        gone = await system.spawn(Ledger, [], name="gone")
        await gone.stop()
        for n in range(100):
            options = {"timeout": 1.0 + n / 1000, "max_delay": 60.0}
            with pytest.raises(sa.ActorNotFound):
                await system.reliable.send("nobody", n, **options)
            with pytest.raises(sa.ActorUnavailable):
                await system.reliable.send(gone, n, **options)
            assert await system.reliable.publish("news.none", n, **options) == {}
            with pytest.raises(sa.InvalidTopic):
                await system.reliable.publish("news..bad", n, **options)
        assert len(system.reliable.state.first_checks) == 1  # the defaults only


@pytest.mark.parametrize("ordered", ["yes", 1, 0, 0.0, None, [], 2])
async def test_ordered_must_be_a_bool(
    autojump_clock: trio.testing.MockClock, ordered: object
) -> None:
    async with sa.open_system() as system:
        sink = await system.spawn(Ledger, [], name="sink")
        with pytest.raises(ValueError, match="ordered must be True or False"):
            await system.reliable.send(sink, 1, ordered=ordered)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="ordered must be True or False"):
            await system.reliable.publish("news", 1, ordered=ordered)  # type: ignore[arg-type]
        assert system.reliable.stats().sent == 0


async def test_a_crash_in_the_first_check_loses_no_message(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    delay = sa.Backoff.delay
    crashed: list[bool] = []

    def crash_once(self: sa.Backoff, attempt: int, rng: Any) -> float:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("first check failure")
        return delay(self, attempt, rng)

    monkeypatch.setattr(sa.Backoff, "delay", crash_once)
    handled: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Ledger, handled, name="ledger")
        ref.pause()
        ids = [await system.reliable.send(ref, n, max_retries=0) for n in range(3)]
        with trio.fail_after(100.0):  # none is pending for ever
            for mid in ids:  # each fails after its one retry check
                with pytest.raises(sa.DeliveryFailed):
                    await system.reliable.delivered(mid)
        assert system.services.child("reliable").restarts == 1
        assert system.reliable.pending_count() == 0


async def test_a_paused_actor_acknowledges_what_it_handled_before_the_pause(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Pauser(sa.Actor):
        async def handle(self, message: object) -> None:
            self.ctx.self_ref.pause()

    async with sa.open_system() as system:
        ref = await system.spawn(Pauser, name="pauser")
        await system.reliable.send(ref, "pause after me")
        await trio.sleep(0.01)
        assert system.reliable.stats().acknowledged == 1
        assert system.reliable.pending_count() == 0
        await trio.sleep(10.0)
        assert system.reliable.stats().retried == 0


def test_the_fast_clock_reader_reads_trio_time_under_every_clock() -> None:
    async def check() -> None:
        read, offset = clock_reader()
        before = trio.current_time()
        reading = read() + offset
        after = trio.current_time()
        assert before <= reading <= after

    trio.run(check)  # trio's SystemClock: perf_counter plus its offset
    trio.run(check, clock=trio.testing.MockClock(autojump_threshold=0, rate=0))
    trio.run(check, clock=trio.testing.MockClock(rate=1000.0))  # a clock that runs


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 60), unique=True, max_size=60))
def test_the_settled_numbers_of_a_stream_are_exact_in_any_order(order: list[int]) -> None:
    """A stream's mark and runs say exactly which numbers are settled, whatever the order they
    come in, and hold one run per gap (what is in flight), never one per number."""
    stream = Stream(0, None, None, False)  # type: ignore[arg-type]
    model: set[int] = set()
    for seq in order:
        assert not stream.settled(seq)
        stream.settle(seq)
        model.add(seq)
        assert all(stream.settled(n) == (n in model) for n in range(63))
        low = 0
        while low in model:
            low += 1
        runs = [n for n in model if n > low and n - 1 not in model]
        assert stream.low == low
        assert stream.starts == sorted(runs)
        assert stream.gaps() == len(runs)


async def test_called_off_copies_do_not_pile_up_in_the_schedule(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every message's copy is held back 10 s by a fault, and called off as soon as the
    message is acknowledged: however many are sent in those 10 s, the schedule sweeps them out
    instead of holding each until its time."""
    copies = sa.DuplicateMessages(probability=1.0)
    late = sa.DelayMessages(probability=1.0, maximum=10.0, mean=10.0)
    async with sa.open_system(seed=3, faults=sa.FaultPlan([copies, late])) as system:
        ref = await system.spawn(Ledger, [], name="ledger", mailbox_size=1024)
        sizes = []
        for n in range(20_000):
            await system.reliable.send(ref, n)
            if n % 5_000 == 4_999:
                await trio.sleep(0.001)
                sizes.append(system.reliable.state.schedule.pending())
        assert max(sizes) < 4 * 1024  # not 20,000: swept whenever the heap doubles
        await trio.sleep(30.0)
        assert system.reliable.stats().acknowledged == 20_000


class Worker2(sa.Actor):
    def __init__(self, handled: list[Any]) -> None:
        self.handled = handled

    async def handle(self, message: object) -> None:
        self.handled.append((trio.current_time(), message))


async def test_a_child_stopped_and_started_again_keeps_its_streams(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A copy that lands after `restart_child` is handled by the runtime (no crash), and an
    ordered stream keeps its order across the stop and the start."""
    handled: list[Any] = []
    slow_first = sa.DelayMessages(probability=1.0, minimum=3.0, maximum=3.0, stop=0.1)
    async with sa.open_system(seed=4, faults=sa.FaultPlan([slow_first])) as system:
        supervisor = await system.spawn_supervisor(
            "desk", children=[sa.ChildSpec("w", Worker2, args=(handled,))]
        )
        worker = supervisor.child("w")
        first = await system.reliable.send(worker, "first", ordered=True, jitter=0.0, timeout=5.0)
        await trio.sleep(0.2)
        second = await system.reliable.send(worker, "second", ordered=True, jitter=0.0)
        await supervisor.terminate_child("w")
        await supervisor.restart_child("w")
        third = await system.reliable.send(worker, "third", ordered=True, jitter=0.0)
        for mid in (first, second, third):
            await system.reliable.delivered(mid)
        assert [message for _, message in handled] == ["first", "second", "third"]
        assert worker.status().restarts == 0  # nothing crashed
        assert not [
            letter
            for letter in system.dead_letters.recent()
            if letter.reason is sa.DeadLetterReason.CRASHED_WHILE_HANDLING
        ]


async def test_ids_of_cancelled_sends_past_the_cap_are_never_called_delivered(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spaceactors.outcomes, "KEEP_FAILURES", 3)
    monkeypatch.setattr(spaceactors.outcomes, "KEEP_RECEIPTS", 4)
    async with sa.open_system() as system:
        sink = await system.spawn(Ledger, [], name="sink", mailbox_size=1)
        sink.pause()
        await system.reliable.send(sink, "fill", max_retries=100)
        for n in range(6):
            with trio.move_on_after(0.1):
                await system.reliable.send(sink, n)
        cancelled = range(2, 8)
        for mid in cancelled[:3]:  # forgotten: not told apart from a forgotten failure
            with pytest.raises(sa.OutcomeForgotten):
                await system.reliable.delivered(mid)
        for mid in cancelled[3:]:
            with pytest.raises(sa.UnknownMessage, match="its send was cancelled"):
                await system.reliable.delivered(mid)
