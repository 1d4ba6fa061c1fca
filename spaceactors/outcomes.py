"""What the reliable layer keeps of finished messages, so that `delivered` can always answer.

Every id `Reliable.send` returned has one of three outcomes: still pending, delivered, or
failed. The book below tells them apart with memory bounded by constants, not by how many
messages were ever sent:

- a ring of the full receipts of recent deliveries: message ``i``'s until a message with id
  ``i + KEEP_RECEIPTS`` (or a later one in its slot) is delivered;
- every failure (a `DeliveryFailed`), up to `KEEP_FAILURES` of them: failures are rare, and a
  failure must never be mistaken for a delivery;
- a message that finished before the ring's reach and is not among the failures was delivered
  (ids are issued in order, so the highest id issued tells a real id from one never issued).

Only past `KEEP_FAILURES` failures is anything forgotten: the oldest failure is dropped,
counted (``stats().failures_forgotten``) and traced, and ids at or below the newest forgotten
failure whose outcome is no longer held raise `OutcomeForgotten` instead of being guessed.
"""

from __future__ import annotations

import array
import collections
from typing import Any

import attrs

from spaceactors.errors import OutcomeForgotten, SpaceActorsError, UnknownMessage
from spaceactors.receiver import MessageId, Reliably

KEEP_RECEIPTS = 16_384
"""How many recent deliveries keep their full `Receipt` (``attempts`` and ``latency``): a
message's until one with an id `KEEP_RECEIPTS` higher is delivered. Older deliveries still
report as delivered. A power of two."""
KEEP_FAILURES = 100_000
"""How many failed reliable messages `delivered` can still report as `DeliveryFailed`; past
that, the oldest are forgotten (counted and traced), never reported as delivered."""


@attrs.frozen
class Receipt:
    """Proof of delivery: the message was handled after `attempts` transmissions, `latency`
    seconds after `send` was called.

    `attempts` and `latency` are None for a message that finished before the last
    `KEEP_RECEIPTS` to finish: it was delivered, but its details are no longer kept.
    """

    message_id: MessageId
    attempts: int | None
    latency: float | None


def receipt(envelope: Reliably) -> Receipt:
    """The receipt of an acknowledged message."""
    assert envelope.settled_at is not None
    return Receipt(envelope.message_id, envelope.attempts, envelope.settled_at - envelope.started)


def _ring(typecode: str) -> array.array[Any]:
    return array.array(typecode, bytes(8 * KEEP_RECEIPTS))


@attrs.define
class OutcomeBook:
    """Finished messages: recent deliveries whole, failures by id, the rest implied (see above).

    The receipts ring keeps no envelope alive: the delivery of message ``i`` is written at slot
    ``i & mask`` of three flat arrays (its id, attempts and latency), so memory stays the same
    however many messages are sent.
    """

    ids: array.array[int] = attrs.field(factory=lambda: _ring("q"))
    attempts: array.array[int] = attrs.field(factory=lambda: _ring("q"))
    latencies: array.array[float] = attrs.field(factory=lambda: _ring("d"))
    mask: int = attrs.field(init=False)
    failures: collections.OrderedDict[MessageId, SpaceActorsError] = attrs.field(
        factory=collections.OrderedDict
    )
    withdrawn: collections.OrderedDict[MessageId, UnknownMessage] = attrs.field(
        factory=collections.OrderedDict
    )
    """Ids of sends cancelled before their first transmission (never returned), as many."""
    issued: int = 0  # the highest id issued
    forgotten: int = 0  # failures dropped past KEEP_FAILURES
    forgotten_through: int = 0  # the highest id among them (and among withdrawn ids dropped)

    def __attrs_post_init__(self) -> None:
        size = len(self.ids)
        self.mask = size - 1
        if size & self.mask:
            raise ValueError(f"the receipt ring's size must be a power of two, not {size}")

    def failed(self, message_id: MessageId, error: SpaceActorsError) -> MessageId | None:
        """Keep a failure; returns the id of a failure forgotten to make room, if any."""
        failures = self.failures
        failures[message_id] = error
        if len(failures) <= KEEP_FAILURES:
            return None
        dropped, _ = failures.popitem(last=False)
        self.forgotten += 1
        self.forgotten_through = max(self.forgotten_through, dropped)
        return dropped

    def withdraw(self, message_id: MessageId, error: UnknownMessage) -> None:
        """A send was cancelled before it went out: its id was never returned. Kept apart from
        the failures (it uses none of their room); past the cap the oldest is forgotten, and so
        `outcome` no longer guesses for ids up to it (`OutcomeForgotten`)."""
        withdrawn = self.withdrawn
        withdrawn[message_id] = error
        if len(withdrawn) > KEEP_FAILURES:  # forgotten: older ids can no longer be told
            dropped, _ = withdrawn.popitem(last=False)
            self.forgotten_through = max(self.forgotten_through, dropped)

    def outcome(self, message_id: MessageId) -> Receipt:
        """The outcome of a message that is no longer pending.

        Raises:
            DeliveryFailed: it failed.
            UnknownMessage: no message has this id (or its send was cancelled).
            OutcomeForgotten: it finished long ago and may be a forgotten failure.
        """
        error = self.failures.get(message_id) or self.withdrawn.get(message_id)
        if error is not None:
            raise error
        slot = message_id & self.mask
        if message_id > 0 and self.ids[slot] == message_id:
            return Receipt(message_id, self.attempts[slot], self.latencies[slot])
        if not 1 <= message_id <= self.issued:
            raise UnknownMessage(
                f"no reliable message has the id {message_id} (ids issued so far: 1 to "
                f"{self.issued}); use an id that `reliable.send` returned"
            )
        if message_id <= self.forgotten_through:
            raise OutcomeForgotten(
                f"the outcome of reliable message {message_id} is no longer known: the oldest "
                f"failures (or ids of cancelled sends) were forgotten past KEEP_FAILURES "
                f"({KEEP_FAILURES}); await `delivered` sooner, or keep fewer messages failing"
            )
        return Receipt(message_id, None, None)
