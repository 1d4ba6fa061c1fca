"""Trace levels: a trace at a level records exactly the events of the level's kinds that the
full trace of the same seeded run holds, in the same order, and hashes those; the level is
given to `sa.Trace(level=...)`, `open_system(trace_level=...)` or ``run --trace-level``."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import trio

import spaceactors as sa
from spaceactors.cli import main

K = sa.EventKind
L = sa.TraceLevel


class Worker(sa.Actor):
    """Answers what it is sent; crashes on "crash"."""

    async def handle(self, message: object) -> object:
        if message == "crash":
            raise RuntimeError(f"{self.ctx.name} was told to crash")
        return message


PLAN = sa.FaultPlan(
    [
        sa.DropMessages(probability=0.3, scope=sa.Scope(actors="pilot")),
        sa.DelayMessages(probability=0.3, maximum=0.5, scope=sa.Scope(actors="engineer")),
        sa.DuplicateMessages(probability=0.2, scope=sa.Scope(actors="engineer")),
        sa.PauseActor(actors="engineer", start=5.0, duration=2.0),
        sa.SlowActor(actors="engineer", seconds=0.1, probability=0.5),
        sa.DropMessages(scope=sa.Scope(actors="nobody-at-all")),  # matches nothing: unmatched
    ]
)


async def crew(trace: sa.Trace) -> None:
    """A seeded run that makes every level's kinds: traffic, faults, a crash and its restarts,
    dead letters."""
    async with sa.open_system(trace=trace, faults=PLAN) as system:
        children = [sa.ChildSpec("pilot", Worker), sa.ChildSpec("engineer", Worker)]
        await system.spawn_supervisor(
            "crew", strategy=sa.Strategy.ONE_FOR_ALL, max_restarts=5, within=60.0, children=children
        )
        for n in range(16):
            await system.send("pilot", n)
            await system.send("engineer", n)
            await trio.sleep(1)
            if n == 9:
                await system.send("pilot", "crash")
        with contextlib.suppress(sa.ActorNotFound):
            await system.send("nobody", "hello")
        await trio.sleep(2)


def recorded(level: sa.TraceLevel | str) -> sa.Trace:
    trace = sa.Trace(level=level)
    sa.run(crew, trace, seed=3)
    return trace


@pytest.fixture(scope="module")
def everything() -> list[sa.TraceEvent]:
    events = list(recorded(L.EVERYTHING).events)
    kinds = {event.kind for event in events}
    # the run makes what each level adds, so that each comparison below can fail
    assert {K.HANDLE, K.SEND, K.DELIVER, K.CRASH, K.RESTART, K.DEAD_LETTER} <= kinds
    assert {K.DROP, K.DELAY, K.DUPLICATE, K.PAUSE, K.RESUME, K.SLOW, K.UNMATCHED} <= kinds
    return events


def test_each_level_records_more_kinds_than_the_one_before() -> None:
    assert L.OFF.kinds == frozenset()
    assert L.OFF.kinds < L.LIFECYCLE.kinds < L.MESSAGES.kinds < L.EVERYTHING.kinds
    assert L.EVERYTHING.kinds == frozenset(K)
    assert L.MESSAGES.kinds - L.LIFECYCLE.kinds == {K.SEND, K.DELIVER, K.FORGET}
    assert L.EVERYTHING.kinds - L.MESSAGES.kinds == {K.HANDLE}
    assert {K.CRASH, K.RESTART, K.STOP, K.GIVE_UP, K.DEAD_LETTER, K.FAULT} <= L.LIFECYCLE.kinds


@pytest.mark.parametrize("level", [*L, "off", "lifecycle", "messages", "everything"])
def test_a_level_records_exactly_its_kinds_of_the_full_trace_and_hashes_them(
    everything: list[sa.TraceEvent], level: sa.TraceLevel | str
) -> None:
    trace = recorded(level)
    expected = [event for event in everything if event.kind in sa.TraceLevel.of(level).kinds]
    assert list(trace.events) == expected
    assert trace.count == len(expected)
    assert trace.hash == sa.trace_hash(expected)


def test_a_trace_records_nothing_of_a_kind_its_level_leaves_out() -> None:
    written: list[sa.TraceEvent] = []

    class Sink:
        def write(self, event: sa.TraceEvent, line: str) -> None:
            written.append(event)

        def close(self) -> None: ...

    trace = sa.Trace(Sink(), level="lifecycle")
    assert trace.record(K.HANDLE, "a", message=1) is None
    assert trace.record(K.SEND, "a", message=1) is None
    crash = trace.record(K.CRASH, "a", detail="boom")
    assert written == [crash] == list(trace.events)
    assert trace.count == 1


async def test_level_off_without_faults_has_no_tap_to_pay_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=sa.Trace(level="off")) as system:
        assert system.tap is None
        ref = await system.spawn(Worker, name="w")
        assert await ref.ask("hi") == "hi"
    assert system.trace is not None
    assert system.trace.count == 0
    assert system.trace.hash == sa.trace_hash([])


async def test_open_system_opens_its_trace_file_at_the_level_asked(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "t.jsonl"
    async with sa.open_system(trace=path, trace_level="messages") as system:
        ref = await system.spawn(Worker, name="w")
        await system.router.route(ref, 1)
        assert await system.ask("w", 2) == 2
        with contextlib.suppress(sa.ActorNotFound):
            await system.send("nobody", 3)
    events = sa.load_trace(path)
    assert {event.kind for event in events} == {K.SEND, K.DEAD_LETTER}
    assert system.trace is not None
    assert system.trace.level is L.MESSAGES
    assert sa.trace_hash(events) == system.trace.hash


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"trace": sa.Trace(), "trace_level": "messages"}, "give a sa.Trace its own"),
        ({"trace_level": "messages"}, "trace_level='messages' needs a trace"),
        ({"trace": False, "trace_level": "off"}, "trace_level='off' needs a trace"),
        ({"trace": True, "trace_level": "loud"}, "no trace level 'loud': the levels are 'off'"),
        ({"trace": True, "trace_level": 2}, "no trace level 2"),
    ],
)
async def test_open_system_refuses_a_trace_level_it_cannot_apply(
    autojump_clock: trio.testing.MockClock, options: dict[str, object], why: str
) -> None:
    with pytest.raises(sa.InvalidSpec, match=re.escape(why)):
        async with sa.open_system(**options):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize("level", [None, True, 1, "Messages", "all", sa.EventKind.SEND])
def test_a_trace_refuses_a_level_that_is_none(level: object) -> None:
    with pytest.raises(ValueError, match="the levels are 'off', 'lifecycle', 'messages', 'every"):
        sa.Trace(level=level)  # type: ignore[arg-type]


def run_cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("level", ["lifecycle", "messages"])
def test_run_trace_level_writes_only_the_levels_kinds_and_prints_their_hash(
    tmp_path: Path, level: str
) -> None:
    full, part = tmp_path / "full.jsonl", tmp_path / f"{level}.sqlite"
    args = ("run", "trade-route", "--duration", "600", "--progress", "never")
    code, out, _ = run_cli(*args, "--trace", full)
    assert code == 0
    code, out, err = run_cli(*args, "--trace", part, "--trace-level", level)
    assert (code, err) == (0, "")
    kinds = sa.TraceLevel(level).kinds
    expected = [event for event in sa.load_trace(full) if event.kind in kinds]
    assert sa.load_trace(part) == expected
    assert f"  trace hash   {sa.trace_hash(expected)}" in out


def test_run_refuses_a_trace_level_without_a_trace_file() -> None:
    code, out, err = run_cli("run", "trade-route", "--trace-level", "messages")
    assert (code, out) == (2, "")
    assert "--trace-level messages needs --trace FILE" in err


def test_run_refuses_a_trace_level_that_is_none(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli("run", "trade-route", "--trace", "x.jsonl", "--trace-level", "loud")
    assert exited.value.code == 2
    assert "argument --trace-level: invalid choice: 'loud'" in capsys.readouterr().err
