"""Checkpoints of a program's own actor system (not a simulation): ``await
system.checkpoint(path)``, ``open_system(resume_from=path)`` and ``spaceactors.run(main,
resume_from=path)`` (docs/long-runs.md, "From your own code").

A checkpoint is taken at the first quiescent point (`spaceactors.checkpoint.quiescence`) after
the call where every actor is idle at its mailbox (`engine.busy`): the capture runs in Trio's
run loop, outside every task, then wakes the caller, which encodes it and writes it to the state
file (the `StateFile` format of ``spaceactors run --state``). The file's run is a *program*
(``meta.scenario`` is `PROGRAM`); its code fingerprint covers spaceactors' version and the
source of the modules that define the checkpointed actors' classes (``info["modules"]``), so a
file from another program or another version of its code is refused with a `StateFileError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio
import trio.testing

from spaceactors.cell import ActorCell
from spaceactors.checkpoint import engine, quiescence, values
from spaceactors.checkpoint.context import restore_trace
from spaceactors.checkpoint.records import Checkpoint, checked_path
from spaceactors.checkpoint.store import KEEP, StateFile
from spaceactors.checkpoint.writer import decode, encode
from spaceactors.errors import CheckpointError, StateFileError
from spaceactors.virtual import current_seed

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem

PROGRAM = "program"
"""The ``scenario`` a state file written by `ActorSystem.checkpoint` names."""
KIND = "system"
"""The ``kind`` of such a file's checkpoints (a simulation's have none)."""


@attrs.frozen
class Resume:
    """A checkpoint to resume from, read and checked: its document (plain data), the state
    file it came from and that file's checkpoint number."""

    path: str
    number: int
    doc: Mapping[str, Any]

    @property
    def time(self) -> float:
        """The run's clock at the checkpoint (virtual seconds)."""
        return float(self.doc["time"])

    @property
    def seed(self) -> int:
        """The checkpointed system's seed."""
        return int(self.doc["seed"])

    def system_seed(self, seed: int | None) -> int:
        """The seed of the resumed system: the checkpoint's (`seed`, if given, must be it).

        Raises:
            CheckpointError: `seed` is another one.
        """
        if seed is not None and seed != self.seed:
            raise CheckpointError(
                f"{self.path}: its system was opened with seed {self.seed}, not {seed}: "
                "resume it with the same seed (or none)"
            )
        return self.seed

    @property
    def run_seed(self) -> int | None:
        """The seed of the `spaceactors.run` the checkpoint was taken in (None: outside one)."""
        seed = self.doc.get("run_seed")
        return None if seed is None else int(seed)


def require_virtual_time(doing: str) -> trio.testing.MockClock:
    """The run's clock, if it is virtual (a `MockClock` that does not run by itself).

    Raises:
        CheckpointError: it is a wall clock (or a mock clock that runs).
    """
    clock = trio.lowlevel.current_clock()
    if isinstance(clock, trio.testing.MockClock) and clock.rate == 0:
        return clock
    raise CheckpointError(
        f"{doing} needs virtual time (spaceactors.run, or trio.testing.MockClock with rate 0): "
        "on a wall clock no instant can be saved without perturbing the run"
    )


async def checkpoint(system: ActorSystem, path: str | os.PathLike[str]) -> Checkpoint:
    """Take a checkpoint of `system` at the next moment for one and write it to `path` (see
    `ActorSystem.checkpoint`)."""
    require_virtual_time("system.checkpoint()")
    reason = engine.unsupported(system)
    if reason is not None:
        raise CheckpointError(f"cannot checkpoint this system: {reason}")
    task = trio.lowlevel.current_task()
    watch = quiescence.Quiescence()
    taken: list[dict[str, Any]] = []
    failed: list[Exception] = []

    def take() -> bool:
        if engine.busy(system) is not None:
            return False  # an actor is inside a handler: the next quiescent point is tried
        try:
            taken.append(capture(system))
        except Exception as exc:  # raised in the caller's task, not in Trio's run loop
            failed.append(exc)
        trio.lowlevel.reschedule(task)
        return True

    def abort(_: object) -> trio.lowlevel.Abort:
        _detach(watch)
        return trio.lowlevel.Abort.SUCCEEDED

    watch.wait(take)
    trio.lowlevel.add_instrument(watch)
    try:
        await trio.lowlevel.wait_task_rescheduled(abort)
    finally:
        _detach(watch)
    if failed:
        raise failed[0]
    return write(path, taken[0], modules(system))


def _detach(watch: quiescence.Quiescence) -> None:
    with contextlib.suppress(KeyError):  # (removed already)
        trio.lowlevel.remove_instrument(watch)


def capture(system: ActorSystem) -> dict[str, Any]:
    """The system's state as plain data, at a quiescent point where `engine.busy` is None.

    Raises:
        CheckpointError: something cannot be saved (the message names the actor and field).
    """
    trace = system.trace
    return {
        "kind": KIND,
        "time": trio.current_time(),
        "seed": system.seed,
        "run_seed": current_seed(),
        "trace_count": 0 if trace is None else trace.count,
        "trace": None if trace is None else trace.state(),
        "engine": engine.capture(system, engine.Saving(values, {})),
        "tasks": quiescence.task_order(),
        "scheduler": quiescence.scheduler_state(),
    }


