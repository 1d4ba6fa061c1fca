"""What a trace says: pure functions over `TraceEvent`s, for ``spaceactors trace`` and for tests.

`summarize` counts events by kind, actor and message type, pairs each restart with its cause
and lists dead letters with their reasons; `select` filters events; `first_divergence` finds
where two traces part (the tool to debug a run that stopped being deterministic).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Collection, Iterable, Sequence
from typing import TypeVar

import attrs

from spaceactors.faultplan import matches_name
from spaceactors.trace import COLUMNS, EventKind, TraceEvent, trace_hash


@attrs.frozen
class RestartCause:
    """A restart (`time`, the child `actor`, its `supervisor`) and why it happened.

    `cause` is the crash that led to it: the child's own last crash (`crashed` is then
    `actor`), or, for a child restarted with a sibling (one_for_all, rest_for_one), the last
    crash under the same supervisor (`crashed` names that sibling). Both are None when the
    trace holds no crash before it.
    """

    time: float
    actor: str | None
    supervisor: str | None
    detail: str
    crashed: str | None
    cause: str | None


@attrs.frozen
class DeadLetterSeen:
    """A dead letter: when, to whom (`actor`), from whom (`sender`), of what type, and why."""

    time: float
    actor: str | None
    sender: str | None
    message_type: str | None
    reason: str


@attrs.frozen
class TraceSummary:
    """Counts of a trace, most frequent first (ties by name); None keys are events without an
    actor or a message type. `start` and `end` are the first and last event times (None for
    an empty trace); `hash` is `trace_hash` of the events."""

    events: int
    start: float | None
    end: float | None
    by_kind: dict[str, int]
    by_actor: dict[str | None, int]
    by_message_type: dict[str | None, int]
    restarts: tuple[RestartCause, ...]
    dead_letters: tuple[DeadLetterSeen, ...]
    dead_letters_by_reason: dict[str, int]
    hash: str


def summarize(events: Sequence[TraceEvent]) -> TraceSummary:
    """Count `events` and explain their restarts and dead letters (see `TraceSummary`)."""
    letters = tuple(
        DeadLetterSeen(e.time, e.actor, e.peer, e.message_type, e.detail)
        for e in events
        if e.kind is EventKind.DEAD_LETTER
    )
    return TraceSummary(
        events=len(events),
        start=events[0].time if events else None,
        end=events[-1].time if events else None,
        by_kind=_ranked(e.kind.value for e in events),
        by_actor=_ranked(e.actor for e in events),
        by_message_type=_ranked(e.message_type for e in events),
        restarts=restart_causes(events),
        dead_letters=letters,
        dead_letters_by_reason=_ranked(letter.reason for letter in letters),
        hash=trace_hash(events),
    )


_Key = TypeVar("_Key", str, str | None)


def _ranked(keys: Iterable[_Key]) -> dict[_Key, int]:
    counts = collections.Counter(keys)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0] is None, item[0])))


def restart_causes(events: Iterable[TraceEvent]) -> tuple[RestartCause, ...]:
    """Each restart of `events` with the crash that caused it (see `RestartCause`)."""
    own: dict[tuple[str | None, str | None], str] = {}  # (supervisor, child) -> its last crash
    latest: dict[str | None, tuple[str | None, str]] = {}  # supervisor -> (child, crash)
    found = []
    crashed: str | None
    cause: str | None
    for event in events:
        where = (event.peer, event.actor)
        if event.kind is EventKind.CRASH:
            own[where] = event.detail
            latest[event.peer] = (event.actor, event.detail)
        elif event.kind is EventKind.RESTART:
            if where in own:
                crashed, cause = event.actor, own.pop(where)
            else:
                crashed, cause = latest.get(event.peer, (None, None))
            found.append(
                RestartCause(event.time, event.actor, event.peer, event.detail, crashed, cause)
            )
    return tuple(found)


def select(
    events: Iterable[TraceEvent],
    *,
    actors: Collection[str] = (),
    kinds: Collection[EventKind] = (),
    start: float = -math.inf,
    end: float = math.inf,
) -> list[tuple[int, TraceEvent]]:
    """The events that pass every filter given, with their 1-based position in the trace.

    `actors`: names (``"ship-*"`` matches by prefix, as in fault plans) that the event's actor
    or peer must match; `kinds`: the kinds to keep; `start`, `end`: the time range, both ends
    included. An empty filter keeps everything.
    """
    patterns = tuple(actors)
    return [
        (number, event)
        for number, event in enumerate(events, start=1)
        if (not kinds or event.kind in kinds)
        and start <= event.time <= end
        and (
            not patterns
            or matches_name(patterns, event.actor)
            or matches_name(patterns, event.peer)
        )
    ]


@attrs.frozen
class Divergence:
    """Where two traces part: `index` (0-based) of the first event that differs.

    `first` and `second` are the two events there (None where that trace has already ended);
    `fields` the columns they differ in (all of them when one is None); `before` the events
    both traces share just before it (at most the context asked for); `after_first` and
    `after_second` the events that follow in each.
    """

    index: int
    first: TraceEvent | None
    second: TraceEvent | None
    fields: tuple[str, ...]
    before: tuple[TraceEvent, ...]
    after_first: tuple[TraceEvent, ...]
    after_second: tuple[TraceEvent, ...]


def first_divergence(
    first: Sequence[TraceEvent], second: Sequence[TraceEvent], context: int = 3
) -> Divergence | None:
    """The first place where `first` and `second` differ, with `context` events around it;
    None when they are the same events (the same trace hash).

    Events are compared as the trace hash sees them (their JSON lines), so two traces differ
    here exactly when their hashes differ.

    Raises:
        ValueError: `context` is negative.
    """
    if context < 0:
        raise ValueError(f"context must be 0 or more events, got {context}")
    index = next(
        (
            i
            for i, (a, b) in enumerate(zip(first, second, strict=False))
            if a.to_json() != b.to_json()
        ),
        min(len(first), len(second)),
    )
    if index == len(first) == len(second):
        return None
    one = first[index] if index < len(first) else None
    two = second[index] if index < len(second) else None
    return Divergence(
        index=index,
        first=one,
        second=two,
        fields=_differing(one, two),
        before=tuple(first[max(0, index - context) : index]),
        after_first=tuple(first[index + 1 : index + 1 + context]),
        after_second=tuple(second[index + 1 : index + 1 + context]),
    )


def _differing(one: TraceEvent | None, two: TraceEvent | None) -> tuple[str, ...]:
    if one is None or two is None:
        return COLUMNS
    values = zip(attrs.astuple(one, recurse=False), attrs.astuple(two, recurse=False), strict=True)
    return tuple(name for name, (a, b) in zip(COLUMNS, values, strict=True) if repr(a) != repr(b))
