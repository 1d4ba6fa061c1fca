"""The SQLite layer of the state file: its schema, the checks of a file before and after SQLite
opens it, atomic creation, and SQLite's errors as one-line `StateFileError`s."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sqlite3
import struct
from pathlib import Path

from spaceactors.checks import shorten
from spaceactors.errors import StateFileError

FORMAT = "spaceactors-state"
"""The format's name, stored in the ``meta`` table."""
FORMAT_VERSION = 1
"""The format version this code reads and writes (``PRAGMA user_version``)."""
APPLICATION_ID = 0x53415354
"""``PRAGMA application_id`` of every state file: the bytes ``SAST`` (spaceactors state)."""

MAGIC = b"SQLite format 3\x00"
DAMAGED = "the file changed after it was written: use a backup copy or start a new run"
COLUMNS = {
    "meta": "format TEXT, format_version INTEGER, scenario TEXT, seed TEXT,"
    " spaceactors_version TEXT, code TEXT, created_at REAL, info TEXT, keep INTEGER, sha256 TEXT",
    "checkpoints": "number INTEGER PRIMARY KEY, sim_time REAL, trace_count INTEGER,"
    " taken_at REAL, payload BLOB, sha256 TEXT",
    "trace_segments": "first INTEGER PRIMARY KEY, count INTEGER, codec TEXT, data BLOB,"
    " sha256 TEXT",
}
NAMES = {table: [c.split()[0] for c in cols.split(", ")] for table, cols in COLUMNS.items()}
TYPES = {"INTEGER": int, "REAL": float, "TEXT": str, "BLOB": bytes}
KINDS = {
    table: [TYPES[c.split()[1]] for c in cols.split(", ")] for table, cols in COLUMNS.items()
}
SQL_NAMES = {int: "an integer", float: "a real", str: "text", bytes: "a blob", type(None): "NULL"}


def digest(*fields: int | float | str | bytes) -> str:
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


def header(path: Path) -> bytes:
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
    if not header.startswith(MAGIC):
        raise StateFileError(f"{path}: not a spaceactors state file (not a SQLite database)")
    if len(header) < 100:
        raise StateFileError(f"{path}: truncated ({len(header)} bytes, not even a header)")
    return header


def truncation(path: Path) -> str | None:
    """What is wrong if `path` is shorter than its SQLite header says, else None."""
    with path.open("rb") as file:
        header = file.read(100)
        size = file.seek(0, os.SEEK_END)
    page_size = int.from_bytes(header[16:18], "big")
    wanted = int.from_bytes(header[28:32], "big") * (65536 if page_size == 1 else page_size)
    if header[24:28] == header[92:96] and size < wanted:  # the header's size is valid
        return f"truncated ({size} bytes of {wanted})"
    return None


SQL_ERRORS = (sqlite3.Error, UnicodeDecodeError)  # SQLite's message on a damaged file may not
# even be UTF-8


def sql_error(path: Path, doing: str, exc: Exception) -> StateFileError:
    name = getattr(exc, "sqlite_errorname", "")
    if isinstance(exc, UnicodeDecodeError):
        return StateFileError(f"{path}: damaged (SQLite: text that is not UTF-8): {DAMAGED}")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in str(exc):
        with contextlib.suppress(OSError):
            if problem := truncation(path):
                return StateFileError(f"{path}: {problem}")
        return StateFileError(f"{path}: damaged (SQLite: {exc}): {DAMAGED}")
    if name.startswith("SQLITE_READONLY"):
        return StateFileError(
            f"{path}: {doing} failed ({exc}): a write interrupted by a kill is rolled back "
            "when the file is opened, which needs write access to it and its folder"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StateFileError(f"{path}: in use by another process ({exc}): {doing} failed")
    return StateFileError(f"{path}: {doing} failed ({exc})")


def place(temporary: Path, where: Path, overwrite: bool) -> None:
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


def connect(path: Path, *, create: bool = False) -> sqlite3.Connection:
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


def build(where: Path, meta: tuple[int | float | str, ...], overwrite: bool) -> None:
    """Create the state file `where` with its schema and `meta` row: built beside it, then
    linked in whole (`place`).

    Raises:
        StateFileError: it cannot be created, or another process created it meanwhile.
    """
    temporary = where.with_name(f".{where.name}.{secrets.token_hex(6)}.creating")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise StateFileError(f"{where}: cannot be created ({exc.strerror or exc})") from None
    try:
        db = connect(temporary, create=True)
        try:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute(f"PRAGMA user_version={FORMAT_VERSION}")
            db.execute("BEGIN IMMEDIATE")
            for table, columns in COLUMNS.items():
                db.execute(f"CREATE TABLE {table} ({columns})")
            db.execute(f"INSERT INTO meta VALUES ({','.join('?' * 10)})", (*meta, digest(*meta)))
            db.execute("COMMIT")
        finally:
            db.close()
        place(temporary, where, overwrite)
    except FileExistsError:
        raise StateFileError(f"{where}: another process created it meanwhile") from None
    except (OSError, *SQL_ERRORS) as exc:
        raise StateFileError(f"{where}: cannot be created ({exc})") from None
    finally:
        temporary.unlink(missing_ok=True)


def refuse_existing(path: Path, overwrite: bool) -> None:
    """Refuse to create a state file at `path` if something is there: a file that is not a
    state file (or empty) always, a state file unless `overwrite`."""
    if not os.path.lexists(path):
        return
    try:
        ours = header(path)[68:72] == APPLICATION_ID.to_bytes(4, "big")
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


def schema_problem(db: sqlite3.Connection, path: Path) -> str | None:
    """What makes the open database `db` (at `path`) not a state file of this format, if
    anything: its size, application_id, version, tables and columns."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    if problem := truncation(path):  # checked after the first read undid an interrupted write
        return problem
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if application_id != APPLICATION_ID:
        what = "something else" if application_id == 0 else "another application"
        return f"not a spaceactors state file (it is a SQLite database of {what})"
    if version != FORMAT_VERSION:
        newer = version > FORMAT_VERSION
        return (
            f"format version {version} is {'newer' if newer else 'older'} than this "
            f"spaceactors reads ({FORMAT_VERSION}): "
            + ("upgrade spaceactors" if newer else "start a new run")
        )
    for kind, name in db.execute("SELECT type, name FROM sqlite_master"):
        if kind != "table" or name not in COLUMNS:
            return f"damaged (it holds a {kind} {shorten(str(name))!r}): {DAMAGED}"
    for table, names in NAMES.items():
        found = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not found:
            return f"damaged (its table {table} is missing): {DAMAGED}"
        if missing := [n for n in names if n not in found]:
            return f"damaged (table {table} has no column {missing[0]}): {DAMAGED}"
    return None
