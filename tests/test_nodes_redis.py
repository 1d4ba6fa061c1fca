"""Two nodes in one Trio run on a real redis-server (real time: every test is bounded)."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

import spaceactors as sa
from spaceactors.transport import BrokerUnavailable, ClusterSpec, RemoteRef
from tests.conftest import WallClock
from tests.nodes_support import until
from tests.redis_server import RedisServer

HEARTBEAT, TTL = 0.2, 1.0


@attrs.frozen
class RPing:
    n: int


@attrs.frozen
class RUnregistered:
    n: int


sa.default_codec.register(RPing, tag="test_nodes_redis.RPing")


class Echo(sa.Actor):
    def __init__(self, seen: list[int] | None = None) -> None:
        self.seen: list[int] = [] if seen is None else seen

    async def handle(self, message: object) -> object:
        assert isinstance(message, RPing)
        self.seen.append(message.n)
        if message.n < 0:
            raise ValueError("negative")
        return message.n * 2


@asynccontextmanager
async def two_nodes(url: str, **options: object) -> AsyncIterator[tuple[sa.ActorSystem, ...]]:
    spec = ClusterSpec(url, heartbeat=HEARTBEAT, ttl=TTL, **options)  # type: ignore[arg-type]
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="b") as b,
    ):
        yield a, b


async def remote(system: sa.ActorSystem, name: str) -> RemoteRef:
    """The remote ref to `name`, once this node has heard of it."""
    while True:
        ref = system.registry.get(name)
        if isinstance(ref, RemoteRef):
            return ref
        await trio.sleep(0.01)


async def test_send_ask_status_and_stop_across_nodes(wall_clock: WallClock, redis_url: str) -> None:
    with trio.fail_after(10):
        async with two_nodes(redis_url) as (a, b):
            seen: list[int] = []
            await b.spawn(Echo, seen, name="echo")
            ref = await remote(a, "echo")
            assert ref.node == "b"
            assert await ref.ask(RPing(21), timeout=5) == 42
            assert await a.ask("echo", RPing(1), timeout=5) == 2
            for n in range(100, 110):
                await a.send("echo", RPing(n))
            status = await ref.ask(sa.GetStatus(), timeout=5)  # answered by b's node
            assert status.name == "echo"
            assert status.mailbox_size == 64
            assert ref.status() == status  # the last one heard
            await until(lambda: len(seen) >= 12)
            assert seen == [21, 1, *range(100, 110)]  # in order
            with pytest.raises(sa.ActorCrashed, match="negative"):
                await ref.ask(RPing(-1), timeout=5)
            await ref.stop()
            assert b.registry.local("echo") is None
            with pytest.raises(sa.ActorNotFound):
                a.lookup("echo")


async def test_a_name_is_cluster_wide(wall_clock: WallClock, redis_url: str) -> None:
    with trio.fail_after(10):
        async with two_nodes(redis_url) as (a, b):
            await b.spawn(Echo, name="echo")
            with pytest.raises(sa.NameTaken, match="node 'b'"):
                await a.spawn(Echo, name="echo")
            assert a.registry.local("echo") is None
            await (await remote(a, "echo")).stop()
            await a.spawn(Echo, name="echo")  # free again, once the stop returned
            assert isinstance(await remote(b, "echo"), RemoteRef)


async def test_what_cannot_be_encoded_fails_at_the_sender(
    wall_clock: WallClock, redis_url: str
) -> None:
    with trio.fail_after(10):
        async with two_nodes(redis_url) as (a, b):
            await b.spawn(Echo, name="echo")
            ref = await remote(a, "echo")
            assert a.node is not None
            with pytest.raises(sa.EncodeError, match="not registered"):
                await a.send("echo", RUnregistered(1))
            with pytest.raises(sa.EncodeError, match="not registered"):
                await ref.ask(RUnregistered(2), timeout=5)
            assert a.node.sent == 0
            assert a.node._asks == {}
            assert await ref.ask(RPing(1), timeout=5) == 2  # the link is still whole


async def test_a_paused_remote_actor_pushes_back_and_loses_nothing(
    wall_clock: WallClock, redis_url: str
) -> None:
    with trio.fail_after(15):
        async with two_nodes(redis_url, window=4) as (a, b):
            seen: list[int] = []
            echo = await b.spawn(Echo, seen, name="echo", mailbox_size=2)
            await remote(a, "echo")
            echo.pause()
            sent = 0
            with trio.move_on_after(1.0):
                for n in range(200):
                    await a.send("echo", RPing(n))
                    sent += 1
            assert 4 <= sent < 10  # window + mailbox + the reader's one in hand
            echo.resume()
            for n in range(sent, 200):
                await a.send("echo", RPing(n))
            await until(lambda: echo.status().handled >= 200)
            assert seen == list(range(200))


async def test_a_redis_restart_loses_no_message_and_needs_no_operator(
    wall_clock: WallClock, redis_url: str, redis_server: RedisServer
) -> None:
    with trio.fail_after(30):
        async with two_nodes(redis_url) as (a, b):
            seen: list[int] = []
            await b.spawn(Echo, seen, name="echo")
            await remote(a, "echo")
            assert await a.ask("echo", RPing(0), timeout=5) == 0
            redis_server.stop()
            sent: list[int] = []

            async def sender() -> None:
                for n in range(1, 21):
                    try:
                        await a.send("echo", RPing(n))
                    except sa.ActorUnavailable:
                        return  # a clear failure (no silent loss)
                    sent.append(n)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(sender)
                await trio.sleep(1.0)  # the writer retries meanwhile
                redis_server.start()  # empty: the nodes join again, names registered again
            assert a.node is not None
            assert b.node is not None
            assert "a" not in b.node.down
            assert "b" not in a.node.down
            # What the writer held while the server was gone is sent once it is back.
            await until(lambda: len(seen) >= 1 + len(sent))
            assert seen == [0, *sent]
            # The cluster carries on: names again on the server, asks answered both ways.
            transport = b.node.transport
            await until(lambda: transport.name("echo"))
            assert await a.ask("echo", RPing(5), timeout=5) == 10
            await a.spawn(Echo, name="echo-a")
            assert await (await remote(b, "echo-a")).ask(RPing(7), timeout=5) == 14
            with pytest.raises(sa.NameTaken):
                await a.spawn(Echo, name="echo")


async def test_reliable_delivery_across_nodes_survives_a_redis_restart(
    wall_clock: WallClock, redis_url: str, redis_server: RedisServer
) -> None:
    with trio.fail_after(30):
        async with two_nodes(redis_url) as (a, b):
            seen: list[int] = []
            await b.spawn(Echo, seen, name="echo")
            ref = await remote(a, "echo")
            ids = [
                await a.reliable.send(ref, RPing(n), ordered=True, timeout=0.5, max_retries=20)
                for n in range(100)
            ]
            redis_server.stop()  # entries, acknowledgements: some in the writers, some lost
            ids += [
                await a.reliable.send(ref, RPing(n), ordered=True, timeout=0.5, max_retries=20)
                for n in range(100, 150)
            ]
            await trio.sleep(0.5)
            redis_server.start()  # empty: what it held is gone; the retries bring it back
            for message_id in ids:
                await a.reliable.delivered(message_id)
            assert seen == list(range(150))  # each once, in order
            assert a.reliable.stats().failed == 0


async def test_a_password_works_and_is_never_shown(
    wall_clock: WallClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cret-PW"
    server = RedisServer(tmp_path, password=password)
    caplog.set_level(logging.DEBUG)
    try:
        with trio.fail_after(20):
            async with two_nodes(server.url) as (a, b):
                await b.spawn(Echo, name="echo")
                ref = await remote(a, "echo")
                assert await ref.ask(RPing(2), timeout=5) == 4
                assert a.node is not None
                assert password not in repr(a.node)
                assert password not in repr(a.node.transport)
                server.stop()  # an outage: warnings are logged, with the URL
                await trio.sleep(0.5)
                server.start()
                assert await ref.ask(RPing(3), timeout=5) == 6
            # A wrong password: the node cannot join, and open_system says why.
            wrong = server.url.replace(password, "wrong-" + password)
            with pytest.raises(BrokerUnavailable) as refused:
                async with sa.open_system(cluster=ClusterSpec(wrong), node="c"):
                    pytest.fail("the block ran without the node")
            shown = _text(refused.value)
            assert "invalid username-password" in shown
            assert password not in shown
    finally:
        server.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any("cannot" in m and "***@127.0.0.1" in m for m in messages)  # the outage
    for record in caplog.records:
        assert password not in _logged(record)


def _logged(record: logging.LogRecord) -> str:
    """All a log record shows: its message and its exception's traceback."""
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        text += "".join(traceback.format_exception(error)) + _text(error)
    return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _text(error: BaseException) -> str:
    """An exception's message, and those of the exceptions it groups, causes or contexts."""
    parts = [repr(error), str(error)]
    if isinstance(error, BaseExceptionGroup):
        parts += [_text(e) for e in error.exceptions]
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            parts.append(_text(linked))
    return "\n".join(parts)


