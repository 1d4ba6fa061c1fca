"""The SQLite layer of the state file: its schema, the checks of a file before and after SQLite
opens it, atomic creation, and SQLite's errors as one-line `StateFileError`s."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import sqlite3
import struct
import threading
from collections.abc import Callable
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
GIVE = "give the state file a run wrote (spaceactors run SCENARIO --state FILE)"
CUT = "it was cut short (a partial copy?): use a whole copy or start a new run"
CREATE_STEP = "check that its folder exists, that you may write there, and that its disk has room"
IN_USE = (
    "is in use by another process (a run or resume still writing it): wait for it to end, "
    "or stop it"
)
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
KINDS = {table: [TYPES[c.split()[1]] for c in cols.split(", ")] for table, cols in COLUMNS.items()}
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
            raise StateFileError(f"{path}: is a directory, not a state file: {GIVE}")
        if not path.exists():
            raise StateFileError(f"{path}: no such file: give the --state file a run wrote")
        if not path.is_file():
            raise StateFileError(f"{path}: not a regular file, so not a state file: {GIVE}")
        header = read_head(path)[0]
    except OSError as exc:
        raise StateFileError(
            f"{path}: cannot be read ({exc.strerror or exc}): check that you may read it"
        ) from None
    if not header:
        raise StateFileError(
            f"{path}: is empty, not a state file (a run writes its file whole): {GIVE}, or "
            "delete it and start a new run"
        )
    if not header.startswith(MAGIC):
        raise StateFileError(
            f"{path}: not a spaceactors state file (not a SQLite database): {GIVE}"
        )
    if len(header) < 100:
        raise StateFileError(f"{path}: truncated ({len(header)} bytes, not even a header): {CUT}")
    return header


def truncation(path: Path) -> str | None:
    """What is wrong if `path` is shorter than its SQLite header says, else None."""
    header, size = read_head(path)
    page_size = int.from_bytes(header[16:18], "big")
    wanted = int.from_bytes(header[28:32], "big") * (65536 if page_size == 1 else page_size)
    if header[24:28] == header[92:96] and size < wanted:  # the header's size is valid
        return f"truncated ({size} bytes of {wanted}): {CUT}"
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
        if doing.startswith(("opening", "reading")):
            return StateFileError(
                f"{path}: {doing} failed ({exc}): a write interrupted by a kill must be rolled "
                "back first, which needs write access to the file and its folder: give it, or "
                f"copy {path.name} and {path.name}-journal together to a writable folder"
            )
        return StateFileError(
            f"{path}: {doing} failed ({exc}): the file or its folder cannot be written: make "
            f"both writable, then carry on from the last checkpoint (spaceactors resume {path})"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StateFileError(f"{path} {IN_USE} ({doing} failed: {exc})")
    return StateFileError(f"{path}: {doing} failed ({exc}): {next_step(path, doing, name)}")


def next_step(path: Path, doing: str, name: str) -> str:
    """What the user can do after SQLite's error `name` while `doing` something to `path`."""
    writing = not doing.startswith(("opening", "reading"))
    after = (
        "the file is unchanged, and a plain resume carries on from its last checkpoint "
        f"(spaceactors resume {path}; with none yet, start the run again)"
        if writing
        else "then open it again"
    )
    if name.startswith("SQLITE_FULL"):
        return f"free space on its disk; {after}"
    if name.startswith("SQLITE_IOERR"):
        return f"check its disk (dmesg, free space, a network drive gone?); {after}"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return f"check that you may read and write it and its folder; {after}"
    return f"fix what stopped it; {after}"


def unwritable(path: Path, access: Callable[[str, int], bool] | None = None) -> str | None:
    """What keeps `path` from being written as a state file, if anything: the file itself must
    be writable, and its folder too (each write keeps a journal beside the file there).
    `access` answers whether a path grants a mode (`os.access`; tests inject their answer)."""
    access = access or os.access
    where = os.path.abspath(path)
    folder = os.path.dirname(where)
    if not access(where, os.W_OK):
        return (
            f"{path}: is read-only, so no checkpoint can be written to it: make it writable "
            f"(chmod u+w {path}), or copy it to a writable folder and carry on from the copy"
        )
    if not access(folder, os.W_OK | os.X_OK):
        return (
            f"{path}: its folder {folder} is read-only, and each checkpoint write keeps a journal "
            "beside the file: make the folder writable, or copy the file to a writable folder "
            "and carry on from the copy"
        )
    return None


_HELD: dict[tuple[int, int], int] = {}  # (device, inode) of the files held: their descriptor
_HELD_LOCK = threading.Lock()


def read_head(path: Path) -> tuple[bytes, int]:
    """The first 100 bytes of `path` and its size. A file this process holds for writing is
    read through the held descriptor: closing a descriptor of its own would drop the POSIX
    locks SQLite holds on it in this process (see `hold`).

    Raises:
        OSError: it cannot be read.
    """
    stat = os.stat(path)
    with _HELD_LOCK:
        if (held := _HELD.get((stat.st_dev, stat.st_ino))) is not None:
            return os.pread(held, 100, 0), os.fstat(held).st_size
    with path.open("rb") as file:
        return file.read(100), file.seek(0, os.SEEK_END)


