"""Reliable streams: the `Reliably` envelope, the `Stream` it travels on, and each receiver's state.

Every reliable message travels on a *stream*: one per (sender, receiver, ordered or not), as
in TCP and Akka's reliable delivery. The sender numbers the stream's messages 0, 1, 2, ...; the
receiver keeps a high-water mark (``low``: every number below it is settled) and the set of
numbers above it that are settled out of order. That is the whole de-duplication state: a copy
whose number is below the mark or in the set is a duplicate, at any load, and the set only holds
numbers of messages sent after one that is still in flight, so its size is bounded by what is in
flight, never by a window of recent ids.

*Settled* at the receiver means handled (``handle`` returned) or given up by the sender (it
failed after its retries, or its first transmission was cancelled): a late copy of either is not
handled. The receiver acknowledges cumulatively and in batches: per stream, the mark and the
numbers settled out of order since its last acknowledgement (TCP's selective acknowledgement),
once per mailbox drain, every `spaceactors.actor.CHECKPOINT_EVERY` messages, when somebody waits
for the message, and when a retry of it falls due.

In this process both ends of a stream live in one `Stream` object, owned by the receiving actor's
`ReceiverState` (kept across its restarts); `spaceactors.reliable` is the sending side.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import trio

    from spaceactors.delivery import Scheduled
    from spaceactors.errors import SpaceActorsError
    from spaceactors.ref import ActorRef

MessageId = int
"""The id `Reliable.send` gives a message (1, 2, 3, ... per system); pass it to `delivered`."""


class Reliably:
    """A reliably sent message in a mailbox (handled by the runtime, never by `handle`).

    The same object is the sender's record of the message: retries send it again, and its
    outcome (``settled_at``, and ``extra.error`` for a failure) is written on it once, when it
    is acknowledged or fails.
    """

    __slots__ = (
        "attempts",
        "checks",
        "extra",
        "message",
        "message_id",
        "seq",
        "settled_at",
        "started",
        "stream",
    )

    def __init__(
        self,
        message_id: MessageId,
        message: object,
        stream: Stream,
        seq: int,
        checks: Any,
        started: float,
    ) -> None:
        self.message_id = message_id
        self.message = message
        self.stream = stream
        self.seq = seq  # its number in the stream
        self.checks = checks  # the sender's retry options (`spaceactors.reliable`)
        self.started = started  # when `send` was called
        self.attempts = 1  # transmissions so far
        self.settled_at: float | None = None  # when it was acknowledged, failed or withdrawn
        self.extra: Extra | None = None  # what only some messages need

    def more(self) -> Extra:
        """`extra`, made on first use."""
        if self.extra is None:
            self.extra = Extra()
        return self.extra

    def __repr__(self) -> str:
        return f"Reliably(message_id={self.message_id}, message={self.message!r})"


class Extra:
    """What only some reliable messages need (kept apart, so that a plain one costs less)."""

    __slots__ = ("done", "error", "held", "timer", "topic")

    def __init__(self) -> None:
        self.timer: Scheduled | None = None  # its retry timer, once its first check found it late
        self.done: trio.Event | None = None  # made when someone waits in `delivered`
        self.held: list[Scheduled] | None = None  # copies a fault holds back (off once settled)
        self.error: SpaceActorsError | None = None  # why it failed (or was withdrawn)
        self.topic: str | None = None  # the topic it was published to, if any


class Stream:
    """One sender→receiver stream of reliable messages: both ends' state, in this process."""

    __slots__ = (
        "acked",
        "ends",
        "held",
        "id",
        "low",
        "next_seq",
        "ordered",
        "queued",
        "ref",
        "remote_ack",
        "sacked",
        "sender",
        "starts",
        "touched",
        "unacked",
    )

    def __init__(self, stream_id: int, ref: ActorRef, sender: ActorRef | None, ordered: bool):
        self.id = stream_id
        self.ref = ref  # the receiver
        self.sender = sender
        self.ordered = ordered
        # The sender's end: the next number, the messages not yet settled by number, and how
        # far the cumulative acknowledgement has reached (every number below is settled).
        self.next_seq = 0
        self.unacked: dict[int, Reliably] = {}
        self.acked = 0
        # The receiver's end: every number below `low` is settled, and so is every number in
        # the runs ``[starts[i], ends[i])`` above it (sorted, disjoint, with gaps between):
        # as many runs as gaps, and a gap is a message still in flight.
        self.low = 0
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.held: dict[int, Reliably] = {}  # ordered streams: arrived early, waiting for `low`
        self.sacked: list[int] = []  # settled out of order since the last acknowledgement
        self.touched = False  # settled something since the last acknowledgement
        # A receiver end whose sender is on another node: how its acknowledgements travel
        # there (`spaceactors.transport.reliably`); None in one process.
        self.remote_ack: Callable[[Stream, int, list[int]], None] | None = None
        # A receiver end whose sender is on another node: the numbers in the mailbox or being
        # handled, with the actor's restart count when they went in.
        self.queued: dict[int, int] | None = None

    def forget_if_idle(self) -> None:
        """The sender has stopped: if nothing of it is in flight, the receiver forgets the
        stream (copies still queued hold it through their envelopes, so they are still
        recognised; a later send with this sender opens a new stream)."""
        receiver = self.ref._cell._receiver
        if self.unacked or receiver is None or self.sender is None:
            return
        key = (self.sender.id, self.ordered)
        if receiver.streams.get(key) is self:
            del receiver.streams[key]

    def settled(self, seq: int) -> bool:
        """Whether number `seq` was handled or given up here (a copy is a duplicate)."""
        if seq < self.low:
            return True
        starts = self.starts
        if not starts:
            return False
        run = bisect.bisect_right(starts, seq) - 1
        return run >= 0 and seq < self.ends[run]

    def settle(self, seq: int) -> None:
        """Number `seq` (not settled yet) is handled or given up here."""
        starts, ends = self.starts, self.ends
        if seq == self.low:  # the mark moves past it, and past a run that follows on
            seq += 1
            if starts and starts[0] == seq:
                seq = ends[0]
                del starts[0], ends[0]
            self.low = seq
        elif ends and ends[-1] == seq:  # the commonest gap: messages go on after a lost one
            ends[-1] = seq + 1
        else:
            run = bisect.bisect_right(starts, seq)
            joins_before = run > 0 and ends[run - 1] == seq
            joins_after = run < len(starts) and starts[run] == seq + 1
            if joins_before and joins_after:  # it fills the gap between two runs
                ends[run - 1] = ends[run]
                del starts[run], ends[run]
            elif joins_before:
                ends[run - 1] = seq + 1
            elif joins_after:
                starts[run] = seq
            else:
                starts.insert(run, seq)
                ends.insert(run, seq + 1)

    def advance(self, mark: int) -> None:
        """Every number below `mark` is settled (somebody else said so: the sender, for a
        receiver end started anew on another node); held envelopes below it are dropped."""
        if mark <= self.low:
            return
        starts, ends = self.starts, self.ends
        while starts and starts[0] <= mark:  # runs the mark reaches: it moves past them
            mark = max(mark, ends[0])
            del starts[0], ends[0]
        self.low = mark
        for seq in [seq for seq in self.held if seq < mark]:
            del self.held[seq]

    def gaps(self) -> int:
        """How many runs of settled numbers lie above the mark (one per gap before them)."""
        return len(self.starts)


