"""A JSON Lines trace starts with a header line naming the format, its version and the columns;
`load_trace` reads files with it and the older files without it, and refuses a header it cannot
trust with a ValueError naming line 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trace_runs import crew_run

import spaceactors as sa
from spaceactors.trace import COLUMNS, FORMAT_VERSION, header_line
from spaceactors.tracefile import MAX_LINE_BYTES


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A trace file written by a real seeded run, and the run's trace hash."""
    path = tmp_path_factory.mktemp("header") / "crew.jsonl"
    return path, crew_run(path, seed=3)


def test_the_first_line_names_the_format_version_and_columns(written: tuple[Path, str]) -> None:
    path, _ = written
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert json.loads(first) == {
        "format": "spaceactors-trace",
        "version": FORMAT_VERSION,
        "columns": ["time", "kind", "actor", "peer", "message_type", "message_id", "detail"],
    }
    assert first == header_line()
    assert len(COLUMNS) == len(json.loads(path.read_text(encoding="utf-8").splitlines()[1]))


def test_the_header_is_not_an_event_and_not_in_the_hash(written: tuple[Path, str]) -> None:
    path, run_hash = written
    events = sa.load_trace(path)
    assert len(events) == len(path.read_text(encoding="utf-8").splitlines()) - 1
    assert sa.trace_hash(events) == run_hash


def test_an_old_file_without_a_header_loads_the_same_events(
    written: tuple[Path, str], tmp_path: Path
) -> None:
    path, run_hash = written
    old = tmp_path / "old.jsonl"
    old.write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[1:]))
    assert not old.read_text(encoding="utf-8").startswith("{")
    assert sa.load_trace(old) == sa.load_trace(path)
    assert sa.trace_hash(sa.load_trace(old)) == run_hash


def test_an_empty_run_writes_only_the_header_and_loads_as_no_events(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    sa.Trace(sa.JsonLinesSink(path)).close()
    assert path.read_text(encoding="utf-8") == header_line() + "\n"
    assert sa.load_trace(path) == []


EVENT = sa.TraceEvent(1.5, sa.EventKind.SEND, "a", "b", "Ping", 7, "ok").to_json()


def _header(**changes: object) -> str:
    header: dict[str, object] = json.loads(header_line())
    header.update(changes)
    return json.dumps({k: v for k, v in header.items() if v is not _GONE})


_GONE = object()


@pytest.mark.parametrize(
    ("first", "why"),
    [
        (_header(version=FORMAT_VERSION + 1), "format version 3 is newer than this spaceactors"),
        (_header(version=10**400), "is newer than this spaceactors reads"),
        (_header(version="1"), "the version must be a whole number from 1, got '1'"),
        (_header(version=True), "the version must be a whole number from 1, got True"),
        (_header(version=0), "the version must be a whole number from 1, got 0"),
        (_header(version=1.0), "the version must be a whole number from 1, got 1.0"),
        (_header(version=_GONE), "the version must be a whole number from 1, got None"),
        (_header(format="other-trace"), '"format": "spaceactors-trace", got \'other-trace\''),
        (_header(format=_GONE), '"format": "spaceactors-trace", got None'),
        (_header(columns=["time", "kind"]), "version 2 has the columns"),
        (_header(columns=list(reversed(COLUMNS))), "version 2 has the columns"),
        (_header(columns=_GONE), "the header says None"),
        ("{oops", "not JSON"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ('{"format": "spaceactors-trace", "version": 1e999}', "got inf"),
    ],
)
def test_a_header_that_cannot_be_trusted_is_a_value_error_naming_line_1(
    tmp_path: Path, first: str, why: str
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(first + "\n" + EVENT + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t\.jsonl:1: not a trace header: ") as caught:
        sa.load_trace(path)
    assert type(caught.value) is ValueError
    assert why in str(caught.value)
    assert len(str(caught.value)) < 400 + len(str(path))


def test_a_header_anywhere_but_line_1_is_not_an_event(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(header_line() + "\n" + EVENT + "\n" + header_line() + "\n")
    with pytest.raises(ValueError, match=r"t\.jsonl:3: not a trace event: expected a JSON array"):
        sa.load_trace(path)


def test_a_line_over_the_limit_is_refused_without_reading_on(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as file:
        file.write(header_line().encode() + b"\n")
        file.truncate(file.tell() + MAX_LINE_BYTES + 10)  # zero bytes, no newline: one line
    with pytest.raises(ValueError, match=r"huge\.jsonl:2: not a trace event: a line of over 64"):
        sa.load_trace(path)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["format", "version", "columns", "other"]),
        st.none()
        | st.booleans()
        | st.integers()
        | st.sampled_from([1, 2])
        | st.floats()
        | st.just("spaceactors-trace")
        | st.just(list(COLUMNS))
        | st.lists(st.text(max_size=5), max_size=8),
    )
)
def test_any_json_object_on_line_1_is_a_header_or_a_value_error_naming_line_1(
    tmp_path: Path, header: dict[str, object]
) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(header) + "\n" + EVENT + "\n", encoding="utf-8")
    trusted = (
        header.get("format") == "spaceactors-trace"
        and type(header.get("version")) is int
        and header.get("version") in (1, 2)  # version 2 changed the hash, not the lines
        and header.get("columns") == list(COLUMNS)
    )
    if trusted:
        assert sa.load_trace(path) == [sa.TraceEvent.from_json(EVENT)]
        return
    with pytest.raises(ValueError, match=r"t\.jsonl:1: not a trace header: ") as caught:
        sa.load_trace(path)
    assert type(caught.value) is ValueError
