"""Checkpoints written by a child process (`spaceactors.checkpoint.forked`): what the child
writes, and what happens when its capture fails, when it is killed, when Ctrl-C reaches it,
and when the run's process is killed while it writes. Real processes: bounded waits."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.checkpoint import StateFile
from spaceactors.checkpoint.driver import Checkpointer
from spaceactors.checkpoint.forked import FORKS, ForkedWriter
from spaceactors.checkpoint.writer import decode

pytestmark = pytest.mark.skipif(not FORKS, reason="checkpoints are forked on Linux only")

TIMEOUT = 30.0


@pytest.fixture
def run_db(tmp_path: Path) -> Path:
    path = tmp_path / "run.db"
    StateFile.create(path, scenario="test", seed=1, code="test").close()
    return path


def doc_at(sim_time: float) -> Callable[[], dict[str, Any]]:
    return lambda: {"time": sim_time, "trace_count": 0, "ships": list(range(100))}


def latest(path: Path) -> float | None:
    with StateFile.open(path) as state:
        point = state.latest()
    return None if point is None else point.sim_time


def test_a_child_writes_the_checkpoint_the_run_held_when_it_forked(run_db: Path) -> None:
    writer = ForkedWriter(run_db)
    writer.take(doc_at(5.0), 5.0)
    assert writer.child is not None
    writer.close()
    with StateFile.open(run_db) as state:
        point = state.latest()
    assert point is not None
    assert point.sim_time == 5.0
    assert decode(point.payload, "test") == doc_at(5.0)()
    (written,) = writer.written
    assert written.sim_time == 5.0
    assert written.size == len(point.payload)
    assert writer.child is None


def test_the_file_is_held_against_other_writers_while_the_writer_is_open(run_db: Path) -> None:
    writer = ForkedWriter(run_db)
    with pytest.raises(sa.StateFileError, match="already open for writing"):
        StateFile.open(run_db, writable=True)
    writer.close()
    StateFile.open(run_db, writable=True).close()


def _unsaveable() -> dict[str, Any]:
    raise sa.CheckpointError("actor 'user/probe': field 'socket' cannot be saved")


def test_what_cannot_be_captured_is_named_at_the_next_checkpoint(run_db: Path) -> None:
    writer = ForkedWriter(run_db)
    writer.take(doc_at(1.0), 1.0)
    writer.take(_unsaveable, 2.0)  # the run goes on: the child finds out
    with pytest.raises(sa.CheckpointError, match="field 'socket' cannot be saved"):
        writer.take(doc_at(3.0), 3.0)
    writer.close()
    assert latest(run_db) == 1.0


def test_a_failed_last_checkpoint_is_raised_by_close(run_db: Path) -> None:
    writer = ForkedWriter(run_db)
    writer.take(_unsaveable, 2.0)
    with pytest.raises(sa.CheckpointError, match="'user/probe'"):
        writer.close()
    writer.close()  # closed: nothing more to say
    assert latest(run_db) is None


def _killed() -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")  # pragma: no cover


def test_a_child_killed_while_writing_leaves_the_previous_checkpoint(run_db: Path) -> None:
    writer = ForkedWriter(run_db)
    writer.take(doc_at(1.0), 1.0)
    writer.take(_killed, 2.0)
    with pytest.raises(
        sa.StateFileError,
        match=r"the checkpoint at t=2 was not written: its writer process was killed by "
        r"SIGKILL; the previous checkpoint is intact",
    ):
        writer.close()
    assert latest(run_db) == 1.0


def _waits_for(marker: Path, sim_time: float) -> Callable[[], dict[str, Any]]:
    def capture() -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return doc_at(sim_time)()

    return capture


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_group_reaches_the_child_and_does_not_stop_its_checkpoint(
    run_db: Path, tmp_path: Path, signum: int
) -> None:
    """Ctrl-C, or a service manager's stop, signals the whole process group: the run stops
    and waits for the child, which finishes the checkpoint."""
    marker = tmp_path / "go"
    writer = ForkedWriter(run_db)
    writer.take(_waits_for(marker, 7.0), 7.0)
    assert writer.child is not None
    time.sleep(0.2)  # the child has set its signals (a real signal: bounded)
    os.kill(writer.child, signum)
    marker.touch()
    writer.close()
    assert latest(run_db) == 7.0


KILLED_RUN = """
import os, signal, sys, time
from pathlib import Path
from spaceactors.checkpoint.forked import ForkedWriter

path, marker = Path(sys.argv[1]), Path(sys.argv[2])
writer = ForkedWriter(path)
writer.take(lambda: {"time": 1.0, "trace_count": 0}, 1.0)
writer.close()


def slow():
    while not marker.exists():  # never, in the test: the run is killed first
        time.sleep(0.01)
    return {"time": 2.0, "trace_count": 0}


