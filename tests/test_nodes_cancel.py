"""Cancelled transport calls: asks across nodes given up at random moments never get another
ask's answer and strand nothing; a reader's read cancelled mid-wait loses no entry."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.transport import ClusterSpec, LocalBroker, RemoteRef, Transport
from tests.conftest import WallClock
from tests.nodes_support import until
from tests.redis_server import RedisServer


@attrs.frozen
class Job:
    n: int
    delay: float


sa.default_codec.register(Job, tag="test_nodes_cancel.Job")


class Worker(sa.Actor):
    async def handle(self, message: object) -> object:
        assert isinstance(message, Job)
        await trio.sleep(message.delay)
        return message.n


@attrs.frozen
class Plan:
    """One ask: the handler's delay, how the asker gives up (if it does), and when."""

    delay: float
    how: str  # "timeout" (the ask's own), "scope" (a cancel scope around it), "none"
    after: float
    start: float


plans = st.lists(
    st.builds(
        Plan,
        delay=st.sampled_from([0.0, 0.01, 0.05, 0.2, 1.0]),
        how=st.sampled_from(["timeout", "scope", "none"]),
        after=st.sampled_from([0.0, 0.001, 0.02, 0.1, 0.3, 2.0]),
        start=st.sampled_from([0.0, 0.0, 0.01, 0.1]),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=plans, mailbox=st.sampled_from([1, 4, 64]), window=st.sampled_from([2, 16]))
async def test_cancelled_asks_get_no_other_answer_and_strand_nothing(
    virtual_clock: trio.testing.MockClock, plans: list[Plan], mailbox: int, window: int
) -> None:
    broker = LocalBroker()
    spec = ClusterSpec(broker, heartbeat=0.2, ttl=1.0, window=window)
    answered: dict[int, object] = {}
    gave_up: set[int] = set()
    with trio.fail_after(600):
        async with (
            sa.open_system(cluster=spec, node="a") as a,
            sa.open_system(cluster=spec, node="b") as b,
        ):
            await b.spawn(Worker, name="worker", mailbox_size=mailbox)
            await until(lambda: isinstance(a.registry.get("worker"), RemoteRef), 0.1)
            ref = a.registry.get("worker")
            assert isinstance(ref, RemoteRef)

            async def ask(n: int, plan: Plan) -> None:
                await trio.sleep(plan.start)
                job = Job(n, plan.delay)
                try:
                    if plan.how == "timeout":
                        answered[n] = await ref.ask(job, timeout=plan.after)
                    elif plan.how == "scope":
                        with trio.move_on_after(plan.after):
                            answered[n] = await ref.ask(job)
                        if n not in answered:
                            gave_up.add(n)
                    else:
                        answered[n] = await ref.ask(job)
                except sa.AskTimeout:
                    gave_up.add(n)

            async with trio.open_nursery() as nursery:
                for n, plan in enumerate(plans):
                    nursery.start_soon(ask, n, plan)
            await trio.sleep(len(plans) * 1.0 + 5)  # every late answer is back by now
            assert a.node is not None
            assert b.node is not None
            mismatched = {n: got for n, got in answered.items() if got != n}
            assert mismatched == {}
            assert set(answered) | gave_up == set(range(len(plans)))
            assert not set(answered) & gave_up
            assert a.node._asks == {}, "asks stranded on the asker's node"
            late = a.dead_letters.by_reason[sa.DeadLetterReason.REPLY_AFTER_TIMEOUT]
            assert late <= len(gave_up)
            assert set(a.dead_letters.by_reason) <= {sa.DeadLetterReason.REPLY_AFTER_TIMEOUT}
            for letter in a.dead_letters.recent():
                assert letter.message in gave_up  # a late answer is its own ask's number
            assert b.dead_letters.total == 0
            for node in ("a", "b"):
                stream = broker.stream(node)
                assert stream.entries == {}, f"entries left pending in {node}'s inbox"
                assert stream.unread == []


# --- a read cancelled while it waits -----------------------------------------------------------


async def cancelled_reads_lose_nothing(writer: Transport, reader: Transport, pause: float) -> None:
    """Append entries while `reader`'s reads are cancelled at about the moment they arrive;
    then rewind: every entry is handed out, each at least once, none lost."""
    await reader.join(5.0)
    appended: list[bytes] = []
    seen: list[bytes] = []
    for round in range(20):
        data = f"entry-{round}".encode()

        async def append(data: bytes = data, wait: float = pause * (round % 3)) -> None:
            await trio.sleep(wait)
            await writer.append([(reader.node, data)])
            appended.append(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(append)
            with trio.move_on_after(pause):
                got = await reader.read(10, 5.0)
                seen += [entry.data for entry in got]  # read, never acknowledged
    reader.rewind()
    again: list[bytes] = []
    while True:
        got = await reader.read(100, 0.2)
        if not got:
            break
        again += [entry.data for entry in got]
        await reader.ack(reader.node, [entry.id for entry in got])
    assert sorted(again) == sorted(appended), "an entry was lost by a cancelled read"
    assert set(seen) <= set(appended)
    with trio.move_on_after(1.0):
        assert await reader.read(10, 0.2) == []  # nothing left, and the connection answers
    assert await reader.name("nobody") is None


async def test_a_cancelled_read_loses_nothing_locally(
    virtual_clock: trio.testing.MockClock,
) -> None:
    broker = LocalBroker()
    async with broker.connect("w") as writer, broker.connect("r") as reader:
        await cancelled_reads_lose_nothing(writer, reader, 0.01)


@pytest.mark.parametrize("pause", [0.002, 0.02])
async def test_a_cancelled_read_loses_nothing_on_redis(
    wall_clock: WallClock, redis_server: RedisServer, redis_url: str, pause: float
) -> None:
    from spaceactors.transport.redis import RedisStreams

    with trio.fail_after(20):
        async with (
            RedisStreams(redis_url, "w", timeout=2.0) as writer,
            RedisStreams(redis_url, "r", timeout=2.0) as reader,
        ):
            await cancelled_reads_lose_nothing(writer, reader, pause)
