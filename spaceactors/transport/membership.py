"""A node's heartbeat and its watch on the others: a node that stops heartbeating is declared
down once, and its inbox taken over (the bodies of `Node`'s methods)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

import outcome
import trio
import trio.testing

from spaceactors.errors import (
    ActorUnavailable,
)
from spaceactors.trace_event import EventKind

if TYPE_CHECKING:
    from spaceactors.transport.node import Node

from spaceactors.transport import children, reliably, subscriptions
from spaceactors.transport.base import BATCH, NodeLost

logger = logging.getLogger("spaceactors.transport")


def _saw(node: Node, members: dict[str, bool]) -> None:
    node.members = members
    for peer, alive in members.items():
        if not alive and peer != node.name and peer not in node.down:
            node._node_down(peer)


async def _beat(node: Node) -> None:
    while True:
        await node.transport.pause(node.heartbeat)
        beat = await node._retrying("heartbeat", node.transport.beat, node.ttl)
        if beat == "rejoined":
            await node._rejoined()
        elif beat == "lost":
            raise NodeLost(
                f"node {node.name!r} missed its heartbeat for over {node.ttl} s; the "
                "cluster may have declared it down and taken its inbox over"
            )


async def _monitor(node: Node) -> None:
    while True:
        await node.transport.pause(node.heartbeat)
        members = await node._retrying("read the members", node.transport.members)
        for peer in members:
            if peer not in node.members and peer != node.name:
                node._event("node_up", peer)
                node._introduce(peer)
        node.members = members
        for peer, alive in members.items():
            if alive or peer == node.name:
                continue
            if peer not in node.down:
                node._node_down(peer)
            # Listed until it is retired: if the node taking it over died too, take the rest.
            if await node._retrying("declare a node down", node.transport.declare_down, peer):
                await node._take_over(peer)


def _node_down(node: Node, peer: str) -> None:
    node.down.add(peer)
    node._event("node_down", peer)
    node.link(peer).fail()
    for corr, (request, ref) in list(node._asks.items()):
        if ref.node == peer:
            del node._asks[corr]
            request.resolve(
                outcome.Error(ActorUnavailable(f"node {peer!r} went down before answering"))
            )
    for name, holder in list(node.directory.items()):
        if holder.node == peer:
            del node.directory[name]
    reliably.forget(node, peer)  # the receiver ends of its reliable streams
    subscriptions.node_down(node, peer)
    children.node_down(node, peer)  # its actors of this node: started again elsewhere
    node.notify()


async def _take_over(node: Node, peer: str) -> None:
    await node._retrying("forget a node", node.transport.forget, peer)  # (frees its names)
    # The nodes that had actors there start them again meanwhile (`children`): give them
    # two heartbeats (they see it down within one), then deliver to where they are now.
    await node.transport.pause(2 * node.heartbeat)
    taken = 0
    while True:
        entries = await node._retrying("claim entries", node.transport.claim, peer, BATCH)
        if not entries:
            break
        taken += len(entries)
        await node._handle(entries, claimed_from=peer)
    await node._retrying("retire a node", node.transport.retire, peer)
    logger.warning(
        "node %r declared node %r down and handled its %d unacknowledged entries",
        node.name,
        peer,
        taken,
    )


def _event(node: Node, event: Literal["node_up", "node_down"], peer: str) -> None:
    now = trio.current_time()
    node.events.append((now, event, peer))
    detail = "joined the cluster" if event == "node_up" else "stopped heartbeating: down"
    tap = node.system.tap
    if tap is not None:
        tap.record(EventKind(event), peer, detail=detail)
    lifecycle = node.system.lifecycle
    if lifecycle.listeners:
        lifecycle.emit(event, now, peer, f"node {peer!r} {detail}")
