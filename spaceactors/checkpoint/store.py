"""The state file: one SQLite file per run holding its checkpoints and its trace beside them.

Format 1: ``PRAGMA application_id`` is `APPLICATION_ID`, ``PRAGMA user_version`` is
`FORMAT_VERSION`; tables ``meta`` (one row: the run), ``checkpoints`` (the last ``keep``) and
``trace_segments`` (the trace, in contiguous segments). Every row carries the sha256 of all its
fields, verified on every read. Writes use SQLite's rollback journal with ``synchronous=FULL``:
one transaction each, so a process killed mid-write (SIGKILL, power loss) leaves the previous
checkpoint intact, and the next opening rolls the interrupted write back. One process at a
time writes a file (an exclusive ``flock`` held while it is open for writing). Nothing in a
file is run as code (no pickle, no extensions, ``trusted_schema=OFF``, no triggers, views or
indexes accepted).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spaceactors import checks
from spaceactors.checkpoint.records import (
    Checkpoint,
    StateMeta,
    TraceSegment,
    checked_blob,
    checked_flag,
    checked_info,
    checked_path,
    checked_segment,
)
from spaceactors.checkpoint.sqlitefile import (
    DAMAGED,
    FORMAT,
    FORMAT_VERSION,
    KINDS,
    NAMES,
    SQL_ERRORS,
    SQL_NAMES,
    build,
    connect,
    digest,
    header,
    hold,
    refuse_existing,
    release,
    schema_problem,
    sql_error,
    unwritable,
)
from spaceactors.errors import StateFileError

KEEP = 3
"""How many checkpoints a state file keeps by default (older ones are deleted)."""


class StateFile:
    """One run's state file: its checkpoints and its trace segments (see the module docs).

    Make one with `create` or `open`; close it with `close` or a ``with`` block. Every method
    is safe to call from any thread (calls are serialised). Every error is a `StateFileError`
    whose one line names the file and what is wrong.
    """

    def __init__(self, path: Path, db: sqlite3.Connection, held: int | None) -> None:
        """Use `create` or `open`."""
        self.path = path
        """The file's path, as given."""
        self._db: sqlite3.Connection | None = db
        self._held = held  # the descriptor holding the writer's lock (`hold`), if writable
        self._writable = writable = held is not None
        self._lock = threading.Lock()
        self._meta = self._validate()
        with self._guard("opening"):
            db.execute(f"PRAGMA query_only={'OFF' if writable else 'ON'}")

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        scenario: str,
        seed: int,
        code: str,
        info: dict[str, Any] | None = None,
        keep: int = KEEP,
        overwrite: bool = False,
    ) -> StateFile:
        """Create the state file of a new run at `path` and open it for writing.

        The file appears whole or not at all: it is built beside `path`, then linked in.

        Args:
            path: where the file goes; nothing may be there (see `overwrite`).
            scenario: the scenario's name (compared by `check_matches`).
            seed: the run's seed, an int in [-2**63, 2**64).
            code: a fingerprint of the code that runs (compared by `check_matches`).
            info: a JSON object kept with the run (a dict with str keys), or None.
            keep: how many checkpoints to keep (>= 1); older ones are deleted.
            overwrite: replace a state file (or an empty file) already at `path`.

        Returns:
            The new file, open for writing, with no checkpoint yet.

        Raises:
            StateFileError: something is at `path` (a file that is not a state file is
                never replaced; a state file only with `overwrite`, and never while another
                process writes it), an argument is
                invalid, or the file cannot be created.
        """
        where = checked_path(path)
        scenario = checks.name("scenario", scenario, StateFileError)
        seed = checks.integer("seed", seed, StateFileError, low=-(2**63), high=2**64 - 1)
        code = checks.name("code", code, StateFileError)
        keep = checks.integer("keep", keep, StateFileError, low=1, high=2**31)
        info_text, overwrite = checked_info(info), checked_flag("overwrite", overwrite)
        refuse_existing(where, overwrite)
        from spaceactors import __version__

        row = (FORMAT, FORMAT_VERSION, scenario, str(seed), __version__, code, time.time(),
               info_text, keep)  # fmt: skip
        replaced = hold(where) if overwrite and os.path.lexists(where) else None
        try:  # a file replaced is held meanwhile: never one another process still writes
            build(where, row, overwrite)
        finally:
            if replaced is not None:
                release(replaced)
        return cls.open(where, writable=True)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writable: bool = False) -> StateFile:
        """Open an existing state file, checking everything: that it is a spaceactors state
        file of this format version, with its tables, columns and a valid ``meta`` row (the
        checkpoints and trace segments are verified as they are read). An interrupted write is
        rolled back first (this needs write access to the file, even when not `writable`).

        A file open for writing is held by its one writer until it is closed (an exclusive
        ``flock``, apart from SQLite's own locks): another process's readers still open it,
        another writer is refused.

        Raises:
            StateFileError: the file is missing, a directory, empty, truncated, not SQLite,
                a SQLite database of something else, of another format version, or damaged
                (its schema is checked whole); or, when `writable`, the file or its folder is
                read-only, or another writer holds it.
        """
        where, writable = checked_path(path), checked_flag("writable", writable)
        head = header(where)
        if head[18:20] != b"\x01\x01":  # spaceactors never writes WAL files
            raise StateFileError(f"{where}: damaged (its header asks for WAL mode): {DAMAGED}")
        if writable and (problem := unwritable(where)):
            raise StateFileError(problem)
        held = hold(where) if writable else None
        try:
            try:
                db = connect(where)
            except SQL_ERRORS as exc:
                raise sql_error(where, "opening", exc) from None
            try:
                return cls(where, db, held)
            except BaseException:
                db.close()
                raise
        except BaseException:
            if held is not None:
                release(held)
            raise

    @contextlib.contextmanager
    def forked(self) -> Iterator[StateFile]:
        """This file, open for writing in a child process forked while this process had it
        open for writing: a connection of the child's own (an SQLite connection must not be
        used across ``fork``) under the writer's lock the child inherited, which stays this
        process's to release. Use it only in such a child.

        The file at the path must still be the one this process holds: a state file replaced
        or deleted meanwhile is refused, never written in its place.

        Raises:
            StateFileError: this file is not open for writing, the file at its path is no
                longer the one held, or opening it again failed.
        """
        with self._guard("opening"):
            self._live()
            held = self._held
            if held is None:
                raise self._error("was opened read-only: open it with writable=True", sep=" ")
        self._still_held(held)
        try:
            db = connect(self.path)
        except SQL_ERRORS as exc:
            raise sql_error(self.path, "opening", exc) from None
        try:
            self._still_held(held)  # (replaced while connecting: never write the other one)
            child = StateFile(self.path, db, held)
        except BaseException:
            db.close()
            raise
        try:
            yield child
        finally:
            child._held = None  # the lock's descriptor is the parent's: never released here
            child.close()

    def _still_held(self, held: int) -> None:
        try:
            same = os.path.samestat(os.fstat(held), os.stat(self.path))
        except FileNotFoundError:
            same = False
        except OSError as exc:
            raise self._error(f"cannot be checked ({exc.strerror or exc})") from None
        if not same:
            raise self._error(
                "was deleted or replaced by another file while this run wrote it: the run's "
                "checkpoints stop here; put the file back, or start the run again",
                sep=" ",
            )

    def _validate(self) -> StateMeta:
        with self._guard("reading"):
            db = self._live()
            if problem := schema_problem(db, self.path):
                raise self._error(problem)
            rows = db.execute(f"SELECT {', '.join(NAMES['meta'])} FROM meta").fetchall()
        if len(rows) != 1:
            raise self._error(f"damaged (its meta table has {len(rows)} rows, not 1): {DAMAGED}")
        row = self._typed("its meta row", "meta", rows[0])
        fmt, fmt_version, scenario, seed, version_, code, created, info, keep, stored = row
        if stored != digest(*row[:-1]):
            raise self._error(f"damaged (its meta row's checksum does not match): {DAMAGED}")
        seed_ok = re.fullmatch(r"-?[0-9]{1,20}", seed)
        if fmt != FORMAT or fmt_version != FORMAT_VERSION or not seed_ok:
            raise self._error(f"damaged (its meta row is inconsistent): {DAMAGED}")
        try:
            loaded = json.loads(info)
        except (ValueError, RecursionError):
            loaded = None
        if not isinstance(loaded, dict) or keep < 1:
            raise self._error(f"damaged (its meta row is inconsistent): {DAMAGED}")
        return StateMeta(scenario, int(seed), code, version_, created, loaded, keep)

    @property
    def meta(self) -> StateMeta:
        """The run this file belongs to (checked when the file was opened)."""
        return self._meta

    def check_matches(self, *, scenario: str, code: str) -> None:
        """Check that this file was written by `scenario` with code fingerprint `code` and
        this spaceactors version, so resuming it continues the same run.

        Raises:
            StateFileError: naming both sides of the first difference.
        """
        from spaceactors import __version__

        scenario = checks.name("scenario", scenario, StateFileError)
        code = checks.name("code", code, StateFileError)
        meta, short = self._meta, checks.shorten
        if scenario != meta.scenario:
            raise self._error(
                f"was written by scenario {short(meta.scenario)!r}, not {short(scenario)!r}: "
                f"resume it with {short(meta.scenario)!r}, or give the state file of "
                f"{short(scenario)!r}",
                sep=" ",
            )
        if (code, __version__) != (meta.code, meta.spaceactors_version):
            raise self._error(
                f"was written by spaceactors {short(meta.spaceactors_version)} / code "
                f"{short(meta.code)}, this is spaceactors {__version__} / code {short(code)}: "
                "resume it with the code that wrote it, or start a new run",
                sep=" ",
            )

    def write_checkpoint(
        self,
        sim_time: float,
        trace_count: int,
        payload: bytes,
        *,
        segment: TraceSegment | None = None,
    ) -> int:
        """Store a checkpoint taken at `sim_time` (virtual seconds) after `trace_count` trace
        events, in one durable transaction that also deletes all but the last ``meta.keep``
        checkpoints. A kill at any moment leaves either this checkpoint or none of it.

        Args:
            sim_time: the run's clock at the checkpoint, in virtual seconds (>= 0, finite).
            trace_count: how many trace events the run recorded before it (>= 0).
            payload: the captured state (msgpack bytes); stored as is.
            segment: the trace since the last segment, ending at event `trace_count`, stored in
                the same transaction (as `append_trace_segment` would), so the stored trace
                never runs past the latest checkpoint.

        Returns:
            The new checkpoint's number (one more than the latest's, 1 for the first).
        Raises:
            StateFileError: the file is closed or read-only, an argument is invalid, the
                checkpoint goes back in time (or trace) from the latest one, the segment does
                not end at `trace_count` or follow the stored trace, or the write failed
                (disk full...); the file is then unchanged.
        """
        sim_time = checks.seconds("sim_time", sim_time, StateFileError)
        trace_count = checks.integer("trace_count", trace_count, StateFileError, high=2**63 - 1)
        payload = checked_blob("payload", payload)
        if segment is not None:
            if not isinstance(segment, TraceSegment):
                raise StateFileError(f"segment must be a TraceSegment, got {segment!r:.60}")
            segment = checked_segment(segment.first, segment.count, segment.codec, segment.data)
            if segment.first + segment.count != trace_count:
                raise StateFileError(
                    f"the trace segment ends at event {segment.first + segment.count}, not at "
                    f"the checkpoint's trace_count {trace_count}"
                )
        with self._writing("writing a checkpoint") as db:
            if segment is not None:
                self._append(db, segment)
            last = db.execute(
                "SELECT number, sim_time, trace_count FROM checkpoints ORDER BY number DESC LIMIT 1"
            ).fetchone() or (0, 0.0, 0)
            if type(last[1]) is not float or type(last[2]) is not int:
                raise self._error(f"checkpoint {last[0]} is damaged (wrong types): {DAMAGED}")
            if sim_time < last[1] or trace_count < last[2]:
                raise self._error(
                    f"a checkpoint at sim_time {sim_time} after {trace_count} events would go "
                    f"back from checkpoint {last[0]} (sim_time {last[1]}, {last[2]} events): "
                    "write checkpoints in the order they are taken"
                )
            row = (last[0] + 1, sim_time, trace_count, time.time(), payload)
            db.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)", (*row, digest(*row)))
            db.execute("DELETE FROM checkpoints WHERE number <= ?", (row[0] - self._meta.keep,))
        return row[0]

    def latest(self) -> Checkpoint | None:
        """The latest checkpoint, verified; None when there is none yet.

        Raises:
            StateFileError: it is damaged (its checksum does not match, a field is NULL or of
                the wrong type), or the file is closed.
        """
        found = self._checkpoints("ORDER BY number DESC LIMIT 1")
        return found[0] if found else None

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint kept, oldest first, verified (raises as `latest` does)."""
        return self._checkpoints("ORDER BY number")

    def _checkpoints(self, order: str) -> list[Checkpoint]:
        with self._guard("reading checkpoints"):
            names = ", ".join(NAMES["checkpoints"])
            rows = self._live().execute(f"SELECT {names} FROM checkpoints {order}").fetchall()
        found = []
        for row in rows:
            what = f"checkpoint {row[0]}"
            number, sim_time, trace_count, taken_at, payload, stored = self._typed(
                what, "checkpoints", row
            )
            if stored != digest(*row[:-1]):
                raise self._error(f"{what} is damaged (its checksum does not match): {DAMAGED}")
            if not (math.isfinite(sim_time) and sim_time >= 0 and trace_count >= 0):
                raise self._error(
                    f"{what} is damaged (sim_time or trace_count out of range): {DAMAGED}"
                )
            found.append(Checkpoint(number, sim_time, trace_count, taken_at, payload))
        return found

    def append_trace_segment(self, first: int, count: int, codec: str, data: bytes) -> None:
        """Store `count` (>= 1) trace events from event index `first`, encoded by `codec` as
        `data`, in one durable transaction. Segments follow each other without gap or overlap:
        `first` is where the stored trace ends (any index when none is stored).

        Raises:
            StateFileError: an argument is invalid, `first` does not follow the stored trace,
                the file is closed or read-only, or the write failed (the file is unchanged).
        """
        segment = checked_segment(first, count, codec, data)
        with self._writing("appending a trace segment") as db:
            self._append(db, segment)

    def _append(self, db: sqlite3.Connection, segment: TraceSegment) -> None:
        last = db.execute(
            "SELECT first + count FROM trace_segments ORDER BY first DESC LIMIT 1"
        ).fetchone()
        if last is not None and last[0] != segment.first:
            raise self._error(
                f"a trace segment from event {segment.first} does not follow the stored trace, "
                f"which ends at event {last[0]}: append segments in order"
            )
        row = (segment.first, segment.count, segment.codec, segment.data)
        db.execute("INSERT INTO trace_segments VALUES (?, ?, ?, ?, ?)", (*row, digest(*row)))

    def trace_segments(self, start: int = 0) -> Iterator[TraceSegment]:
        """The stored trace segments holding events from index `start` on, in order, each
        verified; one is read at a time. Segments dropped by `drop_trace_before` are skipped,
        so the first may start after `start`; a gap later on is an error.

        Raises:
            StateFileError: a segment is damaged or missing, or the file is closed (raised
                while iterating).
        """
        start = checks.integer("start", start, StateFileError, high=2**63 - 1)
        return self._segments(start)

    def _segments(self, start: int) -> Iterator[TraceSegment]:
        found = self._segment("first <= ? ORDER BY first DESC", start)
        if found is None or found.first + found.count <= start:
            found = self._segment("first > ? ORDER BY first", start)
        if found is not None:  # verify the one before too: a damaged row must not hide there
            before = self._segment("first < ? ORDER BY first DESC", found.first)
            if before is not None and before.first + before.count > found.first:
                raise self._error(f"damaged (trace segments overlap at {found.first}): {DAMAGED}")
        while found is not None:
            yield found
            expected = found.first + found.count
            found = self._segment("first > ? ORDER BY first", found.first)  # every row, in order
            if found is not None and found.first != expected:
                problem = (
                    f"events {expected} to {found.first - 1} of the trace are missing"
                    if found.first > expected
                    else f"the trace segment from event {found.first} overlaps the one before"
                )
                raise self._error(f"damaged ({problem}): {DAMAGED}")

    def _segment(self, where: str, index: int) -> TraceSegment | None:
        """The first segment matching `where` (with `index` for its ``?``), verified."""
        names = ", ".join(NAMES["trace_segments"])
        with self._guard("reading the trace"):
            row = (
                self._live()
                .execute(f"SELECT {names} FROM trace_segments WHERE {where} LIMIT 1", (index,))
                .fetchone()
            )
        if row is None:
            return None
        what = f"the trace segment from event {row[0]}"
        first, count, codec, data, stored = self._typed(what, "trace_segments", row)
        if stored != digest(*row[:-1]):
            raise self._error(f"{what} is damaged (its checksum does not match): {DAMAGED}")
        if first < 0 or count < 1:
            raise self._error(f"{what} is damaged (its count is {count}): {DAMAGED}")
        return TraceSegment(first, count, codec, data)

    def drop_trace_before(self, event_index: int) -> int:
        """Delete the trace segments whose events all come before `event_index` (a segment
        holding it is kept whole), in one transaction. Returns how many were deleted.

        Raises:
            StateFileError: the file is closed or read-only, or the write failed.
        """
        event_index = checks.integer("event_index", event_index, StateFileError, high=2**63 - 1)
        with self._writing("dropping trace segments") as db:
            query = "DELETE FROM trace_segments WHERE first + count <= ?"
            cursor = db.execute(query, (event_index,))
        return cursor.rowcount

    def drop_trace_from(self, event_index: int) -> int:
        """Delete the trace segments from event `event_index` on (e.g. past the checkpoint a
        run resumes from), in one transaction. Returns how many were deleted.

        Raises:
            StateFileError: `event_index` falls inside a segment (not at its start), the file
                is closed or read-only, or the write failed.
        """
        event_index = checks.integer("event_index", event_index, StateFileError, high=2**63 - 1)
        with self._writing("dropping trace segments") as db:
            inside = db.execute(
                "SELECT first FROM trace_segments WHERE first < ?1 AND first + count > ?1",
                (event_index,),
            ).fetchone()
            if inside is not None:
                raise self._error(
                    f"event {event_index} is inside the trace segment from event {inside[0]}: "
                    "drop from the start of a segment"
                )
            cursor = db.execute("DELETE FROM trace_segments WHERE first >= ?", (event_index,))
        return cursor.rowcount

    def close(self) -> None:
        """Close the file (idempotent); every later call raises `StateFileError`."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._held is not None:  # after the connection: see `hold`
                release(self._held)
                self._held = None

    def __enter__(self) -> StateFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _error(self, problem: str, sep: str = ": ") -> StateFileError:
        return StateFileError(f"{self.path}{sep}{problem}")

    def _live(self) -> sqlite3.Connection:
        if self._db is None:
            raise self._error("is closed: open it again (StateFile.open)", sep=" ")
        return self._db

    def _typed(self, what: str, table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
        for name, kind, value in zip(NAMES[table], KINDS[table], row, strict=True):
            if type(value) is not kind:
                shown = SQL_NAMES.get(type(value), type(value).__name__)
                raise self._error(
                    f"{what} is damaged (its {name} is {shown}, not {SQL_NAMES[kind]}): {DAMAGED}"
                )
        return row

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Hold the lock; turn SQLite's errors into a `StateFileError`."""
        with self._lock:
            try:
                yield
            except SQL_ERRORS as exc:
                raise sql_error(self.path, doing, exc) from None
            except OSError as exc:
                raise self._error(
                    f"{doing} failed ({exc.strerror or exc}): check the file, its folder and "
                    "its disk, then open it again"
                ) from None

    @contextlib.contextmanager
    def _writing(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back on any error."""
        with self._guard(doing):
            db = self._live()
            if not self._writable:
                raise self._error("was opened read-only: open it with writable=True", sep=" ")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(*SQL_ERRORS):
                    db.execute("ROLLBACK")
                raise