def hold(path: Path) -> int:
    """A descriptor of `path` holding an exclusive `flock` on it, the mark of its one writer,
    until `release`. ``flock`` locks are apart from SQLite's POSIX (``fcntl``) locks on local
    file systems; the descriptor must stay open while SQLite holds locks (closing any
    descriptor of a file drops the process's POSIX locks on it): `release` it after closing
    the connection.

    Raises:
        StateFileError: another process (or this one) holds it, or it cannot be locked.
    """
    for _ in range(100):  # the file at `path` may be replaced between opening and locking
        try:
            with _HELD_LOCK:  # checked before opening: see `read_head`
                before = os.stat(path)
                if (before.st_dev, before.st_ino) in _HELD:
                    raise StateFileError(
                        f"{path} is already open for writing in this process: close it first"
                    )
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StateFileError(
                f"{path}: cannot be opened ({exc.strerror or exc}): check that you may read it"
            ) from None
        try:
            stat = os.fstat(fd)
            with _HELD_LOCK:
                if (stat.st_dev, stat.st_ino) in _HELD:  # replaced meanwhile by a held file
                    os.close(fd)
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.path.samestat(stat, os.stat(path)):
                    _HELD[stat.st_dev, stat.st_ino] = fd
                    return fd
        except BlockingIOError:
            os.close(fd)
            raise StateFileError(f"{path} {IN_USE}") from None
        except StateFileError:
            os.close(fd)
            raise
        except OSError as exc:
            os.close(fd)
            if isinstance(exc, FileNotFoundError):
                continue  # replaced: lock the file there now
            raise StateFileError(
                f"{path}: cannot be locked for writing ({exc.strerror or exc}): keep state "
                "files on a local disk"
            ) from None
        os.close(fd)  # replaced meanwhile: lock the new one
    raise StateFileError(f"{path}: keeps being replaced by another process: stop it")


def release(fd: int) -> None:
    """Give up the hold `hold` returned (after closing the connection to the file)."""
    with _HELD_LOCK:
        stat = os.fstat(fd)
        _HELD.pop((stat.st_dev, stat.st_ino), None)
        os.close(fd)


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
        raise StateFileError(
            f"{where}: cannot be created ({exc.strerror or exc}): {CREATE_STEP}"
        ) from None
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
        raise StateFileError(
            f"{where}: another process created it meanwhile: choose another path"
        ) from None
    except (OSError, *SQL_ERRORS) as exc:
        raise StateFileError(f"{where}: cannot be created ({exc}): {CREATE_STEP}") from None
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
    if not overwrite and _no_checkpoint(path):
        raise StateFileError(
            f"{path}: already holds a run that stopped before its first checkpoint: start it "
            "again over it (overwrite=True, --overwrite), or choose another path"
        )
    if not overwrite:
        raise StateFileError(
            f"{path}: already holds a run: resume it (spaceactors resume {path}), choose "
            "another path, or replace it (overwrite=True, --overwrite)"
        )


def _no_checkpoint(path: Path) -> bool:
    """The state file at `path` certainly holds no checkpoint (False when it cannot be told)."""
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except (ValueError, *SQL_ERRORS):
        return False
    try:
        (count,) = db.execute("SELECT count(*) FROM checkpoints").fetchone()
        return bool(count == 0)
    except (ValueError, TypeError, *SQL_ERRORS):
        return False
    finally:
        db.close()


def schema_problem(db: sqlite3.Connection, path: Path) -> str | None:
    """What makes the open database `db` (at `path`) not a state file of this format, if
    anything: its size, application_id, version, tables and columns."""
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    if problem := truncation(path):  # checked after the first read undid an interrupted write
        return problem
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if application_id != APPLICATION_ID:
        what = "something else" if application_id == 0 else "another application"
        return f"not a spaceactors state file (it is a SQLite database of {what}): {GIVE}"
    if version != FORMAT_VERSION:
        newer = version > FORMAT_VERSION
        return (
            f"format version {version} is {'newer' if newer else 'older'} than this "
            f"spaceactors reads ({FORMAT_VERSION}): "
            + ("upgrade spaceactors" if newer else "start a new run")
        )
    tables = {}
    for kind, name, sql in db.execute("SELECT type, name, sql FROM sqlite_master"):
        if kind != "table" or name not in COLUMNS:
            article = "an" if str(kind)[:1] in "aeiou" else "a"
            return f"damaged (it holds {article} {kind} {shorten(str(name))!r}): {DAMAGED}"
        tables[name] = sql
    for table in COLUMNS:
        if table not in tables:
            return f"damaged (its table {table} is missing): {DAMAGED}"
        if problem := table_problem(db, table, tables[table]):
            return f"damaged (table {table} {problem}): {DAMAGED}"
    return None


def table_problem(db: sqlite3.Connection, table: str, sql: object) -> str | None:
    """The first way `table`, created by `sql`, differs from what this format writes (its
    columns' names, declared types and order, then any constraint), if any."""
    found = [(row[1], row[2]) for row in db.execute(f"PRAGMA table_info({table})")]
    wanted = [(c.split()[0], c.split()[1]) for c in COLUMNS[table].split(", ")]
    names = [name for name, _ in found]
    if missing := [name for name, _ in wanted if name not in names]:
        return f"has no column {missing[0]}"
    if extra := [name for name in names if name not in NAMES[table]]:
        return f"has a column {shorten(str(extra[0]))!r} this format does not have"
    if names != NAMES[table]:
        return "has its columns in another order"
    for (name, declared), (_, kind) in zip(found, wanted, strict=True):
        if declared != kind:
            return f"declares its column {name} {shorten(str(declared))!r}, not {kind}"
    if sql != f"CREATE TABLE {table} ({COLUMNS[table]})":
        return f"is not as this format creates it: {shorten(str(sql))!r}"
    return None
