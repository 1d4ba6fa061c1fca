"""The ``spaceactors`` command: renders what the library does (the library itself never prints)."""

from __future__ import annotations

import argparse
import functools
import io
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

import trio

import spaceactors as sa
from spaceactors import sim
from spaceactors.cli.arguments import DEFAULT_OBSERVE, SECONDS, SEED, SPEED
from spaceactors.cli.logs import LogFileError, LogLines, command_logging
from spaceactors.cli.nodes import add_node_command, add_run_options, node_command, run_on_nodes
from spaceactors.cli.progress import DEFAULT_EVERY
from spaceactors.cli.replay import replay_command
from spaceactors.cli.report import OutputLost, say, silence, write_output
from spaceactors.cli.run import EXIT_BAD_INPUT, EXIT_PASSED, BadInput, run_command
from spaceactors.cli.signals import Signals, exit_code, is_interrupt, signal_name
from spaceactors.cli.state import (
    StateProblem,
    add_resume_command,
    add_state_options,
    for_resume,
    resumed_args,
)
from spaceactors.cli.top import add_top_command, top_command
from spaceactors.cli.traces import add_trace_commands, trace_command
from spaceactors.scenarios.docking import DockingReport, run_docking
from spaceactors.trace import TraceLevel
from spaceactors_command import Interrupts


def _docking_exchange() -> list[object]:
    """The messages of one docking: a ship asks, the station answers, the market reports."""
    ship, station = 7, 1
    hull = sa.ShipSpecs(ship_class="Merchant", length=150.0, mass=2000.0, cargo_capacity=500.0)
    manifest = [sa.CargoItem(item_type="ore", quantity=120.0, unit_value=3.5)]
    return [
        sa.ShipToStation(ship, station, sa.RequestDocking(hull, manifest)),
        sa.StationToShip(station, ship, sa.DockingPermission(granted=False, estimated_wait=90.0)),
        sa.StationToShip(station, ship, sa.DockingPermission(granted=True, berth_assignment=4)),
        sa.StationToShip(station, ship, sa.MarketPrices({"ore": 3.9, "water": 1.2}, 95.0)),
    ]


def _demo(out: TextIO, seed: int, signals: Signals) -> int:
    async def docking(stop: trio.Event) -> DockingReport:
        return await run_docking(seed=seed)

    with signals.for_trio():
        report = sa.run(functools.partial(signals.session, docking, stop_first=False), seed=seed)
    out.write(
        f"spaceactors demo: {report.ships} ships, {report.berths} berths at station 'ceres' "
        f"(seed {seed}, virtual time)\n\n"
    )
    for line in report.log:
        out.write(f"  {line}\n")
    out.write(
        f"\n{report.dockings} dockings, {report.refusals} refusals (ships waited and asked "
        f"again), {report.crashes} crash restarted by the fleet supervisor, "
        f"{report.dead_letters} dead letter(s), {report.simulated_seconds:.0f} s simulated\n"
    )
    return _wire_demo(out)