def modules(system: ActorSystem) -> list[str]:
    """The modules that define the classes of the actors in `system`'s tree, sorted."""
    found = {
        type(child.runtime.actor).__module__
        for _, child in engine.walk(system.user)
        if isinstance(child.runtime, ActorCell) and child.runtime.actor is not None
    }
    return sorted(found)


def fingerprint(names: list[str], path: str | os.PathLike[str]) -> str:
    """The code of a program: spaceactors' version and the source of the modules `names`.

    Raises:
        StateFileError: one of them is not imported (the file is from another program).
    """
    from spaceactors import __version__

    digest = hashlib.sha256(__version__.encode())
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            raise StateFileError(
                f"{os.fspath(path)} holds actors of module {name!r}, which this program has "
                "not imported: resume it from the program that wrote it"
            )
        digest.update(name.encode() + b"\0")
        with contextlib.suppress(OSError, TypeError):  # no source to read: the name alone
            digest.update(inspect.getsource(module).encode())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def write(path: str | os.PathLike[str], doc: dict[str, Any], names: list[str]) -> Checkpoint:
    """Write `doc` to the state file `path` (created if missing), keeping its last checkpoints.

    Raises:
        StateFileError: the file cannot be written, or is another run's (another program,
            code, or a simulation's).
    """
    payload = encode(doc)
    if not checked_path(path).exists():
        with contextlib.suppress(StateFileError):  # (created meanwhile: checked below)
            StateFile.create(
                path, scenario=PROGRAM, seed=doc["seed"], code=fingerprint(names, path),
                info={"kind": KIND, "modules": names}, keep=KEEP,
            ).close()  # fmt: skip
    with StateFile.open(path, writable=True) as state:
        _check(state, path)
        state.check_matches(scenario=PROGRAM, code=fingerprint(_modules(state, path), path))
        number = state.write_checkpoint(doc["time"], doc["trace_count"], payload)
        latest = state.latest()
    assert latest is not None
    assert latest.number == number
    return latest


def _check(state: StateFile, path: str | os.PathLike[str]) -> None:
    meta = state.meta
    if meta.scenario != PROGRAM or meta.info.get("kind") != KIND:
        raise StateFileError(
            f"{os.fspath(path)} was written by spaceactors run for scenario "
            f"{meta.scenario!r}, not by system.checkpoint(): resume it with spaceactors resume"
        )


def _modules(state: StateFile, path: str | os.PathLike[str]) -> list[str]:
    """The modules whose source the file's code fingerprint covers."""
    names = state.meta.info.get("modules")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise StateFileError(f"{os.fspath(path)}: its list of modules is damaged")
    return names


def load(path: str | os.PathLike[str]) -> Resume:
    """The last checkpoint of the state file `path`, checked against this program's code.

    Raises:
        StateFileError: the file is missing, damaged, has no checkpoint, or was written by
            another program, another version of its code or a simulation (one line).
    """
    where = os.fspath(path) if isinstance(path, str | os.PathLike) else repr(path)
    with StateFile.open(path) as state:
        _check(state, path)
        state.check_matches(scenario=PROGRAM, code=fingerprint(_modules(state, path), path))
        latest = state.latest()
    if latest is None:
        raise StateFileError(f"{where}: no checkpoint yet: start the run again")
    doc = decode(latest.payload, f"{where}: checkpoint {latest.number}")
    if doc.get("kind") != KIND or not isinstance(doc.get("seed"), int):
        raise StateFileError(f"{where}: checkpoint {latest.number} is not a system's checkpoint")
    return Resume(where, latest.number, doc)


def at_its_time(resume: Resume) -> None:
    """Bring the run's clock to the checkpoint's time (a virtual clock behind it jumps).

    Raises:
        CheckpointError: the clock is a wall clock, or already past the checkpoint's time.
    """
    clock = require_virtual_time("open_system(resume_from=...)")
    now = trio.current_time()
    if now < resume.time:
        clock.jump(resume.time - now)
    elif now > resume.time:
        raise CheckpointError(
            f"{resume.path}: checkpoint {resume.number} was taken at {resume.time:g} s and "
            f"this run's clock already stands at {now:g} s: open the system first thing in "
            "the run (or use spaceactors.run(main, resume_from=...))"
        )


async def restore(system: ActorSystem, resume: Resume) -> Callable[[], None]:
    """Rebuild the checkpoint in `system` (just opened, nothing spawned, at its time). Returns
    the check to call once the system has closed (`quiescence.take_over`).

    Raises:
        CheckpointError: the checkpoint cannot be rebuilt here (the message says why).
    """
    doc = resume.doc
    await engine.restore(system, doc["engine"], engine.Restoring(values, {}))
    restore_trace(
        system,
        doc.get("trace"),
        where=f"{resume.path}: ",
        as_before="open the system as it was opened",
    )
    try:
        return quiescence.take_over(doc["tasks"], doc["scheduler"], must_reach=False)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{resume.path}: the checkpoint is damaged ({exc!r})") from None
