"""A damaged SQLite trace is a ValueError naming the file, whatever bytes were damaged.

SQLite's own message about a damaged file can quote bytes that are not UTF-8; the sqlite3 module
then raises UnicodeDecodeError instead of DatabaseError, which `load_trace` must name too.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import spaceactors as sa


@functools.cache
def trace_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.db"

        async def run() -> None:
            async with sa.open_system(seed=1, trace=path) as system:
                await system.spawn(sa.Actor, name="idle")

        trio.run(run, clock=trio.testing.MockClock(autojump_threshold=0))
        return path.read_bytes()


def load(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trace.db"
        path.write_bytes(content)
        try:
            sa.load_trace(path)
        except ValueError as error:
            refused: ValueError = error
        else:
            return
        assert str(refused).startswith(str(path))
        assert type(refused) is ValueError


def test_a_schema_message_that_is_not_utf8_is_named() -> None:
    content = bytearray(trace_bytes())
    schema = content.index(b"CREATE TABLE events")
    content[schema + 10] = 0xDB  # inside the schema's text: SQLite quotes it in its message
    load(bytes(content))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_trace_with_flipped_bytes_loads_or_is_a_value_error_naming_it(
    data: st.DataObject,
) -> None:
    content = bytearray(trace_bytes())
    offsets = st.integers(0, len(content) - 1)
    for offset, value in data.draw(st.lists(st.tuples(offsets, st.integers(0, 255)), max_size=6)):
        content[offset] = value
    load(bytes(content))
