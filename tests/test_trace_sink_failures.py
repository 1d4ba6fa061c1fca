"""Trace files: an unknown suffix is refused, and a sink that fails never takes the system down.

A full disk in the middle of a run stops writing, keeps every whole line written before, and
is reported (`Trace.error`, and `close()` raises it), while the actors carry on.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.trace import JsonLinesSink, SQLiteSink, sink_for


class Echo(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


@pytest.mark.parametrize("name", ["t.csv", "t.json", "t.txt", "t", "t.JSONL", "t.jsonl.gz"])
async def test_open_system_refuses_a_trace_file_of_unknown_format(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    with pytest.raises(ValueError, match=r"not a trace format \(use \.jsonl, \.ndjson, \.sqlite"):
        async with sa.open_system(trace=path):
            pass
    assert not path.exists()


@pytest.mark.parametrize(
    ("name", "sink"),
    [("t.jsonl", JsonLinesSink), ("t.ndjson", JsonLinesSink), ("t.sqlite", SQLiteSink),
     ("t.sqlite3", SQLiteSink), ("t.db", SQLiteSink)],
)  # fmt: skip
def test_each_known_suffix_picks_its_sink(tmp_path: Path, name: str, sink: type) -> None:
    opened = sink_for(tmp_path / name)
    assert isinstance(opened, sink)
    opened.close()


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_a_trace_file_that_cannot_be_created_raises_os_error(tmp_path: Path, suffix: str) -> None:
    taken = tmp_path / f"dir{suffix}"
    taken.mkdir()
    with pytest.raises(OSError, match="Is a directory"):
        sink_for(taken)
    with pytest.raises(OSError, match=r"No such file|unable to open"):
        sink_for(tmp_path / "missing" / f"t{suffix}")


def fill_disk_after(monkeypatch: pytest.MonkeyPatch, sink: type, lines: int) -> None:
    """Make `sink.write` raise ENOSPC once `lines` events were written."""
    written = 0
    real_write = sink.write

    def write(self: object, event: sa.TraceEvent, line: str) -> None:
        nonlocal written
        if written >= lines:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written += 1
        real_write(self, event, line)

    monkeypatch.setattr(sink, "write", write)


@pytest.mark.parametrize(("name", "sink"), [("t.jsonl", JsonLinesSink), ("t.db", SQLiteSink)])
async def test_a_full_disk_keeps_the_actors_running_and_the_lines_written(
    autojump_clock: trio.testing.MockClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    sink: type,
) -> None:
    fill_disk_after(monkeypatch, sink, 10)
    path = tmp_path / name
    failures: list[OSError] = []
    answers: list[object] = []
    seen: list[tuple[OSError | None, int]] = []

    async def use(system: sa.ActorSystem) -> None:
        assert system.trace is not None
        system.trace.on_error = failures.append
        echo = await system.spawn(Echo, name="echo")
        answers.extend([await echo.ask(n, timeout=1.0) for n in range(50)])
        seen.append((system.trace.error, system.trace.count))

    with pytest.raises(OSError, match="No space left on device"):
        async with sa.open_system(trace=path) as system:
            await use(system)
    assert answers == list(range(50))  # the actor never noticed the disk
    assert len(failures) == 1
    assert seen[0][0] is failures[0]
    assert seen[0][1] > 10
    assert len(sa.load_trace(path)) == 10


def test_a_json_lines_file_cut_mid_line_keeps_its_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    trace = sa.Trace(sink_for(path))
    for _ in range(3):
        trace.record(sa.EventKind.STOP, "a")
    sink = trace.sinks[0]
    assert isinstance(sink, JsonLinesSink)
    sink._file.flush()
    with path.open("a") as file:
        file.write('[0.0,"stop","half')  # a line the disk cut short
    sink._broken = True  # as a failed write leaves it
    trace.close()
    assert len(sa.load_trace(path)) == 3


@sim.scenario(duration=3600.0)
async def _two_stations(world: sim.World) -> None:
    await world.add_station("a", (0, 0, 0), sector="x")
    await world.add_station("b", (10_000, 0, 0), sector="x")
    await world.add_ship("s", (0, 0, 0), route=("a", "b"))
    world.expect("never checked when stopped", lambda s: False)


async def test_a_full_disk_stops_a_scenario_run_and_raises(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_disk_after(monkeypatch, JsonLinesSink, 20)
    path = tmp_path / "run.jsonl"
    started = trio.current_time()
    with pytest.raises(OSError, match="No space left on device"):
        await sim.run_scenario(_two_stations, trace=str(path))
    assert trio.current_time() - started < 3600  # it stopped, not ran to the end
    assert len(sa.load_trace(path)) == 20


async def test_setting_stop_ends_a_run_at_the_next_tick_with_the_counts_so_far(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:

        async def stop_at(seconds: float) -> None:
            await trio.sleep(seconds)
            stop.set()

        nursery.start_soon(stop_at, 100.25)
        summary = await sim.run_scenario(_two_stations, stop=stop)
    assert summary.interrupted_at == pytest.approx(100.25)
    assert summary.duration == 3600.0
    assert summary.ship_updates == 101  # ticks at 0, 1, ..., 100: none after the stop
    assert summary.expectations == ()
    assert not summary.passed


async def test_a_stop_before_the_build_ends_cancels_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    built: list[str] = []

    @sim.scenario(duration=60.0)
    async def slow(world: sim.World) -> None:
        await world.add_station("a", (0, 0, 0), sector="x")
        built.append("a")
        await trio.sleep(1000)
        built.append("never")

    stop = trio.Event()
    async with trio.open_nursery() as nursery:

        async def stop_soon() -> None:
            await trio.sleep(5)
            stop.set()

        nursery.start_soon(stop_soon)
        summary = await sim.run_scenario(slow, stop=stop)
    assert built == ["a"]
    assert summary.interrupted_at == pytest.approx(5.0)
    assert summary.stations == 1
    assert summary.ship_updates == 0