writer = ForkedWriter(path)
writer.take(slow, 2.0)
print(writer.child, flush=True)
if sys.argv[3] == "at once":  # most often before the child has run a line
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(60)
"""


@pytest.mark.parametrize("when", ["at once", "while it writes"])
def test_a_kill_of_the_run_ends_its_child_and_frees_the_file_at_once(
    run_db: Path, tmp_path: Path, when: str
) -> None:
    """``kill -9`` of the run while its child writes: the child dies with it (its write is
    rolled back) and ``resume`` can open the file for writing at once. Killed at once after
    the fork, the run is gone before its child starts: the child finds that out itself."""
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(run_db), str(tmp_path / "never"), when],
        stdout=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None
        try:
            child = int(process.stdout.readline())
        finally:
            process.kill()
            process.wait(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            StateFile.open(run_db, writable=True).close()
            break
        except sa.StateFileError as exc:
            problem = str(exc)
        if time.monotonic() > deadline:
            pytest.fail(f"child {child} still holds the file: {problem}")
        time.sleep(0.01)
    assert latest(run_db) == 1.0


NOTHING_TWICE = """
import atexit, sys
from pathlib import Path
from spaceactors.checkpoint.forked import ForkedWriter

print("before", end="")  # buffered when the process forks
atexit.register(print, " at exit")
writer = ForkedWriter(Path(sys.argv[1]))
writer.take(lambda: {"time": 1.0, "trace_count": 0}, 1.0)
writer.close()
"""


def test_nothing_of_the_run_happens_twice_in_its_child(run_db: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", NOTHING_TWICE, str(run_db)],
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"before at exit\n"
    assert done.stderr == b""
    assert latest(run_db) == 1.0


def test_a_background_writer_needs_to_know_when_the_run_is_ready(run_db: Path) -> None:
    checkpoints = Checkpointer(10.0, lambda doc: None)
    checkpoints.background = writer = ForkedWriter(run_db)
    try:
        with pytest.raises(ValueError, match="needs ready="):
            checkpoints.attach(doc_at(0.0))
    finally:
        writer.close()


def test_the_command_writes_from_a_thread_where_it_cannot_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spaceactors.checkpoint import forked
    from spaceactors.cli import main

    argv = ["run", "trade-route", "--duration", "3000", "--checkpoint-every", "600"]
    assert main([*argv, "--state", str(tmp_path / "forked.db")]) == 0
    monkeypatch.setattr(forked, "FORKS", False)
    assert main([*argv, "--state", str(tmp_path / "thread.db")]) == 0
    capsys.readouterr()
    with (
        StateFile.open(tmp_path / "forked.db") as one,
        StateFile.open(tmp_path / "thread.db") as two,
    ):
        assert [(p.sim_time, p.payload) for p in one.checkpoints()] == [
            (p.sim_time, p.payload) for p in two.checkpoints()
        ]
        assert len(one.checkpoints()) == 3


def test_a_new_runs_first_checkpoint_is_waited_for(run_db: Path) -> None:
    writer = ForkedWriter(run_db, wait_first=True)
    with pytest.raises(sa.CheckpointError, match="field 'socket' cannot be saved"):
        writer.take(_unsaveable, 0.0)  # named at once, before the run goes on
    writer.close()
    writer = ForkedWriter(run_db, wait_first=True)
    writer.take(doc_at(0.0), 0.0)
    assert writer.child is None  # waited for
    writer.take(_waits_for(run_db, 1.0), 1.0)  # the next is not
    assert writer.child is not None
    writer.close()
    assert latest(run_db) == 1.0


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_state_file_deleted_or_replaced_is_never_written_in_its_place(
    run_db: Path, tmp_path: Path, how: str
) -> None:
    writer = ForkedWriter(run_db, wait_first=True)
    writer.take(doc_at(1.0), 1.0)  # written: waited for
    os.unlink(run_db)
    if how == "replaced":
        StateFile.create(tmp_path / "other.db", scenario="other", seed=2, code="x").close()
        os.rename(tmp_path / "other.db", run_db)
    writer.take(doc_at(2.0), 2.0)
    with pytest.raises(
        sa.StateFileError,
        match=r"run.db was deleted or replaced by another file while this run wrote it: the "
        r"run's checkpoints stop here",
    ):
        writer.close()
    if how == "replaced":
        with StateFile.open(run_db) as other:
            assert other.meta.scenario == "other"
            assert other.latest() is None


ACTOR_IN_THE_FILE = """
import attrs
import spaceactors as sa
from spaceactors import sim


@attrs.define
class Log:
    lines: list[str] = attrs.field(factory=list)


class Beacon(sa.Actor):
    def __init__(self):
        self.log = Log()
        self.pings = 0

    async def on_start(self):
        self.ctx.every(10.0, "ping")

    async def handle(self, message):
        self.pings += 1
        self.log.lines.append(f"{message} {self.pings}")


