"""Trace events: what one event holds (`TraceEvent`), its kinds (`EventKind`), its line of
JSON (`TraceEvent.to_json`, what sinks write and the trace hash reads), and the trace levels
(`TraceLevel`: which kinds a trace records)."""

from __future__ import annotations

import enum
import json

import attrs

from spaceactors.checks import finite, integer, short_repr

MAX_MESSAGE_ID = 2**63 - 1
"""The largest message id a trace holds (a SQLite integer)."""
COLUMNS = ("time", "kind", "actor", "peer", "message_type", "message_id", "detail")
"""The fields of an event, in the order a JSON Lines trace writes them (its header names them)."""
_FIELDS = f"[{', '.join(COLUMNS)}]"


class EventKind(enum.Enum):
    """What a trace event records."""

    SEND = "send"  # a message left its sender through the router or the reliable layer
    DELIVER = "deliver"  # a copy a fault held back (delay, reorder) reached a mailbox
    HANDLE = "handle"  # an actor's handle() began on a message
    DROP = "drop"  # a fault (or a partition) lost a message
    DUPLICATE = "duplicate"  # a fault delivered a second copy
    DELAY = "delay"  # a fault held a message back for a while
    REORDER = "reorder"  # a fault let a later message overtake this one
    DEAD_LETTER = "dead_letter"
    CRASH = "crash"  # a child of a supervisor ended with an error (injected ones included)
    RESTART = "restart"
    GIVE_UP = "give_up"  # a supervisor exceeded its restart intensity
    STOP = "stop"  # a child ended for good and will not be restarted (after a crash too)
    PAUSE = "pause"  # an injected pause began ...
    RESUME = "resume"  # ... and ended
    SLOW = "slow"  # an injected slow handling
    PARTITION = "partition"  # a network partition began ...
    HEAL = "heal"  # ... and healed
    FAULT = "fault"  # a fault rule was switched on or off
    FORGET = "forget"  # the reliable layer forgot the outcome of an old failure (KEEP_FAILURES)
    UNMATCHED = "unmatched"  # a fault rule that did nothing in the run (when the system closes)
    NODE_UP = "node_up"  # another node joined the cluster (as this node saw it)
    NODE_DOWN = "node_down"  # another node stopped heartbeating and was declared down


@attrs.frozen
class TraceEvent:
    """One event: `time` on the system's clock, what `kind`, at which `actor`.

    `peer` is the other side (the sender of a message), `message_type` the class name of the
    user's message, `message_id` its reliable id if it has one, `detail` anything else.
    """

    time: float
    kind: EventKind
    actor: str | None = None
    peer: str | None = None
    message_type: str | None = None
    message_id: int | None = None
    detail: str = ""

    def to_json(self) -> str:
        """One line of JSON, with keys in a fixed order (what sinks write and the hash reads)."""
        return _ENCODE(
            [
                self.time,
                self.kind.value,
                self.actor,
                self.peer,
                self.message_type,
                self.message_id,
                self.detail,
            ]
        )

    @classmethod
    def from_json(cls, line: str) -> TraceEvent:
        """Read back a line written by `to_json`.

        Raises:
            ValueError: the line is not a trace event (whatever it holds: any JSON, nested
                however deep, numbers however large).
        """
        try:
            fields = json.loads(line)
        except RecursionError:
            problem = "JSON nested too deeply"
        except ValueError as exc:  # JSONDecodeError, integers of more than 4,300 digits
            problem = f"not JSON ({exc})"
        else:
            if isinstance(fields, list) and len(fields) == len(attrs.fields(cls)):
                try:
                    return cls.checked(*fields)
                except ValueError as exc:
                    problem = str(exc)
            else:
                problem = f"expected a JSON array {_FIELDS}, got {short_repr(fields)}"
        raise ValueError(f"not a trace event: {problem}: {short_repr(line.rstrip())}")

    @classmethod
    def checked(
        cls,
        time: object,
        kind: object,
        actor: object,
        peer: object,
        message_type: object,
        message_id: object,
        detail: object,
    ) -> TraceEvent:
        """An event from untrusted values (a file), each checked against its field's type.

        Raises:
            ValueError: a value has the wrong type, or is out of its range (a time that is not
                a finite number, a message id outside [0, 2**63), an unknown kind).
        """
        time = finite("time", time)
        if message_id is not None:
            message_id = integer("message_id", message_id, high=MAX_MESSAGE_ID)
        if not isinstance(detail, str):
            raise ValueError(f"detail must be a string, got {short_repr(detail)}")
        if not isinstance(kind, str) or kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {short_repr(kind)}")
        return cls(
            time,
            EventKind(kind),
            _optional_str("actor", actor),
            _optional_str("peer", peer),
            _optional_str("message_type", message_type),
            message_id,
            detail,
        )


