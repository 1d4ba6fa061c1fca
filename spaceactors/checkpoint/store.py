"""The state file: one SQLite file per run holding its checkpoints and its trace beside them.

Format 1: ``PRAGMA application_id`` is `APPLICATION_ID`, ``PRAGMA user_version`` is
`FORMAT_VERSION`; tables ``meta`` (one row: the run), ``checkpoints`` (the last ``keep``) and
``trace_segments`` (the trace, in contiguous segments). Every row carries the sha256 of all its
fields, verified on every read. Writes use SQLite's rollback journal with ``synchronous=FULL``:
one transaction each, so a process killed mid-write (SIGKILL, power loss) leaves the previous
checkpoint intact, and the next opening rolls the interrupted write back. Nothing in a file is
run as code (no pickle, no extensions, ``trusted_schema=OFF``, no triggers or views accepted).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from spaceactors import checks
from spaceactors.errors import StateFileError

FORMAT = "spaceactors-state"
"""The format's name, stored in the ``meta`` table."""
FORMAT_VERSION = 1
"""The format version this code reads and writes (``PRAGMA user_version``)."""
APPLICATION_ID = 0x53415354
"""``PRAGMA application_id`` of every state file: the bytes ``SAST`` (spaceactors state)."""
KEEP = 3
"""How many checkpoints a state file keeps by default (older ones are deleted)."""

_MAGIC = b"SQLite format 3\x00"
_DAMAGED = "the file changed after it was written: use a backup copy or start a new run"
_COLUMNS = {
    "meta": "format TEXT, format_version INTEGER, scenario TEXT, seed TEXT,"
    " spaceactors_version TEXT, code TEXT, created_at REAL, info TEXT, keep INTEGER, sha256 TEXT",
    "checkpoints": "number INTEGER PRIMARY KEY, sim_time REAL, trace_count INTEGER,"
    " taken_at REAL, payload BLOB, sha256 TEXT",
    "trace_segments": "first INTEGER PRIMARY KEY, count INTEGER, codec TEXT, data BLOB,"
    " sha256 TEXT",
}
_NAMES = {table: [c.split()[0] for c in cols.split(", ")] for table, cols in _COLUMNS.items()}
_TYPES = {"INTEGER": int, "REAL": float, "TEXT": str, "BLOB": bytes}
_KINDS = {
    table: [_TYPES[c.split()[1]] for c in cols.split(", ")] for table, cols in _COLUMNS.items()
}
_SQL_NAMES = {int: "an integer", float: "a real", str: "text", bytes: "a blob", type(None): "NULL"}


@attrs.frozen
class Checkpoint:
    """A verified checkpoint as stored: `number` (1, 2, ... in order of writing), `sim_time`
    (virtual seconds on the run's clock), `trace_count` (trace events before it), `taken_at`
    (wall-clock seconds since the epoch) and `payload` (the caller's msgpack bytes)."""

    number: int
    sim_time: float
    trace_count: int
    taken_at: float
    payload: bytes


@attrs.frozen
class TraceSegment:
    """A verified run of `count` trace events from event index `first` (0-based), encoded by
    the codec named `codec` as `data`."""

    first: int
    count: int
    codec: str
    data: bytes


@attrs.frozen
class StateMeta:
    """The run a state file belongs to, as `StateFile.create` recorded it; `created_at` is
    wall-clock seconds since the epoch, `info` the caller's JSON object."""

    scenario: str
    seed: int
    code: str
    spaceactors_version: str
    created_at: float
    info: dict[str, Any]
    keep: int


def _digest(*fields: int | float | str | bytes) -> str:
    """The sha256 (hex) of a row's fields, each tagged with its type and length."""
    h = hashlib.sha256()
    for field in fields:
        if isinstance(field, bytes):
            tag, raw = b"b", field
        elif isinstance(field, str):
            tag, raw = b"s", field.encode()
        elif isinstance(field, float):
            tag, raw = b"f", struct.pack(">d", field)
        else:
            tag, raw = b"i", str(field).encode()
        h.update(tag + len(raw).to_bytes(8, "big") + raw)
    return h.hexdigest()


