"""The state file refuses at open what it could not serve later: a second writer (another
process still writing it), a file or folder it cannot write, a schema it did not write; and
every refusal says what to do next."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import spaceactors as sa
from spaceactors.checkpoint import StateFile
from spaceactors.checkpoint.sqlitefile import sql_error, unwritable
from tests.test_state_file import refusal, sql

RUN = {"scenario": "docking", "seed": 7, "code": "abc123"}
IN_USE = (
    "is in use by another process (a run or resume still writing it): wait for it to end, "
    "or stop it"
)


@pytest.fixture
def run_db(tmp_path: Path) -> Path:
    path = tmp_path / "run.db"
    with StateFile.create(path, **RUN) as state:  # type: ignore[arg-type]
        state.write_checkpoint(60.0, 10, b"first")
    return path


HOLDER = textwrap.dedent(
    """
    import sys
    from spaceactors.checkpoint import StateFile
    state = StateFile.open(sys.argv[1], writable=True)
    print("held", flush=True)
    line = sys.stdin.readline()
    if line.strip() == "write":
        state.write_checkpoint(120.0, 20, b"second")
        print("wrote", flush=True)
        sys.stdin.readline()
    state.close()
    """
)


@pytest.fixture
def holder(run_db: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding `run_db` open for writing (until its stdin gets a line)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline() == "held\n", process.stderr
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_a_second_writer_is_refused_at_once_while_another_process_writes(
    run_db: Path, holder: subprocess.Popen[str]
) -> None:
    started = time.monotonic()
    assert refusal(lambda: StateFile.open(run_db, writable=True)) == f"{run_db} {IN_USE}"
    assert time.monotonic() - started < 1.0  # at once, not after SQLite's busy timeout
    replacing = refusal(lambda: StateFile.create(run_db, **RUN, overwrite=True))  # type: ignore[arg-type]
    assert replacing == f"{run_db} {IN_USE}"
    with StateFile.open(run_db) as state:  # a reader that only inspects is not blocked
        assert state.latest() is not None
        assert state.latest().payload == b"first"  # type: ignore[union-attr]


def test_the_writer_holding_the_file_still_writes_beside_readers(
    run_db: Path, holder: subprocess.Popen[str]
) -> None:
    assert holder.stdin is not None
    assert holder.stdout is not None
    with StateFile.open(run_db) as reader:
        assert [c.number for c in reader.checkpoints()] == [1]
        holder.stdin.write("write\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == "wrote\n"
        assert [c.payload for c in reader.checkpoints()] == [b"first", b"second"]
    holder.stdin.write("done\n")
    holder.stdin.flush()
    assert holder.wait(timeout=30) == 0
    with StateFile.open(run_db, writable=True) as state:  # closed: the file is free again
        assert state.write_checkpoint(180.0, 30, b"third") == 3


def test_a_writer_killed_with_sigkill_frees_the_file(
    run_db: Path, holder: subprocess.Popen[str]
) -> None:
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    with StateFile.open(run_db, writable=True) as state:
        assert state.write_checkpoint(120.0, 20, b"after") == 2


def test_sqlite_own_locks_still_hold_beside_the_writers_hold(run_db: Path) -> None:
    """The hold is an flock of its own: SQLite's POSIX locks still keep another process's
    write out while a transaction is open, and are not dropped by the hold's descriptor."""
    other = "import sqlite3, sys\n" + textwrap.dedent(
        """
        db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            print(exc)
        else:
            print("got the write lock")
        """
    )

    def try_write() -> str:
        done = subprocess.run(
            [sys.executable, "-c", other, str(run_db)],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    with StateFile.open(run_db, writable=True) as state:
        db = state._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        StateFile.open(run_db).close()  # a reader in this process opens and closes the file
        assert try_write() == "database is locked"
        db.execute("ROLLBACK")
        assert try_write() == "got the write lock"  # SQLite's lock, not the hold, kept it out


def test_this_process_cannot_open_one_file_for_writing_twice(run_db: Path) -> None:
    with StateFile.open(run_db, writable=True):
        text = refusal(lambda: StateFile.open(run_db, writable=True))
        assert text == f"{run_db} is already open for writing in this process: close it first"
        StateFile.open(run_db).close()
    StateFile.open(run_db, writable=True).close()


def test_resume_while_the_run_still_writes_is_refused_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    state = tmp_path / "run.db"
    command = [sys.executable, "-m", "spaceactors"]
    run = subprocess.Popen(
        [*command, "run", "asteroid-convoy", "--duration", "3000", "--progress", "never",
         "--state", str(state), "--checkpoint-every", "20"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        latest = None
        while latest is None and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # a real process: wait for its first checkpoint
            if state.exists():
                try:
                    with StateFile.open(state) as reader:
                        latest = reader.latest()
                except sa.StateFileError:
                    pass  # created but not yet checked whole
        assert latest is not None, "the run wrote no checkpoint"
        resumed = subprocess.run(
            [*command, "resume", str(state), "--progress", "never"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert run.poll() is None, "the run ended before the resume was tried: lengthen it"
        assert resumed.returncode == 2
        assert resumed.stderr == f"spaceactors: error: {state} {IN_USE}\n"
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err  # the run was not disturbed
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=30)


def access_denying(denied: str) -> Callable[[str, int], bool]:
    real = os.access  # taken before a test patches it

    def access(path: str, mode: int) -> bool:
        return path != denied and real(path, mode)

    return access


def test_the_writability_check_names_the_file_or_its_folder(run_db: Path) -> None:
    assert unwritable(run_db) is None
    file_problem = unwritable(run_db, access_denying(str(run_db)))
    assert file_problem == (
        f"{run_db}: is read-only, so no checkpoint can be written to it: make it writable "
        f"(chmod u+w {run_db}), or copy it to a writable folder and carry on from the copy"
    )
    folder_problem = unwritable(run_db, access_denying(str(run_db.parent)))
    assert folder_problem is not None
    assert folder_problem.startswith(f"{run_db}: its folder {run_db.parent} is read-only")
    assert "journal" in folder_problem
    assert "make the folder writable" in folder_problem


@pytest.mark.parametrize("denied", ["file", "folder"])
def test_a_file_that_cannot_be_written_is_refused_at_open(
    run_db: Path, denied: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    where = run_db if denied == "file" else run_db.parent
    with monkeypatch.context() as patched:
        patched.setattr(os, "access", access_denying(str(where)))
        text = refusal(lambda: StateFile.open(run_db, writable=True))
        assert text.startswith(f"{run_db}: ")
        assert "read-only" in text
        with StateFile.open(run_db) as reader:  # inspecting it needs no write access
            assert reader.latest() is not None
    StateFile.open(run_db, writable=True).close()  # the refusal held nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files and folders")
@pytest.mark.parametrize("denied", ["file", "folder"])
def test_a_read_only_file_or_folder_is_refused_at_open(run_db: Path, denied: str) -> None:
    where = run_db if denied == "file" else run_db.parent
    where.chmod(0o555 if denied == "folder" else 0o444)
    try:
        text = refusal(lambda: StateFile.open(run_db, writable=True))
        assert "read-only" in text
    finally:
        where.chmod(0o755 if denied == "folder" else 0o644)


def rebuilt_checkpoints(columns: str, select: str) -> Callable[[Path], None]:
    """The checkpoints table made again with `columns`, its rows copied by `select`."""
    return sql(
        "ALTER TABLE checkpoints RENAME TO old",
        f"CREATE TABLE checkpoints ({columns})",
        f"INSERT INTO checkpoints SELECT {select} FROM old",
        "DROP TABLE old",
    )


COLUMNS = "number INTEGER PRIMARY KEY, sim_time REAL, trace_count INTEGER, taken_at REAL"
SCHEMAS = {
    "an extra column": (
        sql("ALTER TABLE checkpoints ADD COLUMN note TEXT"),
        "table checkpoints has a column 'note' this format does not have",
    ),
    "an extra column with a default": (
        sql("ALTER TABLE trace_segments ADD COLUMN z INTEGER DEFAULT 0"),
        "table trace_segments has a column 'z' this format does not have",
    ),
    "a column of another type": (
        rebuilt_checkpoints(f"{COLUMNS}, payload TEXT, sha256 TEXT", "*"),
        "table checkpoints declares its column payload 'TEXT', not BLOB",
    ),
    "columns in another order": (
        rebuilt_checkpoints(
            "number INTEGER PRIMARY KEY, trace_count INTEGER, sim_time REAL, taken_at REAL,"
            " payload BLOB, sha256 TEXT",
            "number, trace_count, sim_time, taken_at, payload, sha256",
        ),
        "table checkpoints has its columns in another order",
    ),
    "a constraint": (
        rebuilt_checkpoints(f"{COLUMNS}, payload BLOB, sha256 TEXT, CHECK (number < 2)", "*"),
        "table checkpoints is not as this format creates it: 'CREATE TABLE checkpoints (",
    ),
    "a unique column": (
        rebuilt_checkpoints(f"{COLUMNS}, payload BLOB, sha256 TEXT UNIQUE", "*"),
        "damaged (it holds an index 'sqlite_autoindex_checkpoints_1')",
    ),
    "an index": (
        sql("CREATE INDEX by_time ON checkpoints (sim_time)"),
        "damaged (it holds an index 'by_time')",
    ),
}


@pytest.mark.parametrize("case", SCHEMAS, ids=str)
def test_a_tampered_schema_is_refused_at_open(run_db: Path, case: str) -> None:
    tamper, words = SCHEMAS[case]
    tamper(run_db)
    for writable in (True, False):
        text = refusal(lambda: StateFile.open(run_db, writable=writable))  # noqa: B023
        assert text.startswith(f"{run_db}: damaged (")
        assert words in text
        assert text.endswith(
            "the file changed after it was written: use a backup copy or start a new run"
        )


def test_a_full_disk_is_refused_saying_a_resume_carries_on(run_db: Path) -> None:
    with StateFile.open(run_db, writable=True) as state:
        assert state._db is not None
        pages = state._db.execute("PRAGMA page_count").fetchone()[0]
        state._db.execute(f"PRAGMA max_page_count = {pages}")  # as if the disk were full
        text = refusal(lambda: state.write_checkpoint(120.0, 20, bytes(100_000)))
        assert text == (
            f"{run_db}: writing a checkpoint failed (database or disk is full): free space on "
            "its disk; the file is unchanged, and a plain resume carries on from its last "
            f"checkpoint (spaceactors resume {run_db}; with none yet, start the run again)"
        )
        assert [c.payload for c in state.checkpoints()] == [b"first"]


def sqlite_error(message: str, name: str) -> sqlite3.Error:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorname = name
    return exc


@pytest.mark.parametrize(
    ("message", "name", "doing", "step"),
    [
        ("disk I/O error", "SQLITE_IOERR_WRITE", "writing a checkpoint", "check its disk"),
        ("disk I/O error", "SQLITE_IOERR_READ", "reading checkpoints", "check its disk"),
        ("unable to open database file", "SQLITE_CANTOPEN", "opening", "check that you may"),
        ("attempt to write a readonly database", "SQLITE_READONLY", "writing a checkpoint",
         "make both writable, then carry on from the last checkpoint"),
        ("attempt to write a readonly database", "SQLITE_READONLY_ROLLBACK", "reading",
         "journal together to a writable folder"),
        ("database is locked", "SQLITE_BUSY", "writing a checkpoint", IN_USE),
        ("something new", "SQLITE_SOMETHING", "dropping trace segments", "fix what stopped it"),
    ],
)  # fmt: skip
def test_every_sqlite_error_says_what_to_do(
    tmp_path: Path, message: str, name: str, doing: str, step: str
) -> None:
    text = str(sql_error(tmp_path / "run.db", doing, sqlite_error(message, name)))
    assert text.startswith(str(tmp_path / "run.db"))
    assert message in text
    assert step in text
    writing = not doing.startswith(("opening", "reading"))
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_SOMETHING")):
        assert ("spaceactors resume" in text) == writing


def cut(size: int) -> Callable[[Path], None]:
    def tamper(path: Path) -> None:
        with path.open("r+b") as file:
            file.truncate(size)

    return tamper


GIVE = "give the state file a run wrote (spaceactors run SCENARIO --state FILE)"
CUT = "it was cut short (a partial copy?): use a whole copy or start a new run"
NEXT_STEPS = {
    "truncated": (cut(6000), f"truncated (6000 bytes of 16384): {CUT}"),  # 4 pages of 4096
    "a cut header": (cut(60), f"truncated (60 bytes, not even a header): {CUT}"),
    "not SQLite": (
        lambda p: p.write_text("ship,x\n"),
        f"not a spaceactors state file (not a SQLite database): {GIVE}",
    ),
    "empty": (
        lambda p: p.write_bytes(b""),
        f"is empty, not a state file (a run writes its "
        f"file whole): {GIVE}, or delete it and start a new run",
    ),
    "a directory": (lambda p: (p.unlink(), p.mkdir()), f"is a directory, not a state file: {GIVE}"),
    "SQLite of something else": (
        lambda p: (p.unlink(), sql("CREATE TABLE notes (text TEXT)")(p)),
        f"not a spaceactors state file (it is a SQLite database of something else): {GIVE}",
    ),
}


@pytest.mark.parametrize("case", NEXT_STEPS, ids=str)
def test_a_file_that_is_not_a_state_file_is_refused_saying_what_to_do(
    run_db: Path, case: str
) -> None:
    tamper, words = NEXT_STEPS[case]
    tamper(run_db)
    assert refusal(lambda: StateFile.open(run_db)) == f"{run_db}: {words}"
