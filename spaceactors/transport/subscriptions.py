"""Who subscribes to what on the other nodes: the subscribers a reliable publish reaches there.

A plain publish needs no such knowledge: it is relayed to every node, which hands it to its
own subscribers (`spaceactors.transport.inbox`). A reliable publish gives each subscriber a
stream of its own, numbered and acknowledged from the publishing node, so that node must
know them: each node tells the others of its actors' subscriptions as they change
(``SUBSCRIBE`` entries: ``[topic, subscribed]``; an empty topic: the actor has stopped and
has none left), tells a node that joins all of them, and forgets a node's when it goes down.
A node of a sharded run tells nothing (its groups of sectors are independent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgpack

from spaceactors.checks import short_repr
from spaceactors.errors import DecodeError, InvalidTopic
from spaceactors.topics import Delivery
from spaceactors.transport.wire import Envelope, Kind, packb

if TYPE_CHECKING:
    from spaceactors.ref import ActorRef
    from spaceactors.transport.node import Node
    from spaceactors.transport.remote import RemoteRef


def changed(node: Node, ref: ActorRef, topic: str, subscribed: bool) -> None:
    """This node's actor `ref` subscribed to `topic`, or unsubscribed (`topic` ""): every
    subscription, as it stopped): tell the other live nodes."""
    if node.lockstep:
        return
    data = _entry(node, ref.name, topic, subscribed)
    for peer, alive in node.members.items():
        if alive and peer != node.name and peer not in node.down:
            node.post(peer, data)


def introduce(node: Node, peer: str) -> None:
    """Tell `peer`, which has just joined, every subscription of this node's actors."""
    if node.lockstep:
        return
    for ref, topics in node.system.router.state.topics.by_actor().items():
        for topic in sorted(topics):
            node.post(peer, _entry(node, ref.name, topic, True))


def heard(node: Node, envelope: Envelope) -> None:
    """A ``SUBSCRIBE`` entry from another node.

    Raises:
        DecodeError: not a subscription change (or a malformed topic).
    """
    try:
        value = msgpack.unpackb(envelope.payload, raw=False)
    except Exception as exc:  # msgpack raises several kinds for bad bytes
        raise DecodeError(f"a subscription change is not msgpack: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or type(value[0]) is not str
        or type(value[1]) is not bool
        or not envelope.target_name
    ):
        raise DecodeError(f"a subscription change must be [topic, bool], got {short_repr(value)}")
    topic, subscribed = value
    ref = node.remote(envelope.target_name, envelope.source)
    try:
        if not topic:
            node.topics.forget(ref)
        elif subscribed:
            node.topics.subscribe(ref, topic, Delivery.BLOCK)
        else:
            node.topics.unsubscribe(ref, topic)
    except InvalidTopic as exc:
        raise DecodeError(f"a subscription change names a bad topic: {exc}") from None


def node_down(node: Node, peer: str) -> None:
    """`peer` went down: its actors' subscriptions go with it."""
    for ref in list(node.topics.by_actor()):
        remote: RemoteRef = ref  # type: ignore[assignment]
        if remote.node == peer:
            node.topics.forget(ref)


def subscribers(node: Node, topic: str) -> list[ActorRef]:
    """The actors of other live nodes subscribed to `topic` (wildcards included)."""
    return [ref for ref in node.topics.match(topic) if ref._cell.alive]


def _entry(node: Node, name: str, topic: str, subscribed: bool) -> bytes:
    payload = packb([topic, subscribed])
    return Envelope(Kind.SUBSCRIBE, node.name, target_name=name, payload=payload).encode()
