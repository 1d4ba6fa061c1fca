"""``spaceactors run``: check the input, run the scenario under the command's signal handling,
and end with the summary and the right exit code (docs/cli.md, "Signals and exit codes")."""

from __future__ import annotations

import argparse
import functools
import math
import shlex
from pathlib import Path
from typing import TextIO

import spaceactors as sa
from spaceactors import sim
from spaceactors.cli import state
from spaceactors.cli.gcpolicy import TunedGC
from spaceactors.cli.logs import LogLines
from spaceactors.cli.progress import ProgressDisplay
from spaceactors.cli.report import render_summary, say, write_output, write_summary_json
from spaceactors.cli.signals import Signals, exit_code, is_interrupt, signal_name
from spaceactors.cli.switching import quick_switching
from spaceactors.clocks import ScaledClock
from spaceactors.trace import sink_for, sink_type

EXIT_PASSED, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
MAX_UPDATES = 10_000_000
"""The most progress reports a wall-clock run makes (one per simulated second, up to this)."""
MAX_FAULT_PLAN_BYTES = 16 * 2**20
"""A fault plan file larger than this is refused (it is read whole, before the run)."""


class BadInput(Exception):
    """Something the user gave us is wrong: one line on stderr, exit code 2."""


def run_command(
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
    signals: Signals,
    lines: LogLines,
    resume: state.StateRun | None = None,
) -> int:
    """Run ``spaceactors run``; returns the exit code (bad input raises `BadInput`). The
    engine's log lines (`lines`) go above the progress bar while it is shown. `resume`: the
    state file and checkpoint of ``spaceactors resume`` (`spaceactors.cli.state`)."""
    faults = _fault_plan(args.faults) if args.faults else None
    if resume is not None:
        faults = resume.faults  # (the plan the state file's run was started with)
    if args.summary_json:
        _check_writable(args.summary_json, "the summary")
    if args.trace_level is not None and not args.trace:
        raise BadInput(f"--trace-level {args.trace_level} needs --trace FILE")
    if args.trace:
        try:
            sink_type(args.trace)  # an unknown format is refused before anything runs
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    clock = _clock(args)
    _check_observe(args)
    signals.phase = f"loading {args.scenario}"
    chosen = _load(args.scenario, signals)
    try:
        length = chosen.run_length(args.duration)
    except sim.ScenarioError as exc:
        raise BadInput(f"--duration {args.duration:g}: {exc}") from None
    try:
        kept = resume or state.for_run(args, chosen, length, faults)
    except state.StateProblem as exc:
        raise BadInput(str(exc)) from None
    trace = _open_trace(args.trace, args.trace_level) if args.trace else None
    signals.tracing = trace is not None
    if trace is None and kept is not None:
        trace = sa.Trace(keep=0)  # (hashed, not kept: its hash is in the summary)
    terminal = err is not None and err.isatty()  # None: stderr is closed
    show = args.progress == "always" or (args.progress == "auto" and terminal)
    bar = (
        ProgressDisplay(err, chosen.name, terminal=terminal, every=args.progress_every)
        if show and err is not None
        else None
    )
    if bar is not None:
        lines.display = bar.line
    memory = TunedGC() if args.gc == "tuned" else None
    resuming = kept is not None and kept.resume_from is not None
    if resuming and memory is not None:
        memory.raise_thresholds()  # frozen once rebuilt (`_as_built`): no first tick to wait for
    run = functools.partial(
        sim.run_scenario,
        chosen,
        seed=args.seed,
        duration=length,
        trace=trace,
        faults=faults,
        progress=bar,
        observe=args.observe,
        observe_token=args.observe_token,
        keep_world=functools.partial(
            _as_built, err, args.observe is not None, memory, resuming=resuming
        ),
        updates=_updates(length, args.clock),
        checkpoints=None if kept is None else kept.checkpoints,
        resume_from=None if kept is None else kept.resume_from,
    )
    signals.phase = f"running {chosen.name}"
    trace_error = None
    try:
        with signals.for_trio(), quick_switching(args.observe is not None):
            summary = sa.run(
                signals.session,
                lambda stop: run(stop=stop),
                seed=args.seed,
                virtual=args.clock == "virtual",
                clock=clock if kept is None or kept.resume_from is None else kept.clock(),
            )
    except sim.ScenarioBroken as exc:
        raise BadInput(str(exc)) from None
    except (sa.CheckpointError, sa.StateFileError) as exc:  # what a checkpoint cannot hold
        raise BadInput(str(exc)) from None
    except OSError as exc:
        if type(exc).__name__ != "CannotListen":  # (the observe extra: not imported here)
            raise
        raise BadInput(f"--observe {args.observe}: {exc.strerror}") from None
    except BaseException as exc:
        if is_interrupt(exc) and not signals.seen:  # the scenario raised it, not a signal
            raise BadInput(
                f"{args.scenario}: the scenario raised KeyboardInterrupt while running "
                "(no signal was sent)"
            ) from None
        raise
    finally:
        if memory is not None:
            memory.restore()
        if bar is not None:
            lines.display = None
            bar.close()
        if trace is not None:
            trace_error = _close(trace)
        if kept is not None:
            try:
                kept.close()
            except state.StateProblem as exc:
                raise BadInput(str(exc)) from None
    if trace_error is not None:
        stopped = (
            ""
            if summary.interrupted_at is None
            else f"; the run stopped at t={summary.interrupted_at:,.1f} s"
        )
        raise BadInput(
            f"cannot write the trace {args.trace}: {trace_error.strerror or trace_error} "
            f"(the file keeps the events written before{stopped})"
        )
    signals.phase = "printing the summary"
    write_output(out, render_summary(summary), args.trace)
    if args.summary_json:
        try:
            write_summary_json(args.summary_json, summary)
        except OSError as exc:
            raise BadInput(
                f"cannot write the summary {args.summary_json}: {exc.strerror or exc}"
            ) from None
    carry_on = ""
    if kept is not None and kept.path is not None and summary.interrupted_at is not None:
        carry_on = (
            f"; carry on with: spaceactors resume {shlex.quote(kept.path)}"
            if kept.checkpoints.taken or resuming
            else "; no checkpoint was kept: run it again with --overwrite"
        )
    return ended(summary, signals, err, carry_on)


