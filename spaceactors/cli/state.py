"""``spaceactors run --state FILE`` and ``spaceactors resume FILE``: a run that keeps its
checkpoints in a state file, and a run carried on from the last one (docs/long-runs.md).

A resumed run is the same run: the scenario, seed, duration and checkpoint interval come from
the state file, and the command runs it as ``run`` does from the checkpoint's instant on (the
summary, the exit code and the signals are ``run``'s).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import os
import shlex
from collections.abc import Callable
from typing import Any

import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.checkpoint.store import KEEP, StateFile
from spaceactors.cli.arguments import POSITIVE_COUNT, SECONDS

DEFAULT_EVERY = 600.0
"""Simulated seconds between two checkpoints, by default."""


class StateProblem(Exception):
    """The state file or its checkpoint is refused (one line; the command exits 2)."""


def add_state_options(run: argparse.ArgumentParser) -> None:
    """``run``'s options for checkpoints."""
    run.add_argument(
        "--state",
        metavar="FILE",
        help="keep checkpoints in this new state file (resume with: spaceactors resume FILE)",
    )
    run.add_argument(
        "--checkpoint-every",
        type=SECONDS,
        metavar="SECONDS",
        help=f"with --state: simulated seconds between two checkpoints (default {DEFAULT_EVERY:g})",
    )
    run.add_argument(
        "--keep-checkpoints",
        type=POSITIVE_COUNT,
        metavar="K",
        help=f"with --state: how many checkpoints the file keeps (default {KEEP})",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="with --state: replace the state file if it exists (its checkpoints are lost)",
    )
    run.add_argument(
        "--check-checkpoint",
        action="store_true",
        help="take a checkpoint as the run starts (t=0) and stop at once if the run's state "
        "cannot be saved, naming what",
    )


def fingerprint(chosen: sim.Scenario) -> str:
    """The code a state file's run was written by: spaceactors' version and the scenario's
    source (a resumed run must be the same code)."""
    digest = hashlib.sha256(sa.__version__.encode())
    with contextlib.suppress(OSError, TypeError):  # no source to read: the version alone
        digest.update(inspect.getsource(inspect.getmodule(chosen.build) or chosen.build).encode())
    return f"{sa.__version__}+{digest.hexdigest()[:16]}"


class StateRun:
    """What a run with a state file needs: where its checkpoints go, and (resuming) the
    checkpoint it starts from."""

    def __init__(
        self,
        path: str | None,
        every: float,
        *,
        resume_from: dict[str, Any] | None = None,
        faults: sa.FaultPlan | None = None,
    ) -> None:
        from spaceactors.checkpoint.driver import Checkpointer
        from spaceactors.checkpoint.forked import FORKS, ForkedWriter
        from spaceactors.checkpoint.writer import StateWriter

        self.path = path
        self.resume_from = resume_from
        self.faults = faults
        """The fault plan the run was started with (resuming: the state file's)."""
        self.checkpoints = Checkpointer(every, self._sink, at_once=resume_from is None)
        """Takes one as the run starts (a new run), then every `every` simulated seconds:
        in a child process where one can fork (the run pauses only to fork), else captured
        in the run and written by a thread."""
        self.writer = None
        if path is not None and FORKS:  # (a new run's first, at t=0, is waited for)
            self.checkpoints.background = ForkedWriter(path, wait_first=resume_from is None)
        elif path is not None:
            self.writer = StateWriter(path)

    def _sink(self, doc: dict[str, Any]) -> None:
        from spaceactors.checkpoint.writer import encode

        if self.writer is not None:
            self.writer.put(doc)
        else:  # --check-checkpoint alone: one checkpoint, encoded to be sure, then no more
            encode(doc)
            self.checkpoints.detach()

    def clock(self) -> trio.testing.MockClock | None:
        """The clock a resumed run starts on (at its checkpoint's time); None otherwise."""
        if self.resume_from is None:
            return None
        clock = trio.testing.MockClock(autojump_threshold=0)
        clock.jump(self.resume_from["time"])
        return clock

    def close(self) -> None:
        """Wait for the last checkpoint to be written.

        Raises:
            StateProblem: a checkpoint could not be written or taken (the message says why).
        """
        try:
            if self.writer is not None:
                self.writer.close()
            self.checkpoints.close()
        except sa.StateFileError as exc:
            raise StateProblem(str(exc)) from None
        except sa.CheckpointError as exc:  # (taken in a child: known once it is written)
            raise StateProblem(f"a checkpoint failed: {exc}") from None
        error = self.checkpoints.error
        if error is not None:
            first = self.checkpoints.taken == 0 and self.resume_from is None
            where = "the checkpoint at the start" if first else "a checkpoint"
            raise StateProblem(f"{where} failed: {error}") from None


