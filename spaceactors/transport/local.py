"""The in-process backend: a broker held in memory, for several nodes in one Trio run.

It keeps the semantics of Redis Streams that nodes depend on (consumer-group pending entries,
claims, heartbeat keys with a time to live on the run's clock), so the node protocol is tested
in virtual time against it and against Redis by the same conformance tests. A single node
never needs it: local sends never touch a transport.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs
import trio

from spaceactors.transport.base import (
    Beat,
    BrokerUnavailable,
    Entry,
    NodeNameTaken,
    Passage,
    Transport,
)
from spaceactors.transport.wire import holder_node, is_news


@attrs.define
class _Stream:
    entries: dict[str, bytes] = attrs.field(factory=dict)  # every unacknowledged entry
    unread: list[str] = attrs.field(factory=list)
    owner: dict[str, str] = attrs.field(factory=dict)  # entry id -> consumer that read it
    arrived: trio.Event = attrs.field(factory=trio.Event)


class LocalBroker:
    """A broker in memory. ``broker.connect("a")`` gives node ``a`` its `Transport`.

    `down` makes every call fail with `BrokerUnavailable` until `up` (to test outages).
    """

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self._alive: dict[str, float] = {}  # node -> heartbeat deadline (the run's clock)
        self._members: set[str] = set()
        self._down: dict[str, str] = {}  # a node declared down -> the node taking it over
        self._names: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._connections: dict[str, list[LocalTransport]] = {}
        self._barriers: dict[str, tuple[int, trio.Event, bool]] = {}  # (arrived, done, halted)
        self._halts: set[str] = set()
        self._left: set[str] = set()
        self.available = True

    def connect(self, node: str) -> LocalTransport:
        """A transport for the node `node`."""
        transport = LocalTransport(self, node)
        self._connections.setdefault(node, []).append(transport)
        return transport

    def down(self) -> None:
        """Fail every call from now on, as a broker that went away."""
        self.available = False

    def up(self) -> None:
        """Answer calls again."""
        self.available = True
        for stream in self._streams.values():
            stream.arrived.set()

    def sever(self, node: str) -> None:
        """Cut `node`'s connections off from now on, as a process that died (it leaves
        nothing cleanly). A node that connects under its name later is a new process."""
        for transport in self._connections.pop(node, []):
            transport.severed = True

    def check(self, transport: LocalTransport) -> None:
        if not self.available or transport.severed:
            raise BrokerUnavailable("the in-process broker is down")

    def alive(self, node: str) -> bool:
        deadline = self._alive.get(node)
        return deadline is not None and trio.current_time() < deadline

    def stream(self, node: str) -> _Stream:
        stream = self._streams.get(node)
        if stream is None:
            stream = self._streams[node] = _Stream()
        return stream

    def new_id(self) -> str:
        return f"{int(trio.current_time() * 1000)}-{next(self._ids)}"


class LocalTransport(Transport):
    """Node `node`'s connection to a `LocalBroker`."""

    real_time = False

    def __init__(self, broker: LocalBroker, node: str) -> None:
        self.node = node
        self._broker = broker
        self._rewound = True
        self.severed = False

    async def _call(self) -> LocalBroker:
        await trio.lowlevel.checkpoint()
        self._broker.check(self)
        return self._broker

    async def join(self, ttl: float) -> None:
        broker = await self._call()
        if broker.alive(self.node):
            raise NodeNameTaken(f"a node named {self.node!r} is alive in the cluster already")
        broker._alive[self.node] = trio.current_time() + ttl
        broker._members.add(self.node)
        broker._down.pop(self.node, None)
        broker._left.discard(self.node)
        broker.stream(self.node)
        self._rewound = True

    async def beat(self, ttl: float) -> Beat:
        broker = await self._call()
        if not broker.alive(self.node):
            return "lost"  # this broker never forgets: an expired key may be declared down
        broker._alive[self.node] = trio.current_time() + ttl
        return "kept"

    async def leave(self) -> None:
        broker = await self._call()
        broker._alive.pop(self.node, None)
        broker._members.discard(self.node)
        broker._left.add(self.node)
        broker._streams.pop(self.node, None)  # (nobody takes a left node over)
        for name, holder in list(broker._names.items()):
            if holder_node(holder) == self.node:
                del broker._names[name]

    async def has_left(self, node: str) -> bool:
        broker = await self._call()
        return node in broker._left

    async def members(self) -> dict[str, bool]:
        broker = await self._call()
        return {node: broker.alive(node) for node in sorted(broker._members)}

    async def declare_down(self, node: str) -> bool:
        broker = await self._call()
        holder = broker._down.get(node)
        if broker.alive(node) or holder == self.node:
            return False
        if holder is not None and broker.alive(holder):
            return False  # taken over by a live node
        broker._down[node] = self.node
        return True

    async def forget(self, node: str) -> None:
        broker = await self._call()
        for name, holder in list(broker._names.items()):
            if holder_node(holder) == node:
                del broker._names[name]

    async def retire(self, node: str) -> None:
        broker = await self._call()
        broker._members.discard(node)
        broker._streams.pop(node, None)

    async def append(self, batch: Sequence[tuple[str, bytes]]) -> None:
        broker = await self._call()
        for node, data in batch:
            if node not in broker._streams and is_news(data):
                continue  # (news to a node that has gone)
            stream = broker.stream(node)
            entry_id = broker.new_id()
            stream.entries[entry_id] = bytes(data)
            stream.unread.append(entry_id)
            stream.arrived.set()

    async def read(self, count: int, block: float) -> list[Entry]:
        broker = await self._call()
        stream = broker.stream(self.node)
        if self._rewound:
            self._rewound = False
            mine = [i for i, owner in stream.owner.items() if owner == self.node][:count]
            if mine:
                return [Entry(i, stream.entries[i], self.node) for i in mine]
        if not stream.unread and block > 0:
            stream.arrived = trio.Event()
            with trio.move_on_after(block):
                await stream.arrived.wait()
            broker.check(self)
        taken, stream.unread = stream.unread[:count], stream.unread[count:]
        for entry_id in taken:
            stream.owner[entry_id] = self.node
        return [Entry(i, stream.entries[i], self.node) for i in taken]

    def rewind(self) -> None:
        self._rewound = True

    async def ack(self, node: str, ids: Sequence[str]) -> None:
        broker = await self._call()
        stream = broker.stream(node)
        for entry_id in ids:
            stream.entries.pop(entry_id, None)
            stream.owner.pop(entry_id, None)

    async def claim(self, node: str, count: int) -> list[Entry]:
        broker = await self._call()
        stream = broker.stream(node)
        # As XAUTOCLAIM: pending entries (read by the dead node, never acknowledged), then,
        # since nobody reads that inbox any more, the ones it never read.
        ids = [i for i, owner in stream.owner.items() if owner != self.node][:count]
        if len(ids) < count:
            more = stream.unread[: count - len(ids)]
            stream.unread = stream.unread[len(more) :]
            ids += more
        for entry_id in ids:
            stream.owner[entry_id] = self.node
        return [Entry(i, stream.entries[i], node) for i in ids]

    async def barrier(
        self, key: str, count: int, patience: float, halt: str | None = None
    ) -> Passage:
        broker = await self._call()
        arrived, done, _ = broker._barriers.get(key, (0, trio.Event(), False))
        arrived += 1
        halted = halt is not None and halt in broker._halts
        broker._barriers[key] = (arrived, done, halted)
        if arrived >= count:
            done.set()
        with trio.move_on_after(patience):
            await done.wait()
        if not done.is_set():
            return "late"
        return "halt" if broker._barriers[key][2] else "all"

    async def raise_halt(self, halt: str) -> None:
        broker = await self._call()
        broker._halts.add(halt)

    async def claim_name(self, name: str, holder: bytes) -> bytes | None:
        broker = await self._call()
        current = broker._names.get(name)
        if current is None or holder_node(current) == self.node:
            broker._names[name] = holder
            return None
        return current

    async def release_name(self, name: str, holder: bytes) -> None:
        broker = await self._call()
        if broker._names.get(name) == holder:
            del broker._names[name]

    async def name(self, name: str) -> bytes | None:
        broker = await self._call()
        return broker._names.get(name)

    async def names(self) -> dict[str, bytes]:
        broker = await self._call()
        return dict(broker._names)
