"""What the reliable layer keeps of finished messages, so that `delivered` can always answer.

Every id `Reliable.send` returned has one of three outcomes: still pending, delivered, or
failed. The book below tells them apart with memory bounded by constants, not by how many
messages were ever sent:

- a ring of the last `KEEP_RECEIPTS` messages to finish, with their full receipts;
- every failure (a `DeliveryFailed`), up to `KEEP_FAILURES` of them: failures are rare, and a
  failure must never be mistaken for a delivery;
- a message that finished before the ring's reach and is not among the failures was delivered
  (ids are issued in order, so the highest id issued tells a real id from one never issued).

Only past `KEEP_FAILURES` failures is anything forgotten: the oldest failure is dropped,
counted (``stats().failures_forgotten``) and traced, and ids at or below the newest forgotten
failure whose outcome is no longer held raise `OutcomeForgotten` instead of being guessed.
"""

from __future__ import annotations

import collections

import attrs

from spaceactors.errors import OutcomeForgotten, SpaceActorsError, UnknownMessage
from spaceactors.receiver import MessageId, Reliably

KEEP_RECEIPTS = 16_384
"""How many of the most recently finished reliable messages keep their full `Receipt`
(``attempts`` and ``latency``); older deliveries still report as delivered."""
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


@attrs.define
class OutcomeBook:
    """Finished messages: recent ones whole, failures by id, the rest implied (see above)."""

    ring: list[Reliably | None] = attrs.field(factory=lambda: [None] * KEEP_RECEIPTS)
    """The last messages to finish, each at ``ring[message_id & mask]``."""
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
    forgotten_through: int = 0  # the highest id among them

    def __attrs_post_init__(self) -> None:
        self.mask = len(self.ring) - 1
        if len(self.ring) & self.mask:
            raise ValueError(
                f"the receipt ring's size must be a power of two, not {len(self.ring)}"
            )

    def finished(self, envelope: Reliably) -> None:
        """`envelope` was acknowledged, failed or withdrawn: keep its outcome."""
        self.ring[envelope.message_id & self.mask] = envelope

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
        the failures (it uses none of their room), the oldest dropped silently past the cap."""
        withdrawn = self.withdrawn
        withdrawn[message_id] = error
        if len(withdrawn) > KEEP_FAILURES:
            withdrawn.popitem(last=False)

    def recent(self, message_id: MessageId) -> Reliably | None:
        """The finished message with this id, if it is among the most recent."""
        envelope = self.ring[message_id & self.mask]
        return envelope if envelope is not None and envelope.message_id == message_id else None

    def outcome(self, message_id: MessageId) -> Receipt:
        """The outcome of a finished message that is not among the most recent.

        Raises:
            DeliveryFailed: it failed (or `UnknownMessage` if its send was cancelled).
            UnknownMessage: no message has this id.
            OutcomeForgotten: it finished long ago and its failure may have been forgotten.
        """
        error = self.failures.get(message_id) or self.withdrawn.get(message_id)
        if error is not None:
            raise error
        if not 1 <= message_id <= self.issued:
            raise UnknownMessage(
                f"no reliable message has the id {message_id} (ids issued so far: 1 to "
                f"{self.issued}); use an id that `reliable.send` returned"
            )
        if message_id <= self.forgotten_through:
            raise OutcomeForgotten(
                f"the outcome of reliable message {message_id} is no longer known: "
                f"{self.forgotten} failures were forgotten past KEEP_FAILURES "
                f"({KEEP_FAILURES}); await `delivered` sooner, or keep fewer messages failing"
            )
        return Receipt(message_id, None, None)
