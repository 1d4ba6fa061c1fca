"""Dead letters: every message that could not be delivered or handled, with the reason.

Nothing vanishes silently: sending to an unknown or stopped actor, a crash while handling, a
mailbox left behind by an actor that stops for good, and a reply that arrives after its `ask`
timed out all end up here.
"""

from __future__ import annotations

import collections
import enum
import logging
import sys
from collections.abc import Callable

import attrs

from spaceactors.checks import integer

logger = logging.getLogger("spaceactors.deadletters")

DEFAULT_KEEP = 1000


class DeadLetterReason(enum.Enum):
    """Why a message became a dead letter."""

    UNKNOWN_ACTOR = "unknown_actor"
    ACTOR_STOPPED = "actor_stopped"
    CRASHED_WHILE_HANDLING = "crashed_while_handling"
    LEFT_IN_MAILBOX = "left_in_mailbox"
    REPLY_AFTER_TIMEOUT = "reply_after_timeout"
    DROPPED_SLOW_RECEIVER = "dropped_slow_receiver"
    DELIVERY_FAILED = "delivery_failed"
    SERVICE_FAILED = "service_failed"
    MALFORMED_ENTRY = "malformed_entry"
    """An entry read from another node's stream could not be decoded (multi-node)."""
    NODE_DOWN = "node_down"
    """The actor's node was declared down before the message reached it (multi-node)."""
    UNSENT_AT_CLOSE = "unsent_at_close"
    """A scheduled message (`Router.send_later`, or a copy a fault plan held back) still
    waiting to go out when the system closed."""


@attrs.frozen
class DeadLetter:
    """One undeliverable message.

    Attributes:
        time: ``trio.current_time()`` when it was recorded (virtual time under a MockClock).
        target: the name (or id, or repr) of the intended recipient.
        message: the message itself.
        reason: why it could not be delivered or handled.
        detail: a human-readable explanation (e.g. the crash's exception).
        sender: the name of the sending actor, when the message came from one.
        node: the node the message was for or came from, when it crossed nodes.
    """

    time: float
    target: str
    message: object
    reason: DeadLetterReason
    detail: str = ""
    sender: str | None = None
    node: str | None = None

    @property
    def message_type(self) -> str:
        """The class name of the message."""
        return type(self.message).__name__


@attrs.define
class DeadLetters:
    """Keeps the last `keep` dead letters and a count per reason since the system started.

    Each of `listeners` is called with every letter as it is recorded (the router uses this
    to publish them on the ``dead_letters`` topic); a listener must not block or raise.
    """

    keep: int = DEFAULT_KEEP
    total: int = 0
    by_reason: collections.Counter[DeadLetterReason] = attrs.field(factory=collections.Counter)
    listeners: list[Callable[[DeadLetter], None]] = attrs.field(factory=list)
    _recent: collections.deque[DeadLetter] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        integer("keep", self.keep, high=sys.maxsize)
        self._recent = collections.deque(maxlen=self.keep)

    def record(self, letter: DeadLetter) -> None:
        """Store `letter`, count it, and log it at debug level."""
        self.total += 1
        self.by_reason[letter.reason] += 1
        self._recent.append(letter)
        for listener in self.listeners:
            listener(letter)
        logger.debug(
            "dead letter to %s: %s (%s) %s",
            letter.target,
            letter.message_type,
            letter.reason.value,
            letter.detail,
        )

    def recent(self) -> list[DeadLetter]:
        """The kept dead letters, oldest first."""
        return list(self._recent)

    def restore(
        self, total: int, by_reason: dict[DeadLetterReason, int], recent: list[DeadLetter]
    ) -> None:
        """Take the counts and kept letters a checkpoint holds (a resumed system)."""
        self.total = total
        self.by_reason = collections.Counter(by_reason)
        self._recent.clear()
        self._recent.extend(recent)

    def __len__(self) -> int:
        return len(self._recent)