def for_run(
    args: argparse.Namespace,
    chosen: sim.Scenario,
    length: float,
    faults: sa.FaultPlan | None = None,
) -> StateRun | None:
    """The state file of ``run --state FILE`` (created now), else None; it keeps `faults`
    (the ``--faults`` plan) for ``resume``.

    Raises:
        StateProblem: an option or the file is refused.
    """
    if args.state is None:
        for option in ("checkpoint_every", "keep_checkpoints", "overwrite"):
            if getattr(args, option) not in (None, False):
                raise StateProblem(f"--{option.replace('_', '-')} needs --state FILE")
        return StateRun(None, DEFAULT_EVERY) if args.check_checkpoint else None
    if args.clock != "virtual":
        raise StateProblem("--state needs --clock virtual (wall-clock runs cannot checkpoint yet)")
    if args.trace:
        raise StateProblem("--state cannot be used with --trace yet (a resumed run would not "
                           "carry on the trace file); the summary has the trace hash")  # fmt: skip
    every = DEFAULT_EVERY if args.checkpoint_every is None else args.checkpoint_every
    keep = KEEP if args.keep_checkpoints is None else args.keep_checkpoints
    if every < chosen.step:
        raise StateProblem(
            f"--checkpoint-every {every:g} is less than one tick of {chosen.name} "
            f"({chosen.step:g} simulated s): a run takes at most one checkpoint a tick; "
            f"give {chosen.step:g} or more"
        )
    # A scenario file by its absolute path: a resume may be run from another folder.
    source = os.path.abspath(args.scenario) if os.path.isfile(args.scenario) else args.scenario
    plan = None if faults is None else faults.to_json().decode()
    info = {"source": source, "duration": length, "every": every, "faults": plan}
    try:
        StateFile.create(
            args.state, scenario=chosen.name, seed=args.seed, code=fingerprint(chosen),
            info=info, keep=keep, overwrite=args.overwrite,
        ).close()  # fmt: skip
        return StateRun(args.state, every, faults=faults)
    except sa.StateFileError as exc:
        raise StateProblem(str(exc)) from None


def for_resume(path: str, duration: float | None = None) -> tuple[dict[str, Any], StateRun]:
    """The run a state file holds (``run``'s options, as it was started) and its last
    checkpoint to resume from. The run lasts `duration` seconds in all (from its start;
    None: as the checkpoint has it, which is as the run was started unless a resume
    extended it).

    Raises:
        StateProblem: the file or its checkpoint is refused, the scenario's code changed, or
            `duration` does not lie beyond where the run stands.
    """
    from spaceactors.checkpoint.writer import decode

    try:
        with StateFile.open(path) as state:
            meta = state.meta
            latest = state.latest()
        info = meta.info
        source, every = info["source"], info["every"]
        if latest is None:
            raise StateProblem(
                f"{path}: no checkpoint yet (the run stopped before its first): start it "
                f"again: spaceactors run {shlex.quote(str(source))} --seed {meta.seed} "
                f"--duration {info.get('duration')} --state {shlex.quote(str(path))} --overwrite"
            )
        if not isinstance(source, str):
            raise StateProblem(f"{path}: its run's options are damaged")
        chosen = sim.load(source)
        state_code = fingerprint(chosen)
        if meta.scenario != chosen.name or meta.code != state_code:
            raise StateProblem(
                f"{path} was written by scenario {meta.scenario!r} ({meta.code}); "
                f"{source} is now {chosen.name!r} ({state_code}): a checkpoint resumes only "
                "the same code"
            )
        doc = decode(latest.payload, f"{path}: checkpoint {latest.number}")
        started = float(doc["world"]["clock"]["started"])
        stands = latest.sim_time - started
        if duration is None:
            duration = float(doc["runner"]["end"]) - started
        elif duration <= stands:
            raise StateProblem(
                f"--duration {duration:g}: the run in {path} stands at {stands:g} s already "
                f"(checkpoint {latest.number}): give a longer duration to extend it"
            )
        plan = info.get("faults")
        faults = None if plan is None else sa.FaultPlan.from_json(str(plan))
        run = {"scenario": source, "seed": meta.seed, "duration": float(duration)}
        return run, StateRun(path, float(every), resume_from=doc, faults=faults)
    except sa.StateFileError as exc:
        raise StateProblem(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise StateProblem(f"{path}: its run's options are damaged ({exc!r})") from None
    except sa.DecodeError as exc:
        raise StateProblem(f"{path}: its run's fault plan is damaged: {exc}") from None
    except (sim.ScenarioNotFound, sim.ScenarioBroken) as exc:
        raise StateProblem(f"{path}: cannot load its scenario: {exc}") from None


def add_resume_command(commands: Any, display: Callable[[argparse.ArgumentParser], None]) -> None:
    """``spaceactors resume FILE``; `display` adds ``run``'s display options."""
    resume = commands.add_parser(
        "resume", help="carry on a run from the last checkpoint of its state file"
    )
    resume.add_argument("state", help="the state file a run --state FILE kept")
    resume.add_argument(
        "--duration",
        type=SECONDS,
        metavar="SECONDS",
        help="run to this many simulated seconds in all, beyond where the run stands "
        "(extends a finished run; default: as the run was started)",
    )
    display(resume)


def resumed_args(args: argparse.Namespace, run: dict[str, Any]) -> argparse.Namespace:
    """``run``'s options for a resumed run: the state file's, and this command's display."""
    values = vars(args) | run
    values |= {"clock": "virtual", "speed": None, "trace": None, "trace_level": None}
    values |= {"faults": None}
    values |= {"checkpoint_every": None, "keep_checkpoints": None, "check_checkpoint": False}
    return argparse.Namespace(**values)
