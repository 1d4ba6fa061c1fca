"""A fuzzed state file either reads back as exactly what was written, or is refused with one
`StateFileError` line naming it -- never any other exception, never wrong data.

Random bytes, a valid file with bytes flipped or cut at random offsets, and SQL-level tampering
of every column of every table (NULL, another type, another value of the same type).
"""

from __future__ import annotations

import functools
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.checkpoint import Checkpoint, StateFile, StateMeta, TraceSegment

FUZZ = settings(max_examples=150, deadline=None)
MAGIC = b"SQLite format 3\x00"


@functools.cache
def written() -> tuple[bytes, StateMeta, list[Checkpoint], list[TraceSegment]]:
    """A valid state file's bytes (checkpoints in overflow pages and in one page, one deleted
    so the file has free pages, three trace segments) and what it holds."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.db"
        with StateFile.create(
            path, scenario="docking", seed=7, code="abc", info={"ships": [1, 2]}, keep=3
        ) as state:
            for number, size in enumerate([9000, 40, 20000, 5000]):
                state.append_trace_segment(number * 10, 10, "msgpack", bytes([number]) * 300)
                state.write_checkpoint(60.0 * number, 10 * number, bytes([number + 1]) * size)
            meta, kept, segments = state.meta, state.checkpoints(), list(state.trace_segments())
        return path.read_bytes(), meta, kept, segments


def read_back(path: Path) -> bool:
    """Read what a resume reads; check it is what was written, or a one-line refusal (then
    return True)."""
    _, meta, kept, segments = written()
    try:
        with StateFile.open(path) as state:
            got = (state.meta, state.latest(), state.checkpoints(), list(state.trace_segments()))
    except sa.StateFileError as error:
        text = str(error)
        assert text.startswith(str(path))
        assert "\n" not in text
        assert len(text) < 400
        return True
    got_meta, latest, got_kept, got_segments = got
    assert got_meta == meta
    assert latest is None or latest == got_kept[-1]
    assert all(checkpoint in kept for checkpoint in got_kept)
    assert all(segment in segments for segment in got_segments)
    return False


def fuzzed(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.db"
        path.write_bytes(content)
        read_back(path)


def test_the_valid_file_reads_back_whole() -> None:
    content, _, kept, segments = written()
    assert [c.number for c in kept] == [2, 3, 4]
    assert len(segments) == 4
    fuzzed(content)


@FUZZ
@given(st.binary(max_size=5000), st.booleans())
def test_random_bytes_are_refused(content: bytes, sqlite_magic: bool) -> None:
    fuzzed(MAGIC + content if sqlite_magic else content)


@FUZZ
@given(st.data())
def test_a_file_with_flipped_bytes_reads_back_right_or_is_refused(data: st.DataObject) -> None:
    content = bytearray(written()[0])
    offsets = st.integers(0, len(content) - 1)
    for offset, value in data.draw(st.lists(st.tuples(offsets, st.integers(0, 255)), max_size=8)):
        content[offset] = value
    fuzzed(bytes(content))


@FUZZ
@given(st.data())
def test_a_cut_file_is_refused(data: st.DataObject) -> None:
    content = written()[0]
    size = data.draw(st.integers(0, len(content) - 1))
    fuzzed(content[:size])


COLUMNS = {
    "meta": [
        "format", "format_version", "scenario", "seed", "spaceactors_version", "code",
        "created_at", "info", "keep", "sha256",
    ],
    "checkpoints": ["number", "sim_time", "trace_count", "taken_at", "payload", "sha256"],
    "trace_segments": ["first", "count", "codec", "data", "sha256"],
}  # fmt: skip
VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
)


@FUZZ
@given(
    st.sampled_from([(table, column) for table, names in COLUMNS.items() for column in names]),
    st.integers(0, 3),
    VALUES,
)
def test_every_column_tampered_with_is_refused(
    place: tuple[str, str], row: int, value: Any
) -> None:
    table, column = place
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.db"
        path.write_bytes(written()[0])
        db = sqlite3.connect(path)
        rowids = [r for (r,) in db.execute(f"SELECT rowid FROM {table} ORDER BY rowid")]
        rowid = rowids[row % len(rowids)]
        select = f"SELECT quote({column}) FROM {table} WHERE rowid = ?"
        before = db.execute(select, (rowid,)).fetchone()
        try:
            db.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = ?", (value, rowid))
        except sqlite3.IntegrityError:  # a rowid column refuses a non-integer or a used one
            assume(False)
        db.commit()
        after = db.execute(select, (rowid,)).fetchone()  # None: the row's rowid changed
        db.close()
        assume(after != before)
        assert read_back(path), f"{table}.{column} = {value!r} was not noticed"