def _wire_demo(out: TextIO) -> int:
    out.write("\nthe same protocol on the wire:\n")
    for message in _docking_exchange():
        sizes = []
        for wire_format in sa.codec.FORMATS:
            data = sa.encode(message, wire_format)
            if sa.decode(data, wire_format) != message:
                out.write(f"round trip changed {type(message).__name__} in {wire_format}\n")
                return 1
            sizes.append(f"{wire_format} {len(data)} B")
        content = type(getattr(message, "content", message)).__name__
        out.write(f"  {type(message).__name__:<14} {content:<18} {', '.join(sizes)}\n")
    hostile = b'{"schema":1,"type":"StationToShip","body":{"sender":1,"recipient":"me"}}'
    try:
        sa.decode(hostile)
    except sa.DecodeError as error:
        out.write(f"\nrejected a hostile payload: {error}\n")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with errors on one line (no usage dump): ``spaceactors: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spaceactors", description=sa.__doc__)
    parser.add_argument("--version", action="version", version=f"spaceactors {sa.__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the engine's whole log: crashes too, with their tracebacks",
    )
    parser.add_argument(
        "--log-json",
        metavar="FILE",
        help="write the engine's log as JSON lines to FILE ('-': stderr, instead of text)",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    demo = commands.add_parser("demo", help="run the built-in demo (in process, virtual time)")
    demo.add_argument("--seed", type=SEED, default=0, help="seed of the run (default 0)")
    commands.add_parser("list", help="list the shipped scenarios")
    run = commands.add_parser("run", help="run a scenario (a shipped name or a .py file)")
    run.add_argument(
        "scenario",
        help="a shipped scenario's name, or the path of a scenario file "
        "(FILE.py:NAME picks one of several in a file)",
    )
    run.add_argument("--seed", type=SEED, default=0, help="seed of the run (default 0)")
    run.add_argument(
        "--duration", type=SECONDS, help="simulated seconds (default: the scenario's own)"
    )
    run.add_argument(
        "--clock",
        choices=("virtual", "wall"),
        default="virtual",
        help="virtual: simulated time jumps ahead (default); wall: it runs in real time",
    )
    run.add_argument(
        "--speed",
        type=SPEED,
        metavar="F",
        help="with --clock wall: run at F times real time (default 1)",
    )
    _display_options(run)
    run.add_argument(
        "--trace", metavar="FILE", help="write the event trace (.jsonl, or .sqlite/.db)"
    )
    run.add_argument(
        "--trace-level",
        choices=[level.value for level in TraceLevel],
        metavar="LEVEL",
        help="which events --trace records: off, lifecycle, messages or everything "
        "(default: everything)",
    )
    run.add_argument("--faults", metavar="FILE", help="inject the fault plan in this JSON file")
    add_state_options(run)
    add_run_options(run)
    add_resume_command(commands, _display_options)
    add_trace_commands(commands)
    add_top_command(commands)
    add_node_command(commands)
    replay = commands.add_parser(
        "replay", help="run a saved failing example again (a case file of a fault test)"
    )
    replay.add_argument("case", help="the case file (.spaceactors/cases/<test>-<hash>.json)")
    replay.add_argument(
        "--trace",
        metavar="FILE",
        help="write the replay's event trace (.jsonl, or .sqlite/.db), to diff with the case's",
    )
    return parser


def _display_options(run: argparse.ArgumentParser) -> None:
    """What ``run`` and ``resume`` share: the observation server, the progress, the summary
    as JSON, the GC policy."""
    run.add_argument(
        "--observe",
        nargs="?",
        const=DEFAULT_OBSERVE,
        metavar="HOST:PORT",
        help=f"serve the live dashboard, /metrics, /status, /events and /control "
        f"(default {DEFAULT_OBSERVE}; port 0: any free one)",
    )
    run.add_argument(
        "--observe-token",
        metavar="TOKEN",
        help="the token /control and /events require (default: $SPACEACTORS_OBSERVE_TOKEN); "
        "needed to bind beyond loopback",
    )
    run.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="show the progress on stderr (auto: when it is a terminal; elsewhere "
        "always writes a plain line every --progress-every seconds)",
    )
    run.add_argument(
        "--progress-every",
        type=SECONDS,
        default=DEFAULT_EVERY,
        metavar="SECONDS",
        help=f"wall seconds between two progress lines when stderr is not a terminal "
        f"(default {DEFAULT_EVERY:g})",
    )
    run.add_argument(
        "--summary-json", metavar="FILE", help="also write the whole summary as JSON to FILE"
    )
    run.add_argument(
        "--gc",
        choices=("tuned", "python"),
        default="tuned",
        help="tuned: once the world is built, freeze it and collect garbage rarely "
        "(default); python: leave Python's garbage collector as it is",
    )


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    interrupts: Interrupts | None = None,
) -> int:
    """Entry point of the ``spaceactors`` console script; returns the exit code.

    0: the run went well (every expectation held, a replayed case passed); 1: an expectation
    failed (a replayed case fails again); 2: bad input (a case file that is not one) or
    an output that cannot be written (one line on stderr; a bad option raises
    ``SystemExit(2)`` from argparse, also one line); 130 and 143: SIGINT (Ctrl-C) and SIGTERM
    stopped it (see `spaceactors.cli.signals`). `out` and `err` default to ``sys.stdout`` and
    ``sys.stderr`` (None when the file descriptor is closed); `interrupts` holds the signals the
    console script's entry point already saw (`spaceactors_command.Interrupts`).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    signals = Signals(interrupts)
    try:
        with signals.raising():
            if signals.seen:  # a signal came while Python imported the command
                raise KeyboardInterrupt
            code = _command(argv, out, err, signals)
    except BrokenPipeError:  # whoever read our output left (``spaceactors list | head -1``)
        signals.quiet()
        silence(sys.stdout)
        return exit_code(signal.SIGPIPE)
    except BaseException as exc:
        signals.quiet()  # a signal from now on is only counted: this is the last line
        if isinstance(exc, SystemExit) and not signals.seen:
            raise  # argparse's own exit (--help, --version, a bad option)
        last = signals.ended_by  # the line and the code name the same signal
        line = _ending(exc, signals, last)
        if line is None:
            raise
        say(err, line)
        return exit_code(last) if signals.seen else EXIT_BAD_INPUT
    signals.quiet()
    if not signals.seen or signals.reported:
        return code
    last = signals.ended_by  # a signal came as the command ended: say so
    say(err, _interrupted(signals, last))
    return exit_code(last)


def _ending(exc: BaseException, signals: Signals, last: int) -> str | None:
    """The command's last line for `exc`; None for an error that is a bug (its traceback)."""
    if signals.seen:  # whatever failed after a signal, the signal ended the command
        line = _interrupted(signals, last)
        if is_interrupt(exc) or isinstance(exc, trio.Cancelled):
            return line
        detail = str(exc) or type(exc).__name__
        return f"{line} (then: {detail})"
    if isinstance(exc, BadInput | OutputLost):
        return f"spaceactors: error: {exc}"
    return None