@sim.scenario(duration=300)
async def beacon(world):
    await world.add_station("a", (0, 0, 0), sector="x")
    if not world.declaring:  # resumed, the checkpoint holds it already
        await world.system.spawn(Beacon, name="beacon-7")
    world.expect("the beacon pinged", lambda s: True)
"""


def test_an_actor_class_defined_in_a_scenario_file_is_checkpointed_and_resumed(
    tmp_path: Path,
) -> None:
    """The file is loaded under the same module name in every process: a resume in another
    process finds its classes again."""
    (tmp_path / "beacon.py").write_text(ACTOR_IN_THE_FILE)

    def command(*argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "spaceactors", *argv],
            cwd=tmp_path,
            capture_output=True,
            timeout=TIMEOUT * 4,
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode().split(" simulated in ")[1].split("\n", 1)[1]

    whole = command(
        "run", "beacon.py", "--state", "r.db", "--checkpoint-every", "50", "--keep-checkpoints", "9"
    )
    with sqlite3.connect(tmp_path / "r.db") as db:  # as if killed after the one at 200 s
        db.execute("DELETE FROM checkpoints WHERE sim_time > 200")
    db.close()
    assert command("resume", "r.db") == whole


UNSAVEABLE_IN_THE_FILE = """
import spaceactors as sa
from spaceactors import sim


class Beacon(sa.Actor):
    def __init__(self):
        self.callback = lambda: None  # code: a checkpoint cannot save it

    async def handle(self, message):
        pass


@sim.scenario(duration=300000)
async def beacon(world):
    await world.add_station("a", (0, 0, 0), sector="x")
    if not world.declaring:
        await world.system.spawn(Beacon, name="beacon-7")
"""


def test_a_new_run_names_what_cannot_be_saved_at_its_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spaceactors.cli import main

    (tmp_path / "beacon.py").write_text(UNSAVEABLE_IN_THE_FILE)
    argv = ["run", str(tmp_path / "beacon.py"), "--state", str(tmp_path / "r.db")]
    assert main([*argv, "--progress", "never"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("spaceactors: error: the checkpoint at the start failed: ")
    assert "beacon-7" in line
    assert "'callback' holds a function" in line
    assert latest(tmp_path / "r.db") is None


def test_a_scenario_file_loaded_twice_is_the_same_and_edited_is_new(tmp_path: Path) -> None:
    from spaceactors import sim
    from spaceactors.checkpoint.names import type_name

    path = tmp_path / "beacon.py"
    path.write_text(ACTOR_IN_THE_FILE)
    first, again = sim.load(str(path)), sim.load(str(path))
    assert first is again  # run once: its classes keep the names checkpoints give them
    beacon = sys.modules[first.build.__module__].Beacon
    assert type_name(beacon).endswith(":Beacon")
    path.write_text(ACTOR_IN_THE_FILE + "\n# edited\n")
    assert sim.load(str(path)) is not first
    assert type_name(beacon).endswith(":Beacon")  # the first load's classes still have theirs


def test_a_scenario_file_through_a_symlink_resumes_by_the_path_it_was_given(
    tmp_path: Path,
) -> None:
    """A ``current -> release`` deploy: the run was given ``cur/beacon.py``; the resume loads
    the file by that path, wherever ``cur`` points now (the same code)."""
    for release in ("v1", "v2"):
        (tmp_path / release).mkdir()
        (tmp_path / release / "beacon.py").write_text(ACTOR_IN_THE_FILE)
    (tmp_path / "cur").symlink_to("v1")
    from spaceactors import sim

    first = sim.load(str(tmp_path / "cur" / "beacon.py"))
    (tmp_path / "cur").unlink()
    (tmp_path / "cur").symlink_to("v2")
    assert sim.load(str(tmp_path / "cur" / "beacon.py")) is first


def test_a_class_the_resume_cannot_find_names_the_child_and_what_to_do(tmp_path: Path) -> None:
    from spaceactors import sim

    path = tmp_path / "beacon.py"
    path.write_text(ACTOR_IN_THE_FILE)
    chosen = sim.load(str(path))
    saved: list[dict[str, Any]] = []

    async def run(resume_from: dict[str, Any] | None) -> sim.Summary:
        checkpoints = None if resume_from else Checkpointer(100.0, saved.append)
        return await sim.run_scenario(
            chosen, seed=1, duration=300, checkpoints=checkpoints, resume_from=resume_from
        )

    sa.run(run, None)
    del sys.modules[chosen.build.__module__]  # as in another process that never loaded it
    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(saved[0]["time"])
    with pytest.raises(sa.CheckpointError) as caught:
        sa.run(run, saved[0], clock=clock)
    text = str(caught.value)
    assert text.startswith("child 'beacon-7' of 'root/user': ")
    assert ":Beacon' is not defined by any imported module (import the module" in text
