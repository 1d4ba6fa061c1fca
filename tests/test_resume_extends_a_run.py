"""``spaceactors resume FILE --duration D``: a finished run is carried on to D simulated
seconds in all, the same way every time, and an extension killed midway resumes to its end."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.checkpoint import StateFile
from spaceactors.checkpoint.driver import Checkpointer
from spaceactors.cli.command import main

RUN = ("run", "asteroid-convoy", "--progress", "never", "--checkpoint-every", "150")


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def summary(out: str) -> list[str]:
    """The summary without its wall-clock figure, and the simulated seconds it states."""
    first, *rest = out.splitlines()
    return [first.split(" simulated in ")[0], *rest]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    state = tmp_path_factory.mktemp("finished") / "run.db"
    code, out, err = cli(*RUN, "--duration", "600", "--state", state)
    assert code == 0, err
    return state, summary(out)


def copy(state: Path, tmp_path: Path, name: str = "copy.db") -> Path:
    target = tmp_path / name
    shutil.copyfile(state, target)
    return target


def test_a_finished_run_keeps_a_checkpoint_at_its_end(finished: tuple[Path, list[str]]) -> None:
    state, _ = finished
    with StateFile.open(state) as file:
        times = [checkpoint.sim_time for checkpoint in file.checkpoints()]
    assert times == [300.0, 450.0, 599.0]  # the last tick of 600 s is at 599 s


def test_resumed_without_a_duration_it_ends_as_it_was_started(
    finished: tuple[Path, list[str]], tmp_path: Path
) -> None:
    state, whole = finished
    code, out, err = cli("resume", copy(state, tmp_path), "--progress", "never")
    assert (code, err) == (0, "")
    assert summary(out) == whole


def test_an_extension_runs_to_the_new_duration_the_same_way_every_time(
    finished: tuple[Path, list[str]], tmp_path: Path
) -> None:
    state, whole = finished
    runs = []
    for name in ("one.db", "two.db"):
        code, out, err = cli(
            "resume", copy(state, tmp_path, name), "--duration", "1500", "--progress", "never"
        )
        assert code in (0, 1), err
        runs.append(summary(out))
    assert runs[0] == runs[1]
    assert runs[0][0] == "scenario asteroid-convoy: seed 0, 1,500 s"
    assert runs[0] != whole
    with StateFile.open(tmp_path / "one.db") as file:  # every 150 s from the start, then the end
        assert [c.sim_time for c in file.checkpoints()] == [1200.0, 1350.0, 1499.0]


def test_an_extension_killed_midway_resumes_to_the_extended_end(
    finished: tuple[Path, list[str]], tmp_path: Path
) -> None:
    state, _ = finished
    extended = copy(state, tmp_path, "extended.db")
    code, out, err = cli("resume", extended, "--duration", "1500", "--progress", "never")
    assert code in (0, 1), err
    killed = copy(state, tmp_path, "killed.db")
    cli("resume", killed, "--duration", "1500", "--progress", "never")
    with sqlite3.connect(killed) as db:  # as if killed after the checkpoint at 1,200 s
        db.execute("DELETE FROM checkpoints WHERE sim_time > 1200")
    db.close()
    with StateFile.open(killed) as file:
        assert file.latest().sim_time == 1200.0  # type: ignore[union-attr]
    code, again, err = cli("resume", killed, "--progress", "never")
    assert code in (0, 1), err
    assert summary(again) == summary(out)


@pytest.mark.parametrize("duration", ["300", "599"])
def test_a_duration_at_or_below_where_the_run_stands_is_refused(
    finished: tuple[Path, list[str]], tmp_path: Path, duration: str
) -> None:
    state, _ = finished
    code, out, err = cli("resume", copy(state, tmp_path), "--duration", duration)
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"spaceactors: error: --duration {duration}: the run in {tmp_path / 'copy.db'} stands "
        "at 599 s already (checkpoint 5): give a longer duration to extend it"
    ]


@pytest.mark.parametrize("name", ["asteroid-convoy", "trade-route"])
def test_an_extension_is_the_longer_run_when_its_reports_come_alike(name: str) -> None:
    """Extended from 700 s to 1,400 s, a run is the 1,400 s run made from the start when the
    runner's progress reports are spaced alike (7 s): the world carries on exactly. (The
    command spaces them by the duration, a hundred per run: docs/long-runs.md.)"""
    chosen = sim.load(name)

    async def run(
        duration: float, updates: int, saved: list[dict[str, Any]], doc: Any = None
    ) -> sim.Summary:
        checkpoints = Checkpointer(150.0, saved.append)
        return await sim.run_scenario(
            chosen, duration=duration, updates=updates, trace=sa.Trace(keep=0),
            checkpoints=checkpoints, resume_from=doc,
        )  # fmt: skip

    longer = sa.run(run, 1400.0, 200, [])
    saved: list[dict[str, Any]] = []
    sa.run(run, 700.0, 100, saved)
    last = saved[-1]
    assert last["time"] == 699.0  # the checkpoint at the run's end
    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(last["time"])
    extended = sa.run(run, 1400.0, 200, [], last, clock=clock)
    assert extended.trace_hash == longer.trace_hash
    assert extended.expectations == longer.expectations
    assert attrs.evolve(extended, wall_seconds=0) == attrs.evolve(longer, wall_seconds=0)
