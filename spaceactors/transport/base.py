"""The transport interface: what a node needs from a broker, whichever it is.

A node owns one inbox (a stream with a consumer group, as in Redis Streams), appends to other
nodes' inboxes, reads its own, acknowledges what it handled, and claims a dead node's
unacknowledged entries. Beside the streams, a broker keeps membership (a heartbeat key with a
time to live per node) and the cluster-wide name directory. Two backends implement it behind
the same conformance tests (tests/test_transport_conformance.py): `LocalBroker` (in process)
and `RedisStreams` (Redis or Valkey through coredis).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from typing import Literal

import attrs
import trio

from spaceactors.errors import SpaceActorsError

Beat = Literal["kept", "rejoined", "lost"]
Passage = Literal["all", "halt", "late"]
"""How a barrier ended: every node came; every node came and the halt it watches had been
raised by then (the same answer for each of them); not every node came in time."""
"""What a heartbeat found (`Transport.beat`)."""


BATCH = 1024
"""The most entries one ``append`` (one round trip) or one ``read`` carries."""
POLL = 0.002
"""Real seconds between two reads of the inbox in a virtual-time run (reads never block it)."""


class NodeLost(Exception):
    """This node's heartbeat expired: the cluster may have declared it down."""


class BrokerUnavailable(SpaceActorsError):
    """The broker cannot be reached (or answered with an error); the call may be retried."""


class NodeNameTaken(SpaceActorsError, ValueError):
    """A node of this name is alive in the cluster already."""


@attrs.frozen
class Entry:
    """One entry read from a stream.

    Attributes:
        id: the broker's entry id (Redis Streams: ``"<ms>-<seq>"``).
        data: the entry's bytes (one envelope: `spaceactors.transport.wire`).
        node: the node whose inbox holds it (another node's, for a claimed entry).
    """

    id: str
    data: bytes
    node: str


class Transport(abc.ABC):
    """One node's connection to the broker. Use it as ``async with transport:``.

    Every method may raise `BrokerUnavailable`. Reads are cancel-safe: an entry read but not
    acknowledged stays pending for this node, and `read` hands pending entries out again first
    after `rewind`.
    """

    node: str
    """This node's name."""
    real_time = True
    """The broker keeps real time (heartbeat keys expire in it): a virtual-time run stands
    still while it answers. False for one on the run's own clock (`LocalBroker`)."""

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:  # noqa: B027 - a backend with nothing to close keeps it
        """Let go of the connection (idempotent)."""

    @abc.abstractmethod
    async def join(self, ttl: float) -> None:
        """Create this node's inbox, take its name and start its heartbeat (`ttl` seconds).

        Raises:
            NodeNameTaken: a live node has this name.
        """

    @abc.abstractmethod
    async def beat(self, ttl: float) -> Beat:
        """Refresh the heartbeat.

        Returns ``"kept"``; ``"rejoined"`` if the broker had lost it without the node being
        declared down (a broker restarted empty: the inbox and membership are made again,
        names must be registered again); ``"lost"`` if the node was declared down, or its
        name taken by another node meanwhile."""

    @abc.abstractmethod
    async def leave(self) -> None:
        """Leave the cluster cleanly: heartbeat, membership, names and inbox gone (what is
        still in the inbox is lost: nobody takes over a node that left); marked as left."""

    @abc.abstractmethod
    async def has_left(self, node: str) -> bool:
        """Whether `node` left the cluster cleanly (in the last hour): a node missing from
        the members for another reason (a broker that restarted empty) has not."""

    @abc.abstractmethod
    async def members(self) -> dict[str, bool]:
        """Every node that joined and was not taken over, and whether its heartbeat is alive."""

    @abc.abstractmethod
    async def declare_down(self, node: str) -> bool:
        """Mark `node` down and take its inbox over: True for the one caller that does, and
        only if its heartbeat has expired (nothing is ever taken from a live node). The mark
        is a lease on the take-over: if the node that holds it dies too before it `retire`s
        `node`, the next caller gets it (and takes over what is left)."""

    @abc.abstractmethod
    async def forget(self, node: str) -> None:
        """Free every name the node `node`, declared down, held (it stays a member until it
        is retired: its inbox may still hold entries)."""

    @abc.abstractmethod
    async def retire(self, node: str) -> None:
        """The node `node`'s inbox is taken over: it leaves the members, and its inbox goes."""

    @abc.abstractmethod
    async def append(self, batch: Sequence[tuple[str, bytes]]) -> None:
        """Append each ``(node, data)`` to that node's inbox, in order, in one round trip
        (`wire.is_news` to a node whose inbox is gone: dropped)."""

    @abc.abstractmethod
    async def read(self, count: int, block: float) -> list[Entry]:
        """Up to `count` entries of this node's inbox, waiting up to `block` seconds for one
        (0: not at all).

        After `rewind` it first hands out what was read and never acknowledged."""

    def rewind(self) -> None:  # noqa: B027 - a backend that never loses a read keeps it
        """Hand out again, at the next `read`, the entries read but not acknowledged."""

    @abc.abstractmethod
    async def ack(self, node: str, ids: Sequence[str]) -> None:
        """Acknowledge entries of `node`'s inbox (this node's own, or claimed ones): they
        are deleted (an inbox holds only what is not acknowledged yet)."""

    @abc.abstractmethod
    async def claim(self, node: str, count: int) -> list[Entry]:
        """Take over up to `count` unacknowledged entries of the dead `node`'s inbox (Redis:
        ``XAUTOCLAIM``); an empty list once none are left."""

    @abc.abstractmethod
    async def barrier(
        self, key: str, count: int, patience: float, halt: str | None = None
    ) -> Passage:
        """Arrive at the barrier `key` and wait until `count` nodes have (each arrives once
        per key): ``"all"``, or ``"halt"`` if the halt named `halt` was raised (`raise_halt`)
        before the last one came (decided once, for all of them), or ``"late"`` after
        `patience` seconds."""

    @abc.abstractmethod
    async def raise_halt(self, halt: str) -> None:
        """Raise the halt named `halt`: barriers that watch it answer ``"halt"`` from the next
        one that completes (kept for an hour)."""

    def closing(self) -> contextlib.AbstractAsyncContextManager[object]:
        """Where a node says its last words at a shutdown (its final writes, then `leave`),
        its own tasks cancelled: a backend whose connections die with them (Redis) opens
        one here."""
        return contextlib.nullcontext()

    async def pause(self, seconds: float) -> None:
        """Sleep `seconds` on the broker's clock: heartbeats keep to the time in which keys
        expire, whatever clock the run has (Redis: real time, even in a virtual-time run)."""
        await trio.sleep(seconds)

    @abc.abstractmethod
    async def claim_name(self, name: str, holder: bytes) -> bytes | None:
        """Register `name` for `holder` unless another node holds it: None on success (the
        name was free, or this node's), else the holder record of the node that has it."""

    @abc.abstractmethod
    async def release_name(self, name: str, holder: bytes) -> None:
        """Unregister `name` if `holder` still holds it."""

    @abc.abstractmethod
    async def name(self, name: str) -> bytes | None:
        """The holder of `name`, or None."""

    @abc.abstractmethod
    async def names(self) -> dict[str, bytes]:
        """Every registered name and its holder."""
