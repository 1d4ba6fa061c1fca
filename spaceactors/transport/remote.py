"""Refs to actors on other nodes: the same `ActorRef`, with a stream for a mailbox.

A `RemoteRef` is an `ActorRef` whose mailbox is the stream to the node the actor lives on:
``send`` waits while the sender's credit window towards that node is spent (backpressure across
nodes), ``try_send`` raises `MailboxFull` then, ``ask`` covers the whole round trip with its
timeout. Messages are encoded at the sender, so one that cannot be encoded fails there with
`EncodeError`, and nothing is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from spaceactors.control import ActorState, ActorStatus, GetStatus
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.errors import ActorUnavailable, EncodeError
from spaceactors.ref import ActorRef, Ask

if TYPE_CHECKING:
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
        `EncodeError` (nothing sent)."""
        self._link.send_nowait(self._ref, message)

    async def send(self, message: object) -> None:
        await self._link.send(self._ref, message)

    def close(self) -> None:
        """Nothing to close on this side: the actor's own node owns its mailbox."""


class RemoteCell:
    """What a ref asks of its cell, answered for an actor on another node."""

    __slots__ = ("_node", "_ref", "last_status")

    def __init__(self, node: Node, ref: RemoteRef) -> None:
        self._node = node
        self._ref = ref
        self.last_status: ActorStatus | None = None

    @property
    def alive(self) -> bool:
        ref = self._ref
        return self._node.holds(ref.name, ref.node)

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

    _receiver = None  # (no reliable streams end here: `receiver` says why)

    @property
    def receiver(self) -> object:
        """What reliable delivery asks of an actor's cell: refused for a remote actor."""
        raise reliable_refused(self._ref)

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


def reliable_refused(ref: RemoteRef) -> EncodeError:
    """The error for reliable delivery to an actor on another node (not there yet)."""
    return EncodeError(
        f"reliable delivery reaches the actors of this node only, and {ref.name!r} is on "
        f"node {ref.node!r}: send to it with send() or ask() (docs/nodes.md)"
    )
