"""The event trace: what happened in a system, when (in its clock's time), to whom.

A `Trace` records `TraceEvent`s (sends, deliveries, handling, injected faults, dead letters,
crashes, restarts, give-ups, stops) at its `TraceLevel`, and folds each one it records into its
`hash` (a SHA-256 chain, `spaceactors.trace_chain`). Two runs with the same seed, the same code
and the same level give the same events in the same order, so the same hash (see
`spaceactors.virtual`). Events go to sinks as they happen: JSON Lines or SQLite files, segments
of the compact encoding (`spaceactors.trace_segment`), and a bounded in-memory list
(`Trace.events`).

The sinks write to local files synchronously, through Python's buffered I/O, as `logging` does:
a trace is a diagnostic, not a data path, and a line costs far less than a context switch.

Tracing costs nothing when off: the runtime checks one attribute per message. It is on when
`open_system(trace=...)` is given a `Trace`, a path, or True (in memory only); an event of a
kind the level leaves out costs one set lookup (no event is built, no JSON written).
"""

from __future__ import annotations

import collections
import errno
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from spaceactors.checks import integer, short_repr
from spaceactors.trace_chain import ChainHash, trace_hash
from spaceactors.trace_event import (
    _ENCODE,
    COLUMNS,
    MAX_MESSAGE_ID,
    EventKind,
    TraceEvent,
    TraceLevel,
    _event_kind,
)
from spaceactors.trace_state import restore_trace, trace_state

__all__ = [
    "COLUMNS",
    "DEFAULT_KEEP",
    "FORMAT",
    "FORMAT_VERSION",
    "JSON_LINES_SUFFIXES",
    "MAX_MESSAGE_ID",
    "SQLITE_SUFFIXES",
    "EventKind",
    "JsonLinesSink",
    "SQLiteSink",
    "Trace",
    "TraceEvent",
    "TraceLevel",
    "TraceSink",
    "header_line",
    "sink_for",
    "sink_type",
    "trace_hash",
]

DEFAULT_KEEP = 100_000
"""How many recent events `Trace.events` keeps in memory."""
FORMAT = "spaceactors-trace"
"""What the header line of a JSON Lines trace says it is (its ``"format"``)."""
FORMAT_VERSION = 2
"""The version of the JSON Lines trace format that the header line names (``"version"``).
Version 2 has the columns of version 1 and defines the trace hash as a chain of blocks
(`spaceactors.trace_chain`); version 1 hashed every line in one SHA-256. Both load alike."""
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
"""File names that `open_system(trace=...)` and `load_trace` treat as SQLite databases."""
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
"""File names that `open_system(trace=...)` writes as JSON Lines (`load_trace` reads any other
name as JSON Lines too)."""


class TraceSink(Protocol):
    """Where a trace's events go as they are recorded.

    `write` and `close` raise `OSError` when the medium fails (a full disk, say); `Trace` then
    stops writing to the sink, keeps what it holds, and reports the error (`Trace.error`).
    """

    def write(self, event: TraceEvent, line: str) -> None: ...

    def close(self) -> None: ...


def header_line() -> str:
    """The first line of a JSON Lines trace: a JSON object naming the format, its version and
    the columns of the events, ``{"format":"spaceactors-trace","version":1,"columns":[...]}``.
    It is not an event: the trace hash does not include it."""
    return _ENCODE({"format": FORMAT, "version": FORMAT_VERSION, "columns": list(COLUMNS)})


