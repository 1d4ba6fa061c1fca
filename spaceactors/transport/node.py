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
from spaceactors.control import ActorStatus
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.errors import (
    ActorNotFound,
    ActorUnavailable,
    DecodeError,
    EncodeError,
    NameTaken,
)
from spaceactors.ref import ActorRef, Ask
from spaceactors.specs import DEFAULT_MAILBOX_SIZE
from spaceactors.trace_event import EventKind
from spaceactors.transport.base import BrokerUnavailable, Entry, Transport
from spaceactors.transport.remote import RemoteRef, _StatusRequest
from spaceactors.transport.wire import (
    Envelope,
    Holder,
    Kind,
    decode,
    pack_error,
    pack_reply,
    unpack_error,
    unpack_reply,
)

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem

logger = logging.getLogger("spaceactors.transport")
_T = TypeVar("_T")

DEFAULT_WINDOW = 1024
"""Entries a node may have in flight towards another before its senders wait."""
BATCH = 1024
"""The most entries one ``append`` (one round trip) or one ``read`` carries."""
POLL = 0.002
"""Real seconds between two reads of the inbox in a virtual-time run (reads never block it)."""

_COUNTED = (Kind.TELL, Kind.ASK, Kind.STATUS)  # the kinds that take a credit


class NodeLost(Exception):
    """This node's heartbeat expired: the cluster may have declared it down."""


