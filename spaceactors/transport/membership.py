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

from spaceactors.transport import children, inbox, names, reliably, subscriptions
from spaceactors.transport.base import BATCH, NodeLost

logger = logging.getLogger("spaceactors.transport")


def _saw(node: Node, members: dict[str, bool]) -> None:
    node.members = members
    for peer, alive in members.items():
        if not alive and peer != node.name and peer not in node.down:
            _node_down(node, peer)


async def _beat(node: Node) -> None:
    while True:
        await node.transport.pause(node.heartbeat)
        beat = await node._retrying("heartbeat", node.transport.beat, node.ttl)
        if beat == "rejoined":
            await names._rejoined(node)
        elif beat == "lost":
            raise NodeLost(
                f"node {node.name!r} missed its heartbeat for over {node.ttl} s; the "
                "cluster may have declared it down and taken its inbox over"
            )


async def _monitor(node: Node) -> None:
    while True:
        await node.transport.pause(node.heartbeat)
        members = await node._retrying("read the members", node.transport.members)
        for peer, alive in members.items():
            if peer == node.name:
                continue
            if peer not in node.members or (alive and peer in node.down):
                if peer in node.down:
                    _came_back(node, peer)
                _event(node, "node_up", peer)
                names._introduce(node, peer)
                subscriptions.introduce(node, peer)
        for peer, was in node.members.items():
            if peer in members or peer == node.name or peer in node.down:
                continue
            # Gone from the members: it left, or the broker restarted empty (it joins again).
            if await node._retrying("ask if a node left", node.transport.has_left, peer):
                _node_down(node, peer, left=True)
            else:
                members = {**members, peer: was}  # (kept as it was until it joins again)
        node.members = members
        for peer, alive in members.items():
            if alive or peer == node.name:
                continue
            if peer not in node.down:
                _node_down(node, peer)
            # Listed until it is retired: if the node taking it over died too, take the rest.
            if await node._retrying("declare a node down", node.transport.declare_down, peer):
                await _take_over(node, peer)


def _node_down(node: Node, peer: str, *, left: bool = False) -> None:
    node.down.add(peer)
    _event(node, "node_down", peer, "left the cluster" if left else "stopped heartbeating: down")
    node.link(peer).fail()
    gone = "left the cluster" if left else "went down"
    for corr, (request, ref) in list(node._asks.items()):
        if ref.node == peer:
            del node._asks[corr]
            request.resolve(
                outcome.Error(ActorUnavailable(f"node {peer!r} {gone} before answering"))
            )
    for name, holder in list(node.directory.items()):
        if holder.node == peer:
            del node.directory[name]
    reliably.forget(node, peer)  # the receiver ends of its reliable streams
    subscriptions.node_down(node, peer)
    children.node_down(node, peer)  # its actors of this node: started again elsewhere
    children.unlink(node, peer)  # the children here of its supervisors: stopped
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
        await inbox._handle(node, entries, claimed_from=peer)
    await node._retrying("retire a node", node.transport.retire, peer)
    logger.warning(
        "node %r declared node %r down and handled its %d unacknowledged entries",
        node.name,
        peer,
        taken,
    )


def _came_back(node: Node, peer: str) -> None:
    """`peer`, down or gone, joined again (a new process under its name): reachable again,
    through a new link (refs made before stay failed: look the actors up again)."""
    node.down.discard(peer)
    node._links.pop(peer, None)
    for key in [key for key in node._refs if key[0] == peer]:
        del node._refs[key]


def _event(node: Node, event: Literal["node_up", "node_down"], peer: str, detail: str = "") -> None:
    now = trio.current_time()
    node.events.append((now, event, peer))
    detail = detail or ("joined the cluster" if event == "node_up" else "stopped heartbeating")
    tap = node.system.tap
    if tap is not None:
        tap.record(EventKind(event), peer, detail=detail)
    lifecycle = node.system.lifecycle
    if lifecycle.listeners:
        lifecycle.emit(event, now, peer, f"node {peer!r} {detail}")
