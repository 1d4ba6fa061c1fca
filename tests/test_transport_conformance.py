"""The transport interface, the same tests for both backends: in process (virtual time) and
Redis Streams (a private redis-server, real time: bounded by timeouts)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from spaceactors.transport import BrokerUnavailable, LocalBroker, NodeNameTaken, Transport
from spaceactors.transport.wire import Envelope, Holder, Kind
from tests.conftest import WallClock
from tests.redis_server import RedisServer

TTL = 0.5


class Backend:
    def __init__(self, kind: str, server: RedisServer | None) -> None:
        self.kind = kind
        self.server = server
        self.broker = LocalBroker()

    def transport(self, node: str) -> Transport:
        if self.server is None:
            return self.broker.connect(node)
        from spaceactors.transport.redis import RedisStreams

        return RedisStreams(self.server.url, node, prefix="conformance", timeout=2.0)

    @asynccontextmanager
    async def node(self, name: str, *, join: bool = True) -> AsyncIterator[Transport]:
        async with self.transport(name) as transport:
            if join:
                await transport.join(TTL)
            yield transport

    async def kill(self, node: str) -> None:
        """Let `node`'s heartbeat lapse, as a process that died."""
        if self.server is None:
            self.broker._alive[node] = 0.0
            return
        async with self.transport("killer") as transport:
            await transport._client.delete([f"conformance:alive:{node}"])  # type: ignore[attr-defined]

    async def inbox_length(self, node: str) -> int:
        """How many entries `node`'s inbox holds (acknowledged or not)."""
        if self.server is None:
            stream = self.broker._streams.get(node)
            return 0 if stream is None else len(stream.entries)
        async with self.transport("counter") as transport:
            client = transport._client  # type: ignore[attr-defined]
            length: int = await client.xlen(f"conformance:inbox:{node}")
            return length

    async def inbox_exists(self, node: str) -> bool:
        if self.server is None:
            return node in self.broker._streams
        async with self.transport("counter") as transport:
            client = transport._client  # type: ignore[attr-defined]
            return bool(await client.exists([f"conformance:inbox:{node}"]))

    def outage(self) -> None:
        if self.server is None:
            self.broker.down()
        else:
            self.server.stop()

    def back(self) -> None:
        if self.server is None:
            self.broker.up()
        else:
            self.server.start()


