"""Refs to actors on other nodes: the same `ActorRef`, with a stream for a mailbox.

A `RemoteRef` is an `ActorRef` whose mailbox is the stream to the node the actor lives on:
``send`` waits while the sender's credit window towards that node is spent (backpressure across
nodes), ``try_send`` raises `MailboxFull` then, ``ask`` covers the whole round trip with its
timeout. Messages are encoded at the sender, so one that cannot be encoded fails there with
`EncodeError`, and nothing is sent. Reliable delivery to a remote ref keeps the sender ends of
its streams here (`RemoteReceiver`) and the receiver ends on the actor's node
(`spaceactors.transport.reliably`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import trio

from spaceactors.control import ActorState, ActorStatus, GetStatus
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.errors import ActorUnavailable, MailboxFull
from spaceactors.receiver import Reliably
from spaceactors.ref import ActorRef, Ask
from spaceactors.transport import reliably

if TYPE_CHECKING:
    from spaceactors.receiver import Stream
    from spaceactors.transport.link import Link
    from spaceactors.transport.node import Node


class RemoteMailbox:
    """The sending half of a remote actor's mailbox: the credit window of the link to its
    node. Looks like a ``trio.MemorySendChannel`` to the router's fast path."""

    __slots__ = ("_link", "_ref")

    def __init__(self, link: Link, ref: RemoteRef) -> None:
        self._link = link
        self._ref = ref

    def send_nowait(self, message: object) -> None:
        """Raises ``trio.WouldBlock`` (no credit), ``trio.BrokenResourceError`` (node down),
        `EncodeError` (nothing sent).

        If the actor's node is down and its name is held elsewhere now, the ref follows it
        there (`RemoteRef.follow`)."""
        if self._link.down and self._ref.follow():
            self._ref._send.send_nowait(message)
            return
        self._link.send_nowait(self._ref, message)

    async def send(self, message: object) -> None:
        if self._link.down and self._ref.follow():
            await self._ref._send.send(message)
            return
        await self._link.send(self._ref, message)

    def close(self) -> None:
        """Nothing to close on this side: the actor's own node owns its mailbox."""


class RemoteCell:
    """What a ref asks of its cell, answered for an actor on another node."""

    __slots__ = ("_node", "_receiver", "_ref", "last_status")

    def __init__(self, node: Node, ref: RemoteRef) -> None:
        self._node = node
        self._ref = ref
        self.last_status: ActorStatus | None = None
        self._receiver: RemoteReceiver | None = None

    @property
    def alive(self) -> bool:
        ref = self._ref
        return self._node.holds(ref.name, ref.node) or ref.follow()

    def unavailable(self, message: object, sender: ActorRef | None = None) -> ActorUnavailable:
        """Record `message` as a dead letter (its node is down, or the actor gone)."""
        ref = self._ref
        gone = self._node.why_unavailable(ref)
        payload = message.message if isinstance(message, Ask) else message
        self._node.system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                ref.name,
                payload,
                DeadLetterReason.ACTOR_STOPPED,
                gone,
                sender=None if sender is None else sender.name,
                node=ref.node,
            )
        )
        return ActorUnavailable(
            f"actor {ref.name!r} on node {ref.node!r}: {gone}; "
            f"{type(payload).__name__} recorded as a dead letter"
        )

    @property
    def receiver(self) -> RemoteReceiver:
        """The sender ends of the reliable streams from this node to the actor."""
        if self._receiver is None:
            self._receiver = RemoteReceiver(self._node)
        return self._receiver

    def status(self) -> ActorStatus:
        if self.last_status is not None:
            return self.last_status
        ref = self._ref
        state = ActorState.RUNNING if self.alive else ActorState.STOPPED
        return ActorStatus(ref.id or 1, ref.name, state, 0, ref.capacity, 0, 0, None)

    def control(self, message: object) -> None:
        self._node.control(self._ref, message)

    async def stop(self) -> None:
        await self._node.stop_remote(self._ref)


class RemoteRef(ActorRef):
    """A ref to the actor `name` on node `node`: `send`, `try_send`, `ask`, `status`, `stop`
    as for a local actor (see the module docstring).

    `status()` answers without a round trip, from what this node last heard (a fresh one:
    ``await ref.ask(sa.GetStatus())``); `mailbox_depth` is the last status's.
    """

    __slots__ = ("_link_node", "node")

    def __init__(self, node: Node, where: str, actor_id: int, name: str, capacity: int) -> None:
        self.node = where
        self._link_node = node
        super().__init__(actor_id, name, capacity, RemoteCell(node, self))  # type: ignore[arg-type]

    def _open_mailbox(self) -> None:
        node: Node = self._link_node
        self._send = RemoteMailbox(node.link(self.node), self)  # type: ignore[assignment]

    def follow(self) -> bool:
        """If this ref's node is down and its actor's name is held on a live node now (it
        was started again there), point this ref there; whether it did. So a ref by name
        stays valid when its actor moves (`Node.spawn`, `Node.child`)."""
        node: Node = self._link_node
        if self.node not in node.down:
            return False
        holder = node.directory.get(self.name)
        if holder is None or holder.node in node.down:
            return False
        self.node = holder.node  # (its own node: through its own inbox, as from another)
        self.capacity = holder.capacity
        self._open_mailbox()
        return True

    def __repr__(self) -> str:
        return f"<RemoteRef {self.name!r} on {self.node!r}>"

    @property
    def mailbox_depth(self) -> int:
        return self.status().mailbox_depth

    @property
    def mailbox_high_water(self) -> int:
        return self.status().mailbox_depth

    async def ask(self, message: object, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if type(message) is GetStatus:  # answered by the actor's node, not from here
            message = _StatusRequest(message)
        return await super().ask(message, timeout)


class _StatusRequest:
    """A `GetStatus` that must cross to the actor's node (a local one is answered at once)."""

    __slots__ = ("request",)

    def __init__(self, request: GetStatus) -> None:
        self.request = request


class RemoteReceiver:
    """What reliable delivery asks of a receiver, answered for an actor on another node: the
    sender ends of the streams from this node to it (the receiver ends are on its node:
    `spaceactors.transport.reliably`)."""

    __slots__ = ("_node", "busy", "handling", "streams", "touched")

    def __init__(self, node: Node) -> None:
        self._node = node
        self.streams: dict[tuple[object, bool], Stream] = {}
        self.handling = None  # (never: it is handled on its own node)
        self.touched: list[Stream] = []  # (never: acknowledgements come over the wire)
        self.busy: set[int] = set()  # ids its node said it is handling or holding for order

    def flush(self) -> None:
        """Nothing to acknowledge here: the actor's node acknowledges over the wire."""

    def in_hand(self, envelope: Reliably) -> bool:
        """Whether the actor's node said, since the last retry, that it has `envelope` in hand
        (handling it, or holding it for order): then a retry falling due is no lost attempt,
        and a copy goes out uncounted, as a probe (if the actor crashed meanwhile, the copy
        reaches its next incarnation; if not, its node says again that it is in hand)."""
        if envelope.message_id not in self.busy:
            return False
        self.busy.discard(envelope.message_id)
        with contextlib.suppress(MailboxFull, ActorUnavailable):
            envelope.stream.ref.try_send(envelope)
        return True

    def skip(self, stream: Stream, seq: int) -> Reliably | None:
        """The sender gave up on `seq`: tell the actor's node (nothing is held here)."""
        reliably.skip(self._node, stream, seq)
        return None

    def close(self) -> None:
        """Nothing to let go of here."""
