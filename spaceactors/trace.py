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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

import attrs

from spaceactors.checks import finite, integer, short_repr

DEFAULT_KEEP = 100_000
"""How many recent events `Trace.events` keeps in memory."""
MAX_MESSAGE_ID = 2**63 - 1
"""The largest message id a trace holds (a SQLite integer)."""
_FIELDS = "[time, kind, actor, peer, message_type, message_id, detail]"
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
"""File names that `open_system(trace=...)` and `load_trace` treat as SQLite databases."""


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
        # A trace is a diagnostic: no fsync per batch in the middle of a run.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
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
    if Path(path).suffix in SQLITE_SUFFIXES:
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

    def bind(self, now: Callable[[], float]) -> None:
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
        ValueError: the file holds something that is not a trace event; the message starts
            with ``<path>:<line>:`` (``<path>:row <seq>:`` for SQLite). This is the only error
            a file's content can cause, whatever it holds (bytes that are not UTF-8, JSON
            nested however deep, numbers however large, NaN or infinite times).
        OSError: the file cannot be read.
    """
    return list(_read(Path(path)))


def _read(path: Path) -> Iterator[TraceEvent]:
    if path.suffix in SQLITE_SUFFIXES:
        yield from _read_sqlite(path)
        return
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            event = _parse_line(path, number, raw)
            if event is not None:
                yield event


def _parse_line(path: Path, number: int, raw: bytes) -> TraceEvent | None:
    try:
        line = raw.decode("utf-8")
        return TraceEvent.from_json(line) if line.strip() else None
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except ValueError as exc:
        raise ValueError(f"{path}:{number}: {exc}") from None


def _read_sqlite(path: Path) -> Iterator[TraceEvent]:
    if not path.is_file():
        raise FileNotFoundError(f"no trace database at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read only: never create one
    try:
        rows = db.execute(
            "SELECT seq, time, kind, actor, peer, message_type, message_id, detail"
            " FROM events ORDER BY seq"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path} is not a trace database ({exc})") from None
    finally:
        db.close()
    for seq, *fields in rows:
        try:
            event = TraceEvent.checked(*fields)
        except ValueError as exc:
            raise ValueError(f"{path}:row {seq}: not a trace event: {exc}") from None
        yield event