@pytest.fixture(params=["local", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "local":
        return Backend("local", None)
    server: RedisServer = request.getfixturevalue("redis_server")
    if server.process is None:
        server.start()
    server.flush()
    return Backend("redis", server)


@pytest.fixture
def clock(backend: Backend) -> trio.abc.Clock:
    return trio.testing.MockClock(autojump_threshold=0) if backend.server is None else WallClock()


def d(*values: str) -> list[bytes]:
    return [v.encode() for v in values]


async def test_a_live_node_name_is_taken(backend: Backend, clock: trio.abc.Clock) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a:
            with pytest.raises(NodeNameTaken, match="'a'"):
                async with backend.node("a"):
                    pass
            assert (await a.members()) == {"a": True}
            assert await a.beat(TTL)


async def test_entries_arrive_in_order_and_stay_until_acknowledged(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a, backend.node("b") as b:
            await a.append([("b", b"1"), ("b", b"2"), ("a", b"self")])
            first = await b.read(10, 0.1)
            assert [e.data for e in first] == d("1", "2")
            assert {e.node for e in first} == {"b"}
            assert await b.read(10, 0.05) == []  # blocks, then nothing
            b.rewind()  # as after a cancelled read: the unacknowledged come again
            assert [e.data for e in await b.read(10, 0.1)] == d("1", "2")
            await b.ack("b", [first[0].id])
            b.rewind()
            assert [e.data for e in await b.read(10, 0.1)] == d("2")
            assert [e.data for e in await a.read(10, 0.1)] == d("self")


async def test_a_read_waits_for_an_entry(backend: Backend, clock: trio.abc.Clock) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a, backend.node("b") as b:
            got: list[bytes] = []

            async def reader() -> None:
                got.extend(e.data for e in await b.read(10, 5.0))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                await trio.sleep(0.1)
                await a.append([("b", b"late")])
            assert got == d("late")


async def test_a_dead_nodes_entries_are_claimed_once_and_never_from_a_live_one(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a, backend.node("b") as b:
            await a.append([("b", b"1"), ("b", b"2"), ("b", b"3")])
            assert len(await b.read(2, 0.1)) == 2  # read, never acknowledged
            assert not await a.declare_down("b")  # alive: nothing is taken
            await backend.kill("b")
            assert (await a.members())["b"] is False
            assert await a.declare_down("b")
            assert not await a.declare_down("b")  # once
            claimed = await a.claim("b", 10)
            claimed += await a.claim("b", 10)
            assert sorted(e.data for e in claimed) == d("1", "2", "3")
            assert {e.node for e in claimed} == {"b"}
            await a.ack("b", [e.id for e in claimed])
            assert await a.claim("b", 10) == []
            await a.forget("b")
            assert "b" in await a.members()  # listed until its take-over is done
            await a.retire("b")
            assert "b" not in await a.members()
            assert await backend.inbox_length("b") == 0


async def test_a_take_over_whose_taker_dies_is_taken_by_the_next(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(10):
        async with (
            backend.node("a") as a,
            backend.node("b"),
            backend.node("c") as c,
        ):
            await a.append([("b", b"1"), ("b", b"2")])
            await backend.kill("b")
            assert await a.declare_down("b")
            assert not await c.declare_down("b")  # a, alive, takes it over
            first = await a.claim("b", 1)
            await a.ack("b", [e.id for e in first])
            await backend.kill("a")  # a dies before it is done
            assert await c.declare_down("b")  # the lease of a dead node: c takes the rest
            rest = await c.claim("b", 10)
            assert [e.data for e in first + rest] == d("1", "2")
            await c.ack("b", [e.id for e in rest])
            await c.retire("b")
            assert "b" not in await c.members()


async def test_acknowledged_entries_are_deleted_and_an_inbox_goes_with_its_node(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a:
            async with backend.node("b") as b:
                await a.append([("b", b"1"), ("b", b"2")])
                entries = await b.read(10, 0.1)
                assert await backend.inbox_length("b") == 2
                await b.ack("b", [entries[0].id])
                assert await backend.inbox_length("b") == 1  # only what is in flight
                await b.ack("b", [entries[1].id])
                assert await backend.inbox_length("b") == 0
                assert not await a.has_left("b")
                await b.leave()
            assert not await backend.inbox_exists("b")
            assert await a.has_left("b")
            news = Envelope(Kind.CREDIT, "a", 5).encode()  # news for a node that has gone
            message = Envelope(Kind.TELL, "a", 0, 0, "x", None, b"\x01").encode()
            await a.append([("b", news)])
            assert not await backend.inbox_exists("b")  # dropped: no inbox made for it
            await a.append([("b", message)])  # (a message is kept: the node may join again)
            assert await backend.inbox_length("b") == 1


async def test_names_are_held_by_one_node(backend: Backend, clock: trio.abc.Clock) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a, backend.node("b") as b:
            mine = Holder("a", 0, 64).encode()
            assert await a.claim_name("x", mine) is None
            assert await b.claim_name("x", Holder("b", 0, 64).encode()) == mine
            assert await a.claim_name("x", Holder("a", 0, 8).encode()) is None  # its own
            assert Holder.decode(await b.name("x") or b"").capacity == 8
            await b.release_name("x", Holder("b", 0, 64).encode())  # not b's: kept
            assert set(await b.names()) == {"x"}
            await a.claim_name("y", mine)
            await b.forget("a")
            assert await b.names() == {}


async def test_a_broker_outage_is_an_error_and_then_it_answers_again(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(20):
        async with backend.node("a") as a:
            await a.append([("a", b"before")])
            backend.outage()
            with pytest.raises(BrokerUnavailable):
                await a.append([("a", b"lost?")])
            backend.back()
            for _ in range(100):  # the client reconnects on its own
                try:
                    # Redis restarted empty: the node joins again; the in-process one kept it
                    assert await a.beat(TTL) == ("kept" if backend.server is None else "rejoined")
                    break
                except BrokerUnavailable:
                    await trio.sleep(0.05)
            await a.append([("a", b"after")])
            assert b"after" in [e.data for e in await a.read(10, 0.5)]
            assert await a.members() == {"a": True}


async def test_a_node_declared_down_finds_out_at_its_next_beat(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a, backend.node("b") as b:
            assert await b.beat(TTL) == "kept"
            await backend.kill("b")
            assert await a.declare_down("b")
            assert await b.beat(TTL) == "lost"


async def test_a_barrier_lets_every_node_through_together_or_says_one_is_late(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(10):
        async with backend.node("a") as a, backend.node("b") as b:
            passages: dict[str, str] = {}

            async def meet(name: str, transport: Transport, key: str) -> None:
                passages[name] = await transport.barrier(key, 2, 5.0, halt="run")

            async with trio.open_nursery() as nursery:
                nursery.start_soon(meet, "a", a, "t0")
                nursery.start_soon(meet, "b", b, "t0")
            assert passages == {"a": "all", "b": "all"}
            assert await a.barrier("t1", 2, 0.2) == "late"  # b never came


async def test_a_raised_halt_is_the_same_answer_at_a_barrier_for_every_node(
    backend: Backend, clock: trio.abc.Clock
) -> None:
    with trio.fail_after(10):
        async with (
            backend.node("a") as a,
            backend.node("b") as b,
            backend.node("c", join=False) as c,
        ):
            passages: list[str] = []

            async def meet(transport: Transport, key: str, halt: str | None) -> None:
                passages.append(await transport.barrier(key, 2, 5.0, halt=halt))

            await c.raise_halt("run")  # (any client may raise it: the command does)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(meet, a, "t0", "run")
                nursery.start_soon(meet, b, "t0", "run")
            assert passages == ["halt", "halt"]
            passages.clear()
            async with trio.open_nursery() as nursery:  # a barrier that watches another halt
                nursery.start_soon(meet, a, "t1", "other")
                nursery.start_soon(meet, b, "t1", "other")
            assert passages == ["all", "all"]
