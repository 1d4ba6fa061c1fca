"""Reliable delivery to actors on other nodes: exactly-once processing and order across the
wire (lost, duplicated and late entries included), failures, and a failover (in virtual time,
on the in-process broker)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import attrs
import hypothesis
import pytest
import trio
import trio.testing
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.transport import ClusterSpec, LocalBroker
from spaceactors.transport.local import LocalTransport
from spaceactors.transport.wire import Kind, decode
from tests.nodes_support import killed_at_exit


@attrs.frozen
class Job:
    n: int


@attrs.frozen
class Opaque:
    """Not registered with the codec: cannot cross nodes."""

    n: int


sa.default_codec.register(Job, tag="test_nodes_reliable.Job")


class Worker(sa.Actor):
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.seen: list[int] = []

    async def handle(self, message: object) -> object:
        if isinstance(message, Job):
            if self.delay:
                await trio.sleep(self.delay)
            self.seen.append(message.n)
            return None
        return list(self.seen)  # ("seen?")


@attrs.define
class Weather:
    """What the broker does to the entries of some kinds on their way: lose some, deliver
    some twice (seeded)."""

    rng: random.Random
    lose: float = 0.0
    twice: float = 0.0
    kinds: frozenset[Kind] = frozenset({Kind.RELIABLE, Kind.ACK, Kind.SKIP})
    lost: int = 0
    doubled: int = 0
    blocked: set[Kind] = attrs.field(factory=set)  # every entry of these kinds is lost

    def pass_through(self, batch: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        for peer, data in batch:
            kind = decode(data).kind
            if kind in self.blocked or (kind in self.kinds and self.rng.random() < self.lose):
                self.lost += 1
                continue
            out.append((peer, data))
            if kind in self.kinds and self.rng.random() < self.twice:
                self.doubled += 1
                out.append((peer, data))
        return out


class StormyTransport(LocalTransport):
    def __init__(self, broker: StormyBroker, node: str) -> None:
        super().__init__(broker, node)
        self.weather = broker.weather

    async def append(self, batch: Sequence[tuple[str, bytes]]) -> None:
        await super().append(self.weather.pass_through(batch))


class StormyBroker(LocalBroker):
    def __init__(self, weather: Weather) -> None:
        super().__init__()
        self.weather = weather

    def connect(self, node: str) -> LocalTransport:
        return StormyTransport(self, node)


@asynccontextmanager
async def two_nodes(weather: Weather) -> AsyncIterator[tuple[sa.ActorSystem, sa.ActorSystem]]:
    spec = ClusterSpec(StormyBroker(weather))
    async with (
        sa.open_system(cluster=spec, node="a", seed=1) as a,
        sa.open_system(cluster=spec, node="b", seed=2) as b,
    ):
        await trio.sleep(2)  # a membership round: each knows the other
        yield a, b


async def test_reliable_messages_to_another_node_are_handled_once_and_acknowledged(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes(Weather(random.Random(0))) as (a, b):
        worker = await b.spawn(Worker, name="worker")
        await trio.sleep(0.1)
        ref = a.lookup("worker")
        ids = [await a.reliable.send(ref, Job(n)) for n in range(200)]
        receipts = [await a.reliable.delivered(i) for i in ids]
        assert [r.attempts for r in receipts] == [1] * 200
        assert sorted(await worker.ask("seen?", timeout=5)) == list(range(200))
        stats = a.reliable.stats()
        assert (stats.acknowledged, stats.retried, stats.failed, stats.pending) == (200, 0, 0, 0)
        assert a.node is not None
        assert a.node.streams == {}  # nothing unsettled: the sender forgot the stream's id


@hypothesis.settings(max_examples=12, deadline=None)
@hypothesis.given(
    seed=st.integers(0, 2**32 - 1),
    lose=st.sampled_from([0.0, 0.1, 0.3]),
    twice=st.sampled_from([0.0, 0.2, 0.5]),
    ordered=st.booleans(),
)
def test_lost_and_doubled_entries_change_nothing_that_is_handled(
    seed: int, lose: float, twice: float, ordered: bool
) -> None:
    """The kind: whatever the broker loses or delivers twice among transmissions,
    acknowledgements and skips, every message is handled exactly once (in order, if asked)
    and its outcome is known; a loss only costs retries."""
    weather = Weather(random.Random(seed), lose=lose, twice=twice)

    async def main() -> None:
        async with two_nodes(weather) as (a, b):
            worker = await b.spawn(Worker, name="worker")
            await trio.sleep(0.1)
            ref = a.lookup("worker")
            ids = [
                await a.reliable.send(ref, Job(n), ordered=ordered, max_retries=20, timeout=0.5)
                for n in range(60)
            ]
            for message_id in ids:
                await a.reliable.delivered(message_id)
            seen = await worker.ask("seen?", timeout=30)
            assert sorted(seen) == list(range(60))  # each once
            if ordered:
                assert seen == list(range(60))
            assert a.reliable.stats().failed == 0

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_a_slow_handler_on_another_node_is_no_lost_attempt(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes(Weather(random.Random(0))) as (a, b):
        worker = await b.spawn(Worker, 30.0, name="worker")  # 30 s per message
        await trio.sleep(0.1)
        message_id = await a.reliable.send(a.lookup("worker"), Job(0), timeout=1)
        receipt = await a.reliable.delivered(message_id)  # retries at 1, 3, 7 s: all < 30 s
        # The first retry counts (its node then says it has the message in hand); after
        # that, copies go out as uncounted probes until it is handled.
        assert receipt.attempts == 2
        assert receipt.latency == pytest.approx(30, abs=0.5)
        assert await worker.ask("seen?", timeout=60) == [0]


async def test_what_cannot_be_encoded_fails_at_the_sender_and_the_stream_goes_on(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes(Weather(random.Random(0))) as (a, b):
        worker = await b.spawn(Worker, name="worker")
        await trio.sleep(0.1)
        ref = a.lookup("worker")
        first = await a.reliable.send(ref, Job(0), ordered=True)
        with pytest.raises(sa.EncodeError, match="Opaque"):
            await a.reliable.send(ref, Opaque(1), ordered=True)
        last = await a.reliable.send(ref, Job(2), ordered=True)
        await a.reliable.delivered(first)
        await a.reliable.delivered(last)  # the number in between was skipped, not awaited
        assert await worker.ask("seen?", timeout=5) == [0, 2]
        assert a.reliable.pending_count() == 0


async def test_a_message_never_acknowledged_fails_and_is_a_dead_letter(
    virtual_clock: trio.testing.MockClock,
) -> None:
    weather = Weather(random.Random(0), blocked={Kind.RELIABLE})
    async with two_nodes(weather) as (a, b):
        await b.spawn(Worker, name="worker")
        await trio.sleep(0.1)
        message_id = await a.reliable.send(a.lookup("worker"), Job(1), max_retries=2, timeout=1)
        with pytest.raises(sa.DeliveryFailed, match="after 2 retries"):
            await a.reliable.delivered(message_id)
        letters = a.dead_letters.recent()
        assert [letter.reason for letter in letters] == [sa.DeadLetterReason.DELIVERY_FAILED]
        assert a.reliable.pending_count() == 0
        assert a.node is not None
        assert a.node.streams == {}  # nothing unsettled: the stream's id is forgotten
        weather.blocked.clear()  # the stream goes on past the failed number
        later = await a.reliable.send(a.lookup("worker"), Job(2), ordered=False)
        await a.reliable.delivered(later)


async def test_forged_acknowledgements_are_dead_letters_and_settle_nothing(
    virtual_clock: trio.testing.MockClock,
) -> None:
    from spaceactors.transport.wire import Envelope, packb

    async with two_nodes(Weather(random.Random(0), blocked={Kind.RELIABLE})) as (a, b):
        await b.spawn(Worker, name="worker")
        await trio.sleep(0.1)
        message_id = await a.reliable.send(a.lookup("worker"), Job(1), timeout=20)
        assert b.node is not None
        assert a.node is not None
        (stream_id,) = a.node.streams
        for payload in (
            packb([stream_id, "x", [], []]),
            packb([stream_id, 1, ["y"], []]),
            packb([stream_id, -1, [], []]),
            b"\xc1",
        ):
            b.node.post("a", Envelope(Kind.ACK, "b", payload=payload).encode())
        too_far = packb([stream_id, 10**9, [], []])  # past every number sent
        b.node.post("a", Envelope(Kind.ACK, "b", payload=too_far).encode())
        await trio.sleep(1)
        reasons = {letter.reason for letter in a.dead_letters.recent()}
        assert reasons == {sa.DeadLetterReason.MALFORMED_ENTRY}
        assert len(a.dead_letters.recent()) == 4
        # The one whose mark is past every number sent settles only what was sent.
        assert (await a.reliable.delivered(message_id)).attempts == 1
        assert a.reliable.stats().acknowledged == 1


class Tally(sa.Actor):
    """Counts what it handles, in a list a test can read after the node is gone."""

    handled: list[tuple[str, int]] = []

    async def handle(self, message: object) -> object:
        if isinstance(message, Job):
            Tally.handled.append((self.ctx.system.node.name, message.n))  # type: ignore[union-attr]
        return None


async def test_reliable_messages_reach_the_new_incarnation_after_a_failover(
    virtual_clock: trio.testing.MockClock,
) -> None:
    Tally.handled = []
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="c"),
    ):
        async with killed_at_exit(spec, "b"):
            await trio.sleep(2)
            assert a.node is not None
            tally = await a.node.spawn(Tally, name="tally", on="b")
            first = [await a.reliable.send(tally, Job(n)) for n in range(5)]
            for message_id in first:
                await a.reliable.delivered(message_id)
            broker.sever("b")  # b dies: it reads nothing more
            later = [await a.reliable.send(tally, Job(n), timeout=2) for n in range(5, 10)]
            await trio.sleep(10)
        for message_id in later:  # retried to where the name is held now
            await a.reliable.delivered(message_id)
        handled = sorted(Tally.handled, key=lambda pair: pair[1])
        assert [n for _, n in handled] == list(range(10))  # each once: b read none of the later
        assert {where for where, n in handled if n >= 5} == {"c"}


async def test_a_reliable_publish_reaches_the_subscribers_of_every_node(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes(Weather(random.Random(3), lose=0.2)) as (a, b):
        here = await a.spawn(Worker, name="here")
        there = await b.spawn(Worker, name="there")
        gone = await b.spawn(Worker, name="gone")
        a.router.subscribe(here, "belt.*")
        b.router.subscribe(there, "belt.*")
        b.router.subscribe(gone, "belt.ceres")
        await trio.sleep(0.5)  # the subscriptions reach the other node
        assert a.node is not None
        assert {ref.name for ref in a.node.subscribers("belt.ceres")} == {"there", "gone"}
        b.router.unsubscribe(gone, "belt.ceres")
        await trio.sleep(0.5)
        ids = await a.reliable.publish("belt.ceres", Job(7), max_retries=10)
        assert {ref.name for ref in ids} == {"here", "there"}
        for message_id in ids.values():
            await a.reliable.delivered(message_id)
        assert await there.ask("seen?", timeout=5) == [7]
        assert await here.ask("seen?", timeout=5) == [7]
        await there.stop()  # its subscriptions go with it, on every node
        await trio.sleep(0.5)
        assert a.node.subscribers("belt.ceres") == []


async def test_a_node_that_joins_later_learns_the_subscriptions_already_there(
    virtual_clock: trio.testing.MockClock,
) -> None:
    spec = ClusterSpec(LocalBroker())
    async with sa.open_system(cluster=spec, node="a") as a:
        listener = await a.spawn(Worker, name="listener")
        a.router.subscribe(listener, "news")
        async with sa.open_system(cluster=spec, node="b") as b:
            await trio.sleep(2)  # a membership round: a introduces itself to b
            ids = await b.reliable.publish("news", Job(1))
            assert [ref.name for ref in ids] == ["listener"]
            await b.reliable.delivered(ids[next(iter(ids))])
        assert await listener.ask("seen?", timeout=5) == [1]


class SlowTally(sa.Actor):
    """Takes 10 ms per message; counts what it handles, where (readable after its node died)."""

    handled: list[tuple[str, int]] = []

    async def handle(self, message: object) -> object:
        if isinstance(message, Job):
            await trio.sleep(0.01)
            SlowTally.handled.append((self.ctx.system.node.name, message.n))  # type: ignore[union-attr]
        return None


async def test_what_was_acknowledged_before_a_failover_is_not_handled_again(
    virtual_clock: trio.testing.MockClock,
) -> None:
    SlowTally.handled = []
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    acknowledged: set[int] = set()
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="c"),
    ):
        assert a.node is not None
        async with killed_at_exit(spec, "b"):
            await trio.sleep(2)
            tally = await a.node.spawn(SlowTally, name="tally", on="b", mailbox_size=20)
            ids = {
                await a.reliable.send(tally, Job(n), timeout=0.5, max_retries=50): n
                for n in range(300)
            }  # retries pile copies up in b's inbox, unread behind its small mailbox
            await trio.sleep(1.5)
            for message_id, n in ids.items():
                if a.reliable.state.pending.get(message_id) is None:
                    acknowledged.add(n)
            broker.sever("b")
            await trio.sleep(30)
        for message_id in ids:
            await a.reliable.delivered(message_id)
    assert 50 < len(acknowledged) < 250
    on_c = [n for where, n in SlowTally.handled if where == "c"]
    assert set(on_c) | {n for where, n in SlowTally.handled if where == "b"} == set(range(300))
    assert len(on_c) == len(set(on_c))  # once each on c
    assert not set(on_c) & acknowledged  # nothing acknowledged before the kill runs again


async def test_a_message_reported_failed_was_not_handled_and_one_handled_did_not_fail(
    virtual_clock: trio.testing.MockClock,
) -> None:
    """As in one process: behind a slow receiver some messages run out of retries; each
    outcome is true (failed: never handled; delivered: handled once)."""
    async with two_nodes(Weather(random.Random(0))) as (a, b):
        worker = await b.spawn(Worker, 0.5, name="worker")
        await trio.sleep(0.1)
        ref = a.lookup("worker")
        ids = {await a.reliable.send(ref, Job(n), jitter=0.0): n for n in range(50)}
        failed, delivered = set(), set()
        for message_id, n in ids.items():
            try:
                await a.reliable.delivered(message_id)
            except sa.DeliveryFailed:
                failed.add(n)
            else:
                delivered.add(n)
        await trio.sleep(30)
        handled = await worker.ask("seen?", timeout=60)
    assert len(handled) == len(set(handled))
    assert set(handled) == delivered
    assert failed == set(range(50)) - delivered


class CrashOnce(sa.Actor):
    """Crashes the first time it handles Job(1) (across incarnations: a class-level flag)."""

    crashed = False
    handled: list[int] = []

    async def handle(self, message: object) -> object:
        if isinstance(message, Job):
            if message.n == 1 and not CrashOnce.crashed:
                CrashOnce.crashed = True
                raise RuntimeError("boom")
            CrashOnce.handled.append(message.n)
        return None


async def test_a_crash_while_handling_a_message_from_another_node_is_retried_into_the_restart(
    virtual_clock: trio.testing.MockClock,
) -> None:
    CrashOnce.crashed, CrashOnce.handled = False, []
    async with two_nodes(Weather(random.Random(0))) as (a, b):
        await b.spawn(CrashOnce, name="fragile")
        await trio.sleep(0.1)
        ref = a.lookup("fragile")
        ids = [await a.reliable.send(ref, Job(n), ordered=True) for n in range(3)]
        with trio.fail_after(60):
            receipts = [await a.reliable.delivered(message_id) for message_id in ids]
        assert receipts[1].attempts >= 2  # the crash settled nothing: a retry brought it
        assert CrashOnce.handled == [0, 1, 2]  # each once, in order
