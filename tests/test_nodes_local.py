"""Several nodes in one Trio run, on the in-process broker, in virtual time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.transport import ClusterSpec, LocalBroker, RemoteRef
from tests.nodes_support import killed_at_exit


@attrs.frozen
class Ping:
    n: int


@attrs.frozen
class Unregistered:
    n: int


sa.default_codec.register(Ping, tag="test_nodes_local.Ping")


class Echo(sa.Actor):
    def __init__(self) -> None:
        self.seen: list[int] = []

    async def handle(self, message: object) -> object:
        assert isinstance(message, Ping)
        self.seen.append(message.n)
        if message.n < 0:
            raise ValueError("negative")
        return message.n * 2


@asynccontextmanager
async def two_nodes(**options: object) -> AsyncIterator[tuple[sa.ActorSystem, sa.ActorSystem]]:
    broker = LocalBroker()
    spec = ClusterSpec(broker, **options)  # type: ignore[arg-type]
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="b") as b,
    ):
        await trio.sleep(2)  # a membership round: each knows the other
        yield a, b


async def test_a_remote_actor_answers_send_ask_status_and_stop(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes() as (a, b):
        await b.spawn(Echo, name="echo")
        await trio.sleep(0.1)
        ref = a.lookup("echo")
        assert isinstance(ref, RemoteRef)
        assert ref.node == "b"
        assert await ref.ask(Ping(21), timeout=5) == 42
        assert await a.ask("echo", Ping(1), timeout=5) == 2
        await a.send("echo", Ping(3))
        await trio.sleep(0.1)
        status = await ref.ask(sa.GetStatus(), timeout=5)
        assert status.name == "echo"
        assert status.handled == 3
        assert ref.status() == status  # the last one heard
        with pytest.raises(sa.ActorCrashed, match="negative"):
            await ref.ask(Ping(-1), timeout=5)
        await ref.stop()
        await trio.sleep(0.1)
        with pytest.raises(sa.ActorNotFound):
            a.lookup("echo")


async def test_a_name_is_cluster_wide(virtual_clock: trio.testing.MockClock) -> None:
    async with two_nodes() as (a, b):
        await b.spawn(Echo, name="echo")
        with pytest.raises(sa.NameTaken, match="node 'b'"):
            await a.spawn(Echo, name="echo")
        await b.lookup("echo").stop()
        await a.spawn(Echo, name="echo")  # free again
        await trio.sleep(0.1)
        assert isinstance(b.lookup("echo"), RemoteRef)


async def test_what_cannot_be_encoded_fails_at_the_sender(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes() as (a, b):
        await b.spawn(Echo, name="echo")
        await trio.sleep(0.1)
        with pytest.raises(sa.EncodeError, match="not registered"):
            await a.send("echo", Unregistered(1))
        assert a.node is not None
        assert a.node.sent == 0


async def test_a_slow_remote_mailbox_pushes_back_on_the_sender(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes(window=4) as (a, b):
        echo = await b.spawn(Echo, name="echo", mailbox_size=2)
        echo.pause()
        await trio.sleep(0.1)
        sent = 0
        with trio.move_on_after(5):
            for n in range(100):
                await a.send("echo", Ping(n))
                sent += 1
        assert sent < 10  # window + mailbox + the reader's one in hand
        echo.resume()
        for n in range(sent, 100):
            await a.send("echo", Ping(n))
        await trio.sleep(1)
        assert echo.status().handled == 100


async def test_a_node_that_stops_heartbeating_is_declared_down(
    virtual_clock: trio.testing.MockClock,
) -> None:
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    heard: list[sa.LifecycleEvent] = []
    async with sa.open_system(cluster=spec, node="a", trace=True) as a:
        a.lifecycle.listen(heard.append)
        with trio.CancelScope() as scope:
            async with sa.open_system(cluster=spec, node="b") as b:
                await b.spawn(Echo, name="echo")
                await trio.sleep(2)
                ref = a.lookup("echo")
                broker.sever("b")
                with pytest.raises(sa.ActorUnavailable, match="node 'b'"):
                    await ref.ask(Ping(1), timeout=30)
                scope.cancel()
        assert a.node is not None
        assert "b" in a.node.down
        assert "node_down" in [event for _, event, _ in a.node.events]
        assert a.trace is not None
        downs = [e for e in a.trace.events if e.kind is sa.EventKind.NODE_DOWN]
        assert [e.actor for e in downs] == ["b"]
        assert [(e.kind, e.actor) for e in heard if e.kind == "node_down"] == [("node_down", "b")]


class Listener(sa.Actor):
    def __init__(self) -> None:
        self.heard: list[int] = []

    async def handle(self, message: object) -> object:
        if isinstance(message, Ping):
            self.heard.append(message.n)
        return list(self.heard)  # ("heard?")


async def test_broadcast_and_publish_reach_the_actors_of_every_node(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes() as (a, b):
        here = await a.spawn(Listener, name="here")
        there = await b.spawn(Listener, name="there")
        b.router.subscribe(there, "news.*")
        a.router.subscribe(here, "news.*")
        assert await a.router.publish("news.belt", Ping(1)) == 1  # this node's count
        assert await a.router.broadcast(Ping(2)) == 1
        await trio.sleep(0.5)
        await b.router.publish("news.belt", Ping(3))
        await trio.sleep(0.5)
        assert await there.ask("heard?", timeout=5) == [1, 2, 3]
        assert await here.ask("heard?", timeout=5) == [1, 2, 3]
        with pytest.raises(sa.EncodeError):
            await a.router.publish("news.belt", Unregistered(4))
        await trio.sleep(0.5)
        assert await here.ask("heard?", timeout=5) == [1, 2, 3]  # nothing sent, here or there


class Counter(sa.Actor):
    def __init__(self, start: int = 0) -> None:
        self.seen = start

    async def handle(self, message: object) -> object:
        if isinstance(message, Ping):
            self.seen += 1
        return self.seen


async def test_an_actor_whose_node_dies_starts_again_on_a_live_node_with_its_messages(
    virtual_clock: trio.testing.MockClock,
) -> None:
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="c"),
    ):
        async with killed_at_exit(spec, "b") as b:
            await trio.sleep(2)
            assert a.node is not None
            echo = await a.node.spawn(Counter, 100, name="echo", on="b")
            await a.node.spawn(Counter, name="temp", on="b", restart=sa.Restart.TEMPORARY)
            assert b.lookup("echo").status().restarts == 0  # it runs on b
            assert await echo.ask(Ping(0), timeout=5) == 101
            broker.sever("b")  # b dies: it reads nothing more, and stops heartbeating
            for n in range(5):
                await echo.send(Ping(n))  # into b's inbox, never read there
            await trio.sleep(10)  # b is declared down; echo starts again elsewhere
        assert [(name, dead, where) for _, name, dead, where in a.node.respawned] == [
            ("echo", "b", "c")
        ]
        moved = a.lookup("echo")
        assert isinstance(moved, RemoteRef)
        assert moved.node == "c"
        assert await moved.ask(Ping(99), timeout=5) == 106  # the 5 from b's inbox, and this
        assert await echo.ask(Ping(100), timeout=5) == 107  # the ref by name followed it
        assert echo.node == "c"
        with pytest.raises(sa.ActorNotFound):
            a.lookup("temp")  # temporary: not started again


async def test_spawn_on_another_node_refuses_what_cannot_start_there(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes() as (a, b):
        assert a.node is not None
        with pytest.raises(sa.ActorUnavailable, match="'nowhere' is not a live node"):
            await a.node.spawn(Counter, name="x", on="nowhere")
        with pytest.raises(sa.InvalidSpec, match="Actor subclass"):
            await a.node.spawn(dict, name="x", on="b")  # type: ignore[arg-type]
        await b.spawn(Counter, name="taken")
        await trio.sleep(0.1)
        with pytest.raises(sa.NameTaken):
            await a.node.spawn(Counter, name="taken", on="b")
        with pytest.raises(sa.EncodeError):
            await a.node.spawn(Counter, object(), name="y", on="b")


async def test_a_supervisors_child_on_another_node_is_restarted_when_that_node_dies(
    virtual_clock: trio.testing.MockClock,
) -> None:
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="c"),
    ):
        assert a.node is not None
        async with killed_at_exit(spec, "b"):
            await trio.sleep(2)
            sup = await a.spawn_supervisor("depots", max_restarts=2, within=60)
            await sup.start_child(a.node.child(Counter, 10, name="depot", on="b"))
            temporary = a.node.child(Counter, name="scratch", on="b", restart=sa.Restart.TEMPORARY)
            await sup.start_child(temporary)
            depot = a.lookup("depot")
            assert isinstance(depot, RemoteRef)
            assert depot.node == "b"
            assert await depot.ask(Ping(0), timeout=5) == 11
            broker.sever("b")
            await trio.sleep(10)  # b is declared down; the supervisor hears it
        moved = a.lookup("depot")
        assert isinstance(moved, RemoteRef)
        assert moved.node == "c"  # the live node with the fewest of a's actors
        assert await moved.ask(Ping(0), timeout=5) == 11  # a fresh incarnation (no inbox)
        info = {row.name: row for row in sup.which_children()}
        assert info["depot"].running
        assert "scratch" not in info  # temporary: not restarted, and gone from the tree
        assert a.node.respawned == []  # its supervisor restarted it, not the node
        with pytest.raises(sa.ActorNotFound):
            a.lookup("scratch")
        await sup.terminate_child("depot")  # stopping the child stops the actor there
        await trio.sleep(1)
        with pytest.raises(sa.ActorNotFound):
            a.lookup("depot")


async def test_a_child_on_another_node_that_stops_exits_normally(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes() as (a, b):
        assert a.node is not None
        sup = await a.spawn_supervisor("depots")
        await sup.start_child(
            a.node.child(Counter, name="transient", on="b", restart=sa.Restart.TRANSIENT)
        )
        await sup.start_child(a.node.child(Counter, name="permanent", on="b"))
        await b.registry.resolve("transient").stop()
        await b.registry.resolve("permanent").stop()
        await trio.sleep(3)  # (two heartbeats: b stays, so they stopped)
        info = {row.name: row.running for row in sup.which_children()}
        assert info == {"permanent": True}  # OTP: a transient child's normal exit ends it
        assert sup.which_children()[0].handle.restarts == 1
        assert b.registry.local("permanent") is not None  # started again
        with pytest.raises(sa.StartFailed, match="not a live node"):
            await sup.start_child(a.node.child(Counter, name="x", on="nowhere"))


async def test_a_take_over_left_unfinished_by_a_node_that_died_is_finished_by_another(
    virtual_clock: trio.testing.MockClock,
) -> None:
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    taken_by: list[str] = []
    async with sa.open_system(cluster=spec, node="c") as c:
        assert c.node is not None
        c_declares = c.node.transport.declare_down

        async def after_a(peer: str) -> bool:  # c waits until a has won b's take-over
            return bool(taken_by) and await c_declares(peer)

        c.node.transport.declare_down = after_a  # type: ignore[method-assign]
        with trio.CancelScope() as doomed:
            async with (
                sa.open_system(cluster=spec, node="a") as a,
                sa.open_system(cluster=spec, node="b") as b,
            ):
                assert a.node is not None
                a_declares = a.node.transport.declare_down

                async def and_dies(peer: str) -> bool:  # a wins it, and dies at once
                    won = await a_declares(peer)
                    if won:
                        taken_by.append(peer)
                        broker.sever("a")
                    return won

                a.node.transport.declare_down = and_dies  # type: ignore[method-assign]
                await b.spawn(Echo, name="echo")
                await trio.sleep(2)
                broker.sever("b")  # b dies with messages in its inbox
                for n in range(3):
                    await c.send("echo", Ping(n))
                await trio.sleep(20)
                doomed.cancel()
        assert taken_by == ["b"]
        assert "b" not in broker._members  # taken over by c, then retired
        assert "a" not in broker._members
        letters = [d for d in c.dead_letters.recent() if d.node == "b"]
        assert [d.reason for d in letters] == [sa.DeadLetterReason.NODE_DOWN] * 3
        assert sorted(d.message.n for d in letters) == [0, 1, 2]  # type: ignore[attr-defined]


class Silent(sa.Actor):
    """Never answers in time: its asker waits until something else ends the wait."""

    async def handle(self, message: object) -> object:
        await trio.sleep_forever()


async def test_an_ask_to_a_node_that_leaves_fails_saying_so(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes() as (a, b):
        assert b.node is not None
        await b.spawn(Silent, name="silent")
        await trio.sleep(0.5)
        ref = a.lookup("silent")
        failed: list[BaseException] = []

        async def ask() -> None:
            try:
                await ref.ask(Ping(1))  # no timeout: only b leaving ends it
            except sa.ActorUnavailable as exc:
                failed.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.sleep(1)
            await b.node.transport.leave()  # b leaves the cluster (it answers nothing more)
        assert [str(exc) for exc in failed] == ["node 'b' left the cluster before answering"]
        with pytest.raises(sa.ActorUnavailable, match="node 'b' is down"):
            await ref.send(Ping(2))


async def test_a_node_that_died_and_joins_again_under_its_name_is_reached_again(
    virtual_clock: trio.testing.MockClock,
) -> None:
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    async with sa.open_system(cluster=spec, node="a") as a:
        async with killed_at_exit(spec, "b") as b:
            await b.spawn(Echo, name="echo")
            await trio.sleep(2)
            broker.sever("b")  # b's process dies
            await trio.sleep(10)  # declared down, taken over, retired
        assert a.node is not None
        assert "b" in a.node.down
        async with sa.open_system(cluster=spec, node="b") as b:  # a new process, same name
            await b.spawn(Echo, name="echo")
            await trio.sleep(2)
            assert "b" not in a.node.down
            echo = a.lookup("echo")
            assert isinstance(echo, RemoteRef)
            assert await echo.ask(Ping(4), timeout=5) == 8


async def test_a_child_whose_node_leaves_cleanly_is_started_again_elsewhere(
    virtual_clock: trio.testing.MockClock,
) -> None:
    spec = ClusterSpec(LocalBroker())
    async with (
        sa.open_system(cluster=spec, node="ceres") as ceres,
        sa.open_system(cluster=spec, node="pallas"),
    ):
        assert ceres.node is not None
        async with sa.open_system(cluster=spec, node="vesta"):
            await trio.sleep(2)
            sup = await ceres.spawn_supervisor("beacons", max_restarts=5, within=60)
            for restart in sa.Restart:
                name = f"b-{restart.value}"
                await sup.start_child(
                    ceres.node.child(Counter, name=name, on="vesta", restart=restart)
                )
        await trio.sleep(10)  # vesta has left: the supervisor hears it
        running = {row.name: row.running for row in sup.which_children()}
        assert running == {"b-permanent": True, "b-transient": True}  # temporary: gone
        for name in running:
            moved = ceres.lookup(name)
            assert isinstance(moved, RemoteRef)
            assert moved.node == "pallas"
            assert await moved.ask(Ping(0), timeout=5) == 1


async def test_a_child_on_another_node_that_cannot_start_says_where_and_why(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with two_nodes() as (a, b):
        assert a.node is not None
        sup = await a.spawn_supervisor("depots")
        await b.spawn(Counter, name="taken")
        await trio.sleep(0.5)
        with pytest.raises(sa.NameTaken, match="the name 'taken' is taken"):
            await sup.start_child(a.node.child(Counter, name="taken", on="b"))
        with pytest.raises(
            sa.StartFailed, match="child 'x' could not start on node 'nowhere': node 'nowhere'"
        ):
            await sup.start_child(a.node.child(Counter, name="x", on="nowhere"))
        assert sup.which_children() == []


async def test_a_full_mailbox_holds_back_only_what_its_senders_node_sent(
    virtual_clock: trio.testing.MockClock,
) -> None:
    spec = ClusterSpec(LocalBroker())
    async with (
        sa.open_system(cluster=spec, node="a") as a,
        sa.open_system(cluster=spec, node="b") as b,
        sa.open_system(cluster=spec, node="c") as c,
    ):
        slow = await b.spawn(Echo, name="slow", mailbox_size=2)
        await b.spawn(Echo, name="fast")
        slow.pause()
        await trio.sleep(2)
        with trio.move_on_after(1):  # a fills slow's mailbox, then its window waits
            for n in range(50):
                await a.send("slow", Ping(n))
        assert await c.ask("fast", Ping(4), timeout=5) == 8  # another node: not held back
        status = await c.lookup("slow").ask(sa.GetStatus(), timeout=5)  # nor a status
        assert status.mailbox_depth == 2
        await c.lookup("slow").stop()  # nor a stop: the jam can be cleared from anywhere
        with pytest.raises(sa.ActorNotFound):
            b.registry.resolve("slow")


async def test_the_children_of_a_supervisor_whose_node_dies_stop_with_it(
    virtual_clock: trio.testing.MockClock,
) -> None:
    broker = LocalBroker()
    spec = ClusterSpec(broker)
    async with sa.open_system(cluster=spec, node="b") as b:
        async with killed_at_exit(spec, "a") as a:
            assert a.node is not None
            await trio.sleep(2)
            sup = await a.spawn_supervisor("depots")
            await sup.start_child(a.node.child(Counter, name="linked", on="b"))
            await a.node.spawn(Counter, name="free", on="b")  # (not a child: it stays)
            assert b.registry.local("linked") is not None
            broker.sever("a")  # the supervisor's node dies
            await trio.sleep(10)
        assert b.registry.local("linked") is None  # OTP: linked to its supervisor
        assert b.registry.local("free") is not None
