"""What ``system.checkpoint(path)`` and ``open_system(resume_from=path)`` refuse, each with one
line: a wall clock, an actor whose state cannot be saved (named, with its field), and state
files that are not this program's (missing, garbage, a simulation's, another program's, another
version of its code, another seed)."""

from __future__ import annotations

import importlib
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

import spaceactors as sa
from spaceactors.checkpoint import StateFile
from spaceactors.cli.command import main as cli


class Idle(sa.Actor):
    async def handle(self, message: object) -> object:
        return None


class Holder(sa.Actor):
    def __init__(self) -> None:
        held = socket.socket()
        held.close()  # (closed or not, a socket is no state a checkpoint can save)
        self.offers = [1, {"socket": held}]

    async def handle(self, message: object) -> object:
        return None


async def program(path: Path, resume: bool = False, seed: int = 3) -> int:
    async with sa.open_system(seed=seed, resume_from=path if resume else None) as system:
        if not system.resumed:
            await system.spawn(Idle, name="idle")
            await trio.sleep(5.0)
            await system.checkpoint(path)
        return system.lookup("idle").id


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_a_checkpoint_and_its_resume_keep_the_actor(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    assert sa.run(program, path) == sa.run(program, path, resume_from=path)


def test_a_wall_clock_run_cannot_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(sa.CheckpointError) as caught:
        sa.run(program, tmp_path / "run.db", virtual=False)
    assert "system.checkpoint() needs virtual time" in one_line(caught.value)
    assert not (tmp_path / "run.db").exists()


def test_a_wall_clock_run_cannot_resume(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    sa.run(program, path)
    with pytest.raises(sa.CheckpointError, match=r"open_system\(resume_from=...\) needs virtual"):
        sa.run(program, path, True, virtual=False)
    with pytest.raises(sa.CheckpointError, match="give it no clock of your own"):
        sa.run(program, path, virtual=False, resume_from=path)


def test_an_actor_that_cannot_be_saved_is_named_with_its_field(tmp_path: Path) -> None:
    async def holding() -> None:
        async with sa.open_system() as system:
            await system.spawn(Holder, name="holder")
            await system.checkpoint(tmp_path / "run.db")

    with pytest.raises(sa.CheckpointError) as caught:
        sa.run(holding)
    line = one_line(caught.value)
    assert "holder" in line
    assert "offers[1]['socket']" in line
    assert "socket.socket" in line


@pytest.fixture
def simulation_file(tmp_path: Path) -> Path:
    path = tmp_path / "sim.db"
    code = cli(["run", "asteroid-convoy", "--duration", "100", "--state", str(path),
                "--progress", "never"])  # fmt: skip
    assert code == 0
    return path


def refused(path: Path) -> list[str]:
    """The lines of what both ways of resuming from `path` raise (the same for both)."""
    lines = []
    with pytest.raises(sa.StateFileError) as caught:
        sa.run(program, path, resume_from=path)
    lines.append(one_line(caught.value))
    with pytest.raises(sa.StateFileError) as caught:
        sa.run(program, path, True, seed=3)
    lines.append(one_line(caught.value))
    assert lines[0] == lines[1]
    return lines


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    line = refused(tmp_path / "none.db")[0]
    assert str(tmp_path / "none.db") in line


def test_a_file_of_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    path.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 8)
    assert str(path) in refused(path)[0]


def test_a_simulations_state_file_is_refused(simulation_file: Path) -> None:
    line = refused(simulation_file)[0]
    assert line == (
        f"{simulation_file} was written by spaceactors run for scenario 'asteroid-convoy', not "
        "by system.checkpoint(): resume it with spaceactors resume"
    )


def test_a_file_without_a_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    sa.run(program, path)
    with StateFile.open(path) as file:
        meta = file.meta
    path.unlink()
    StateFile.create(
        path, scenario="program", seed=3, code=meta.code, info=meta.info, keep=3
    ).close()
    assert refused(path)[0] == f"{path}: no checkpoint yet: start the run again"


def test_system_checkpoint_does_not_write_into_a_simulations_file(simulation_file: Path) -> None:
    with pytest.raises(sa.StateFileError, match=r"not by system\.checkpoint"):
        sa.run(program, simulation_file)


@pytest.fixture
def own_module(tmp_path: Path) -> Iterator[tuple[ModuleType, Path]]:
    """A program's module of its own, on a path of its own (removed afterwards)."""
    source = tmp_path / "ownprogram.py"
    source.write_text(
        textwrap.dedent(
            """
            import trio
            import spaceactors as sa

            class Worker(sa.Actor):
                async def handle(self, message):
                    return None

            async def main(path, resume=False):
                async with sa.open_system(resume_from=path if resume else None) as system:
                    if not system.resumed:
                        await system.spawn(Worker, name="worker")
                        await trio.sleep(1.0)
                        await system.checkpoint(path)
                    return system.resumed
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("ownprogram"), source
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ownprogram", None)


def test_another_version_of_the_programs_code_is_refused(
    own_module: tuple[Any, Path], tmp_path: Path
) -> None:
    module, source = own_module
    path = tmp_path / "run.db"
    assert sa.run(module.main, path) is False
    assert sa.run(module.main, path, resume_from=path) is True  # the same code: resumed
    source.write_text(source.read_text() + "\n# changed\n")
    with pytest.raises(sa.StateFileError) as caught:
        sa.run(module.main, path, resume_from=path)
    line = one_line(caught.value)
    assert line.startswith(f"{path} was written by spaceactors {sa.__version__} / code ")
    assert line.endswith("resume it with the code that wrote it, or start a new run")


def test_another_programs_file_is_refused(own_module: tuple[Any, Path], tmp_path: Path) -> None:
    module, _ = own_module
    path = tmp_path / "run.db"
    sa.run(module.main, path)
    sys.modules.pop("ownprogram")  # a program that never imported the writer's actors
    try:
        line = refused(path)[0]
    finally:
        sys.modules["ownprogram"] = module
    assert line == (
        f"{path} holds actors of module 'ownprogram', which this program has not imported: "
        "resume it from the program that wrote it"
    )


def test_another_seed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    sa.run(program, path)
    with pytest.raises(sa.CheckpointError, match="opened with seed 3, not 4"):
        sa.run(program, path, True, 4)
    with pytest.raises(sa.CheckpointError, match="its run had seed 0, not 5"):
        sa.run(program, path, seed=5, resume_from=path)


def test_a_block_that_rebuilds_other_tasks_is_told_it_did_not_continue_exactly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.db"
    sa.run(program, path)

    async def other(path: Path) -> None:  # another main: its task has another name
        async with sa.open_system(resume_from=path):
            await trio.sleep(1.0)

    with pytest.raises(sa.CheckpointError, match="did not rebuild the checkpoint's tasks"):
        sa.run(other, path, resume_from=path)


def test_a_system_opened_after_the_checkpoints_time_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    sa.run(program, path)

    async def late(path: Path) -> None:
        await trio.sleep(10.0)  # the run's clock passes the checkpoint's (5 s) first
        await program(path)

    with pytest.raises(sa.CheckpointError, match=r"taken at 5 s and this run's clock already"):
        sa.run(late, path, resume_from=path)
    with pytest.raises(sa.InvalidSpec, match="resume_from must be a state file path"):
        sa.run(program, 42, True)  # type: ignore[arg-type]
