"""The trace hash is a chain over blocks of events whose state is plain data: a trace saved
(`Trace.state`) at any event, restored into a new `Trace` and continued, ends with the hash and
the kept events of the trace that never stopped; a state that is not one is a ValueError."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_strategies import events, long_run, record_all, recordable

import spaceactors as sa
from spaceactors.trace_chain import HASH_BLOCK


def through_msgpack(state: dict[str, object]) -> Any:
    """`state` as a checkpoint stores it and reads it back (msgpack, the project's settings)."""
    packed = msgpack.packb(state, use_bin_type=True)
    return msgpack.unpackb(packed, raw=False, strict_map_key=True)


def chain_by_the_definition(events: list[sa.TraceEvent]) -> str:
    """The documented definition, computed independently of the code under test."""
    lines = [event.to_json().encode() + b"\n" for event in events]
    h = bytes(32)
    whole = len(lines) - len(lines) % HASH_BLOCK
    for start in range(0, whole, HASH_BLOCK):
        h = hashlib.sha256(h + b"".join(lines[start : start + HASH_BLOCK])).digest()
    return hashlib.sha256(h + b"".join(lines[whole:])).hexdigest()


@pytest.mark.parametrize(
    "n", [0, 1, HASH_BLOCK - 1, HASH_BLOCK, HASH_BLOCK + 1, 2 * HASH_BLOCK, 2 * HASH_BLOCK + 7]
)
def test_the_trace_hash_is_the_documented_chain_at_block_edges(n: int) -> None:
    pool = [sa.TraceEvent(0.0, sa.EventKind.SEND, "a", "b", "Ping", 3, "x")]
    run = long_run(pool, n)
    trace = sa.Trace(keep=0)
    record_all(trace, run)
    assert trace.hash == sa.trace_hash(run) == chain_by_the_definition(run)
    assert trace.count == n


def test_the_hash_changes_with_the_order_and_with_each_event_of_a_block() -> None:
    run = long_run([sa.TraceEvent(0.0, sa.EventKind.HANDLE, "a")], HASH_BLOCK + 3)
    base = sa.trace_hash(run)
    assert sa.trace_hash(run[:-1]) != base
    for place in (0, HASH_BLOCK - 1, HASH_BLOCK, HASH_BLOCK + 2):
        changed = [*run]
        changed[place] = sa.TraceEvent(run[place].time, sa.EventKind.SEND, "a")
        assert sa.trace_hash(changed) != base


@settings(max_examples=40, deadline=None)
@given(
    pool=st.lists(recordable, min_size=1, max_size=8),
    n=st.integers(0, 2 * HASH_BLOCK + 5),
    every=st.integers(1, 2 * HASH_BLOCK),
    keep=st.integers(0, 40),
    level=st.sampled_from(sa.TraceLevel),
)
def test_a_trace_saved_every_k_events_and_restored_ends_as_if_it_never_stopped(
    pool: list[sa.TraceEvent], n: int, every: int, keep: int, level: sa.TraceLevel
) -> None:
    every = max(every, n // 12)  # at most a dozen stops: each restore re-reads its state
    run = long_run(pool, n)
    never_stopped = sa.Trace(keep=keep, level=level)
    record_all(never_stopped, run)
    trace = sa.Trace(keep=keep, level=level)
    for start in range(0, n, every):
        record_all(trace, run[start : start + every])
        resumed = sa.Trace(keep=keep, level=level)
        resumed.restore(through_msgpack(trace.state()))
        trace = resumed
    assert trace.hash == never_stopped.hash
    assert trace.count == never_stopped.count
    assert list(trace.events) == list(never_stopped.events)
    record_all(trace, run[:3])  # and it goes on recording as the other one would
    record_all(never_stopped, run[:3])
    assert trace.hash == never_stopped.hash


def test_a_restored_trace_writes_only_new_events_to_its_sinks() -> None:
    run = long_run([sa.TraceEvent(0.0, sa.EventKind.CRASH, "a", detail="boom")], 10)
    first = sa.Trace()
    record_all(first, run[:6])
    written: list[sa.TraceEvent] = []

    class Sink:
        def write(self, event: sa.TraceEvent, line: str) -> None:
            written.append(event)

        def close(self) -> None: ...

    second = sa.Trace(Sink())
    second.restore(first.state())
    record_all(second, run[6:])
    assert written == run[6:]
    assert list(second.events) == run
    assert second.hash == sa.trace_hash(run)


def test_a_trace_keeping_fewer_events_restores_the_latest() -> None:
    run = long_run([sa.TraceEvent(0.0, sa.EventKind.STOP, "a")], 30)
    first = sa.Trace(keep=20)
    record_all(first, run)
    second = sa.Trace(keep=5)
    second.restore(first.state())
    assert list(second.events) == run[-5:]
    assert second.hash == sa.trace_hash(run)


def _saved(n: int = 5, **changes: object) -> dict[str, Any]:
    trace = sa.Trace(keep=100)
    record_all(trace, long_run([sa.TraceEvent(0.0, sa.EventKind.SEND, "a", "b", "Ping")], n))
    state: dict[str, Any] = trace.state()
    state.update(changes)
    return state


def _other_line() -> str:
    return sa.TraceEvent(9.0, sa.EventKind.DROP, "z").to_json()


@pytest.mark.parametrize(
    ("state", "why"),
    [
        ([], "a trace state must be a dict, got []"),
        ({k: v for k, v in _saved().items() if k != "chain"}, "missing ['chain']"),
        (_saved(extra=1), "unknown ['extra']"),
        (_saved(version=2), "trace state version 2 is not 1"),
        (_saved(version=True), "trace state version True is not 1"),
        (_saved(level="messages"), "recorded at level 'messages', this trace records"),
        (_saved(level=3), "level must be a str, got 3"),
        (_saved(keep=-1), "keep must be an int >= 0 or None, got -1"),
        (_saved(count=-1), "count must be an int >= 0, got -1"),
        (_saved(count=4.0), "count must be an int >= 0, got 4.0"),
        (_saved(chain=b"x"), "chain must be 32 bytes"),
        (_saved(chain=bytes(31) + b"\1"), "chain must be the start value before 1024 events"),
        (_saved(count=6), "holds 5 pending lines, but 6 events leave 6"),
        (_saved(pending="abc"), "pending lines must be a list of str"),
        (_saved(pending=["[1]"] * 5), "pending line 0: not a trace event"),
        (_saved(pending=['[0.0, "send", "a", "b", "Ping", null, ""]'] * 5), "not written as"),
        (_saved(events="x"), "events must be a list, got 'x'"),
        (_saved(events=[]), "holds 0 kept events, but 5 recorded with keep=100 leave 5"),
        (_saved(events=[[0.0, "send"]] * 5), "events must be a list of str (JSON lines)"),
        (_saved(events=['[NaN,"send","a","b","Ping",null,""]'] * 5), "kept event 0: not a"),
        (_saved(pending=[_other_line()] * 5), "kept events differ from its pending hash lines"),
    ],
)
def test_a_state_that_is_not_a_trace_state_is_a_value_error_saying_what(
    state: object, why: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(why)) as caught:
        sa.Trace().restore(state)
    assert type(caught.value) is ValueError


def test_a_trace_that_recorded_events_refuses_a_state() -> None:
    trace = sa.Trace()
    record_all(trace, [sa.TraceEvent(0.0, sa.EventKind.SEND)])
    with pytest.raises(ValueError, match="into a trace that recorded 1 events"):
        trace.restore(_saved())


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(["version", "level", "keep", "count", "chain", "pending", "events"]),
    value=st.none()
    | st.booleans()
    | st.integers(-5, 2**70)
    | st.floats()
    | st.binary(max_size=40)
    | st.text(max_size=8)
    | st.lists(st.text(max_size=60) | st.lists(events.map(lambda e: e.time)), max_size=6),
)
def test_any_changed_field_restores_exactly_or_is_a_value_error(key: str, value: object) -> None:
    state = _saved(7)
    state[key] = value
    trace = sa.Trace(keep=100)
    try:
        trace.restore(state)
    except ValueError as exc:
        refused: Exception = exc
    else:
        assert trace.count == state["count"]  # what it took is what the state said
        return
    assert type(refused) is ValueError