def ended(summary: sim.Summary, signals: Signals, err: TextIO, carry_on: str = "") -> int:
    """The exit code of a run whose summary is printed: passed or failed, or, if signals
    came, the last one's (after one line naming them and where the run stopped)."""
    if not signals.seen:
        return EXIT_PASSED if summary.passed else EXIT_FAILED
    where = (
        "as the run ended"
        if summary.interrupted_at is None
        else f"at t={summary.interrupted_at:,.1f} s of {summary.duration:,.0f} s"
    )
    signals.quiet()  # the line names the signals seen until now: later ones do not count
    seen = list(signals.seen)
    names = " then ".join(signal_name(signum) for signum in seen)
    signals.reported = True
    say(err, f"spaceactors: interrupted by {names} {where}{carry_on}")
    return exit_code(seen[-1])


def _clock(args: argparse.Namespace) -> ScaledClock | None:
    """The run's clock: a `ScaledClock` at ``--speed`` for ``--clock wall``, else virtual."""
    if args.clock != "wall":
        if args.speed is not None:
            raise BadInput(
                f"--speed {args.speed:g} needs --clock wall (virtual time runs flat out)"
            )
        return None
    return ScaledClock(1.0 if args.speed is None else args.speed)


def _check_observe(args: argparse.Namespace) -> None:
    """Refuse a bad ``--observe`` before anything runs (address, token, the extra)."""
    if args.observe is None:
        if args.observe_token is not None:
            raise BadInput("--observe-token needs --observe")
        return
    try:
        from spaceactors.observe import check_address, require

        require()
    except ImportError as exc:
        raise BadInput(
            f"--observe needs the observation server ({exc}): pip install 'spaceactors[observe]'"
        ) from None
    try:
        check_address(args.observe, args.observe_token)
    except sa.InvalidSpec as exc:
        raise BadInput(f"--observe {args.observe}: {exc}") from None


def _as_built(
    err: TextIO,
    observing: bool,
    memory: TunedGC | None,
    world: sim.World,
    *,
    resuming: bool = False,
) -> None:
    """The command's ``keep_world``: say where the observation server listens (as the run
    starts), and apply the memory policy once the world is built (docs/cli.md, "Memory"): a
    resumed world is handed over rebuilt, so at once."""
    if observing:
        say(err, f"spaceactors: observing at {world.system.observe_url}")
    if memory is not None and resuming:
        memory.apply()
    elif memory is not None:
        memory.at_first_tick(world)


def _updates(length: float, clock: str) -> int:
    """How often a run reports its progress: 100 times, and on a wall clock at least once a
    simulated second (so a plain line every ``--progress-every`` seconds has one to show)."""
    if clock == "virtual":
        return 100
    return max(100, min(math.ceil(length), MAX_UPDATES))


def _check_writable(path: str, what: str) -> None:
    """Refuse, before the run, a file that could not be written at its end."""
    target = Path(path)
    if not target.parent.is_dir():
        raise BadInput(f"cannot write {what} {path}: no directory {target.parent}")
    if target.is_dir():
        raise BadInput(f"cannot write {what} {path}: it is a directory")
    if target.is_symlink() or (target.exists() and not target.is_file()):
        # The file is replaced whole (written beside it, then renamed over it): a device, a
        # pipe or a link would be replaced, not written to.
        raise BadInput(f"cannot write {what} {path}: not a regular file (a device, pipe or link)")


def _load(name_or_path: str, signals: Signals) -> sim.Scenario:
    try:
        return sim.load(name_or_path)
    except (sim.ScenarioNotFound, sim.ScenarioBroken) as exc:
        raise BadInput(str(exc)) from None
    except KeyboardInterrupt:
        if signals.seen:
            raise  # a real Ctrl-C (or SIGTERM) while loading
        raise BadInput(
            f"{name_or_path}: the scenario file raised KeyboardInterrupt while loading"
        ) from None


def _fault_plan(path: str) -> sa.FaultPlan:
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FAULT_PLAN_BYTES + 1)
    except OSError as exc:
        raise BadInput(f"cannot read the fault plan {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FAULT_PLAN_BYTES:
        raise BadInput(f"{path} is not a fault plan: over {MAX_FAULT_PLAN_BYTES // 2**20} MiB")
    try:
        return sa.FaultPlan.from_json(data)
    except sa.DecodeError as exc:
        raise BadInput(f"{path} is not a fault plan: {exc}") from None


def _open_trace(path: str, level: str | None) -> sa.Trace:
    """The trace file, created now: before the run, a path that cannot be written is refused.
    It records the events of `level` (None: everything)."""
    parent = Path(path).parent
    if not parent.is_dir():
        raise BadInput(f"cannot write the trace {path}: no directory {parent}")
    try:
        return sa.Trace(sink_for(path), level=level or sa.TraceLevel.EVERYTHING)
    except OSError as exc:
        raise BadInput(f"cannot write the trace {path}: {exc.strerror or exc}") from None


def _close(trace: sa.Trace) -> OSError | None:
    """Flush and close the trace; the error if it could not be written (now or in the run)."""
    try:
        trace.close()
    except OSError as exc:
        return exc
    return None