class Link:
    """The credit window from this node to another (`peer`)."""

    __slots__ = ("_lot", "_node", "credits", "down", "peer")

    def __init__(self, node: Node, peer: str, window: int) -> None:
        self._node = node
        self.peer = peer
        self.credits = window
        self.down = False
        self._lot = trio.lowlevel.ParkingLot()

    def send_nowait(self, ref: RemoteRef, message: object) -> None:
        if self.down:
            raise trio.BrokenResourceError
        if self.credits <= 0:
            raise trio.WouldBlock
        data = self._node.envelope(ref, message)  # EncodeError: nothing sent
        self.credits -= 1
        self._node.post(self.peer, data)

    async def send(self, ref: RemoteRef, message: object) -> None:
        while not self.down and self.credits <= 0:
            await self._lot.park()
        self.send_nowait(ref, message)
        await trio.lowlevel.checkpoint()

    def grant(self, credits: int) -> None:
        self.credits += credits
        self._lot.unpark_all()

    def fail(self) -> None:
        self.down = True
        self._lot.unpark_all()


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
        token = trio.lowlevel.current_trio_token()
        transport = self.transport

        async def broker() -> None:
            with trio.CancelScope() as scope:
                async with transport:
                    self._io, self._io_scope = trio.lowlevel.current_trio_token(), scope
                    ready.set()
                    while True:
                        await trio.sleep(self.heartbeat)
                        if await transport.beat(self.ttl) == "lost":
                            raise NodeLost(
                                f"node {self.name!r} missed its heartbeat for over {self.ttl} s"
                            )
                        members = await transport.members()
                        dead = {peer for peer, alive in members.items() if not alive}
                        if dead - self.down - {self.name}:
                            # (a node that left is no news: the run is not woken for it)
                            with contextlib.suppress(trio.RunFinishedError):
                                trio.from_thread.run_sync(self._saw, members, trio_token=token)

        try:
            await trio.to_thread.run_sync(trio.run, broker)  # (it ends when told to)
        finally:
            self._io = None

    def _stop_broker(self) -> None:
        """End the broker's thread (from the seeded run: thread-safe, never blocks)."""
        io, scope = self._io, self._io_scope
        if io is not None and scope is not None:
            with contextlib.suppress(trio.RunFinishedError):
                io.run_sync_soon(scope.cancel)

    async def _flush(self) -> None:
        """Write what is still queued (at the end: replies, credits, name releases)."""
        for name in self._releases:
            self._announce(name, None)
        self._releases.clear()
        while self._outbox:
            batch = [self._outbox.popleft() for _ in range(min(BATCH, len(self._outbox)))]
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
            batch = [outbox.popleft() for _ in range(min(BATCH, len(outbox)))]
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
        transport = self.transport
        polling = self._virtual is not None  # virtual time: no read may block it
        while True:
            try:
                if polling:
                    await transport.pause(POLL)
                    if self.lockstep:
                        continue  # read at the barriers
                    with self._frozen():
                        entries = await transport.read(BATCH, 0.0)
                else:
                    entries = await transport.read(BATCH, self.heartbeat)
            except BrokerUnavailable:
                transport.rewind()
                await self._retrying("read", transport.members)  # waits for the broker
                continue
            await self._handle(entries)

    async def _handle(self, entries: list[Entry], claimed_from: str | None = None) -> None:
        if not entries:
            return
        for entry in entries:
            await self._dispatch(entry, claimed_from)
        if self.lockstep:
            self._unacked += entries  # (at the next barrier: no broker call mid-tick)
        else:
            await self._acknowledge(entries)
        owed, self._owed = self._owed, {}
        for peer, credits in owed.items():
            if peer not in self.down:
                self.post(peer, Envelope(Kind.CREDIT, self.name, credits, tick=self.tick).encode())

    async def _acknowledge(self, entries: list[Entry]) -> None:
        ids: dict[str, list[str]] = {}
        for entry in entries:
            ids.setdefault(entry.node, []).append(entry.id)
        for node, some in ids.items():
            await self._retrying("acknowledge", self.transport.ack, node, some)

    async def _dispatch(self, entry: Entry, claimed_from: str | None) -> None:
        try:
            envelope = decode(entry.data)
        except DecodeError as exc:
            self._malformed(entry, str(exc))
            return
        self.received += 1
        kind = envelope.kind
        if kind in _COUNTED and claimed_from is None:
            self._owed[envelope.source] = self._owed.get(envelope.source, 0) + 1
        if kind is Kind.REPLY or kind is Kind.FAIL:
            if claimed_from is None:
                try:
                    self._answered(envelope)
                except DecodeError as exc:  # (one nobody waits for, and no answer at all)
                    self._malformed(entry, str(exc), envelope)
            return
        if kind is Kind.CREDIT:
            if claimed_from is None:
                self.link(envelope.source).grant(envelope.corr)
            return
        if kind is Kind.NAME:
            try:
                self._name_changed(envelope)
            except DecodeError as exc:
                self._malformed(entry, str(exc), envelope)
            return
        ref = self.system.registry.local(envelope.target_name)
        if ref is None:
            self._undeliverable(entry, envelope, claimed_from)
            return
        if kind is Kind.STATUS:
            self._reply(envelope.source, envelope.corr, outcome.Value(ref.status()))
            return
        if kind is Kind.STOP:
            assert self._nursery is not None
            self._nursery.start_soon(self._stop_local, ref, envelope)
            return
        try:
            message = self.codec.decode(envelope.payload, "msgpack")
        except DecodeError as exc:
            self._malformed(entry, str(exc), envelope)
            if kind is Kind.ASK:
                self._reply(envelope.source, envelope.corr, outcome.Error(exc))
            return
        if kind is Kind.ASK:
            source, corr = envelope.source, envelope.corr
            message = Ask(message, lambda result: self._reply(source, corr, result))
        try:
            await ref.send(message)
        except ActorUnavailable as exc:  # recorded as a dead letter by the actor's cell
            if kind is Kind.ASK:
                self._reply(envelope.source, envelope.corr, outcome.Error(exc))

    def _malformed(self, entry: Entry, problem: str, envelope: Envelope | None = None) -> None:
        self.malformed += 1
        target = f"inbox of node {entry.node!r}"
        if envelope is not None and envelope.target_name:
            target = envelope.target_name
        logger.warning("node %r: entry %s: %s", self.name, entry.id, problem)
        self.system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                target,
                bytes(entry.data[:256]),
                DeadLetterReason.MALFORMED_ENTRY,
                f"entry {entry.id}: {problem}",
                node=envelope.source if envelope is not None else entry.node,
            )
        )

    def _undeliverable(self, entry: Entry, envelope: Envelope, claimed_from: str | None) -> None:
        where = claimed_from or self.name
        if claimed_from is not None:
            reason, detail = DeadLetterReason.NODE_DOWN, f"node {where!r} is down"
            error: Exception = ActorUnavailable(
                f"actor {envelope.target_name!r}: its node {where!r} went down"
            )
        else:
            reason, detail = DeadLetterReason.UNKNOWN_ACTOR, f"no live actor on node {where!r}"
            error = ActorNotFound(
                f"no live actor has the name {envelope.target_name!r} on node {where!r}"
            )
        try:
            message: object = self.codec.decode(envelope.payload, "msgpack")
        except DecodeError as exc:
            if envelope.kind in (Kind.TELL, Kind.ASK):  # a message that is none: malformed,
                self._malformed(entry, str(exc), envelope)  # wherever it was bound
                if envelope.kind is Kind.ASK:
                    self._reply(envelope.source, envelope.corr, outcome.Error(exc))
                return
            message = envelope.payload  # (STATUS, STOP: no payload)
        self.system.dead_letters.record(
            DeadLetter(
                trio.current_time(), envelope.target_name, message, reason, detail, node=where
            )
        )
        if envelope.kind in (Kind.ASK, Kind.STATUS, Kind.STOP):
            self._reply(envelope.source, envelope.corr, outcome.Error(error))

    def _answered(self, envelope: Envelope) -> None:
        waiting = self._asks.pop(envelope.corr, None)
        if waiting is None:  # the asker's node forgot it (it gave up, or its target's node
            if envelope.kind is Kind.REPLY:  # went down): dropped, once known to be an answer
                unpack_reply(self.codec, envelope.payload)  # DecodeError: malformed
            else:
                unpack_error(envelope.payload)
            return
        request, ref = waiting
        try:
            if envelope.kind is Kind.REPLY:
                value = unpack_reply(self.codec, envelope.payload)
                if type(request.message) is _StatusRequest and isinstance(value, ActorStatus):
                    ref._cell.last_status = value  # type: ignore[attr-defined]
                result: outcome.Outcome[Any] = outcome.Value(value)
            else:
                result = outcome.Error(unpack_error(envelope.payload))
        except DecodeError as exc:
            result = outcome.Error(exc)
        if not request.resolve(result) and isinstance(result, outcome.Value):
            self.system.dead_letters.record(
                DeadLetter(
                    trio.current_time(),
                    envelope.source,
                    result.value,
                    DeadLetterReason.REPLY_AFTER_TIMEOUT,
                    "the asker gave up",
                    node=envelope.source,
                )
            )

    async def _stop_local(self, ref: ActorRef, envelope: Envelope) -> None:
        try:
            await ref.stop()
            await self._release_now(ref.name)  # free cluster-wide once the stop returns
        except Exception as exc:
            self._reply(envelope.source, envelope.corr, outcome.Error(exc))
        else:
            self._reply(envelope.source, envelope.corr, outcome.Value(None))

    # --- remote refs ----------------------------------------------------------------------

    def lookup(self, name: str) -> RemoteRef | None:
        """A ref to the actor called `name` on another live node, or None."""
        holder = self.directory.get(name)
        if holder is None or holder.node == self.name or holder.node in self.down:
            return None
        key = (holder.node, name)
        ref = self._refs.get(key)
        if ref is None or ref.capacity != holder.capacity:
            ref = self._refs[key] = RemoteRef(
                self, holder.node, holder.actor_id, name, holder.capacity
            )
        return ref

    def remote(self, name: str, node: str, capacity: int = DEFAULT_MAILBOX_SIZE) -> RemoteRef:
        """A ref to the actor called `name` on `node`, whether or not it is there yet (a
        message that arrives before it is becomes a dead letter there)."""
        key = (node, name)
        ref = self._refs.get(key)
        if ref is None:
            ref = self._refs[key] = RemoteRef(self, node, 0, name, capacity)
        return ref

    async def barrier(self, key: str, count: int, patience: float) -> None:
        """Wait until `count` nodes have reached the barrier `key` (each once), then hand
        over what the other nodes sent before they reached it: in the order of their names,
        each one's entries in the order it sent them (the same order in every run).

        Raises:
            TimeoutError: they have not all come within `patience` real seconds.
        """
        if not self.lockstep:
            await self._flush_now()  # what this node sent before the barrier is on its way
            await self._meet(key, count, patience)
            return
        with self._frozen():
            # Every other task waits first, so that no task runs while the broker answers
            # (when it answers would decide which tasks run together, and in what order).
            await trio.testing.wait_all_tasks_blocked()
            while self._outbox:
                batch = [self._outbox.popleft() for _ in range(min(BATCH, len(self._outbox)))]
                await self._retrying("write", self.transport.append, batch)
            acks, self._unacked = self._unacked, []
            await self._acknowledge(acks)
            await self._meet(key, count, patience)
            reached, self.tick = self.tick, self.tick + 1
            while True:
                entries = await self._retrying("read", self.transport.read, BATCH, 0.0)
                if not entries:
                    break
                for entry in entries:
                    try:
                        envelope = decode(entry.data)
                        tick, source = envelope.tick, envelope.source
                    except DecodeError:
                        tick, source = 0, ""  # (handed over at once: a dead letter)
                    self._held.append((tick, source, next(self._arrivals), entry))
        ready = sorted(held for held in self._held if held[0] <= reached)
        self._held = [held for held in self._held if held[0] > reached]
        await self._handle([entry for *_, entry in ready])

    async def _meet(self, key: str, count: int, patience: float) -> None:
        barrier = self.transport.barrier
        if not await self._retrying("wait at a barrier", barrier, key, count, patience):
            raise TimeoutError(
                f"node {self.name!r}: not every one of {count} nodes reached {key!r} within "
                f"{patience:g} s (one may have died: see its output)"
            )

    async def _flush_now(self) -> None:
        """Wait until the writer has written everything queued so far (in order)."""
        while self._outbox or self._writing:
            self._posted.set()
            await self._written.park()

    def holds(self, name: str, node: str) -> bool:
        if self.lockstep:  # no directory: reached by node and name
            return node not in self.down
        holder = self.directory.get(name)
        return holder is not None and holder.node == node and node not in self.down

    def why_unavailable(self, ref: RemoteRef) -> str:
        if ref.node in self.down:
            return f"node {ref.node!r} is down"
        return "the actor has stopped"

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
        if self.lockstep:
            return  # a sharded run's actors are reached by node and name (`remote`)
        await self._release_now(name)  # released just now: let go of it first, in order
        holder = Holder(self.name, 0, capacity)
        current = await self._retrying(
            "register a name", self.transport.claim_name, name, holder.encode()
        )
        if current is not None:
            other = Holder.decode(current)
            self.directory[name] = other
            raise NameTaken(
                f"the name {name!r} is taken by an actor on node {other.node!r}; "
                "stop it first or choose another name"
            )
        self.directory[name] = holder
        self._announce(name, holder)

    async def release(self, name: str) -> None:
        """Wait until `name`, whose actor here stopped for good, is free cluster-wide (at most
        `ttl` seconds: while the broker is away the release goes on in the background)."""
        if self._nursery is None:
            return  # the node is not running: it leaves the cluster, names and all
        with trio.move_on_after(self.ttl):
            await self._release_now(name)

    async def _release_now(self, name: str) -> None:
        """Release `name` if it waits to be, and return once it is (a release that another
        task began is waited for: the name stays in `_releases` until the broker answered)."""
        while name in self._releases:
            await self._retrying(
                "release a name", self.transport.release_name, name, self._holder(name)
            )
            if name in self._releases:  # (not done meanwhile by the other task)
                self._releases.remove(name)
                self._announce(name, None)

    def _holder(self, name: str) -> bytes:
        holder = self.directory.get(name)
        return holder.encode() if holder is not None else Holder(self.name, 0, 1).encode()

    def released(self, name: str) -> None:
        """An actor here stopped for good: its name is released cluster-wide (soon)."""
        holder = self.directory.get(name)
        if holder is None or holder.node != self.name:
            return
        self._releases.append(name)
        self._released.set()

    async def _release_names(self) -> None:
        while True:
            if not self._releases:
                self._released = trio.Event()
                await self._released.wait()
                continue  # (released meanwhile by `_release_now`: the list may be empty)
            await self._release_now(self._releases[0])

    def _announce(self, name: str, holder: Holder | None) -> None:
        if holder is None:
            current = self.directory.get(name)
            if current is not None and current.node == self.name:
                del self.directory[name]
        payload = b"" if holder is None else holder.encode()
        data = Envelope(
            Kind.NAME, self.name, target_name=name, payload=payload, tick=self.tick
        ).encode()
        for peer, alive in self.members.items():
            if alive and peer != self.name and peer not in self.down:
                self.post(peer, data)

    def _name_changed(self, envelope: Envelope) -> None:
        name = envelope.target_name
        if not envelope.payload:
            current = self.directory.get(name)
            if current is not None and current.node == envelope.source:
                del self.directory[name]
            return
        self.directory[name] = Holder.decode(envelope.payload)  # DecodeError: malformed

    # --- membership -----------------------------------------------------------------------

    def _saw(self, members: dict[str, bool]) -> None:
        """(lockstep) The members changed: a node that went down fails what waits on it."""
        self.members = members
        for peer, alive in members.items():
            if not alive and peer != self.name and peer not in self.down:
                self._node_down(peer)

    async def _beat(self) -> None:
        while True:
            await self.transport.pause(self.heartbeat)
            beat = await self._retrying("heartbeat", self.transport.beat, self.ttl)
            if beat == "rejoined":
                await self._rejoined()
            elif beat == "lost":
                raise NodeLost(
                    f"node {self.name!r} missed its heartbeat for over {self.ttl} s; the "
                    "cluster may have declared it down and taken its inbox over"
                )

    async def _rejoined(self) -> None:
        """The broker came back empty: register this node's names again."""
        logger.warning("node %r joined again: the broker had lost the cluster's state", self.name)
        for name, holder in list(self.directory.items()):
            if holder.node == self.name and self.system.registry.local(name) is not None:
                current = await self._retrying(
                    "register a name", self.transport.claim_name, name, holder.encode()
                )
                if current is not None:
                    logger.warning(
                        "node %r: %r was taken meanwhile by another node", self.name, name
                    )

    async def _monitor(self) -> None:
        while True:
            await self.transport.pause(self.heartbeat)
            members = await self._retrying("read the members", self.transport.members)
            for peer in members:
                if peer not in self.members and peer != self.name:
                    self._event("node_up", peer)
                    self._introduce(peer)
            self.members = members
            for peer, alive in members.items():
                if alive or peer == self.name or peer in self.down:
                    continue
                self._node_down(peer)
                if await self._retrying("declare a node down", self.transport.declare_down, peer):
                    await self._take_over(peer)

    def _introduce(self, peer: str) -> None:
        """Announce this node's names to `peer`, new here: it read the directory when it
        joined, and missed what this node registered since, before it knew of `peer`."""
        for name, holder in self.directory.items():
            if holder.node == self.name:
                data = Envelope(
                    Kind.NAME, self.name, target_name=name, payload=holder.encode(), tick=self.tick
                )
                self.post(peer, data.encode())

    def _node_down(self, peer: str) -> None:
        """`peer` stopped heartbeating: fail what waits on it, forget its names."""
        self.down.add(peer)
        self._event("node_down", peer)
        self.link(peer).fail()
        for corr, (request, ref) in list(self._asks.items()):
            if ref.node == peer:
                del self._asks[corr]
                request.resolve(
                    outcome.Error(ActorUnavailable(f"node {peer!r} went down before answering"))
                )
        for name, holder in list(self.directory.items()):
            if holder.node == peer:
                del self.directory[name]

    async def _take_over(self, peer: str) -> None:
        """Claim and handle every unacknowledged entry of `peer`'s inbox; then forget it."""
        taken = 0
        while True:
            entries = await self._retrying("claim entries", self.transport.claim, peer, BATCH)
            if not entries:
                break
            taken += len(entries)
            await self._handle(entries, claimed_from=peer)
        await self._retrying("forget a node", self.transport.forget, peer)
        logger.warning(
            "node %r declared node %r down and handled its %d unacknowledged entries",
            self.name,
            peer,
            taken,
        )

    def _event(self, event: Literal["node_up", "node_down"], peer: str) -> None:
        """Another node joined or went down: on the trace (``node_up``, ``node_down``, the
        node's name as the actor) and to lifecycle listeners (the server's ``/events``)."""
        now = trio.current_time()
        self.events.append((now, event, peer))
        detail = "joined the cluster" if event == "node_up" else "stopped heartbeating: down"
        tap = self.system.tap
        if tap is not None:
            tap.record(EventKind(event), peer, detail=detail)
        lifecycle = self.system.lifecycle
        if lifecycle.listeners:
            lifecycle.emit(event, now, peer, f"node {peer!r} {detail}")