def _optional_str(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or null, got {short_repr(value)}")
    return value


_KINDS = frozenset(kind.value for kind in EventKind)


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def _event_kind(kind: object) -> EventKind:
    if isinstance(kind, EventKind):
        return kind
    try:
        return EventKind(kind)
    except ValueError:
        known = ", ".join(repr(member.value) for member in EventKind)
        raise ValueError(f"no event kind {short_repr(kind)}: the kinds are {known}") from None


FAULT_KINDS = frozenset(
    {
        EventKind.DROP,
        EventKind.DUPLICATE,
        EventKind.DELAY,
        EventKind.REORDER,
        EventKind.PAUSE,
        EventKind.RESUME,
        EventKind.SLOW,
        EventKind.PARTITION,
        EventKind.HEAL,
        EventKind.FAULT,
    }
)
"""The trace events that are a fault rule at work (lifecycle ``fault`` events)."""


class TraceLevel(enum.Enum):
    """How much a trace records; each level records the kinds of the one before it, and more
    (`TraceLevel.kinds`).

    - ``off``: nothing (the hash is that of no events);
    - ``lifecycle``: supervision (``crash``, ``restart``, ``stop``, ``give_up``), dead letters
      (``dead_letter``), faults (every kind in `FAULT_KINDS`, and ``unmatched``) and the
      cluster's members (``node_up``, ``node_down``);
    - ``messages``: and the messages' journeys: ``send``, ``deliver`` (a held-back copy
      arriving) and ``forget`` (the reliable layer forgetting an old failure);
    - ``everything``: and ``handle`` (each message an actor handles): every kind.
    """

    OFF = "off"
    LIFECYCLE = "lifecycle"
    MESSAGES = "messages"
    EVERYTHING = "everything"

    @property
    def kinds(self) -> frozenset[EventKind]:
        """The event kinds a trace at this level records."""
        return _LEVEL_KINDS[self]

    @classmethod
    def of(cls, level: object) -> TraceLevel:
        """`level` as a `TraceLevel`: a member, or its value (``"messages"``).

        Raises:
            ValueError: anything else (the message lists the levels).
        """
        if isinstance(level, TraceLevel):
            return level
        if isinstance(level, str):
            for member in cls:
                if member.value == level:
                    return member
        known = ", ".join(repr(member.value) for member in cls)
        raise ValueError(f"no trace level {short_repr(level)}: the levels are {known}")


_LIFECYCLE = FAULT_KINDS | {
    EventKind.CRASH,
    EventKind.RESTART,
    EventKind.STOP,
    EventKind.GIVE_UP,
    EventKind.DEAD_LETTER,
    EventKind.UNMATCHED,
    EventKind.NODE_UP,
    EventKind.NODE_DOWN,
}
_MESSAGES = _LIFECYCLE | {EventKind.SEND, EventKind.DELIVER, EventKind.FORGET}
_LEVEL_KINDS = {
    TraceLevel.OFF: frozenset(),
    TraceLevel.LIFECYCLE: frozenset(_LIFECYCLE),
    TraceLevel.MESSAGES: frozenset(_MESSAGES),
    TraceLevel.EVERYTHING: frozenset(EventKind),
}
