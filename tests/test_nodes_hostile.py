"""Hostile entries in a node's inbox (random bytes, random msgpack, envelopes of another
version, valid envelopes with a garbage payload) between real messages: the node carries on,
each hostile entry becomes one MALFORMED_ENTRY dead letter and is acknowledged, and every real
message still arrives, in order, asks answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import coredis
import trio
import trio.testing
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.errors import DecodeError
from spaceactors.topics import TopicTable
from spaceactors.transport import ClusterSpec, LocalBroker, RemoteRef, reliably, subscriptions
from spaceactors.transport.wire import (
    WIRE,
    Envelope,
    Holder,
    Kind,
    decode,
    packb,
    unpack_error,
    unpack_reply,
)
from tests.conftest import WallClock
from tests.nodes_support import until


@attrs.frozen
class Item:
    n: int


sa.default_codec.register(Item, tag="test_nodes_hostile.Item")


class Sink(sa.Actor):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    async def handle(self, message: object) -> object:
        assert isinstance(message, Item), message
        self.seen.append(message.n)
        return message.n


plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)
values = st.recursive(
    plain,
    lambda inner: st.lists(inner, max_size=9) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
garbage = st.binary(max_size=40)


def _valid_header(kind: int, payload: bytes) -> bytes:
    return Envelope(Kind(kind), "intruder", 7, 0, "sink", None, payload).encode()


hostile = st.one_of(
    st.binary(max_size=64),
    values.map(lambda v: packb(v, strict=False)),
    st.builds(  # another envelope version, otherwise well formed
        lambda version, kind: packb([version, kind, "a", 0, 0, "sink", None, b""]),
        values.filter(lambda v: v != WIRE or type(v) is not int),
        st.sampled_from([int(k) for k in Kind]),
    ),
    st.builds(  # this version, a valid header, a payload that is no message
        _valid_header,
        st.sampled_from(
            [
                int(kind)
                for kind in (
                    Kind.TELL,
                    Kind.ASK,
                    Kind.NAME,
                    Kind.RELIABLE,
                    Kind.ACK,
                    Kind.SKIP,
                    Kind.SUBSCRIBE,
                )
            ]
        ),
        garbage | values.map(lambda v: packb(v, strict=False)),
    ),
)

steps = st.lists(
    st.one_of(
        st.tuples(st.just("tell")), st.tuples(st.just("ask")), st.tuples(st.just("x"), hostile)
    ),
    min_size=1,
    max_size=30,
)


@asynccontextmanager
async def two_nodes(broker: LocalBroker) -> AsyncIterator[tuple[sa.ActorSystem, sa.ActorSystem]]:
    spec = ClusterSpec(broker, heartbeat=0.2, ttl=1.0, window=8)
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="b") as b,
    ):
        yield a, b


class Stub:
    """Enough of a node for `subscriptions.heard` to check an entry."""

    def __init__(self) -> None:
        self.topics = TopicTable()

    def remote(self, name: str, where: str) -> object:
        return (name, where)


def is_hostile(data: bytes) -> bool:
    """Whether the node must refuse `data` (random input may, rarely, be a valid entry)."""
    try:
        envelope = decode(data)
        if envelope.kind is Kind.NAME:
            if envelope.payload:
                Holder.decode(envelope.payload)
        elif envelope.kind is Kind.REPLY:
            unpack_reply(sa.default_codec, envelope.payload)
        elif envelope.kind is Kind.FAIL:
            unpack_error(envelope.payload)
        elif envelope.kind in (Kind.TELL, Kind.ASK):
            sa.default_codec.decode(envelope.payload, "msgpack")
        elif envelope.kind is Kind.RELIABLE:
            fields = reliably._fields(envelope, "", int, int, bool, int, int, bytes)
            sa.default_codec.decode(fields[-1], "msgpack")
        elif envelope.kind is Kind.ACK:
            reliably._fields(envelope, "", int, int, list, list)
            return False  # (for a stream nobody has: ignored, as a late acknowledgement)
        elif envelope.kind is Kind.SKIP:
            reliably._fields(envelope, "", int, int, bool)
        elif envelope.kind is Kind.SUBSCRIBE:
            subscriptions.heard(Stub(), envelope)  # type: ignore[arg-type]
    except DecodeError:
        return True
    return False


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
async def test_hostile_entries_are_dead_letters_and_real_messages_still_arrive(
    virtual_clock: trio.testing.MockClock, steps: list[tuple[Any, ...]]
) -> None:
    hostile_entries = [step[1] for step in steps if step[0] == "x"]
    assume(all(is_hostile(data) for data in hostile_entries))
    broker = LocalBroker()
    intruder = broker.connect("intruder")
    seen: list[int] = []
    with trio.fail_after(120):
        async with two_nodes(broker) as (a, b):
            await b.spawn(Sink, seen, name="sink")
            await until(lambda: isinstance(a.registry.get("sink"), RemoteRef), 0.1)
            sent: list[int] = []
            answers: dict[int, object] = {}
            for n, step in enumerate(steps):
                if step[0] == "tell":
                    await a.send("sink", Item(n))
                    sent.append(n)
                elif step[0] == "ask":
                    answers[n] = await a.ask("sink", Item(n), timeout=10)
                    sent.append(n)
                else:
                    await intruder.append([("b", step[1])])
                    await trio.lowlevel.checkpoint()
            await trio.sleep(1)
            assert b.node is not None
            assert b.services.child("node").restarts == 0, "node b's service crashed"
            assert seen == sent
            assert answers == {n: n for n in answers}
            letters = b.dead_letters.recent()
            assert [letter.reason for letter in letters] == [
                sa.DeadLetterReason.MALFORMED_ENTRY
            ] * len(hostile_entries)
            assert b.node.malformed == len(hostile_entries)
            inbox = broker.stream("b")
            assert inbox.entries == {}, "an entry was left pending"
            assert inbox.unread == []


# --- the same on a real redis-server, entries written with XADD directly ----------------------


async def test_hostile_entries_written_to_redis_directly(
    wall_clock: WallClock, redis_url: str
) -> None:
    spec = ClusterSpec(redis_url, heartbeat=0.2, ttl=1.0, window=8)
    seen: list[int] = []
    inbox = "spaceactors:inbox:b"
    hostile_fields: list[dict[str, bytes]] = [
        {"e": b"\xc1"},  # never used in msgpack
        {"e": b""},
        {"e": packb({"kind": 1})},
        {"e": packb([2, 0, "a", 0, 0, "sink", None, b""])},  # another version
        {"e": _valid_header(int(Kind.TELL), b"\x93\x01\x02")},  # garbage payload
        {"e": _valid_header(int(Kind.ASK), b"not msgpack")},
        {"e": _valid_header(int(Kind.NAME), b"\xa3abc")},
        {"other": b"x"},  # the field is missing
        {"e": Envelope(Kind.TELL, "a", 0, 0, "sink", None, b"\x00").encode(), "more": b"y"},
        {"e": bytes(range(256)) * 4},
    ]
    with trio.fail_after(15):
        async with two_nodes_redis(spec) as (a, b), coredis.Redis.from_url(redis_url) as client:
            await b.spawn(Sink, seen, name="sink")
            await until(lambda: isinstance(a.registry.get("sink"), RemoteRef))
            for n, fields in enumerate(hostile_fields):
                await client.xadd(inbox, fields)  # type: ignore[arg-type,unused-ignore]
                await a.send("sink", Item(n))
                assert await a.ask("sink", Item(1000 + n), timeout=5) == 1000 + n
            await until(lambda: len(seen) >= 2 * len(hostile_fields))
            assert seen == [m for n in range(len(hostile_fields)) for m in (n, 1000 + n)]
            node = b.node
            assert node is not None
            await until(lambda: node.malformed >= len(hostile_fields))
            await trio.sleep(0.3)
            assert node.malformed == len(hostile_fields)
            reasons = {letter.reason for letter in b.dead_letters.recent()}
            assert reasons == {sa.DeadLetterReason.MALFORMED_ENTRY}
            assert b.services.child("node").restarts == 0
            summary = await client.xpending(inbox, "nodes")
            assert summary.pending == 0, "an entry was left unacknowledged"  # type: ignore[union-attr]


@asynccontextmanager
async def two_nodes_redis(
    spec: ClusterSpec,
) -> AsyncIterator[tuple[sa.ActorSystem, sa.ActorSystem]]:
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="b") as b,
    ):
        yield a, b
