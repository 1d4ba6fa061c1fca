"""Hypothesis strategies for trace events, shared by the trace tests."""

from __future__ import annotations

from hypothesis import strategies as st

import spaceactors as sa

# Text as traces see it: short names, and now and then what an exception's words can hold
# (a lone surrogate, a newline, non-ASCII).
texts = st.text(max_size=6) | st.sampled_from(["\ud800", "a\nb", "ship-7", "ünï", ""])
times = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, -0.0, 1.5])
events = st.builds(
    sa.TraceEvent,
    time=times,
    kind=st.sampled_from(sa.EventKind),
    actor=st.none() | texts,
    peer=st.none() | texts,
    message_type=st.none() | texts,
    message_id=st.none() | st.integers(0, 2**63 - 1),
    detail=texts,
)


def long_run(pool: list[sa.TraceEvent], n: int) -> list[sa.TraceEvent]:
    """`n` events made from `pool` (cycled, each at its own time): a run long enough to cross
    several hash blocks without Hypothesis drawing each event."""
    return [
        sa.TraceEvent(
            i * 0.25,
            pool[i % len(pool)].kind,
            pool[i % len(pool)].actor,
            pool[i % len(pool)].peer,
            pool[i % len(pool)].message_type,
            pool[i % len(pool)].message_id,
            pool[i % len(pool)].detail,
        )
        for i in range(n)
    ]


_TYPES: dict[str, type] = {}


def message_of(type_name: str | None) -> object:
    """A message whose class is named `type_name` (None: no message)."""
    if type_name is None:
        return None
    if type_name not in _TYPES:
        _TYPES[type_name] = type(type_name, (), {})
    return _TYPES[type_name]()


# Events a `Trace` can record: a class name is text UTF-8 can encode.
recordable = st.builds(
    sa.TraceEvent,
    time=times,
    kind=st.sampled_from(sa.EventKind),
    actor=st.none() | texts,
    peer=st.none() | texts,
    message_type=st.none() | st.sampled_from(["Ping", "a\nb", "ünï", "", "Cargo"]),
    message_id=st.none() | st.integers(0, 2**63 - 1),
    detail=texts,
)


def record_all(trace: sa.Trace, events: list[sa.TraceEvent]) -> None:
    """Record `events` on `trace`, each at its own time, as the runtime would."""
    for event in events:
        trace.bind(lambda at=event.time: at)
        trace.record(
            event.kind,
            event.actor,
            peer=event.peer,
            message=message_of(event.message_type),
            message_id=event.message_id,
            detail=event.detail,
        )