async def test_a_rediss_url_is_accepted_and_fails_clearly(wall_clock: WallClock) -> None:
    from spaceactors.transport.redis import RedisStreams

    password = "tls-s3cret"
    url = f"rediss://user:{password}@127.0.0.1:{free_port()}/0"
    transport = RedisStreams(url, "a", timeout=1.0)
    assert password not in repr(transport)
    with trio.fail_after(10), pytest.raises(BrokerUnavailable) as raised:
        async with transport:
            await transport.join(1.0)
    message = str(raised.value)
    assert "\n" not in message
    assert password not in _text(raised.value)
    assert "rediss://user:***@127.0.0.1" in message


async def test_a_node_that_left_is_forgotten_and_joins_again_under_its_name(
    wall_clock: WallClock, redis_url: str
) -> None:
    spec = ClusterSpec(redis_url, heartbeat=HEARTBEAT, ttl=TTL)
    with trio.fail_after(10):
        async with sa.open_system(cluster=spec, node="a") as a:
            for round in range(2):  # the second time, b's inbox and its group exist already
                async with sa.open_system(cluster=spec, node="b") as b:
                    await b.spawn(Echo, name="echo")
                    assert await (await remote(a, "echo")).ask(RPing(round), timeout=5) == 2 * round
                    assert b.node is not None
                    assert b.services.child("node").restarts == 0
                # b said its last words as it closed: a forgot its names, asks fail at once
                await until(lambda: a.registry.get("echo") is None)
                with pytest.raises(sa.ActorNotFound):
                    await a.ask("echo", RPing(round), timeout=5)