def _command(argv: Sequence[str] | None, out: TextIO, err: TextIO, signals: Signals) -> int:
    args = _parser().parse_args(argv)
    lines = LogLines(err)
    try:
        with command_logging(
            err,
            lines.write,
            verbose=args.verbose,
            json_path=args.log_json,
            warnings=args.command == "run",
        ):
            return _serve(args, out, err, signals, lines)
    except LogFileError as exc:
        raise BadInput(str(exc)) from None


def _serve(
    args: argparse.Namespace, out: TextIO, err: TextIO, signals: Signals, lines: LogLines
) -> int:
    if args.command == "demo":
        signals.phase = "running the demo"
        buffer = io.StringIO()
        code = _demo(buffer, args.seed, signals)
        write_output(out, buffer.getvalue())
        return code
    if args.command == "list":
        return _list(out)
    if args.command == "trace":
        return trace_command(args, out, signals)
    if args.command == "top":
        return top_command(args, out, signals)
    if args.command == "node":
        return node_command(args, err, signals)
    if args.command == "run" and args.nodes is not None:
        return run_on_nodes(args, out, err, signals)
    if args.command == "replay":
        signals.phase = f"replaying {args.case}"
        return replay_command(args, out)
    if args.command == "resume":
        signals.phase = f"reading {args.state}"
        try:
            run, kept = for_resume(args.state, args.duration)
        except StateProblem as exc:
            raise BadInput(str(exc)) from None
        return run_command(resumed_args(args, run), out, err, signals, lines, resume=kept)
    return run_command(args, out, err, signals, lines)


def _interrupted(signals: Signals, last: int) -> str:
    """The one line a signal (`last`, the last one seen) that ended the command ends it with."""
    name = signal_name(last)
    if signals.at_once and signals.first is not None:
        kept = "; the trace keeps the events until then" if signals.tracing else ""
        return (
            f"spaceactors: stopped at once by a second signal ({name}) while "
            f"{signals.phase}: no summary{kept}"
        )
    return f"spaceactors: interrupted by {name} while {signals.phase}"


def _list(out: TextIO) -> int:
    lines = [f"{k.name:<18} {k.duration:>7,.0f} s  {k.description}\n" for k in sim.shipped()]
    write_output(out, "".join(lines))
    return EXIT_PASSED
