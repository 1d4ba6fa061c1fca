"""Reliable delivery across nodes: a stream's sender end on one node, its receiver end on another.

`spaceactors.reliable` numbers, retries and settles a stream's messages on the sending node as
it does for an actor of the same process (the sender end lives in the remote ref's
`RemoteReceiver`). The receiving node keeps the receiver end, a `Stream` in the receiving
actor's `ReceiverState` under ``((source node, stream id), ordered)``, so de-duplication and
order work there exactly as in one process. Three envelope kinds carry what the two ends say:

- ``RELIABLE`` ``[stream id, number, ordered, message id, floor, message]``: a transmission.
  ``floor``: every number below it is settled as far as the sender knows (acknowledged, or
  given up); a receiver end that starts anew (the actor's first message from that stream, or
  its new incarnation on another node after a failover) starts from there.
- ``ACK`` ``[stream id, low, sacked, in hand]``: the receiver's acknowledgement (the mark and
  the numbers settled out of order, as in one process), and the numbers it is handling now
  or holds for order: a retry falling due for those is no lost attempt.
- ``SKIP`` ``[stream id, number, ordered]``: the sender gave up on a number (it failed after
  its retries, its first transmission was cancelled, or it could not be encoded).

Each message is acknowledged as soon as it is handled (in one process the sender sees the
receiver end, and batches suffice; across nodes a late acknowledgement would cost retries). A
copy that arrives already settled is acknowledged again at once (the first acknowledgement may
have gone down with a node). The sender end also tracks what is settled (its own receiver
fields: acknowledged or given up), which is the ``floor`` it sends.

**When the receiving actor's node goes down**, the stream's ref follows the actor's name to
its new incarnation (`RemoteRef`), so the retries go there, starting a receiver end from the
sender's floor. The dead node's stranded ``RELIABLE`` and ``SKIP`` entries are not forwarded:
they carry the floor of when they were sent, and the sender's retries bring each unsettled
message again. Exactly-once holds while both nodes live; a message the dead node had handled
but not yet acknowledged is handled again by the new incarnation (at least once, as in Akka's
reliable delivery without a durable queue).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import msgpack
import trio

from spaceactors.checks import short_repr
from spaceactors.errors import ActorUnavailable, DecodeError, MailboxFull
from spaceactors.receiver import ReceiverState, Reliably, Stream
from spaceactors.transport.wire import Envelope, Kind, packb

if TYPE_CHECKING:
    from spaceactors.ref import ActorRef
    from spaceactors.transport.node import Node


# --- the sending node -------------------------------------------------------------------------


def encode(node: Node, ref: ActorRef, envelope: Reliably) -> bytes:
    """The ``RELIABLE`` entry of a transmission of `envelope` to `ref` (on another node).

    Raises:
        EncodeError: the message cannot be encoded.
    """
    stream = envelope.stream
    message = node.codec.encode(envelope.message, "msgpack")
    payload = packb(
        [stream.id, envelope.seq, stream.ordered, envelope.message_id, stream.low, message]
    )
    node.streams[stream.id] = stream  # its acknowledgements find it (until nothing is unsettled)
    sender = None if stream.sender is None else stream.sender.name
    return Envelope(
        Kind.RELIABLE, node.name, 0, ref.id, ref.name, sender, payload, node.tick
    ).encode()


def acknowledged(node: Node, envelope: Envelope) -> None:
    """An ``ACK`` from the node of a stream's receiver.

    Raises:
        DecodeError: not an acknowledgement.
    """
    stream_id, low, sacked, in_hand = _fields(envelope, "an acknowledgement", int, int, list, list)
    if not all(type(seq) is int for seq in [*sacked, *in_hand]):
        raise DecodeError(f"an acknowledgement's numbers must be ints, got {short_repr(sacked)}")
    stream = node.streams.get(stream_id)
    if stream is None:
        return  # settled already: a late or repeated acknowledgement
    top = stream.next_seq  # (numbers never sent are not acknowledged, whatever it says)
    low = min(low, top)
    sacked = [seq for seq in sacked if low <= seq < top and not stream.settled(seq)]
    for seq in sacked:
        stream.settle(seq)
    stream.advance(low)  # the sender end's record of what is settled: the next floor
    receiver = stream.ref._cell._receiver
    busy = getattr(receiver, "busy", None)
    if busy is not None:
        for seq in in_hand:
            held = stream.unacked.get(seq)
            if held is not None:
                busy.add(held.message_id)
    node.system.reliable.acknowledge(stream, low, sacked)
    if not stream.unacked:
        del node.streams[stream_id]


def skip(node: Node, stream: Stream, seq: int) -> None:
    """The sender gave up on number `seq` of `stream`: settled here, and ``SKIP`` to the
    receiver's node (if it is up: a new incarnation starts from the floor)."""
    if not stream.settled(seq):
        stream.settle(seq)
    given_up = stream.unacked.get(seq)
    if given_up is not None and given_up.settled_at is not None:
        del stream.unacked[seq]  # (its acknowledgement may never come: its node may be down)
        if not stream.unacked:
            node.streams.pop(stream.id, None)  # nothing unsettled: no acknowledgement to await
    ref = stream.ref
    where = getattr(ref, "node", None)
    if where is None or where in node.down:
        return
    payload = packb([stream.id, seq, stream.ordered])
    node.post(where, Envelope(Kind.SKIP, node.name, 0, ref.id, ref.name, payload=payload).encode())


