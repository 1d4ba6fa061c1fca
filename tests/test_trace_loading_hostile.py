"""`load_trace` raises only ValueError naming the line, whatever a file holds."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaceactors as sa

GOOD = sa.TraceEvent(1.5, sa.EventKind.SEND, "a", "b", "Ping", 7, "ok").to_json()


def _write(tmp_path: Path, second_line: str | bytes) -> Path:
    path = tmp_path / "trace.jsonl"
    body = second_line.encode() if isinstance(second_line, str) else second_line
    path.write_bytes(GOOD.encode() + b"\n" + body + b"\n")
    return path


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('[1e400, "send", null, null, null, null, ""]', "time must be finite"),
        (f'[{10**400}, "send", null, null, null, null, ""]', "time is too large"),
        ('[NaN, "send", null, null, null, null, ""]', "time must be a number, got nan"),
        ('[Infinity, "send", null, null, null, null, ""]', "time must be finite"),
        ('[-Infinity, "send", null, null, null, null, ""]', "time must be finite"),
        (f'[0, "send", null, null, null, {10**400}, ""]', "message_id must be an int in"),
        ('[0, "send", null, null, null, -1, ""]', "message_id must be an int in"),
        (f'[0, "send", null, null, null, {"9" * 5000}, ""]', "not JSON"),
        ('[0, ["send"], null, null, null, null, ""]', "kind must be one of"),
        ('[0, "send", {"a": 1}, null, null, null, ""]', "actor must be a string or null"),
        ('{"time": 0}', "expected a JSON array"),
    ],
)
def test_a_hostile_line_is_a_value_error_naming_the_line(
    tmp_path: Path, line: str, why: str
) -> None:
    path = _write(tmp_path, line)
    with pytest.raises(ValueError, match=r"trace\.jsonl:2: not a trace event") as caught:
        sa.load_trace(path)
    assert type(caught.value) is ValueError
    assert why in str(caught.value)
    assert len(str(caught.value)) < 400 + len(str(path))


def test_bytes_that_are_not_utf8_are_a_value_error_naming_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, b'[0, "send", "\xff\xfe", null, null, null, ""]')
    with pytest.raises(ValueError, match=r"trace\.jsonl:2: not UTF-8"):
        sa.load_trace(path)


def test_a_sqlite_trace_with_a_hostile_row_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "trace.db"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, time REAL, kind TEXT,"
        " actor TEXT, peer TEXT, message_type TEXT, message_id INTEGER, detail TEXT)"
    )
    db.execute("INSERT INTO events VALUES (1, 0.5, 'send', 'a', NULL, NULL, NULL, '')")
    db.execute("INSERT INTO events VALUES (2, 9e999, 'send', 'a', NULL, NULL, NULL, '')")
    db.commit()
    db.close()
    with pytest.raises(ValueError, match=r"trace\.db:row 2: not a trace event: time must be"):
        sa.load_trace(path)


def test_good_events_still_load_exactly(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    assert sa.load_trace(path) == [sa.TraceEvent.from_json(GOOD)] * 2


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**1023, max_value=10**500)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from([e.value for e in sa.EventKind]),
    lambda children: (
        st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=3), children)
    ),
    max_leaves=10,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(json_values, min_size=7, max_size=7) | json_values,
)
def test_any_json_line_loads_as_an_event_or_is_a_value_error_naming_its_line(
    tmp_path: Path, value: object
) -> None:
    line = json.dumps(value, allow_nan=True)
    path = _write(tmp_path, line)
    try:
        events = sa.load_trace(path)
    except ValueError as exc:
        refused: ValueError | None = exc
    else:
        refused = None
    if refused is not None:
        assert type(refused) is ValueError
        assert "trace.jsonl:2: " in str(refused)
        return
    event = events[1]
    assert math.isfinite(event.time)
    assert sa.TraceEvent.from_json(event.to_json()) == event  # what loads, writes back
