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
import functools
import itertools
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import outcome
import trio
import trio.testing

from spaceactors.codec import Codec, default_codec
from spaceactors.errors import (
    ActorNotFound,
    DecodeError,
    EncodeError,
)
from spaceactors.policy import Restart
from spaceactors.ref import ActorRef, Ask
from spaceactors.specs import DEFAULT_MAILBOX_SIZE
from spaceactors.transport import children, inbox, lockstep, membership, names
from spaceactors.transport.base import BATCH, BrokerUnavailable, Entry, Transport
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
        self.respawned: list[tuple[float, str, str, str]] = []
        """(time, actor, the node that went down, the node it runs on now) for each actor
        this node started again elsewhere (`spawn`)."""
        self._asks: dict[int, tuple[Ask, RemoteRef]] = {}
        self._corr = itertools.count(1)
        self._outbox: collections.deque[tuple[str, bytes]] = collections.deque()
        self._posted = trio.Event()
        self._writing = False  # a batch is on its way
        self._written = trio.lowlevel.ParkingLot()  # woken after each batch
        self._owed: dict[str, int] = {}
        self._releases: list[str] = []
        self._released = trio.Event()
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
        clock = trio.lowlevel.current_clock()
        if self.transport.real_time and isinstance(clock, trio.testing.MockClock):
            self._virtual = clock
        async with contextlib.AsyncExitStack() as stack:
            threaded = self._threaded = self.lockstep and self._virtual is not None
            nursery = await stack.enter_async_context(trio.open_nursery())
            if threaded:  # the broker is talked to from a thread of its own (`_broker`)
                ready = threading.Event()
                nursery.start_soon(self._broker, ready)
                await trio.to_thread.run_sync(ready.wait, abandon_on_cancel=True)
            else:
                await stack.enter_async_context(self.transport)
            try:
                await self._call(self.transport.join, self.ttl)
                names = await self._call(self.transport.names)
                self.members = await self._call(self.transport.members)
            except Exception as exc:
                if self._joined.is_set():
                    raise  # (a restart that cannot join: the supervisor's to handle)
                self._join_error = exc  # `open_system` raises it, saying why, and closes
                self._joined.set()
                task_status.started()
                await trio.sleep_forever()
            self._joined.set()
            self.directory = {}
            for name, data in names.items():
                try:
                    self.directory[name] = Holder.decode(data)
                except DecodeError:
                    continue
            try:
                async with trio.open_nursery() as tasks:
                    self._nursery = tasks
                    if not threaded:
                        tasks.start_soon(self._beat)
                        tasks.start_soon(self._monitor)
                    if not self.lockstep:
                        tasks.start_soon(self._write)
                        tasks.start_soon(self._read)
                        tasks.start_soon(self._release_names)
                    task_status.started()
                    await trio.sleep_forever()  # (until the system stops: it leaves then)
            finally:
                self._nursery = None
                with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                    try:
                        if threaded:
                            await self._flush()
                            await self._call(self.transport.leave)
                        else:
                            async with self.transport.closing():
                                await self._flush()
                                await self.transport.leave()
                    except BrokerUnavailable as exc:  # the others will declare it down
                        logger.warning("node %r cannot leave cleanly: %s", self.name, exc)
                self._stop_broker()

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
        with self._frozen():
            if not self._threaded:
                return await call(*args)
            if self._io is None:
                raise BrokerUnavailable(f"node {self.name!r}: the broker's thread has ended")
            request = functools.partial(trio.from_thread.run, call, *args, trio_token=self._io)
            return await trio.to_thread.run_sync(request, abandon_on_cancel=True)

    async def _broker(self, ready: threading.Event) -> None:
        """(lockstep, virtual time) A Trio run of its own, in a thread, on the real clock,
        that talks to the broker for this node: heartbeats, membership checks, and every
        call of `_call`. A call then wakes the seeded run once, when it is answered, and
        never while others run: when the broker answers decides nothing in the run. It
        runs until `_stop_broker` (after the node has left)."""
        await lockstep._broker(self, ready)

    def _stop_broker(self) -> None:
        """End the broker's thread (from the seeded run: thread-safe, never blocks)."""
        lockstep._stop_broker(self)

    async def _flush(self) -> None:
        """Write what is still queued (at the end: replies, credits, name releases)."""
        for name in self._releases:
            self._announce(name, None)
        self._releases.clear()
        while self._outbox:
            batch = self.next_batch()
            try:
                await self._call(self.transport.append, batch)
            except BrokerUnavailable:
                return

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

    async def _write(self) -> None:
        outbox = self._outbox
        while True:
            if not outbox:
                self._posted = trio.Event()
                await self._posted.wait()
            batch = self.next_batch()
            self._writing = True
            try:
                await self._retrying("write", self.transport.append, batch)
            finally:
                self._writing = False
                self._written.unpark_all()

    async def _retrying(self, what: str, call: Callable[..., Any], *args: Any) -> Any:
        """`call(*args)` until the broker answers: backing off up to 2 s, logging once."""
        delay = 0.05
        failing = False
        while True:
            try:
                result = await self._call(call, *args)
            except BrokerUnavailable as exc:
                if not failing:
                    logger.warning("node %r cannot %s: %s; retrying", self.name, what, exc)
                    failing = True
                await self.transport.pause(delay)
                delay = min(delay * 2, 2.0)
                continue
            if failing:
                logger.warning("node %r: the broker answers again", self.name)
            return result

    # --- receiving ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _frozen(self) -> Iterator[None]:
        """Virtual time stands still while the broker answers (a run on a `MockClock` with
        a broker in real time): otherwise the clock would jump while a reply is on its way,
        and time out what waits for it."""
        clock = self._virtual
        if clock is None:
            yield
            return
        self._holds += 1
        clock.autojump_threshold = math.inf
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                clock.autojump_threshold = 0

    async def _read(self) -> None:
        await inbox._read(self)

    async def _handle(self, entries: list[Entry], claimed_from: str | None = None) -> None:
        await inbox._handle(self, entries, claimed_from)

    async def _acknowledge(self, entries: list[Entry]) -> None:
        await inbox._acknowledge(self, entries)

    async def _dispatch(self, entry: Entry, claimed_from: str | None) -> None:
        await inbox._dispatch(self, entry, claimed_from)

    def _malformed(self, entry: Entry, problem: str, envelope: Envelope | None = None) -> None:
        inbox._malformed(self, entry, problem, envelope)

    def _undeliverable(self, entry: Entry, envelope: Envelope, claimed_from: str | None) -> None:
        inbox._undeliverable(self, entry, envelope, claimed_from)

    def _answered(self, envelope: Envelope) -> None:
        inbox._answered(self, envelope)

    async def _stop_local(self, ref: ActorRef, envelope: Envelope) -> None:
        await inbox._stop_local(self, ref, envelope)

    # --- remote refs ----------------------------------------------------------------------

    def lookup(self, name: str) -> RemoteRef | None:
        """A ref to the actor called `name` on another live node, or None."""
        return names.lookup(self, name)

    def remote(self, name: str, node: str, capacity: int = DEFAULT_MAILBOX_SIZE) -> RemoteRef:
        """A ref to the actor called `name` on `node`, whether or not it is there yet (a
        message that arrives before it is becomes a dead letter there)."""
        return names.remote(self, name, node, capacity)

    async def barrier(self, key: str, count: int, patience: float) -> None:
        """Wait until `count` nodes have reached the barrier `key` (each once), then hand
        over what the other nodes sent before they reached it: in the order of their names,
        each one's entries in the order it sent them (the same order in every run).

        Raises:
            TimeoutError: they have not all come within `patience` real seconds.
        """
        await lockstep.barrier(self, key, count, patience)

    async def _meet(self, key: str, count: int, patience: float) -> None:
        await lockstep._meet(self, key, count, patience)

    async def _flush_now(self) -> None:
        """Wait until the writer has written everything queued so far (in order)."""
        await lockstep._flush_now(self)

    def holds(self, name: str, node: str) -> bool:
        return names.holds(self, name, node)

    def why_unavailable(self, ref: RemoteRef) -> str:
        if ref.node in self.down:
            return f"node {ref.node!r} is down"
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
            A ref to it (by name: it stays valid when the actor moves).

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
        return await children.spawn(self, factory, args, kwargs, name, on, mailbox_size, restart)

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

    def _holder(self, name: str) -> bytes:
        return names._holder(self, name)

    def released(self, name: str) -> None:
        """An actor here stopped for good: its name is released cluster-wide (soon)."""
        names.released(self, name)

    async def _release_names(self) -> None:
        await names._release_names(self)

    def _announce(self, name: str, holder: Holder | None) -> None:
        names._announce(self, name, holder)

    def _name_changed(self, envelope: Envelope) -> None:
        names._name_changed(self, envelope)

    # --- membership -----------------------------------------------------------------------

    def _saw(self, members: dict[str, bool]) -> None:
        """(lockstep) The members changed: a node that went down fails what waits on it."""
        membership._saw(self, members)

    async def _beat(self) -> None:
        await membership._beat(self)

    async def _rejoined(self) -> None:
        """The broker came back empty: register this node's names again."""
        await names._rejoined(self)

    async def _monitor(self) -> None:
        await membership._monitor(self)

    def _introduce(self, peer: str) -> None:
        """Announce this node's names to `peer`, new here: it read the directory when it
        joined, and missed what this node registered since, before it knew of `peer`."""
        names._introduce(self, peer)

    def _node_down(self, peer: str) -> None:
        """`peer` stopped heartbeating: fail what waits on it, forget its names."""
        membership._node_down(self, peer)

    async def _take_over(self, peer: str) -> None:
        """Claim and handle every unacknowledged entry of `peer`'s inbox; then forget it."""
        await membership._take_over(self, peer)

    def _event(self, event: Literal["node_up", "node_down"], peer: str) -> None:
        """Another node joined or went down: on the trace (``node_up``, ``node_down``, the
        node's name as the actor) and to lifecycle listeners (the server's ``/events``)."""
        membership._event(self, event, peer)


async def _nothing() -> None:
    """What a node of a sharded run relays."""
