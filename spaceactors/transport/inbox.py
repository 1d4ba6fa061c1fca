"""What a node reads from its inbox: messages into local mailboxes, replies to the asks it
waits on, credits, name changes; and what it cannot decode, as dead letters (the bodies of
`Node`'s methods)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import outcome
import trio
import trio.testing

from spaceactors.control import ActorStatus
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.errors import (
    ActorNotFound,
    ActorUnavailable,
    DecodeError,
    InvalidTopic,
)
from spaceactors.ref import ActorRef, Ask
from spaceactors.transport import children, names, reliably, subscriptions
from spaceactors.transport.base import BATCH, POLL, BrokerUnavailable, Entry
from spaceactors.transport.remote import _StatusRequest
from spaceactors.transport.wire import (
    Envelope,
    Kind,
    decode,
    is_news,
    source_of,
    unpack_error,
    unpack_reply,
)

if TYPE_CHECKING:
    from spaceactors.transport.node import Node

logger = logging.getLogger("spaceactors.transport")

_COUNTED = (Kind.TELL, Kind.ASK, Kind.STATUS, Kind.BROADCAST, Kind.PUBLISH, Kind.RELIABLE)
"""The kinds that take a credit (they go into mailboxes)."""


_NEWS: dict[Kind, Callable[[Node, Envelope], None]] = {
    Kind.ACK: reliably.acknowledged,
    Kind.SUBSCRIBE: subscriptions.heard,
    Kind.NAME: names._name_changed,
}
"""What another node tells this one (not for an actor): a reliable stream's acknowledgement,
a subscription, a name; each raises `DecodeError` for what is none."""


async def _read(node: Node) -> None:
    """Read this node's inbox: news at once; messages, in order, to `_deliver` (the reader
    never waits for room in a mailbox, so nothing else waits behind a slow actor)."""
    transport = node.transport
    polling = node._virtual is not None  # virtual time: no read may block it
    queued = node._queued
    while True:
        try:
            if polling:
                await transport.pause(POLL)
                if node.lockstep:
                    continue  # read at the barriers
                with node._frozen():
                    entries = await transport.read(BATCH, 0.0)
            else:
                entries = await transport.read(BATCH, node.heartbeat)
        except BrokerUnavailable:
            transport.rewind()
            await node._retrying("read", transport.members)  # waits for the broker
            continue
        news: list[Entry] = []
        by_source: dict[str, list[Entry]] = {}
        for entry in entries:
            if is_news(entry.data):
                news.append(entry)
            elif (entry.node, entry.id) not in queued:  # (else read again after a rewind)
                by_source.setdefault(source_of(entry.data), []).append(entry)
        if news:
            await _handle(node, news)
        for source, messages in by_source.items():
            queued.update((entry.node, entry.id) for entry in messages)
            _deliveries(node, source).send_nowait(messages)  # (bounded by the credit windows)


def _deliveries(node: Node, source: str) -> trio.MemorySendChannel[list[Entry]]:
    """The queue of messages from node `source` (its own task puts them in mailboxes)."""
    channel = node._deliveries.get(source)
    if channel is None:
        channel, receive = trio.open_memory_channel[list[Entry]](math.inf)
        node._deliveries[source] = channel
        assert node._nursery is not None
        node._nursery.start_soon(_deliver, node, source, receive)
    return channel


async def _deliver(
    node: Node, source: str, receive: trio.MemoryReceiveChannel[list[Entry]]
) -> None:
    """Put the messages from `source` the reader queued in their mailboxes, in order, waiting
    for room; acknowledge them and give their credits back once they are in. One task per
    node that sends here: a full mailbox holds back only what that node sent."""
    async for entries in receive:
        await _handle(node, entries, source=source)
        node._queued.difference_update((entry.node, entry.id) for entry in entries)


async def _handle(
    node: Node, entries: list[Entry], claimed_from: str | None = None, source: str | None = None
) -> None:
    """Dispatch `entries`, acknowledge them, give back their credits (only `source`'s, if
    given: another node's messages may still be on their way into a mailbox)."""
    if not entries:
        return
    for entry in entries:
        await _dispatch(node, entry, claimed_from)
    if node.lockstep:
        node._unacked += entries  # (at the next barrier: no broker call mid-tick)
    else:
        await _acknowledge(node, entries)
    if not node._owed:
        return
    if source is None:
        owed, node._owed = node._owed, {}
    else:
        owed = {source: node._owed.pop(source)} if source in node._owed else {}
    for peer, credits in owed.items():
        if peer not in node.down:
            node.post(peer, Envelope(Kind.CREDIT, node.name, credits, tick=node.tick).encode())


async def _acknowledge(node: Node, entries: list[Entry]) -> None:
    ids: dict[str, list[str]] = {}
    for entry in entries:
        ids.setdefault(entry.node, []).append(entry.id)
    for inbox, some in ids.items():
        await node._retrying("acknowledge", node.transport.ack, inbox, some)


async def _dispatch(node: Node, entry: Entry, claimed_from: str | None) -> None:
    try:
        envelope = decode(entry.data)
    except DecodeError as exc:
        _malformed(node, entry, str(exc))
        return
    node.received += 1
    kind = envelope.kind
    if kind in _COUNTED and claimed_from is None:
        node._owed[envelope.source] = node._owed.get(envelope.source, 0) + 1
    if kind is Kind.REPLY or kind is Kind.FAIL:
        if claimed_from is None:
            try:
                _answered(node, envelope)
            except DecodeError as exc:  # (one nobody waits for, and no answer at all)
                _malformed(node, entry, str(exc), envelope)
        return
    if kind is Kind.CREDIT:
        if claimed_from is None:
            node.link(envelope.source).grant(envelope.corr)
        return
    heard = _NEWS.get(kind)
    if heard is not None:
        if claimed_from is None:  # (a dead node's copy: this node had its own)
            try:
                heard(node, envelope)
            except DecodeError as exc:
                _malformed(node, entry, str(exc), envelope)
        return
    if kind is Kind.BROADCAST or kind is Kind.PUBLISH:
        if claimed_from is None:  # (a dead node's: its sender's own actors had it)
            await _fan_out_here(node, entry, envelope)
        return
    if kind is Kind.SPAWN:
        if claimed_from is None and node._nursery is not None:
            node._nursery.start_soon(children.start_here, node, envelope)
        else:  # (asked of a node that died: the asker hears it went down)
            _undeliverable(node, entry, envelope, claimed_from)
        return
    if claimed_from is not None and (kind is Kind.RELIABLE or kind is Kind.SKIP):
        return  # a stranded copy: its sender's stream brings it where the actor is now
    ref = node.system.registry.local(envelope.target_name)
    if ref is None:
        if claimed_from is not None:  # a dead node's: is the actor running elsewhere now?
            moved = node.lookup(envelope.target_name)
            if moved is not None and moved.node != claimed_from:
                node.post(moved.node, entry.data)  # as sent: its answer goes to the asker
                return
        _undeliverable(node, entry, envelope, claimed_from)
        return
    if kind is Kind.STATUS:
        node._reply(envelope.source, envelope.corr, outcome.Value(ref.status()))
        return
    if kind is Kind.STOP:
        assert node._nursery is not None
        node._nursery.start_soon(_stop_local, node, ref, envelope)
        return
    if kind is Kind.RELIABLE or kind is Kind.SKIP:
        try:
            if kind is Kind.SKIP:
                reliably.skipped(node, ref, envelope)
            else:
                await reliably.deliver(node, ref, envelope)
        except DecodeError as exc:
            _malformed(node, entry, str(exc), envelope)
        except ActorUnavailable:
            pass  # stopped: a dead letter (the sender's retries find it stopped, then fail)
        return
    try:
        message = node.codec.decode(envelope.payload, "msgpack")
    except DecodeError as exc:
        _malformed(node, entry, str(exc), envelope)
        if kind is Kind.ASK:
            node._reply(envelope.source, envelope.corr, outcome.Error(exc))
        return
    if kind is Kind.ASK:
        source, corr = envelope.source, envelope.corr
        message = Ask(message, lambda result: node._reply(source, corr, result))
    try:
        await ref.send(message)
    except ActorUnavailable as exc:  # recorded as a dead letter by the actor's cell
        if kind is Kind.ASK:
            node._reply(envelope.source, envelope.corr, outcome.Error(exc))


def _malformed(node: Node, entry: Entry, problem: str, envelope: Envelope | None = None) -> None:
    node.malformed += 1
    target = f"inbox of node {entry.node!r}"
    if envelope is not None and envelope.target_name:
        target = envelope.target_name
    logger.warning("node %r: entry %s: %s", node.name, entry.id, problem)
    node.system.dead_letters.record(
        DeadLetter(
            trio.current_time(),
            target,
            bytes(entry.data[:256]),
            DeadLetterReason.MALFORMED_ENTRY,
            f"entry {entry.id}: {problem}",
            node=envelope.source if envelope is not None else entry.node,
        )
    )


def _undeliverable(node: Node, entry: Entry, envelope: Envelope, claimed_from: str | None) -> None:
    where = claimed_from or node.name
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
        message: object = node.codec.decode(envelope.payload, "msgpack")
    except DecodeError as exc:
        if envelope.kind in (Kind.TELL, Kind.ASK):  # a message that is none: malformed,
            _malformed(node, entry, str(exc), envelope)  # wherever it was bound
            if envelope.kind is Kind.ASK:
                node._reply(envelope.source, envelope.corr, outcome.Error(exc))
            return
        message = envelope.payload  # (STATUS, STOP: no payload)
    node.system.dead_letters.record(
        DeadLetter(trio.current_time(), envelope.target_name, message, reason, detail, node=where)
    )
    if envelope.kind in (Kind.ASK, Kind.STATUS, Kind.STOP):
        node._reply(envelope.source, envelope.corr, outcome.Error(error))


def _answered(node: Node, envelope: Envelope) -> None:
    waiting = node._asks.pop(envelope.corr, None)
    if waiting is None:  # the asker's node forgot it (it gave up, or its target's node
        if envelope.kind is Kind.REPLY:  # went down): dropped, once known to be an answer
            unpack_reply(node.codec, envelope.payload)  # DecodeError: malformed
        else:
            unpack_error(envelope.payload)
        return
    request, ref = waiting
    try:
        if envelope.kind is Kind.REPLY:
            value = unpack_reply(node.codec, envelope.payload)
            if type(request.message) is _StatusRequest and isinstance(value, ActorStatus):
                ref._cell.last_status = value  # type: ignore[attr-defined]
            result: outcome.Outcome[Any] = outcome.Value(value)
        else:
            result = outcome.Error(unpack_error(envelope.payload))
    except DecodeError as exc:
        result = outcome.Error(exc)
    if not request.resolve(result) and isinstance(result, outcome.Value):
        node.system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                envelope.source,
                result.value,
                DeadLetterReason.REPLY_AFTER_TIMEOUT,
                "the asker gave up",
                node=envelope.source,
            )
        )


async def _stop_local(node: Node, ref: ActorRef, envelope: Envelope) -> None:
    try:
        await ref.stop()
        await node._release_now(ref.name)  # free cluster-wide once the stop returns
    except Exception as exc:
        node._reply(envelope.source, envelope.corr, outcome.Error(exc))
    else:
        node._reply(envelope.source, envelope.corr, outcome.Value(None))


async def _fan_out_here(node: Node, entry: Entry, envelope: Envelope) -> None:
    """Another node's broadcast or publish, to the actors of this one."""
    try:
        message = node.codec.decode(envelope.payload, "msgpack")
    except DecodeError as exc:
        _malformed(node, entry, str(exc), envelope)
        return
    router = node.system.router
    try:
        if envelope.kind is Kind.BROADCAST:
            await router.broadcast_here(message)
        else:
            await router.publish_here(envelope.target_name, message)
    except (ActorUnavailable, InvalidTopic) as exc:  # (this node is stopping; a bad topic)
        _malformed(node, entry, str(exc), envelope)