class JsonLinesSink:
    """Writes the header line (`header_line`), then one JSON array per event (see
    `TraceEvent.to_json`).

    Raises:
        OSError: the file cannot be created (no such directory, a directory, no permission).
        ValueError: `path` is not a str or an ``os.PathLike``, or cannot be a file name.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = _sink_path(path)
        self._file = self.path.open("w", encoding="utf-8")
        self._broken = False
        self._file.write(header_line() + "\n")

    def write(self, event: TraceEvent, line: str) -> None:
        try:
            self._file.write(line + "\n")
        except OSError:
            self._broken = True  # part of a line may have reached the file
            raise

    def close(self) -> None:
        """Flush and close; after a failed write, cut the file after its last whole line.

        Raises:
            OSError: the rest could not be written (the file keeps every whole line it got).
        """
        try:
            self._file.close()
        except OSError:
            self._broken = True
            raise
        finally:
            if self._broken:
                _cut_after_last_line(self.path)


def _sink_path(path: object) -> Path:
    """`path` as a `Path`, if it is a str or a str ``os.PathLike`` (else ValueError); for the
    sinks and `load_trace`."""
    try:
        if isinstance(path, str | os.PathLike):
            return Path(path)
    except TypeError:  # a PathLike giving bytes
        pass
    raise ValueError(f"a trace path must be a str or an os.PathLike, got {short_repr(path)}")


def _cut_after_last_line(path: Path) -> None:
    """Truncate a partly written JSON Lines file after its last newline (best effort)."""
    try:
        with path.open("r+b") as file:
            size = file.seek(0, os.SEEK_END)
            end = size
            while end > 0:
                start = max(0, end - 65536)
                file.seek(start)
                newline = file.read(end - start).rfind(b"\n")
                if newline >= 0:
                    file.truncate(start + newline + 1)
                    return
                end = start
            file.truncate(0)
    except OSError:
        pass  # the file is gone or unwritable: nothing more can be kept


class SQLiteSink:
    """Writes events to an ``events`` table of a SQLite database, committing in batches."""

    BATCH = 1000

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Raises:
        OSError: the database cannot be created (no such directory, no permission...).
        ValueError: `path` is not a str or an ``os.PathLike``, or cannot be a file name.
        """
        self.path = _sink_path(path)
        self.path.unlink(missing_ok=True)
        try:
            self._db = sqlite3.connect(self.path)
        except sqlite3.Error as exc:
            raise _os_error(self.path, exc) from None
        try:
            # A trace is a diagnostic: no fsync per batch in the middle of a run.
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=OFF")
            self._db.execute(
                "CREATE TABLE events (seq INTEGER PRIMARY KEY, time REAL NOT NULL,"
                " kind TEXT NOT NULL, actor TEXT, peer TEXT, message_type TEXT,"
                " message_id INTEGER, detail TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            self._db.close()
            raise _os_error(self.path, exc) from None
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
        try:
            try:
                self._insert(self._rows)
            except (UnicodeEncodeError, OverflowError):
                # Text SQLite cannot store (a lone surrogate in an error's words) or an int
                # past 64 bits: store them escaped, as the JSON Lines sink writes them.
                self._db.rollback()
                self._insert([tuple(map(_storable, row)) for row in self._rows])
        except (sqlite3.Error, ValueError, OverflowError) as exc:
            # the batches committed before stay in the database
            raise _os_error(self.path, exc) from None
        finally:
            self._rows.clear()

    def _insert(self, rows: list[tuple[object, ...]]) -> None:
        self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        self._db.commit()

    def close(self) -> None:
        try:
            self._flush()
        finally:
            self._db.close()


def _storable(value: object) -> object:
    """`value` as SQLite can store it: lone surrogates escaped (``\\udc80``), ints past 64
    bits as their digits."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return str(value)
    return value


def _os_error(path: Path, exc: Exception) -> OSError:
    """A SQLite failure as the `OSError` every sink raises (``ENOSPC`` for a full disk)."""
    full = getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL"
    return OSError(errno.ENOSPC if full else errno.EIO, str(exc), str(path))


def sink_for(path: str | os.PathLike[str]) -> TraceSink:
    """Open the sink a file name asks for (see `sink_type`).

    Raises:
        ValueError: the suffix is not a trace format (``.csv``, say); the message lists them.
        OSError: the file cannot be created (no such directory, a directory, no permission).
    """
    return sink_type(path)(path)


def sink_type(path: str | os.PathLike[str]) -> type[JsonLinesSink | SQLiteSink]:
    """The sink a file name asks for, by its suffix: `SQLiteSink` for `SQLITE_SUFFIXES`,
    `JsonLinesSink` for `JSON_LINES_SUFFIXES` (suffixes are case-sensitive).

    Raises:
        ValueError: any other suffix, or none; the message lists the known ones.
    """
    suffix = Path(path).suffix
    if suffix in SQLITE_SUFFIXES:
        return SQLiteSink
    if suffix in JSON_LINES_SUFFIXES:
        return JsonLinesSink
    known = ", ".join(JSON_LINES_SUFFIXES + SQLITE_SUFFIXES)
    said = f"its suffix {suffix!r} is" if suffix else "a name without a suffix is"
    raise ValueError(
        f"cannot write a trace to {os.fspath(path)!r}: {said} not a trace format (use {known})"
    )


class Trace:
    """Records the events of its `level`, keeps the most recent `keep` in memory, and hashes
    every event it records (the hash covers the recorded events only).

    A sink that fails to write (a full disk) never takes the system down: `Trace` stops writing
    to it, keeps what it already holds, sets `error`, and calls `on_error`; `close` raises it.

    Args:
        sinks: where each recorded event goes as it happens.
        keep: how many recent events `events` keeps.
        level: a `TraceLevel` or its value (``"messages"``): which kinds are recorded; the
            others are not built, hashed nor written.

    Raises:
        ValueError: `keep` is not an int in ``[0, sys.maxsize]`` (a bool, a float, a string
            or a huge integer included); `level` is not a trace level.
    """

    def __init__(
        self,
        *sinks: TraceSink,
        keep: int = DEFAULT_KEEP,
        level: TraceLevel | str = TraceLevel.EVERYTHING,
    ) -> None:
        keep = integer("keep", keep, high=sys.maxsize)
        self.level = TraceLevel.of(level)
        """Which kinds of event this trace records (fixed for its life)."""
        self.kinds = self.level.kinds
        """The kinds of event this trace records (its level's)."""
        self.sinks = list(sinks)
        self.events: collections.deque[TraceEvent] = collections.deque(maxlen=keep)
        self.error: OSError | None = None
        """The first error a sink raised; that sink got no event after it."""
        self.on_error: Callable[[OSError], None] | None = None
        """Called (once) with `error` when a sink first fails (a runner stops its run)."""
        self._failed: list[TraceSink] = []
        self._chain = ChainHash()
        self._now = _no_clock

    @property
    def count(self) -> int:
        """How many events this trace recorded (those kept in memory or not)."""
        return self._chain.count

    @property
    def hash(self) -> str:
        """The trace hash of every event recorded so far (equal to `trace_hash` of them)."""
        return self._chain.hexdigest()

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
    ) -> TraceEvent | None:
        """Record an event now; `message` gives its type (None for events without one).

        Returns the event, or None when the trace's level leaves its kind out (nothing is
        built then).
        """
        if kind not in self.kinds:
            return None
        message_type = None if message is None else type(message).__name__
        now = float(self._now())  # a clock giving ints writes floats all the same
        event = TraceEvent(now, kind, actor, peer, message_type, message_id, detail)
        line = event.to_json()
        self._chain.add(line)
        self.events.append(event)
        for sink in self.sinks:
            try:
                sink.write(event, line)
            except OSError as exc:
                self._fail(sink, exc)
        return event

    def _fail(self, sink: TraceSink, exc: OSError) -> None:
        self.sinks = [kept for kept in self.sinks if kept is not sink]
        self._failed.append(sink)
        if self.error is None:
            self.error = exc
            if self.on_error is not None:
                self.on_error(exc)

    def of_kind(self, *kinds: EventKind | str) -> list[TraceEvent]:
        """The kept events of the given kinds (an `EventKind`, or its value: ``"crash"``), in
        order.

        Raises:
            ValueError: a kind that is none (it lists the kinds).
        """
        wanted = {_event_kind(kind) for kind in kinds}
        return [event for event in self.events if event.kind in wanted]

    def state(self) -> dict[str, object]:
        """Everything this trace's future depends on, as plain data (msgpack can hold it):
        ``{"version": 1, "level": str, "keep": int, "count": int, "chain": bytes (32),
        "pending": [str], "events": [str]}``: the hash's state (`spaceactors.trace_chain`)
        and the kept events, oldest first, each as its JSON line (`TraceEvent.to_json`, ASCII
        only). Sinks are not in it: what they wrote is theirs."""
        return trace_state(self.level, self.events, self._chain, self.events.maxlen)

    def restore(self, state: object) -> None:
        """Continue from `state` (from `state`): the count, the hash and the kept events are
        the saved trace's; events recorded from now on follow them. The sinks get none of the
        restored events. A trace keeping fewer events than the saved one keeps the latest.

        Raises:
            ValueError: this trace already recorded events; `state` is not a trace state,
                names another level, or holds something that is not a trace event (the
                message names the field, and the event's place).
        """
        if self.count:
            raise ValueError(
                f"cannot restore a trace state into a trace that recorded {self.count} events "
                "(restore into a new Trace)"
            )
        chain, events = restore_trace(state, self.level)
        self._chain = chain
        self.events.extend(events)

    def close(self) -> None:
        """Flush and close every sink (those that failed too, keeping what they hold).

        Raises:
            OSError: a sink failed, now or while recording (`error`): its file holds the
                events up to the failure.
        """
        sinks, self.sinks = [*self.sinks, *self._failed], []
        self._failed = []
        for sink in sinks:
            try:
                sink.close()
            except OSError as exc:
                if self.error is None:
                    self.error = exc
        if self.error is not None:
            raise self.error


def _no_clock() -> float:
    return 0.0
