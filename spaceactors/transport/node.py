"""A node: an actor system's membership of a cluster, as a service under ``services``.

The node runs four tasks: the writer (one per node, pipelining every entry bound for other
nodes into one ``append`` per batch), the reader (its inbox: messages into local mailboxes,
replies to the asks it is waiting on, credits, name changes), the heartbeat, and the monitor
(declares a silent node down once and takes its unacknowledged entries over).

Backpressure: each link to another node is a credit window (`DEFAULT_WINDOW` entries). A
message to a remote actor takes one credit; the reader at the other end returns credits once
the messages are in their mailboxes. A receiver whose mailbox is full stops reading, its
credits stop coming back, and remote senders wait as a local one does.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import outcome
import trio
import trio.testing

from spaceactors.codec import Codec, default_codec
from spaceactors.errors import (
    ActorNotFound,
    EncodeError,
)
from spaceactors.policy import Restart
from spaceactors.receiver import Reliably, Stream
from spaceactors.ref import ActorRef, Ask
from spaceactors.specs import DEFAULT_MAILBOX_SIZE, ServiceSpec
from spaceactors.topics import TopicTable
from spaceactors.transport import (
    children,
    connection,
    lockstep,
    names,
    reliably,
    subscriptions,
    supervised,
)
from spaceactors.transport.base import BATCH, Entry, Transport
from spaceactors.transport.link import Link
from spaceactors.transport.remote import RemoteRef, _StatusRequest
from spaceactors.transport.wire import (
    Envelope,
    Holder,
    Kind,
    pack_error,
    pack_reply,
)

if TYPE_CHECKING:
    from spaceactors.actor import Actor
    from spaceactors.system import ActorSystem

logger = logging.getLogger("spaceactors.transport")
_T = TypeVar("_T")

DEFAULT_WINDOW = 1024
"""Entries a node may have in flight towards another before its senders wait."""


class Node:
    """`system`'s membership of the cluster that `transport` reaches.

    Created by ``open_system(cluster=..., node=...)``; available as ``system.node``.

    Args:
        system: the actor system.
        transport: this node's connection to the broker.
        heartbeat: seconds between heartbeats (and membership checks).
        ttl: seconds without a heartbeat after which a node is declared down.
        window: the credit window towards each other node, in entries.
        codec: encodes what crosses nodes (default: `spaceactors.default_codec`).
        lockstep: the node of a sharded run (see `lockstep`).
    """

    def __init__(
        self,
        system: ActorSystem,
        transport: Transport,
        *,
        heartbeat: float = 1.0,
        ttl: float = 3.0,
        window: int = DEFAULT_WINDOW,
        codec: Codec | None = None,
        lockstep: bool = False,
    ) -> None:
        self.system = system
        self.transport = transport
        self.name = transport.node
        self.heartbeat = heartbeat
        self.ttl = ttl
        self.window = window
        self.codec = default_codec if codec is None else codec
        self.directory: dict[str, Holder] = {}
        """Every name registered in the cluster, and who holds it (kept up to date)."""
        self.members: dict[str, bool] = {}
        """The nodes this one knows of, and whether their heartbeat is alive."""
        self.down: set[str] = set()
        """Nodes declared down (by any node)."""
        self.events: list[tuple[float, str, str]] = []
        """(time, event, node) for each node that joined or went down, as seen here."""
        self._links: dict[str, Link] = {}
        self._refs: dict[tuple[str, str], RemoteRef] = {}
        self._placed: dict[str, children.Placed] = {}  # actors this node started on others
        self.linked: dict[str, str] = {}
        """Actors here that another node's supervisors started (name -> that node)."""
        self.respawned: list[tuple[float, str, str, str]] = []
        """(time, actor, the node that went down, the node it runs on now) for each actor
        this node started again elsewhere (`spawn`)."""
        self._asks: dict[int, tuple[Ask, RemoteRef]] = {}
        self.streams: dict[int, Stream] = {}  # reliable streams from here with unsettled messages
        self._corr = itertools.count(1)
        self._outbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self._posted = trio.Event()
        self._writing = False  # a batch is on its way
        self._written = trio.lowlevel.ParkingLot()  # woken after each batch
        self._owed: dict[str, int] = {}
        self._deliveries: dict[str, trio.MemorySendChannel[list[Entry]]] = {}  # by source
        self._queued: set[tuple[str, str]] = set()  # (inbox, entry id) read, not yet delivered
        self._releases: list[str] = []
        self._released = trio.Event()
        self._changed = trio.Event()  # set (and made anew) when a name or a member changes
        self.topics = TopicTable()
        """The subscriptions of the other nodes' actors (`RemoteRef` keys)."""
        self._nursery: trio.Nursery | None = None
        self.tick = 0
        """Barriers passed (`barrier`): what this node's entries are stamped with."""
        self.lockstep = lockstep
        """A node of a sharded run: it talks to the broker at barriers only (`barrier`),
        hands each entry over after the tick its sender was in, registers no names (its
        actors are reached by node and name: `remote`), and keeps its heartbeat in a thread
        of its own. Nothing it does then depends on when the broker answers: the same seed
        gives the same run."""
        self._unacked: list[Entry] = []  # (lockstep) acknowledged at the next barrier
        self._held: list[tuple[int, str, int, Entry]] = []  # (tick, source, arrival, entry)
        self._arrivals = itertools.count()
        self._virtual: trio.testing.MockClock | None = None  # frozen while the broker answers
        self._io: trio.lowlevel.TrioToken | None = None  # the broker's thread (`_broker`)
        self._threaded = False
        self._joined = trio.Event()
        self._join_error: BaseException | None = None
        self._io_scope: trio.CancelScope | None = None
        self._holds = 0
        self.sent = 0
        self.received = 0
        self.malformed = 0

    def __repr__(self) -> str:
        return f"<Node {self.name!r} via {self.transport!r}>"

    # --- the service ----------------------------------------------------------------------

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The node's service (supervised under ``services``): join, run, leave."""
        await connection.serve(self, task_status)

    async def joined(self) -> None:
        """Wait until the node has first joined the cluster (`open_system` does).

        Raises:
            BrokerUnavailable: the broker could not be reached (or refused the credentials).
            NodeNameTaken: a live node has this node's name.
        """
        await self._joined.wait()
        if self._join_error is not None:
            raise self._join_error

    async def _call(self, call: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """`await call(*args)` on the broker (virtual time stands still meanwhile), in the
        broker's thread when the node has one (`_broker`)."""
        return await connection._call(self, call, *args)

    async def _flush(self) -> None:
        """Write what is still queued (at the end: replies, credits, name releases)."""
        await connection._flush(self)

    async def _write(self) -> None:
        await connection._write(self)

    async def _retrying(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """`call(*args)` until the broker answers: backing off up to 2 s, logging once."""
        return await connection._retrying(self, what, call, *args)

    def _frozen(self) -> contextlib.AbstractContextManager[None]:
        """Virtual time stands still while the broker answers (a run on a `MockClock` with
        a broker in real time): otherwise the clock would jump while a reply is on its way,
        and time out what waits for it."""
        return connection._frozen(self)

    # --- sending --------------------------------------------------------------------------

    def link(self, peer: str) -> Link:
        """The credit window towards `peer`."""
        link = self._links.get(peer)
        if link is None:
            link = self._links[peer] = Link(self, peer, self.window)
            if peer in self.down:
                link.fail()
        return link

    def envelope(self, ref: RemoteRef, message: object) -> bytes:
        """The entry that carries `message` to `ref` (an `Ask` is registered for its reply).

        Raises:
            EncodeError: the message cannot be encoded (nothing is registered).
        """
        if type(message) is Reliably:
            self.sent += 1
            return reliably.encode(self, ref, message)
        if type(message) is Ask:
            inner = message.message
            if type(inner) is _StatusRequest:
                kind, payload = Kind.STATUS, b""
            else:
                kind, payload = Kind.ASK, self.codec.encode(inner, "msgpack")
            corr = next(self._corr)
            self._asks[corr] = (message, ref)
        else:
            kind, payload, corr = Kind.TELL, self.codec.encode(message, "msgpack"), 0
        self.sent += 1
        return Envelope(kind, self.name, corr, ref.id, ref.name, None, payload, self.tick).encode()

    def next_batch(self) -> list[tuple[str, bytes]]:
        """Take the next entries to write (at most `BATCH`, in the order posted)."""
        outbox = self._outbox
        return [outbox.popleft() for _ in range(min(BATCH, len(outbox)))]

    def post(self, peer: str, data: bytes) -> None:
        """Queue an entry for `peer`'s inbox (the writer sends it with the next batch)."""
        self._outbox.append((peer, data))
        if not self.lockstep:  # (in lockstep: written at the next barrier)
            self._posted.set()

    def _reply(self, peer: str, corr: int, result: outcome.Outcome[Any]) -> None:
        if isinstance(result, outcome.Value):
            try:
                payload = pack_reply(self.codec, result.value)
                kind = Kind.REPLY
            except EncodeError as exc:
                kind, payload = Kind.FAIL, pack_error(exc)
        else:
            kind, payload = Kind.FAIL, pack_error(result.error)  # type: ignore[attr-defined]
        self.post(peer, Envelope(kind, self.name, corr, payload=payload, tick=self.tick).encode())

    # --- receiving ------------------------------------------------------------------------

    # --- remote refs ----------------------------------------------------------------------

    def lookup(self, name: str) -> RemoteRef | None:
        """A ref to the actor called `name` on another live node, or None."""
        return names.lookup(self, name)

    def remote(self, name: str, node: str, capacity: int = DEFAULT_MAILBOX_SIZE) -> RemoteRef:
        """A ref to the actor called `name` on `node`, whether or not it is there yet (a
        message that arrives before it is becomes a dead letter there)."""
        return names.remote(self, name, node, capacity)

    async def barrier(self, key: str, count: int, patience: float, halt: str | None = None) -> bool:
        """Wait until `count` nodes have reached the barrier `key` (each once), then hand
        over what the other nodes sent before they reached it: in the order of their names,
        each one's entries in the order it sent them (the same order in every run).

        Returns:
            True if the halt `halt` was raised (`Transport.raise_halt`) before the last node
            came: every node that meets at `key` gets the same answer.

        Raises:
            TimeoutError: they have not all come within `patience` real seconds.
        """
        return await lockstep.barrier(self, key, count, patience, halt)

    async def raise_halt(self, halt: str) -> None:
        """Raise the halt named `halt`: the barriers that watch it answer True from the next
        one that completes (`barrier`): how ``run --nodes`` stops every share at one tick."""
        await self._retrying("raise a halt", self.transport.raise_halt, halt)

    def holds(self, name: str, node: str) -> bool:
        return names.holds(self, name, node)

    def why_unavailable(self, ref: RemoteRef) -> str:
        if ref.node in self.down:
            return f"node {ref.node!r} is down or has left"
        return "the actor has stopped"

    async def spawn(
        self,
        factory: type[Actor],
        *args: Any,
        name: str,
        on: str,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        restart: Restart = Restart.PERMANENT,
        **kwargs: Any,
    ) -> RemoteRef:
        """Start an actor on the node `on`, and keep it running while this node lives.

        `on` supervises it: its crashes restart it there, by `restart` (under its ``user``
        supervisor). If `on` is declared down, this node starts it again on a live node
        (another first, the one with the fewest of this node's actors; else this one),
        unless it is `Restart.TEMPORARY` (OTP: never restarted); what was sent to it and
        not yet taken from `on`'s inbox is delivered to the new one (at least once). The
        class must be importable by the same path on `on` (a module both nodes have);
        arguments travel as replies do (plain data, or registered messages).

        Returns:
            A ref to it (by name: it follows the actor when it moves; while it is being
            started again elsewhere, a send raises `ActorUnavailable`).

        Raises:
            ActorUnavailable: `on` is not a live node of the cluster.
            InvalidSpec: `factory` is no `Actor` subclass importable on `on`, or an option
                is invalid.
            EncodeError: an argument cannot be encoded.
            NameTaken: an actor of the cluster has `name`.
            StartFailed: the actor's constructor or `on_start` raised on `on`.
        """
        if on == self.name:
            await self.system.spawn(
                factory, *args, name=name, mailbox_size=mailbox_size, restart=restart, **kwargs
            )
            return self.remote(name, on, mailbox_size)
        placed = children.placement(self, factory, args, kwargs, mailbox_size, restart, on)
        return await children.spawn(self, name, placed)

    def child(
        self,
        factory: type[Actor],
        *args: Any,
        name: str,
        on: str,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        restart: Restart = Restart.PERMANENT,
        **kwargs: Any,
    ) -> ServiceSpec:
        """A supervisor's child that runs on the node `on`: pass it to
        `Supervisor.start_child` or a `SupervisorSpec`'s children.

        The child (a service standing for the actor in its supervisor's tree) starts the
        actor on `on` and runs while it does. When `on` is declared down, the child exits
        abnormally and its supervisor restarts it by its restart type, strategy and
        intensity (OTP: a child on another node exits with ``noconnection``); a restart
        starts the actor on `on` if it is live, else on the live node with the fewest of
        this node's actors. When the actor stops for good on `on`, the child exits
        normally; stopping the child stops the actor, and so does this node's death (the
        node the actor runs on stops it: OTP's link between a supervisor and its children).
        The actor's crashes are `on`'s to restart, by `restart`, as for `spawn`
        (`spaceactors.transport.supervised`). Find it with ``system.lookup(name)``.

        Raises:
            InvalidSpec: `factory` is no `Actor` subclass importable on other nodes, or an
                option is invalid.
            EncodeError: an argument cannot be encoded.

        Starting the child raises `StartFailed` (the actor could not start, or `on` is not
        a live node) or `NameTaken`, as for a child of this node.
        """
        placed = children.placement(self, factory, args, kwargs, mailbox_size, restart, on, True)
        return supervised.child_spec(self, name, placed)

    def subscription(self, ref: ActorRef, topic: str, subscribed: bool) -> None:
        """This node's actor `ref` subscribed to `topic` or unsubscribed from it (`topic` "":
        from every topic, as it stopped): the router tells the node, which tells the others."""
        subscriptions.changed(self, ref, topic, subscribed)

    def subscribers(self, topic: str) -> list[ActorRef]:
        """The actors of the other live nodes subscribed to `topic` (a reliable publish
        reaches them: `spaceactors.transport.subscriptions`)."""
        return subscriptions.subscribers(self, topic)

    async def changed(self) -> None:
        """Wait until a name or a member of the cluster changes (as this node hears it)."""
        await self._changed.wait()

    def notify(self) -> None:
        """A name or a member changed: wake whoever waits in `changed`."""
        self._changed.set()
        self._changed = trio.Event()

    def relaying(self, message: object, topic: str | None = None) -> Callable[[], Awaitable[None]]:
        """A broadcast (or a publish to `topic`) of this node, for the other live nodes:
        encoded now, sent when the returned function is awaited (each copy takes a credit of
        its link: it waits while one is spent). A node of a sharded run relays nothing: its
        groups of sectors are independent (docs/nodes.md).

        Raises:
            EncodeError: `message` cannot be encoded (nothing is sent).
        """
        if self.lockstep:
            return _nothing
        kind = Kind.BROADCAST if topic is None else Kind.PUBLISH
        payload = self.codec.encode(message, "msgpack")
        data = Envelope(kind, self.name, target_name=topic or "", payload=payload).encode()
        peers = [p for p, alive in self.members.items() if alive and p != self.name]

        async def relay() -> None:
            for peer in peers:
                if peer not in self.down:
                    await self.link(peer).send_data(data)

        return relay

    def control(self, ref: RemoteRef, command: object) -> None:
        """Send a control command (`Pause`, `Resume`) to a remote actor, credit or not."""
        if ref.node in self.down:
            raise ref._cell.unavailable(command)
        self.post(ref.node, self.envelope(ref, command))

    async def stop_remote(self, ref: RemoteRef) -> None:
        """Stop a remote actor for good and wait until it has stopped.

        Raises:
            ActorUnavailable: its node is down.
        """
        if ref.node in self.down:
            raise ref._cell.unavailable("stop")
        request = Ask(None)
        corr = next(self._corr)
        self._asks[corr] = (request, ref)
        stop = Envelope(Kind.STOP, self.name, corr, ref.id, ref.name, tick=self.tick)
        self.post(ref.node, stop.encode())
        try:
            await request.wait()
        except ActorNotFound:
            return  # stopped already

    # --- names ----------------------------------------------------------------------------

    async def reserve(self, name: str, capacity: int) -> None:
        """Register `name` for an actor about to start here.

        Raises:
            NameTaken: an actor on another node holds it.
        """
        await names.reserve(self, name, capacity)

    async def release(self, name: str) -> None:
        """Wait until `name`, whose actor here stopped for good, is free cluster-wide (at most
        `ttl` seconds: while the broker is away the release goes on in the background)."""
        await names.release(self, name)

    async def _release_now(self, name: str) -> None:
        """Release `name` if it waits to be, and return once it is (a release that another
        task began is waited for: the name stays in `_releases` until the broker answered)."""
        await names._release_now(self, name)

    def released(self, name: str) -> None:
        """An actor here stopped for good: its name is released cluster-wide (soon)."""
        names.released(self, name)

    def _announce(self, name: str, holder: Holder | None) -> None:
        names._announce(self, name, holder)

    # --- membership -----------------------------------------------------------------------


async def _nothing() -> None:
    """What a node of a sharded run relays."""