# --- the receiving node -----------------------------------------------------------------------


async def deliver(node: Node, ref: ActorRef, envelope: Envelope) -> None:
    """A ``RELIABLE`` entry for the actor `ref` of this node.

    Raises:
        DecodeError: a malformed transmission, or a message that cannot be decoded.
    """
    stream_id, seq, ordered, message_id, floor, data = _fields(
        envelope, "a reliable message", int, int, bool, int, int, bytes
    )
    message = node.codec.decode(data, "msgpack")
    receiver = ref._cell.receiver
    stream = _receiver_end(node, receiver, ref, envelope.source, stream_id, ordered, floor)
    reliable = node.system.reliable
    if stream.settled(seq):  # a copy: acknowledge again (the first one may have been lost)
        reliable.state.duplicates += 1
        _acknowledge(node, envelope.source, stream, stream.low, [] if seq < stream.low else [seq])
        return
    queued = stream.queued
    if queued is None:
        queued = stream.queued = {}
    incarnation = ref._cell.restarts  # (a crash while handling settles nothing: a copy
    if queued.get(seq) == incarnation or seq in stream.held:  # after a restart goes in)
        # In hand (in the mailbox, held for its turn, or being handled): its retry is no
        # lost attempt, and the copy is not queued again.
        _acknowledge(node, envelope.source, stream, stream.low, [], [seq])
        return
    envelope_here = Reliably(message_id, message, stream, seq, None, trio.current_time())
    envelope_here.more()  # acknowledged as soon as it is handled: its sender cannot look
    queued[seq] = incarnation
    try:
        await ref.send(envelope_here)
    except BaseException:
        queued.pop(seq, None)
        raise


def skipped(node: Node, ref: ActorRef, envelope: Envelope) -> None:
    """A ``SKIP`` for the actor `ref` of this node: settle the number unhandled.

    Raises:
        DecodeError: not a skip.
    """
    stream_id, seq, ordered = _fields(envelope, "a skip", int, int, bool)
    receiver = ref._cell.receiver
    stream = _receiver_end(node, receiver, ref, envelope.source, stream_id, ordered, 0)
    handling = receiver.handling
    if handling is not None and handling.stream is stream and handling.seq == seq:
        return  # given up while it was being handled: it settles (and is acknowledged) as such
    ready = receiver.skip(stream, seq)
    receiver.flush()
    if ready is not None:
        _hand_over(ref, ready)


def forget(node: Node, peer: str) -> None:
    """`peer` is down: the receiver ends of its streams here go (their sender is gone)."""
    for ref in node.system.registry.refs():
        receiver = ref._cell._receiver
        if receiver is None:
            continue
        for key in [k for k in receiver.streams if type(k[0]) is tuple and k[0][0] == peer]:
            del receiver.streams[key]


def _receiver_end(
    node: Node,
    receiver: ReceiverState,
    ref: ActorRef,
    source: str,
    stream_id: int,
    ordered: bool,
    floor: int,
) -> Stream:
    key = ((source, stream_id), ordered)
    stream = receiver.streams.get(key)
    if stream is None:
        stream = receiver.streams[key] = Stream(stream_id, ref, None, ordered)
        stream.remote_ack = functools.partial(_post_ack, node, source)
    if floor > stream.low:  # settled elsewhere (acknowledged by an earlier incarnation)
        stream.advance(floor)
        ready = stream.held.pop(stream.low, None)
        if ready is not None:
            _hand_over(ref, ready)
    return stream


def _post_ack(node: Node, source: str, stream: Stream, low: int, sacked: list[int]) -> None:
    """`Reliable.acknowledge` for a receiver end whose sender is on node `source`: what it
    settles is no longer in hand."""
    queued = stream.queued
    if queued:
        if low - stream.acked <= len(queued):  # (`acked`: the mark last sent, here)
            settled: Iterable[int] = range(stream.acked, low)
        else:  # (a mark far ahead: the floor a new receiver end started from)
            settled = [seq for seq in queued if seq < low]
        for seq in [*settled, *sacked]:
            queued.pop(seq, None)
    stream.acked = max(stream.acked, low)
    _acknowledge(node, source, stream, low, sacked)


def _acknowledge(
    node: Node,
    source: str,
    stream: Stream,
    low: int,
    sacked: list[int],
    in_hand: list[int] | None = None,
) -> None:
    if source in node.down:
        return
    payload = packb([stream.id, low, sacked, in_hand or []])
    node.post(source, Envelope(Kind.ACK, node.name, payload=payload, tick=node.tick).encode())


def _hand_over(ref: ActorRef, envelope: Reliably) -> None:
    # A full or closed mailbox: the envelope's own retries bring it back.
    with contextlib.suppress(MailboxFull, ActorUnavailable):
        ref.try_send(envelope)


def _fields(envelope: Envelope, what: str, *kinds: type) -> list[Any]:
    try:
        value = msgpack.unpackb(envelope.payload, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several kinds for bad bytes
        raise DecodeError(f"{what} is not msgpack: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) != len(kinds)
        or not all(type(v) is k for v, k in zip(value, kinds, strict=True))
    ):
        shape = ", ".join(k.__name__ for k in kinds)
        raise DecodeError(f"{what} must be [{shape}], got {short_repr(value)}")
    if any(type(v) is int and v < 0 for v in value):
        raise DecodeError(f"{what}'s numbers must be >= 0, got {short_repr(value)}")
    return value
