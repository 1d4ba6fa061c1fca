"""The compact trace encoding: a segment decodes to the events it was made of, field for field
(and so to the same hash); bytes that are not a segment are a ValueError saying what is wrong,
never anything else; `SegmentSink.cut` hands over consecutive segments; and a real run's events
take at least 5x fewer bytes than in a JSON Lines or SQLite trace."""

from __future__ import annotations

import functools
import re
import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trace_strategies import events, long_run, record_all, recordable

import spaceactors as sa
from spaceactors import sim
from spaceactors.trace_segment import (
    MAGIC,
    SEGMENT_VERSION,
    SegmentSink,
    decode_segment,
    encode_segment,
)

HEAD = MAGIC + bytes([SEGMENT_VERSION])


def same(a: list[sa.TraceEvent], b: list[sa.TraceEvent]) -> bool:
    """Equal field for field, down to the bits of each time (-0.0 is not 0.0)."""
    return [e.to_json() for e in a] == [e.to_json() for e in b] and a == b


@settings(max_examples=300)
@given(st.lists(events, max_size=60))
def test_a_segment_decodes_to_its_events_field_for_field(run: list[sa.TraceEvent]) -> None:
    decoded = decode_segment(encode_segment(run))
    assert same(decoded, run)
    assert sa.trace_hash(decoded) == sa.trace_hash(run)


@pytest.mark.parametrize(
    "time", [0.0, -0.0, 5e-324, -5e-324, 1e308, -1.7976931348623157e308, 0.1 + 0.2, 1e-300]
)
def test_times_come_back_bit_for_bit_whatever_comes_before(time: float) -> None:
    for before in (0.0, -1e308, 1e308, time):
        run = [sa.TraceEvent(before, sa.EventKind.SEND), sa.TraceEvent(time, sa.EventKind.SEND)]
        assert same(decode_segment(encode_segment(run)), run)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("not events", "events must be an iterable of TraceEvent"),
        ([("a", "b")], "a segment holds TraceEvent only"),
        ([sa.TraceEvent(float("nan"), sa.EventKind.SEND)], "time must be a finite float"),
        ([sa.TraceEvent(1, sa.EventKind.SEND)], "time must be a finite float, got 1"),
        ([sa.TraceEvent(0.0, "send")], "kind must be an EventKind"),  # type: ignore[arg-type]
        ([sa.TraceEvent(0.0, sa.EventKind.SEND, message_id=2**63)], "message_id is out of range"),
        ([sa.TraceEvent(0.0, sa.EventKind.SEND, message_id=-1)], "message_id is out of range"),
        ([sa.TraceEvent(0.0, sa.EventKind.SEND, actor=3)], "names must be str or None"),  # type: ignore[arg-type]
        ([sa.TraceEvent(0.0, sa.EventKind.SEND, detail=None)], "detail must be a str"),  # type: ignore[arg-type]
    ],
)
def test_encoding_refuses_what_is_not_an_event_with_a_value_error(bad: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        encode_segment(bad)  # type: ignore[arg-type]


def body(*parts: object) -> bytes:
    """A segment around a hand-made body (what a tampered file could hold)."""
    return HEAD + zlib.compress(msgpack.packb(list(parts), use_bin_type=True))


GOOD = encode_segment([sa.TraceEvent(1.0, sa.EventKind.SEND, "a", "b", "Ping", 3, "x")])


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("text", "a trace segment is bytes, got 'text'"),
        (b"", "not a trace segment: it starts b''"),
        (b"PK\x03\x04 a zip file", "not a trace segment: it starts b'PK"),
        (MAGIC, "cut short after its magic"),
        (MAGIC + b"\x02" + GOOD[len(HEAD) :], "trace segment version 2 is not 1"),
        (GOOD[:-3], "zlib stream does not end"),
        (GOOD + b"tail", "4 bytes after its end"),
        (HEAD + b"not zlib at all", "a corrupt trace segment"),
        (HEAD + zlib.compress(b"\xc1"), "body is not msgpack"),
        (HEAD + zlib.compress(msgpack.packb({"a": 1})), "body must be an array of 9"),
        (body(-1, [], b"", [], [], [], [], [], []), "count must be an int >= 0, got -1"),
        (body(1, [1], b"\0", [0], [0], [0], [0], [0], [0]), "strings must be an array of str"),
        (body(1, [], b"", [0], [0], [0], [0], [0], [0]), "kinds must be 1 bytes, got b''"),
        (body(1, [""], b"\x63", [0], [0], [0], [0], [0], [0]), "names kind 99"),
        (body(1, [""], b"\0", [2], [0], [0], [0], [0], [0]), "actors holds an index out of"),
        (body(1, [""], b"\0", [0], [-1], [0], [0], [0], [0]), "peers holds an index out of"),
        (body(1, [""], b"\0", [0], [0], [0], [2**63 + 1], [0], [0]), "message_ids holds an"),
        (body(1, [""], b"\0", [0], [0], [0], [0], [1], [0]), "details holds an index out of"),
        (body(1, [""], b"\0", [0], [0], [0], [0], [0]), "body must be an array of 9"),
        (body(1, [""], b"\0", [0], [0], [0], [0], [0], [1.0]), "times must hold ints only"),
        (body(1, [""], b"\0", [0], [0], [0], [0], [0], []), "times must be an array of 1 ints"),
        (body(1, [""], b"\0", [0], [0], [0], [0], [0], [0x7FF0 << 49]), "has the time inf"),
        (body(1, [""], b"\0", [0], [0], [0], [0], [0], [0x7FF8 << 49]), "has the time nan"),
    ],
)
def test_bytes_that_are_not_a_segment_are_a_value_error_saying_what(data: object, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)) as caught:
        decode_segment(data)  # type: ignore[arg-type]
    assert type(caught.value) is ValueError