Acknowledge = Callable[[Stream, int, list[int]], None]
"""How a receiver acknowledges: ``(stream, low, sacked)``: every number below `low` is settled,
and so is each number in `sacked` (settled out of order since the last acknowledgement)."""


class ReceiverState:
    """What one actor keeps of reliable delivery, across its restarts: the streams into it."""

    __slots__ = ("acknowledge", "handling", "streams", "touched")

    def __init__(self, acknowledge: Acknowledge) -> None:
        self.acknowledge = acknowledge
        # By (sender id, ordered); a sender on another node: ((its node, stream id), ordered).
        self.streams: dict[tuple[object, bool], Stream] = {}
        self.handling: Reliably | None = None  # the reliable message `handle` is busy with
        self.touched: list[Stream] = []  # streams with settlements not yet acknowledged

    def settle(self, envelope: Reliably) -> None:
        """`envelope` was handled: settle its number; acknowledge now if somebody may wait
        for it (otherwise with the rest of the batch)."""
        stream = envelope.stream
        seq = envelope.seq
        if seq != stream.low:
            stream.sacked.append(seq)
        stream.settle(seq)
        if not stream.touched:
            stream.touched = True
            self.touched.append(stream)
        if envelope.extra is not None:  # somebody may wait for it: acknowledge now
            self.flush()

    def flush(self) -> None:
        """Acknowledge every stream settled since the last acknowledgement, one ack each."""
        touched = self.touched
        if not touched:
            return
        self.touched = []
        acknowledge = self.acknowledge
        for stream in touched:
            stream.touched = False
            sacked = stream.sacked
            if sacked:
                stream.sacked = []
            acknowledge(stream, stream.low, sacked)

    def in_hand(self, envelope: Reliably) -> bool:
        """Whether `envelope` is being handled now, or held for its turn (a retry falling due
        for it is no lost attempt)."""
        return self.handling is envelope or envelope.stream.held.get(envelope.seq) is envelope

    def close(self) -> None:
        """The actor stopped for good: acknowledge what it handled, and let go of what its
        ordered streams held (their retries find it stopped, then fail; or, if it is started
        again, bring them in order). Its streams stay with its ref, so that a restart keeps
        their order and their memory of what was handled; senders stop counting them as
        theirs, so a sender keeps no actor alive that has stopped."""
        self.flush()
        for stream in self.streams.values():
            stream.held.clear()
            sender = stream.sender
            if sender is not None and sender._cell.outbound:
                sender._cell.outbound.discard(stream)

    def skip(self, stream: Stream, seq: int) -> Reliably | None:
        """The sender gave up on `seq` (it failed, or was never sent): settle it without
        handling it. Returns the held envelope of an ordered stream that is now due, if any."""
        if stream.settled(seq):
            return None
        stream.held.pop(seq, None)
        if not stream.touched:  # the next acknowledgement covers it, for the sender's tally
            stream.touched = True
            self.touched.append(stream)
        if seq != stream.low:
            stream.sacked.append(seq)
            stream.settle(seq)
            return None
        stream.settle(seq)
        return stream.held.pop(stream.low, None)
