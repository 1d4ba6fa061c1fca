"""The receiving side of reliable delivery: the `Reliably` envelope and what an actor remembers.

Each actor's `ReceiverState` (kept across its restarts) holds the ids it handled in a bounded
window (`DEDUP_WINDOW`), so a duplicate inside that window is acknowledged again, not handled;
and, for ``ordered=True`` sends, each stream's next sequence number and the messages that arrived
early and wait for the gap to fill. `spaceactors.reliable` is the sending side.
"""

from __future__ import annotations

import collections

import attrs

MessageId = int
"""The id `Reliable.send` gives a message (1, 2, 3, ... per system); pass it to `delivered`."""
DEDUP_WINDOW = 4096
"""How many recent reliable message ids each actor remembers to suppress duplicates."""


@attrs.define(eq=False)  # not frozen: a frozen init costs three times as much on this hot path
class Reliably:
    """A reliably sent message in a mailbox (handled by the runtime, never by `handle`).

    Never changed once made: retries send the same envelope again.
    """

    message_id: MessageId
    message: object
    stream: int | None = None  # with ordering: which (sender, target) stream ...
    seq: int = 0  # ... and its position in it


@attrs.define
class ReceiverState:
    """What one actor remembers about reliable messages, across its restarts."""

    window: int = DEDUP_WINDOW
    handling: MessageId | None = None  # the reliable message `handle` is busy with
    _seen: collections.OrderedDict[MessageId, None] = attrs.field(factory=collections.OrderedDict)
    _expected: dict[int, int] = attrs.field(factory=dict)
    _held: dict[int, dict[int, Reliably]] = attrs.field(factory=dict)
    _skipped: dict[int, set[int]] = attrs.field(factory=dict)

    def seen(self, message_id: MessageId) -> bool:
        """Whether `message_id` was already handled or settled (within the window)."""
        return message_id in self._seen

    def holds(self, envelope: Reliably) -> bool:
        """Whether `envelope` arrived early and waits here for its turn."""
        if envelope.stream is None:
            return False
        return envelope.seq in self._held.get(envelope.stream, {})

    def remember(self, message_id: MessageId) -> None:
        """Record `message_id` as handled, forgetting the oldest beyond the window."""
        self._seen[message_id] = None
        if len(self._seen) > self.window:
            self._seen.popitem(last=False)

    def admit(self, envelope: Reliably) -> list[Reliably]:
        """The envelopes to handle now, in order: none if `envelope` came early (held)."""
        if envelope.stream is None:
            return [envelope]
        stream = envelope.stream
        expected = self._expected.get(stream, 0)
        if envelope.seq != expected:
            if envelope.seq > expected:
                self._held.setdefault(stream, {})[envelope.seq] = envelope
            return []
        return [envelope, *self._release(stream, self._next(stream, envelope.seq + 1))]

    def handled(self, envelope: Reliably) -> None:
        """`envelope` was handled: the stream moves past it (and past skipped slots)."""
        if envelope.stream is not None:
            self._move_to(envelope.stream, self._next(envelope.stream, envelope.seq + 1))

    def skip(self, stream: int, seq: int) -> list[Reliably]:
        """The sender gave up on `seq`: never wait for it. Returns held envelopes now due."""
        self._skipped.setdefault(stream, set()).add(seq)
        self._held.get(stream, {}).pop(seq, None)
        expected = self._expected.get(stream, 0)
        moved = self._next(stream, expected)
        if moved == expected:
            return []
        self._move_to(stream, moved)
        return self._release(stream, moved)

    def due(self, envelope: Reliably) -> list[Reliably]:
        """Held envelopes of `envelope`'s stream that its current position has reached."""
        if envelope.stream is None:
            return []
        return self._release(envelope.stream, self._expected.get(envelope.stream, 0))

    def _next(self, stream: int, seq: int) -> int:
        """The first slot at or after `seq` that was not skipped."""
        skipped = self._skipped.get(stream, ())
        while seq in skipped:
            seq += 1
        return seq

    def _move_to(self, stream: int, seq: int) -> None:
        if seq <= self._expected.get(stream, 0):
            return  # a stream only moves forward (a skip may have passed this slot already)
        self._expected[stream] = seq
        skipped = self._skipped.get(stream)
        if skipped:
            skipped.difference_update([slot for slot in skipped if slot < seq])

    def _release(self, stream: int, start: int) -> list[Reliably]:
        """Pop the held envelopes that follow on from `start` (skipped slots passed over)."""
        held = self._held.get(stream, {})
        ready = []
        seq = start
        while seq in held:
            ready.append(held.pop(seq))
            seq = self._next(stream, seq + 1)
        return ready
