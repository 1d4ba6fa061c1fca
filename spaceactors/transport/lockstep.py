"""The nodes of a sharded run: a barrier each tick, and the thread that talks to the broker so
that the seeded run never depends on when it answers (the bodies of `Node`'s methods)."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

import trio
import trio.testing

from spaceactors.errors import (
    DecodeError,
)
from spaceactors.transport.wire import (
    decode,
)

if TYPE_CHECKING:
    from spaceactors.transport.node import Node

from spaceactors.transport import inbox, membership
from spaceactors.transport.base import BATCH, NodeLost, Passage

logger = logging.getLogger("spaceactors.transport")


async def _broker(node: Node, ready: threading.Event) -> None:
    token = trio.lowlevel.current_trio_token()
    transport = node.transport

    async def broker() -> None:
        with trio.CancelScope() as scope:
            async with transport:
                node._io, node._io_scope = trio.lowlevel.current_trio_token(), scope
                ready.set()
                while True:
                    await trio.sleep(node.heartbeat)
                    if await transport.beat(node.ttl) == "lost":
                        raise NodeLost(
                            f"node {node.name!r} missed its heartbeat for over {node.ttl} s"
                        )
                    members = await transport.members()
                    dead = {peer for peer, alive in members.items() if not alive}
                    if dead - node.down - {node.name}:
                        # (a node that left is no news: the run is not woken for it)
                        with contextlib.suppress(trio.RunFinishedError):
                            trio.from_thread.run_sync(
                                membership._saw, node, members, trio_token=token
                            )

    try:
        await trio.to_thread.run_sync(trio.run, broker)  # (it ends when told to)
    finally:
        node._io = None


def _stop_broker(node: Node) -> None:
    io, scope = node._io, node._io_scope
    if io is not None and scope is not None:
        with contextlib.suppress(trio.RunFinishedError):
            io.run_sync_soon(scope.cancel)


async def barrier(
    node: Node, key: str, count: int, patience: float, halt: str | None = None
) -> bool:
    if not node.lockstep:
        await _flush_now(node)  # what this node sent before the barrier is on its way
        return await _meet(node, key, count, patience, halt)
    with node._frozen():
        # Every other task waits first, so that no task runs while the broker answers
        # (when it answers would decide which tasks run together, and in what order).
        await trio.testing.wait_all_tasks_blocked()
        while node._outbox:
            batch = node.next_batch()
            await node._retrying("write", node.transport.append, batch)
        acks, node._unacked = node._unacked, []
        await inbox._acknowledge(node, acks)
        halted = await _meet(node, key, count, patience, halt)
        reached, node.tick = node.tick, node.tick + 1
        while True:
            entries = await node._retrying("read", node.transport.read, BATCH, 0.0)
            if not entries:
                break
            for entry in entries:
                try:
                    envelope = decode(entry.data)
                    tick, source = envelope.tick, envelope.source
                except DecodeError:
                    tick, source = 0, ""  # (handed over at once: a dead letter)
                node._held.append((tick, source, next(node._arrivals), entry))
    ready = sorted(held for held in node._held if held[0] <= reached)
    node._held = [held for held in node._held if held[0] > reached]
    await inbox._handle(node, [entry for *_, entry in ready])
    return halted


async def _meet(node: Node, key: str, count: int, patience: float, halt: str | None) -> bool:
    barrier = node.transport.barrier
    passage: Passage = await node._retrying(
        "wait at a barrier", barrier, key, count, patience, halt
    )
    if passage == "late":
        raise TimeoutError(
            f"node {node.name!r}: not every one of {count} nodes reached {key!r} within "
            f"{patience:g} s (one may have died: see its output)"
        )
    return passage == "halt"


async def _flush_now(node: Node) -> None:
    while node._outbox or node._writing:
        node._posted.set()
        await node._written.park()