def test_a_segment_inflating_past_the_limit_is_refused_unread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("spaceactors.trace_segment.MAX_SEGMENT_BODY", 1000)
    bomb = HEAD + zlib.compress(bytes(10_000))
    with pytest.raises(ValueError, match="inflating to over 1,000 bytes"):
        decode_segment(bomb)


def decodes_or_refuses(data: bytes) -> None:
    try:
        decoded = decode_segment(data)
    except ValueError as exc:
        refused: Exception = exc
    else:
        assert all(isinstance(event, sa.TraceEvent) for event in decoded)
        assert same(decode_segment(encode_segment(decoded)), decoded)  # and it is exact
        return
    assert type(refused) is ValueError


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_are_a_value_error(data: bytes) -> None:
    decodes_or_refuses(data)
    decodes_or_refuses(HEAD + data)
    decodes_or_refuses(HEAD + zlib.compress(data))


@settings(max_examples=300)
@given(st.lists(events, min_size=1, max_size=12), st.data())
def test_a_damaged_segment_decodes_or_is_a_value_error(
    run: list[sa.TraceEvent], data: st.DataObject
) -> None:
    segment = bytearray(encode_segment(run))
    inflated = bytearray(zlib.decompress(segment[len(HEAD) :]))
    for damaged in (segment, inflated):
        place = data.draw(st.integers(0, len(damaged) - 1))
        damaged[place] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(damaged)))
        damaged[cut:] = damaged[cut:] if data.draw(st.booleans()) else b""
    decodes_or_refuses(bytes(segment))
    decodes_or_refuses(HEAD + zlib.compress(bytes(inflated)))


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=4)
    | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, min_size=9, max_size=9), st.integers(0, 3))
def test_any_body_of_the_right_length_decodes_or_is_a_value_error(
    parts: list[object], count: int
) -> None:
    decodes_or_refuses(body(*parts))
    decodes_or_refuses(body(count, *parts[1:]))


@settings(max_examples=40, deadline=None)
@given(st.lists(recordable, min_size=1, max_size=6), st.lists(st.integers(0, 300), max_size=5))
def test_the_sink_cuts_consecutive_segments_that_make_up_the_trace(
    pool: list[sa.TraceEvent], cuts: list[int]
) -> None:
    run = long_run(pool, 300)
    sink = SegmentSink()
    trace = sa.Trace(sink, keep=0)
    got: list[sa.TraceEvent] = []
    done = 0
    for at in [*sorted(cuts), 300]:
        record_all(trace, run[done:at])
        done = max(done, at)
        first, count, data = sink.cut()
        assert (first, count) == (len(got), len(decode_segment(data)))
        got += decode_segment(data)
    assert same(got, run)
    assert sa.trace_hash(got) == trace.hash


def test_a_sink_for_a_resumed_trace_counts_from_where_it_resumed() -> None:
    sink = SegmentSink(first_index=5000)
    trace = sa.Trace(sink)
    record_all(trace, [sa.TraceEvent(1.0, sa.EventKind.SEND)] * 3)
    assert sink.cut()[:2] == (5000, 3)
    assert sink.cut()[:2] == (5003, 0)


@pytest.mark.parametrize("first", [-1, 1.0, True, "0"])
def test_a_sink_refuses_a_first_index_that_is_not_a_place(first: object) -> None:
    with pytest.raises(ValueError, match="first_index must be an int >= 0"):
        SegmentSink(first_index=first)  # type: ignore[arg-type]


def test_an_event_the_sink_cannot_encode_stops_the_sink_not_the_trace() -> None:
    sink = SegmentSink()
    trace = sa.Trace(sink)
    trace.record(sa.EventKind.SEND, 7)  # type: ignore[arg-type]  # an actor that is no name
    assert isinstance(trace.error, OSError)
    assert "cannot encode a trace event" in str(trace.error)
    assert trace.count == 1


def test_a_real_run_takes_at_least_5x_fewer_bytes_per_event_than_json_lines_or_sqlite(
    tmp_path: Path,
) -> None:
    segments = SegmentSink()
    jsonl, db = tmp_path / "t.jsonl", tmp_path / "t.sqlite"
    trace = sa.Trace(sa.JsonLinesSink(jsonl), sa.SQLiteSink(db), segments, level="messages")
    run = functools.partial(sim.run_scenario, sim.load("trade-route"), seed=1, trace=trace)
    sa.run(run, seed=1)
    trace.close()
    _, count, data = segments.cut()
    assert count == trace.count > 1000
    assert len(data) * 5 <= min(jsonl.stat().st_size, db.stat().st_size)
    assert sa.trace_hash(decode_segment(data)) == trace.hash
