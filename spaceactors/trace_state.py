"""A trace's state as plain data, and back: what `Trace.state` saves and `Trace.restore` reads
(a checkpoint holds it, so a resumed run continues the same trace and the same hash)."""

from __future__ import annotations

from collections.abc import Collection

from spaceactors.checks import short_repr
from spaceactors.trace_chain import ChainHash
from spaceactors.trace_event import TraceEvent, TraceLevel

STATE_VERSION = 1
"""The version of the trace state's layout (``"version"`` in it)."""
_KEYS = frozenset({"version", "level", "keep", "count", "chain", "pending", "events"})


def trace_state(
    level: TraceLevel, events: Collection[TraceEvent], chain: ChainHash, keep: int | None
) -> dict[str, object]:
    """The state `Trace.state` returns (see there for its shape)."""
    return {
        "version": STATE_VERSION,
        "level": level.value,
        "keep": keep,
        **chain.state(),
        "events": [event.to_json() for event in events],  # ASCII: msgpack takes any of it
    }


def restore_trace(state: object, level: TraceLevel) -> tuple[ChainHash, list[TraceEvent]]:
    """The hash and the kept events a trace state holds, for a trace at `level`.

    Raises:
        ValueError: `state` is not a trace state of `level` (the message says what is wrong).
    """
    if not isinstance(state, dict):
        raise ValueError(f"a trace state must be a dict, got {short_repr(state)}")
    if set(state) != _KEYS:
        missing, extra = sorted(_KEYS - set(state)), sorted(map(str, set(state) - _KEYS))
        raise ValueError(
            f"a trace state has the keys {sorted(_KEYS)}: missing {missing}, unknown {extra}"
        )
    if state["version"] != STATE_VERSION or type(state["version"]) is not int:
        raise ValueError(
            f"trace state version {short_repr(state['version'])} is not {STATE_VERSION}, the "
            "one this spaceactors reads"
        )
    if state["level"] != level.value:
        raise ValueError(
            f"the trace state was recorded at level {short_repr(state['level'])}, this trace "
            f"records {level.value!r}: open the trace with level={state['level']!r}"
            if isinstance(state["level"], str)
            else f"the trace state's level must be a str, got {short_repr(state['level'])}"
        )
    keep = state["keep"]
    if keep is not None and (type(keep) is not int or keep < 0):
        raise ValueError(
            f"the trace state's keep must be an int >= 0 or None, got {short_repr(keep)}"
        )
    chain = ChainHash.restored(state)
    for n, line in enumerate(chain.pending):
        _event(f"pending line {n}", line)
    events = state["events"]
    if not isinstance(events, list):
        raise ValueError(f"the trace state's events must be a list, got {short_repr(events)}")
    expected = chain.count if keep is None else min(chain.count, keep)
    if len(events) != expected:
        raise ValueError(
            f"the trace state holds {len(events)} kept events, but {chain.count} recorded "
            f"with keep={keep} leave {expected}"
        )
    if not all(isinstance(line, str) for line in events):
        raise ValueError("the trace state's events must be a list of str (JSON lines)")
    kept = [_event(f"kept event {n}", line) for n, line in enumerate(events)]
    overlap = min(len(chain.pending), len(events))  # the last events are in both: the same
    if overlap and events[-overlap:] != chain.pending[-overlap:]:
        raise ValueError("the trace state's kept events differ from its pending hash lines")
    return chain, kept


def _event(where: str, line: object) -> TraceEvent:
    """The event a line of the state holds; it must be the line the event writes."""
    assert isinstance(line, str)  # ChainHash.restored checked
    try:
        event = TraceEvent.from_json(line)
    except ValueError as exc:
        raise ValueError(f"the trace state's {where}: {exc}") from None
    if event.to_json() != line:
        raise ValueError(
            f"the trace state's {where} is not written as a trace writes it: {short_repr(line)}"
        )
    return event
