"""A node's part in the cluster-wide name directory: registering and releasing the names of
its actors, learning the others', and refs to actors by name (the bodies of `Node`'s methods)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
import trio.testing

from spaceactors.errors import (
    NameTaken,
)
from spaceactors.specs import DEFAULT_MAILBOX_SIZE
from spaceactors.transport.remote import RemoteRef
from spaceactors.transport.wire import (
    Envelope,
    Holder,
    Kind,
)

if TYPE_CHECKING:
    from spaceactors.transport.node import Node


logger = logging.getLogger("spaceactors.transport")


def lookup(node: Node, name: str) -> RemoteRef | None:
    holder = node.directory.get(name)
    if holder is None or holder.node == node.name or holder.node in node.down:
        return None
    key = (holder.node, name)
    ref = node._refs.get(key)
    if ref is None or ref.capacity != holder.capacity:
        ref = node._refs[key] = RemoteRef(node, holder.node, holder.actor_id, name, holder.capacity)
    return ref


def remote(node: Node, name: str, where: str, capacity: int = DEFAULT_MAILBOX_SIZE) -> RemoteRef:
    key = (where, name)
    ref = node._refs.get(key)
    if ref is None:
        ref = node._refs[key] = RemoteRef(node, where, 0, name, capacity)
    return ref


def holds(node: Node, name: str, where: str) -> bool:
    if node.lockstep:  # no directory: reached by node and name
        return where not in node.down
    holder = node.directory.get(name)
    return holder is not None and holder.node == where and where not in node.down


async def reserve(node: Node, name: str, capacity: int) -> None:
    if node.lockstep:
        return  # a sharded run's actors are reached by node and name (`remote`)
    await node._release_now(name)  # released just now: let go of it first, in order
    holder = Holder(node.name, 0, capacity)
    current = await node._retrying(
        "register a name", node.transport.claim_name, name, holder.encode()
    )
    if current is not None:
        other = Holder.decode(current)
        node.directory[name] = other
        raise NameTaken(
            f"the name {name!r} is taken by an actor on node {other.node!r}; "
            "stop it first or choose another name"
        )
    node.directory[name] = holder
    node._announce(name, holder)


async def release(node: Node, name: str) -> None:
    if node._nursery is None:
        return  # the node is not running: it leaves the cluster, names and all
    with trio.move_on_after(node.ttl):
        await node._release_now(name)


async def _release_now(node: Node, name: str) -> None:
    while name in node._releases:
        await node._retrying(
            "release a name", node.transport.release_name, name, _holder(node, name)
        )
        if name in node._releases:  # (not done meanwhile by the other task)
            node._releases.remove(name)
            node._announce(name, None)


def _holder(node: Node, name: str) -> bytes:
    holder = node.directory.get(name)
    return holder.encode() if holder is not None else Holder(node.name, 0, 1).encode()


def released(node: Node, name: str) -> None:
    node.notify()
    holder = node.directory.get(name)
    if holder is None or holder.node != node.name:
        return
    node._releases.append(name)
    node._released.set()


async def _release_names(node: Node) -> None:
    while True:
        if not node._releases:
            node._released = trio.Event()
            await node._released.wait()
            continue  # (released meanwhile by `_release_now`: the list may be empty)
        await node._release_now(node._releases[0])


def _announce(node: Node, name: str, holder: Holder | None) -> None:
    if holder is None:
        current = node.directory.get(name)
        if current is not None and current.node == node.name:
            del node.directory[name]
    payload = b"" if holder is None else holder.encode()
    data = Envelope(
        Kind.NAME, node.name, target_name=name, payload=payload, tick=node.tick
    ).encode()
    for peer, alive in node.members.items():
        if alive and peer != node.name and peer not in node.down:
            node.post(peer, data)


def _name_changed(node: Node, envelope: Envelope) -> None:
    node.notify()
    name = envelope.target_name
    if not envelope.payload:
        current = node.directory.get(name)
        if current is not None and current.node == envelope.source:
            del node.directory[name]
        return
    node.directory[name] = Holder.decode(envelope.payload)  # DecodeError: malformed


def _introduce(node: Node, peer: str) -> None:
    for name, holder in node.directory.items():
        if holder.node == node.name:
            data = Envelope(
                Kind.NAME, node.name, target_name=name, payload=holder.encode(), tick=node.tick
            )
            node.post(peer, data.encode())


async def _rejoined(node: Node) -> None:
    logger.warning("node %r joined again: the broker had lost the cluster's state", node.name)
    for name, holder in list(node.directory.items()):
        if holder.node == node.name and node.system.registry.local(name) is not None:
            current = await node._retrying(
                "register a name", node.transport.claim_name, name, holder.encode()
            )
            if current is not None:
                logger.warning("node %r: %r was taken meanwhile by another node", node.name, name)