def _path(path: object) -> Path:
    if isinstance(path, str | os.PathLike) and isinstance(os.fspath(path), str):
        return Path(path)
    raise StateFileError(f"a state file path must be a str or a PathLike, got {path!r:.60}")


def _blob(name: str, value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise StateFileError(f"{name} must be bytes, got {checks.short_repr(value)}")


def _info_text(info: object) -> str:
    """`info` as JSON text, if it is a JSON object that survives the round trip unchanged."""
    try:
        text = json.dumps({} if info is None else info, allow_nan=False, sort_keys=True)
        if isinstance(info, dict | None) and json.loads(text) == (info or {}):
            return text
    except (TypeError, ValueError, RecursionError):
        pass
    raise StateFileError(
        f"info must be a JSON object (a dict with str keys and JSON values), "
        f"got {checks.short_repr(info)}"
    )


def _header(path: Path) -> bytes:
    """The first 100 bytes of `path`, after checking it is a non-empty regular file."""
    try:
        if path.is_dir():
            raise StateFileError(f"{path}: is a directory, not a state file")
        if not path.exists():
            raise StateFileError(f"{path}: no such file: give the --state file a run wrote")
        if not path.is_file():
            raise StateFileError(f"{path}: not a regular file, so not a state file")
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as exc:
        raise StateFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not header:
        raise StateFileError(f"{path}: is empty, not a state file")
    if not header.startswith(_MAGIC):
        raise StateFileError(f"{path}: not a spaceactors state file (not a SQLite database)")
    if len(header) < 100:
        raise StateFileError(f"{path}: truncated ({len(header)} bytes, not even a header)")
    return header


def _truncation(path: Path) -> str | None:
    """What is wrong if `path` is shorter than its SQLite header says, else None."""
    with path.open("rb") as file:
        header = file.read(100)
        size = file.seek(0, os.SEEK_END)
    page_size = int.from_bytes(header[16:18], "big")
    wanted = int.from_bytes(header[28:32], "big") * (65536 if page_size == 1 else page_size)
    if header[24:28] == header[92:96] and size < wanted:  # the header's size is valid
        return f"truncated ({size} bytes of {wanted})"
    return None


def _sql_error(path: Path, doing: str, exc: sqlite3.Error) -> StateFileError:
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in str(exc):
        with contextlib.suppress(OSError):
            if problem := _truncation(path):
                return StateFileError(f"{path}: {problem}")
        return StateFileError(f"{path}: damaged (SQLite: {exc}): {_DAMAGED}")
    if name.startswith("SQLITE_READONLY"):
        return StateFileError(
            f"{path}: {doing} failed ({exc}): a write interrupted by a kill is rolled back "
            "when the file is opened, which needs write access to it and its folder"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StateFileError(f"{path}: in use by another process ({exc}): {doing} failed")
    return StateFileError(f"{path}: {doing} failed ({exc})")


def _place(temporary: Path, where: Path, overwrite: bool) -> None:
    """Put the finished file `temporary` at `where`, never over another file unless
    `overwrite`; then make the rename durable (best effort on the folder)."""
    for suffix in ("-journal", "-wal", "-shm"):  # a stale journal would be replayed into it
        Path(f"{where}{suffix}").unlink(missing_ok=True)
    if overwrite:
        os.replace(temporary, where)
    else:
        try:
            os.link(temporary, where)  # atomic, and fails if `where` appeared meanwhile
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            if os.path.lexists(where):
                raise FileExistsError(where) from None
            os.replace(temporary, where)
    with contextlib.suppress(OSError):
        folder = os.open(where.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
    """A connection that can roll back an interrupted write (mode rw even for reading)."""
    mode = "rwc" if create else "rw"
    db = sqlite3.connect(
        f"{path.absolute().as_uri()}?mode={mode}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=10.0,
    )
    for pragma in ("trusted_schema=OFF", "cell_size_check=ON", "synchronous=FULL"):
        db.execute(f"PRAGMA {pragma}")
    return db


class StateFile:
    """One run's state file: its checkpoints and its trace segments (see the module docs).

    Make one with `create` or `open`; close it with `close` or a ``with`` block. Every method
    is safe to call from any thread (calls are serialised). Every error is a `StateFileError`
    whose one line names the file and what is wrong.
    """

    def __init__(self, path: Path, db: sqlite3.Connection, writable: bool) -> None:
        """Use `create` or `open`."""
        self.path = path
        """The file's path, as given."""
        self._db: sqlite3.Connection | None = db
        self._writable = writable
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
        """Create a state file for a new run at `path` and open it for writing.

        The file appears whole or not at all (it is built beside `path`, then linked in).
        Args:
            scenario: the scenario's name. seed: the run's seed, in [-2**63, 2**64).
            code: a fingerprint of the code that runs (compared by `check_matches`).
            info: a JSON object kept with the run. keep: checkpoints kept (>= 1).
            overwrite: replace an existing state file (or empty file) at `path`.
        Raises:
            StateFileError: `path` exists (a file that is not a state file is never
                replaced; a state file only with `overwrite`), an argument is invalid, or
                the file cannot be written.
        """
        where = _path(path)
        scenario = checks.name("scenario", scenario, StateFileError)
        seed = checks.integer("seed", seed, StateFileError, low=-(2**63), high=2**64 - 1)
        code = checks.name("code", code, StateFileError)
        keep = checks.integer("keep", keep, StateFileError, low=1, high=2**31)
        info_text = _info_text(info)
        cls._refuse_existing(where, overwrite)
        from spaceactors import __version__

        row = (FORMAT, FORMAT_VERSION, scenario, str(seed), __version__, code, time.time(),
               info_text, keep)  # fmt: skip
        temporary = where.with_name(f".{where.name}.{secrets.token_hex(6)}.creating")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            raise StateFileError(f"{where}: cannot be created ({exc.strerror or exc})") from None
        try:
            db = _connect(temporary, create=True)
            try:
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
                db.execute("BEGIN IMMEDIATE")
                for table, columns in _COLUMNS.items():
                    db.execute(f"CREATE TABLE {table} ({columns})")
                db.execute(f"INSERT INTO meta VALUES ({','.join('?' * 10)})", (*row, _digest(*row)))
                db.execute("COMMIT")
            finally:
                db.close()
            _place(temporary, where, overwrite)
        except FileExistsError:
            raise StateFileError(f"{where}: another process created it meanwhile") from None
        except (OSError, sqlite3.Error) as exc:
            raise StateFileError(f"{where}: cannot be created ({exc})") from None
        finally:
            temporary.unlink(missing_ok=True)
        return cls.open(where, writable=True)

    @staticmethod
    def _refuse_existing(path: Path, overwrite: bool) -> None:
        if not os.path.lexists(path):
            return
        try:
            ours = _header(path)[68:72] == APPLICATION_ID.to_bytes(4, "big")
        except StateFileError:
            ours = False
        with contextlib.suppress(OSError):
            ours = ours or (path.is_file() and path.stat().st_size == 0)
        if not ours:
            raise StateFileError(
                f"{path}: already exists and is not a spaceactors state file: choose another "
                "path (it is never overwritten)"
            )
        if not overwrite:
            raise StateFileError(
                f"{path}: already holds a run: resume it (spaceactors resume {path}), choose "
                "another path, or replace it (overwrite=True, --overwrite)"
            )

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writable: bool = False) -> StateFile:
        """Open an existing state file, checking everything: that it is a spaceactors state
        file of this format version, with its tables, columns and a valid ``meta`` row (the
        checkpoints and trace segments are verified as they are read). An interrupted write is
        rolled back first (this needs write access to the file, even when not `writable`).

        Raises:
            StateFileError: the file is missing, a directory, empty, truncated, not SQLite,
                a SQLite database of something else, of another format version, or damaged.
        """
        where = _path(path)
        header = _header(where)
        if header[18:20] != b"\x01\x01":  # spaceactors never writes WAL files
            raise StateFileError(f"{where}: damaged (its header asks for WAL mode): {_DAMAGED}")
        try:
            db = _connect(where)
        except sqlite3.Error as exc:
            raise _sql_error(where, "opening", exc) from None
        try:
            return cls(where, db, writable)
        except BaseException:
            db.close()
            raise

    def _validate(self) -> StateMeta:
        with self._guard("reading"):
            db = self._live()
            application_id = db.execute("PRAGMA application_id").fetchone()[0]
            if problem := _truncation(self.path):  # checked after any interrupted write's undo
                raise self._error(problem)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if application_id != APPLICATION_ID:
                what = "something else" if application_id == 0 else "another application"
                raise self._error(
                    f"not a spaceactors state file (it is a SQLite database of {what})"
                )
            if version != FORMAT_VERSION:
                newer = version > FORMAT_VERSION
                raise self._error(
                    f"format version {version} is {'newer' if newer else 'older'} than this "
                    f"spaceactors reads ({FORMAT_VERSION}): "
                    + ("upgrade spaceactors" if newer else "start a new run")
                )
            for kind, name in db.execute("SELECT type, name FROM sqlite_master"):
                if kind != "table" or name not in _COLUMNS:
                    raise self._error(f"damaged (it holds a {kind} {name!r}): {_DAMAGED}")
            for table, names in _NAMES.items():
                found = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
                if not found:
                    raise self._error(f"damaged (its table {table} is missing): {_DAMAGED}")
                if missing := [n for n in names if n not in found]:
                    raise self._error(
                        f"damaged (table {table} has no column {missing[0]}): {_DAMAGED}"
                    )
            rows = db.execute(f"SELECT {', '.join(_NAMES['meta'])} FROM meta").fetchall()
        if len(rows) != 1:
            raise self._error(f"damaged (its meta table has {len(rows)} rows, not 1): {_DAMAGED}")
        row = self._typed("its meta row", "meta", rows[0])
        fmt, fmt_version, scenario, seed, version_, code, created, info, keep, digest = row
        if digest != _digest(*row[:-1]):
            raise self._error(f"damaged (its meta row's checksum does not match): {_DAMAGED}")
        if fmt != FORMAT or fmt_version != version or not re.fullmatch(r"-?[0-9]{1,20}", seed):
            raise self._error(f"damaged (its meta row is inconsistent): {_DAMAGED}")
        try:
            loaded = json.loads(info)
        except (ValueError, RecursionError):
            loaded = None
        if not isinstance(loaded, dict) or keep < 1:
            raise self._error(f"damaged (its meta row is inconsistent): {_DAMAGED}")
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

        meta = self._meta
        if scenario != meta.scenario:
            raise self._error(
                f"was written by scenario {meta.scenario!r}, not {scenario!r}", sep=" "
            )
        if (code, __version__) != (meta.code, meta.spaceactors_version):
            raise self._error(
                f"was written by spaceactors {meta.spaceactors_version} / code {meta.code}, "
                f"this is spaceactors {__version__} / code {code}: resume it with the code that "
                "wrote it, or start a new run",
                sep=" ",
            )

    def write_checkpoint(self, sim_time: float, trace_count: int, payload: bytes) -> int:
        """Store a checkpoint taken at `sim_time` (virtual seconds) after `trace_count` trace
        events, in one durable transaction that also deletes all but the last ``meta.keep``
        checkpoints. A kill at any moment leaves either this checkpoint or none of it.

        Returns:
            The new checkpoint's number (one more than the latest's, 1 for the first).
        Raises:
            StateFileError: the file is closed or read-only, an argument is invalid, the
                checkpoint goes back in time (or trace) from the latest one, or the write
                failed (disk full...); the file is then unchanged.
        """
        sim_time = checks.seconds("sim_time", sim_time, StateFileError)
        trace_count = checks.integer("trace_count", trace_count, StateFileError, high=2**63 - 1)
        payload = _blob("payload", payload)
        with self._writing("writing a checkpoint") as db:
            last = db.execute(
                "SELECT number, sim_time, trace_count FROM checkpoints ORDER BY number DESC LIMIT 1"
            ).fetchone() or (0, 0.0, 0)
            if type(last[1]) is not float or type(last[2]) is not int:
                raise self._error(f"checkpoint {last[0]} is damaged (wrong types): {_DAMAGED}")
            if sim_time < last[1] or trace_count < last[2]:
                raise self._error(
                    f"a checkpoint at sim_time {sim_time} after {trace_count} events would go "
                    f"back from checkpoint {last[0]} (sim_time {last[1]}, {last[2]} events)"
                )
            row = (last[0] + 1, sim_time, trace_count, time.time(), payload)
            db.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)", (*row, _digest(*row)))
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
            names = ", ".join(_NAMES["checkpoints"])
            rows = self._live().execute(f"SELECT {names} FROM checkpoints {order}").fetchall()
        found = []
        for row in rows:
            what = f"checkpoint {row[0]}"
            number, sim_time, trace_count, taken_at, payload, digest = self._typed(
                what, "checkpoints", row
            )
            if digest != _digest(*row[:-1]):
                raise self._error(f"{what} is damaged (its checksum does not match): {_DAMAGED}")
            if not (math.isfinite(sim_time) and sim_time >= 0 and trace_count >= 0):
                raise self._error(f"{what} is damaged (sim_time or trace_count out of range)")
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
        first = checks.integer("first", first, StateFileError, high=2**62)
        count = checks.integer("count", count, StateFileError, low=1, high=2**62)
        codec = checks.name("codec", codec, StateFileError)
        data = _blob("data", data)
        with self._writing("appending a trace segment") as db:
            last = db.execute(
                "SELECT first + count FROM trace_segments ORDER BY first DESC LIMIT 1"
            ).fetchone()
            if last is not None and last[0] != first:
                raise self._error(
                    f"a trace segment from event {first} does not follow the stored trace, "
                    f"which ends at event {last[0]}: append segments in order"
                )
            row = (first, count, codec, data)
            db.execute("INSERT INTO trace_segments VALUES (?, ?, ?, ?, ?)", (*row, _digest(*row)))

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
        while found is not None:
            yield found
            expected = found.first + found.count
            found = self._segment("first >= ? ORDER BY first", expected)
            if found is not None and found.first != expected:
                raise self._error(
                    f"damaged (events {expected} to {found.first - 1} of the trace are "
                    f"missing): {_DAMAGED}"
                )

    def _segment(self, where: str, index: int) -> TraceSegment | None:
        """The first segment matching `where` (with `index` for its ``?``), verified."""
        names = ", ".join(_NAMES["trace_segments"])
        with self._guard("reading the trace"):
            row = (
                self._live()
                .execute(f"SELECT {names} FROM trace_segments WHERE {where} LIMIT 1", (index,))
                .fetchone()
            )
        if row is None:
            return None
        what = f"the trace segment from event {row[0]}"
        first, count, codec, data, digest = self._typed(what, "trace_segments", row)
        if digest != _digest(*row[:-1]):
            raise self._error(f"{what} is damaged (its checksum does not match): {_DAMAGED}")
        if first < 0 or count < 1:
            raise self._error(f"{what} is damaged (its count is {count}): {_DAMAGED}")
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

    def close(self) -> None:
        """Close the file (idempotent); every later call raises `StateFileError`."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> StateFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _error(self, problem: str, sep: str = ": ") -> StateFileError:
        return StateFileError(f"{self.path}{sep}{problem}")

    def _live(self) -> sqlite3.Connection:
        if self._db is None:
            raise self._error("is closed", sep=" ")
        return self._db

    def _typed(self, what: str, table: str, row: tuple[Any, ...]) -> tuple[Any, ...]:
        for name, kind, value in zip(_NAMES[table], _KINDS[table], row, strict=True):
            if type(value) is not kind:
                shown = _SQL_NAMES.get(type(value), type(value).__name__)
                raise self._error(
                    f"{what} is damaged (its {name} is {shown}, not {_SQL_NAMES[kind]}): {_DAMAGED}"
                )
        return row

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Hold the lock; turn SQLite's errors into a `StateFileError`."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise _sql_error(self.path, doing, exc) from None
            except OSError as exc:
                raise self._error(f"{doing} failed ({exc.strerror or exc})") from None

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
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
