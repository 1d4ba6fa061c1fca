"""A resumed run has the tasks of the run it continues: ``resume --observe`` for a run that was
observed, and without it for one that was not (the observation service's tasks take their place
in the seeded schedule). A mismatch is refused up front, with one line saying what to do,
before anything runs or is written."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from spaceactors.checkpoint import StateFile
from spaceactors.cli import main

RUN = ["run", "trade-route", "--duration", "3000", "--checkpoint-every", "600"]
OBSERVE = ["--observe", "127.0.0.1:0"]


def cli(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    folder = tmp_path_factory.mktemp("observed")
    made = {}
    for observed in (False, True):
        state = folder / f"observed-{observed}.db"
        code, _, err = cli(*RUN, "--state", state, *(OBSERVE if observed else []))
        assert code == 0, err
        made[observed] = state
    return made


def copy(state: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy.db"
    shutil.copyfile(state, target)
    return target


@pytest.mark.parametrize("observed", [False, True])
def test_a_resume_that_would_not_have_the_same_tasks_is_refused_up_front(
    runs: dict[bool, Path], tmp_path: Path, observed: bool
) -> None:
    state = copy(runs[observed], tmp_path)
    with StateFile.open(state) as file:
        before = [(c.number, c.sim_time) for c in file.checkpoints()]
    code, out, err = cli("resume", state, "--duration", "4000", *([] if observed else OBSERVE))
    assert code == 2
    assert out == ""
    (line,) = err.splitlines()
    if observed:
        assert line.endswith("resume it with --observe")
    else:
        assert "resume it without --observe" in line
    with StateFile.open(state) as file:  # nothing ran: nothing written
        assert [(c.number, c.sim_time) for c in file.checkpoints()] == before


@pytest.mark.parametrize("observed", [False, True])
def test_a_resume_with_the_same_tasks_goes_on(
    runs: dict[bool, Path], tmp_path: Path, observed: bool
) -> None:
    state = copy(runs[observed], tmp_path)
    code, out, err = cli("resume", state, "--duration", "4000", *(OBSERVE if observed else []))
    assert code == 0, err
    assert "4,000 s simulated" in out
