"""The event trace: what happened in a system, when (in its clock's time), to whom.

A `Trace` records `TraceEvent`s (sends, deliveries, handling, injected faults, dead letters,
crashes, restarts, give-ups, stops) and folds each one into a running SHA-256, its `hash`. Two
runs with the same seed and the same code give the same events in the same order, so the same
hash (see `spaceactors.virtual`). Events go to sinks as they happen: JSON Lines or SQLite files,
and a bounded in-memory list (`Trace.events`).

The sinks write to local files synchronously, through Python's buffered I/O, as `logging` does:
a trace is a diagnostic, not a data path, and a line costs far less than a context switch.

Tracing costs nothing when off: the runtime checks one attribute per message. It is on when
`open_system(trace=...)` is given a `Trace`, a path, or True (in memory only).
"""

from __future__ import annotations

import collections
import enum
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import attrs

DEFAULT_KEEP = 100_000
"""How many recent events `Trace.events` keeps in memory."""


class EventKind(enum.Enum):
    """What a trace event records."""

    SEND = "send"  # a message left its sender through the router or the reliable layer
    DELIVER = "deliver"  # a delayed, reordered or retried message reached a mailbox
    HANDLE = "handle"  # an actor's handle() began on a message
    DROP = "drop"  # a fault (or a partition) lost a message
    DUPLICATE = "duplicate"  # a fault delivered a second copy
    DELAY = "delay"  # a fault held a message back for a while
    REORDER = "reorder"  # a fault let a later message overtake this one
    DEAD_LETTER = "dead_letter"
    CRASH = "crash"  # a child of a supervisor ended with an error (injected ones included)
    RESTART = "restart"
    GIVE_UP = "give_up"  # a supervisor exceeded its restart intensity
    STOP = "stop"  # a child ended for good without error
    PAUSE = "pause"  # an injected pause began ...
    RESUME = "resume"  # ... and ended
    SLOW = "slow"  # an injected slow handling
    PARTITION = "partition"  # a network partition began ...
    HEAL = "heal"  # ... and healed
    FAULT = "fault"  # a fault rule was switched on or off


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
        return json.dumps(
            [
                self.time,
                self.kind.value,
                self.actor,
                self.peer,
                self.message_type,
                self.message_id,
                self.detail,
            ],
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: str) -> TraceEvent:
        """Read back a line written by `to_json`.

        Raises:
            ValueError: the line is not a trace event.
        """
        try:
            time, kind, actor, peer, message_type, message_id, detail = json.loads(line)
            return cls(float(time), EventKind(kind), actor, peer, message_type, message_id, detail)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a trace event: {line[:80]!r} ({exc})") from None


class TraceSink(Protocol):
    """Where a trace's events go as they are recorded."""

    def write(self, event: TraceEvent, line: str) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """Appends one JSON array per event to a file (see `TraceEvent.to_json`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file = self.path.open("w", encoding="utf-8")

    def write(self, event: TraceEvent, line: str) -> None:
        self._file.write(line)
        self._file.write("\n")

    def close(self) -> None:
        self._file.close()


class SQLiteSink:
    """Writes events to an ``events`` table of a SQLite database, committing in batches."""

    BATCH = 1000

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.unlink(missing_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, time REAL NOT NULL, kind TEXT NOT NULL,"
            " actor TEXT, peer TEXT, message_type TEXT, message_id INTEGER, detail TEXT NOT NULL)"
        )
        self._rows: list[tuple[object, ...]] = []
        self._seq = 0

    def write(self, event: TraceEvent, line: str) -> None:
        self._seq += 1
        self._rows.append(
            (
                self._seq,
                event.time,
                event.kind.value,
                event.actor,
                event.peer,
                event.message_type,
                event.message_id,
                event.detail,
            )
        )
        if len(self._rows) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._rows)
        self._db.commit()
        self._rows.clear()

    def close(self) -> None:
        self._flush()
        self._db.close()


def sink_for(path: str | os.PathLike[str]) -> TraceSink:
    """The sink a file name asks for: SQLite for ``.sqlite``/``.db``, JSON Lines otherwise."""
    if Path(path).suffix in (".sqlite", ".sqlite3", ".db"):
        return SQLiteSink(path)
    return JsonLinesSink(path)


class Trace:
    """Records events, keeps the most recent `keep` in memory, and hashes all of them."""

    def __init__(self, *sinks: TraceSink, keep: int = DEFAULT_KEEP) -> None:
        self.sinks = list(sinks)
        self.events: collections.deque[TraceEvent] = collections.deque(maxlen=keep)
        self.count = 0
        self._hash = hashlib.sha256()
        self._now = _no_clock

    @property
    def hash(self) -> str:
        """The trace hash of every event so far (equal to `trace_hash` of them)."""
        return self._hash.hexdigest()

    def bind(self, now: Clock) -> None:
        """Take event times from `now` (the system does this when it opens)."""
        self._now = now

    def record(
        self,
        kind: EventKind,
        actor: str | None = None,
        *,
        peer: str | None = None,
        message: object = None,
        message_id: int | None = None,
        detail: str = "",
    ) -> TraceEvent:
        """Record an event now; `message` gives its type (None for events without one)."""
        message_type = None if message is None else type(message).__name__
        event = TraceEvent(self._now(), kind, actor, peer, message_type, message_id, detail)
        line = event.to_json()
        self._hash.update(line.encode())
        self._hash.update(b"\n")
        self.count += 1
        self.events.append(event)
        for sink in self.sinks:
            sink.write(event, line)
        return event

    def of_kind(self, *kinds: EventKind) -> list[TraceEvent]:
        """The kept events of the given kinds, in order."""
        return [event for event in self.events if event.kind in kinds]

    def close(self) -> None:
        """Flush and close every sink."""
        for sink in self.sinks:
            sink.close()


class Clock(Protocol):
    def __call__(self) -> float: ...


def _no_clock() -> float:
    return 0.0


def trace_hash(events: Iterable[TraceEvent]) -> str:
    """The SHA-256 (hex) of `events` as a trace records them: equal traces, equal hashes."""
    digest = hashlib.sha256()
    for event in events:
        digest.update(event.to_json().encode())
        digest.update(b"\n")
    return digest.hexdigest()


def load_trace(path: str | os.PathLike[str]) -> list[TraceEvent]:
    """Read a trace written by a JSON Lines or SQLite sink.

    Raises:
        ValueError: the file holds something that is not a trace event.
    """
    return list(_read(Path(path)))


def _read(path: Path) -> Iterator[TraceEvent]:
    if path.suffix in (".sqlite", ".sqlite3", ".db"):
        db = sqlite3.connect(path)
        try:
            rows = db.execute(
                "SELECT time, kind, actor, peer, message_type, message_id, detail"
                " FROM events ORDER BY seq"
            ).fetchall()
        finally:
            db.close()
        for time, kind, actor, peer, message_type, message_id, detail in rows:
            yield TraceEvent(time, EventKind(kind), actor, peer, message_type, message_id, detail)
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield TraceEvent.from_json(line)
