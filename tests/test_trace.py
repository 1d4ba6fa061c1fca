"""The event trace: what a traced system records, the sinks that store it, and its hash.

Every async test runs in virtual time (``autojump_clock``); event times are read relative to
the moment the system opened.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

import spaceactors as sa

K = sa.EventKind


@attrs.frozen
class Ping:
    n: int


@attrs.frozen
class Forward:
    """Ask a `Relay` to send `message` on to `target` with ``ctx.send``."""

    target: str
    message: object


class Boom:
    """Crashes whoever handles it."""


class Relay(sa.Actor):
    """Forwards `Forward`s, crashes on `Boom`, records everything else it handles."""

    def __init__(self, handled: list[object] | None = None) -> None:
        self.handled = handled if handled is not None else []

    async def handle(self, message: object) -> object:
        if isinstance(message, Forward):
            await self.ctx.send(message.target, message.message)
        elif isinstance(message, Boom):
            raise RuntimeError("boom")
        else:
            self.handled.append(message)
        return None


class ListSink:
    """A `TraceSink` that keeps every event it is given."""

    def __init__(self) -> None:
        self.events: list[sa.TraceEvent] = []
        self.lines: list[str] = []
        self.closed = False

    def write(self, event: sa.TraceEvent, line: str) -> None:
        self.events.append(event)
        self.lines.append(line)

    def close(self) -> None:
        self.closed = True


def events_of(system: sa.ActorSystem, *kinds: sa.EventKind) -> list[sa.TraceEvent]:
    assert system.trace is not None
    return system.trace.of_kind(*kinds)


def only(events: list[sa.TraceEvent]) -> sa.TraceEvent:
    assert len(events) == 1, events
    return events[0]


# --- what a traced system records ---------------------------------------------------------


async def test_a_send_from_inside_an_actor_names_its_sender_as_peer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[object] = []
    async with sa.open_system(trace=True) as system:
        start = trio.current_time()
        await system.spawn(Relay, name="a")
        await system.spawn(Relay, handled, name="b")
        await trio.sleep(2.5)
        await system.send("a", Forward("b", Ping(1)))
        await trio.sleep(1)
        assert handled == [Ping(1)]
        sends = events_of(system, K.SEND)
        handles = events_of(system, K.HANDLE)
    by_hand, by_actor = sends
    assert (by_hand.actor, by_hand.peer, by_hand.message_type) == ("a", None, "Forward")
    assert (by_actor.actor, by_actor.peer, by_actor.message_type) == ("b", "a", "Ping")
    assert [(e.actor, e.message_type) for e in handles] == [("a", "Forward"), ("b", "Ping")]
    assert all(e.message_id is None for e in sends + handles)
    assert [e.time - start for e in sends + handles] == [2.5, 2.5, 2.5, 2.5]


async def test_a_reliable_send_and_its_handling_carry_the_message_id(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        a = await system.spawn(Relay, name="a")
        await system.spawn(Relay, name="b")
        mid = await system.reliable.send("b", Ping(7), sender=a)
        await system.reliable.delivered(mid)
        send = only(events_of(system, K.SEND))
        handle = only(events_of(system, K.HANDLE))
    assert (send.actor, send.peer, send.message_type, send.message_id) == ("b", "a", "Ping", mid)
    assert (handle.actor, handle.message_type, handle.message_id) == ("b", "Ping", mid)


async def test_a_reliable_retry_is_a_send_with_the_same_id_marked_as_a_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        deaf = await system.spawn(Relay, name="deaf")
        deaf.pause()
        await trio.sleep(0.1)
        mid = await system.reliable.send("deaf", Ping(1), max_retries=2, jitter=0.0)
        with pytest.raises(sa.DeliveryFailed):
            await system.reliable.delivered(mid)
        sends = events_of(system, K.SEND)
    assert [(e.message_id, e.detail) for e in sends] == [
        (mid, ""),
        (mid, "retry 1"),
        (mid, "retry 2"),
    ]


async def test_a_crash_is_traced_as_dead_letter_crash_and_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        await system.spawn(Relay, name="fragile")
        await system.send("fragile", Boom())
        await trio.sleep(1)
        assert system.trace is not None
        after_send = [e for e in system.trace.events if e.kind is not K.SEND]
    assert [(e.kind, e.actor) for e in after_send] == [
        (K.HANDLE, "fragile"),
        (K.DEAD_LETTER, "fragile"),
        (K.CRASH, "fragile"),
        (K.RESTART, "fragile"),
    ]
    handle, letter, crash, restart = after_send
    assert handle.message_type == letter.message_type == "Boom"
    assert letter.detail == "crashed_while_handling"
    assert (crash.peer, crash.detail) == ("root/user", repr(RuntimeError("boom")))
    assert (restart.peer, restart.detail) == ("root/user", "incarnation 2")


async def test_stopping_an_actor_is_traced_as_a_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        ref = await system.spawn(Relay, name="done")
        await ref.stop()
        stop = only(events_of(system, K.STOP))
        assert not events_of(system, K.CRASH, K.RESTART)
    assert (stop.actor, stop.peer) == ("done", "root/user")


async def test_a_message_to_nobody_is_traced_as_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        ref = await system.spawn(Relay, name="a")
        with pytest.raises(sa.ActorNotFound):
            await system.send("nobody", Ping(1))
        await ref.stop()
        with pytest.raises(sa.ActorUnavailable):
            await ref.send(Ping(2))
        letters = events_of(system, K.DEAD_LETTER)
    assert [(e.actor, e.message_type, e.detail) for e in letters] == [
        ("nobody", "Ping", "unknown_actor"),
        ("a", "Ping", "actor_stopped"),
    ]


async def test_a_supervisor_over_its_restart_intensity_gives_up_on_the_trace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        fleet = await system.spawn_supervisor(
            "fleet", max_restarts=2, within=60.0, restart=sa.Restart.TEMPORARY
        )
        await fleet.start_child(sa.ChildSpec("bomb", Relay))
        for _ in range(3):
            await system.send("bomb", Boom())
            await trio.sleep(0.1)
        crashes = events_of(system, K.CRASH)
        restarts = events_of(system, K.RESTART)
        give_up = only(events_of(system, K.GIVE_UP))
    assert [(e.actor, e.peer) for e in crashes] == [("bomb", "root/user/fleet")] * 3 + [
        ("fleet", "root/user")
    ]
    assert "SupervisorGaveUp" in crashes[-1].detail
    assert [e.detail for e in restarts] == ["incarnation 2", "incarnation 3"]
    assert (give_up.actor, give_up.peer) == ("bomb", "root/user/fleet")
    assert give_up.detail == "more than 2 restarts within 60.0 s"
    assert crashes[2].time <= give_up.time <= crashes[3].time


async def test_an_untraced_system_has_no_trace(autojump_clock: trio.testing.MockClock) -> None:
    async with sa.open_system() as system:
        assert system.trace is None
        assert system.tap is None
    async with sa.open_system(trace=False) as system:
        assert system.trace is None


# --- sinks and the hash -------------------------------------------------------------------


async def run_traffic(trace: str | os.PathLike[str], messages: int) -> sa.Trace:
    """A run traced to a file, with some of every common event; returns its trace."""
    async with sa.open_system(trace=trace) as system:
        a = await system.spawn(Relay, name="a")
        await system.spawn(Relay, name="b")
        for n in range(messages):
            await system.send("a", Forward("b", Ping(n)))
        await system.reliable.delivered(await system.reliable.send("b", Ping(-1), sender=a))
        await system.send("b", Boom())
        await trio.sleep(1)
        with pytest.raises(sa.ActorNotFound):
            await system.send("nobody", Ping(0))
    assert system.trace is not None
    return system.trace


@pytest.mark.parametrize("file_name", ["t.jsonl", "t.sqlite", "t.db"])
async def test_a_trace_file_round_trips_through_load_trace_with_the_same_hash(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, file_name: str
) -> None:
    path = tmp_path / file_name
    trace = await run_traffic(path, 600)  # over the SQLite sink's batch of 1000 events
    loaded = sa.load_trace(path)
    assert len(loaded) == trace.count > 2400
    assert loaded == list(trace.events)
    assert {event.kind for event in loaded} >= {K.SEND, K.HANDLE, K.CRASH, K.DEAD_LETTER}
    assert sa.trace_hash(loaded) == trace.hash


async def test_a_trace_file_named_by_a_string_is_written_and_overwritten(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    for file_name in ("t.jsonl", "t.sqlite"):
        path = tmp_path / file_name
        first = (await run_traffic(str(path), 3)).hash
        assert sa.trace_hash(sa.load_trace(path)) == first
        second = (await run_traffic(str(path), 1)).hash  # a new run replaces the old trace
        assert sa.trace_hash(sa.load_trace(path)) == second != first


async def test_a_json_lines_trace_holds_a_header_then_one_json_array_per_event(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "t.jsonl"
    async with sa.open_system(trace=path) as system:
        await system.spawn(Relay, name="a")
        await system.send("a", Ping(1))
        await trio.sleep(1)
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    assert system.trace is not None
    assert json.loads(header)["columns"][:2] == ["time", "kind"]
    assert len(lines) == system.trace.count
    assert json.loads(lines[0]) == [0.0, "send", "a", None, "Ping", None, ""]


async def test_the_trace_file_is_complete_when_the_block_raises(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "t.sqlite"
    traces: list[sa.Trace] = []

    async def failing_run() -> None:
        async with sa.open_system(trace=path) as system:
            assert system.trace is not None
            traces.append(system.trace)
            await system.spawn(Relay, name="a")
            await system.send("a", Ping(1))
            await trio.sleep(1)
            raise LookupError("body failed")

    with pytest.raises(LookupError, match="body failed"):
        await failing_run()
    (trace,) = traces
    loaded = sa.load_trace(path)
    assert [e.kind for e in loaded[:2]] == [K.SEND, K.HANDLE]
    assert sa.trace_hash(loaded) == trace.hash


async def test_a_trace_given_by_the_caller_is_not_closed_by_the_system(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = ListSink()
    trace = sa.Trace(sink)
    async with sa.open_system(trace=trace) as system:
        assert system.trace is trace
        await system.spawn(Relay, name="a")
        await system.send("a", Ping(1))
    assert not sink.closed
    trace.close()
    assert sink.closed


async def test_a_bounded_trace_keeps_the_last_events_but_hashes_them_all(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sink = ListSink()
    trace = sa.Trace(sink, keep=5)
    async with sa.open_system(trace=trace) as system:
        await system.spawn(Relay, name="a")
        for n in range(20):
            await system.send("a", Ping(n))
        await trio.sleep(1)
    assert trace.count == len(sink.events) >= 40
    assert list(trace.events) == sink.events[-5:]
    assert trace.hash == sa.trace_hash(sink.events)
    assert trace.hash != sa.trace_hash(trace.events)
    assert sink.lines == [event.to_json() for event in sink.events]


def test_the_trace_hash_is_the_hash_of_its_events_in_order() -> None:
    trace = sa.Trace()
    assert trace.hash == sa.trace_hash([])
    first = trace.record(K.SEND, "a", message=Ping(1))
    second = trace.record(K.HANDLE, "a", message=Ping(1), message_id=3, detail="x")
    assert (first.time, first.message_type, second.message_id) == (0.0, "Ping", 3)
    assert trace.hash == sa.trace_hash([first, second])
    assert trace.hash != sa.trace_hash([second, first])


# --- reading events back ------------------------------------------------------------------


def test_an_event_round_trips_through_json() -> None:
    event = sa.TraceEvent(1.25, K.DROP, "ship-1", "station", "Ping", 42, 'a "quoted" detail')
    assert sa.TraceEvent.from_json(event.to_json()) == event
    assert json.loads(event.to_json()) == [
        1.25,
        "drop",
        "ship-1",
        "station",
        "Ping",
        42,
        'a "quoted" detail',
    ]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("", "Expecting value"),
        ("not json", "Expecting value"),
        ("null", "expected a JSON array [time, kind"),
        ("[1, 2]", "got [1, 2]"),
        ('[0, "send", null, null, null, null, "", "extra"]', "expected a JSON array [time, kind"),
        ('[0, "explode", null, null, null, null, ""]', "kind must be one of"),
        ('["soon", "send", null, null, null, null, ""]', "time must be a number"),
    ],
)
def test_from_json_rejects_garbage_with_a_clear_value_error(line: str, why: str) -> None:
    with pytest.raises(ValueError, match="not a trace event") as caught:
        sa.TraceEvent.from_json(line)
    assert why in str(caught.value)
    assert repr(line[:80]) in str(caught.value)


def test_load_trace_names_a_bad_line_of_a_json_lines_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    good = sa.TraceEvent(0.0, K.SEND, "a").to_json()
    path.write_text(f"{good}\n\n{good}\n", encoding="utf-8")
    assert len(sa.load_trace(path)) == 2  # blank lines are skipped
    path.write_text(f"{good}\n{{oops\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"t\.jsonl:2: not a trace event: .*'\{oops'"):
        sa.load_trace(path)


@pytest.mark.parametrize(
    "line",
    [
        '["1.5", "send", null, null, null, null, ""]',
        '[true, "send", null, null, null, null, ""]',
        '[0, "send", 7, null, null, null, ""]',
        '[0, "send", null, null, null, "seven", ""]',
        '[0, "send", null, null, null, null, null]',
    ],
)
def test_from_json_rejects_wrongly_typed_fields(line: str) -> None:
    with pytest.raises(ValueError, match="not a trace event"):
        sa.TraceEvent.from_json(line)


@pytest.mark.parametrize("content", [b"this is not a database", b""])
def test_load_trace_of_a_sqlite_file_that_is_not_a_trace_raises_value_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "t.sqlite"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"t\.sqlite"):
        sa.load_trace(path)


def test_load_trace_of_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    with pytest.raises(FileNotFoundError):
        sa.load_trace(path)
    assert not path.exists()


def test_load_trace_of_a_missing_json_lines_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sa.load_trace(tmp_path / "missing.jsonl")
