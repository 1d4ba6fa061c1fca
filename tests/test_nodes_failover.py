"""A node in another process dies (SIGKILL): the cluster declares it down and takes its inbox
over, on a real redis-server (real time: bounded)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import attrs
import coredis
import pytest
import trio

import spaceactors as sa
from spaceactors.transport import ClusterSpec, RemoteRef
from tests.conftest import WallClock
from tests.nodes_support import until

HEARTBEAT, TTL = 0.2, 1.0

# The victim: a node whose actor takes ten seconds per message, with a mailbox of two, so
# that what is sent to it piles up in its inbox, read and unacknowledged or never read.
VICTIM = textwrap.dedent(
    """
    import sys
    import attrs, trio
    import spaceactors as sa
    from spaceactors.transport import ClusterSpec

    @attrs.frozen
    class Work:
        n: int

    sa.default_codec.register(Work, tag="test_nodes_failover.Work")

    class Slow(sa.Actor):
        async def handle(self, message: object) -> object:
            await trio.sleep(10)
            return None

    async def main(url: str) -> None:
        spec = ClusterSpec(url, heartbeat=0.2, ttl=1.0, window=32)
        async with sa.open_system(cluster=spec, node="victim") as system:
            await system.spawn(Slow, name="victim-echo", mailbox_size=2)
            await trio.sleep_forever()

    trio.run(main, sys.argv[1])
    """
)


@attrs.frozen
class Work:
    n: int


sa.default_codec.register(Work, tag="test_nodes_failover.Work")


async def pending_of(url: str, node: str) -> int:
    """How many entries of `node`'s inbox are read and unacknowledged."""
    async with coredis.Redis.from_url(url) as client:
        inbox = f"spaceactors:inbox:{node}"
        if not await client.exists([inbox]):
            return 0  # (taken over: the node was retired, its inbox deleted)
        summary = await client.xpending(inbox, "nodes")
        return int(summary.pending)  # type: ignore[union-attr]


async def _none_pending(url: str, node: str) -> bool:
    return await pending_of(url, node) == 0


async def test_a_killed_node_is_declared_down_and_its_inbox_taken_over(
    wall_clock: WallClock, redis_url: str
) -> None:
    spec = ClusterSpec(redis_url, heartbeat=HEARTBEAT, ttl=TTL, window=32)
    victim = subprocess.Popen([sys.executable, "-c", VICTIM, redis_url])  # noqa: ASYNC220
    try:
        with trio.fail_after(30):
            async with sa.open_system(cluster=spec, node="main") as system:
                node = system.node
                assert node is not None
                while not isinstance(ref := system.registry.get("victim-echo"), RemoteRef):
                    assert victim.poll() is None, "the victim process ended early"
                    await trio.sleep(0.05)
                assert ref.node == "victim"
                for n in range(10):
                    await ref.send(Work(n))
                failed: list[BaseException] = []

                async def ask(n: int) -> None:
                    try:
                        await ref.ask(Work(n))  # no timeout: only the node going down ends it
                    except sa.ActorUnavailable as exc:
                        failed.append(exc)

                async with trio.open_nursery() as nursery:
                    for n in (100, 101):
                        nursery.start_soon(ask, n)

                    # Alive, however slow: nothing is taken from it, whatever the wait.
                    await trio.sleep(3 * TTL)
                    assert "victim" not in node.down
                    assert node.members.get("victim") is True
                    assert system.dead_letters.by_reason[sa.DeadLetterReason.NODE_DOWN] == 0
                    assert await pending_of(redis_url, "victim") > 0
                    assert len(node._asks) == 2

                    victim.send_signal(signal.SIGKILL)
                    victim.wait(timeout=10)
                    killed = trio.current_time()
                    await until(lambda: "victim" in node.down)
                    assert trio.current_time() - killed < TTL + 3 * HEARTBEAT + 1.0
                # the asks were failed at once, saying which node went down
                assert len(failed) == 2
                assert all("node 'victim'" in str(exc) for exc in failed)
                assert node._asks == {}
                assert ("node_down", "victim") in [(e, n) for _, e, n in node.events]
                with trio.fail_after(5):
                    await until(lambda: "victim" not in node.members)
                    await until(lambda: _none_pending(redis_url, "victim"))
                letters = [
                    letter
                    for letter in system.dead_letters.recent()
                    if letter.reason is sa.DeadLetterReason.NODE_DOWN
                ]
                assert all(letter.node == "victim" for letter in letters)
                assert all(letter.target == "victim-echo" for letter in letters)
                numbers = [letter.message.n for letter in letters]  # type: ignore[attr-defined]
                assert len(numbers) == len(set(numbers)), "an entry was taken over twice"
                # The actor had one message in hand and two in its mailbox (acknowledged:
                # lost with the process); every later one was still in the inbox.
                assert {3, 4, 5, 6, 7, 8, 9, 100, 101} <= set(numbers) <= {*range(10), 100, 101}
                assert "victim-echo" not in node.directory
                assert system.registry.get("victim-echo") is None
                with pytest.raises(sa.ActorUnavailable, match="node 'victim' is down"):
                    await ref.send(Work(99))
    finally:
        if victim.poll() is None:
            victim.kill()
        victim.wait(timeout=10)
