"""The ``spaceactors`` command: renders what the library does (the library itself never prints)."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import spaceactors as sa
from spaceactors import sim
from spaceactors.scenarios.docking import run_docking


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


def _demo(out: TextIO, seed: int) -> int:
    report = sa.run(functools.partial(run_docking, seed=seed), seed=seed)
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
        "-v", "--verbose", action="store_true", help="show the engine's log (crashes, restarts)"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    demo = commands.add_parser("demo", help="run the built-in demo (in process, virtual time)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    commands.add_parser("list", help="list the shipped scenarios")
    run = commands.add_parser("run", help="run a scenario (a shipped name or a .py file)")
    run.add_argument("scenario", help="a shipped scenario's name, or the path of a scenario file")
    run.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    run.add_argument(
        "--duration", type=_seconds, help="simulated seconds (default: the scenario's own)"
    )
    run.add_argument(
        "--clock",
        choices=("virtual", "wall"),
        default="virtual",
        help="virtual: simulated time jumps ahead (default); wall: it runs in real time",
    )
    run.add_argument("--trace", metavar="FILE", help="write the event trace (.jsonl or .sqlite)")
    run.add_argument("--faults", metavar="FILE", help="inject the fault plan in this JSON file")
    run.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="show a progress bar on stderr (auto: when it is a terminal)",
    )
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def main(
    argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Entry point of the ``spaceactors`` console script; returns the exit code.

    0: the run went well (every expectation held); 1: an expectation failed; 2: bad input.
    """
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        return _demo(out, args.seed)
    if args.command == "list":
        return _list(out)
    try:
        return _run(args, out, err)
    except _BadInput as problem:
        err.write(f"spaceactors: error: {problem}\n")
        return 2


class _BadInput(Exception):
    """Something the user gave us is wrong: one line on stderr, exit code 2."""


def _list(out: TextIO) -> int:
    for known in sim.shipped():
        out.write(f"{known.name:<18} {known.duration:>7,.0f} s  {known.description}\n")
    return 0


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        chosen = sim.load(args.scenario)
    except (sim.ScenarioNotFound, sim.ScenarioBroken) as exc:
        raise _BadInput(str(exc)) from None
    faults = _fault_plan(args.faults) if args.faults else None
    trace = _trace_path(args.trace) if args.trace else None
    show = args.progress == "always" or (args.progress == "auto" and err.isatty())
    bar = _ProgressBar(err, chosen.name) if show else None
    run = functools.partial(
        sim.run_scenario,
        chosen,
        seed=args.seed,
        duration=args.duration,
        trace=trace,
        faults=faults,
        progress=bar,
    )
    try:
        summary = sa.run(run, seed=args.seed, virtual=args.clock == "virtual")
    except sim.ScenarioBroken as exc:
        raise _BadInput(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    out.write(render_summary(summary))
    return 0 if summary.passed else 1


def _fault_plan(path: str) -> sa.FaultPlan:
    try:
        return sa.FaultPlan.from_json(Path(path).read_bytes())
    except OSError as exc:
        raise _BadInput(f"cannot read the fault plan {path}: {exc.strerror}") from None
    except sa.DecodeError as exc:
        raise _BadInput(f"{path} is not a fault plan: {exc}") from None


def _trace_path(path: str) -> str:
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise _BadInput(f"cannot write the trace {path}: no directory {parent}")
    return path


class _ProgressBar:
    """One line on stderr, redrawn in place: simulated time, messages/s, actors, restarts."""

    WIDTH = 24

    def __init__(self, err: TextIO, name: str) -> None:
        self.err = err
        self.name = name

    def __call__(self, progress: sim.Progress) -> None:
        done = min(progress.sim_time / progress.duration, 1.0)
        filled = int(done * self.WIDTH)
        wall = progress.wall_seconds
        rate = progress.messages / wall if wall > 0 else 0.0
        self.err.write(
            f"\r{self.name} [{'#' * filled}{'.' * (self.WIDTH - filled)}] "
            f"{progress.sim_time:,.0f}/{progress.duration:,.0f} s  {rate:,.0f} msg/s  "
            f"{progress.actors:,} actors  {progress.restarts} restarts "
        )
        self.err.flush()

    def close(self) -> None:
        self.err.write("\n")
        self.err.flush()


def render_summary(summary: sim.Summary) -> str:
    """The end-of-run report the command prints (counted once the run's system closed, so its
    numbers are the trace's: see `sim.Summary`)."""
    answer = _seconds_or_dash(summary.max_answer_time)
    rescue = _seconds_or_dash(summary.max_rescue_time)
    reasons = ", ".join(f"{n} {reason}" for reason, n in summary.dead_letters_by_reason.items())
    lines = [
        f"scenario {summary.scenario}: seed {summary.seed}, {summary.duration:,.0f} s simulated "
        f"in {summary.wall_seconds:.1f} s",
        f"  fleet        {summary.ships:,} ships, {summary.stations} stations, "
        f"{summary.ship_updates:,} ship updates",
        f"  dockings     {summary.dockings:,} by {summary.ships_docked:,} ships "
        f"(refused {summary.refusals:,}, evicted {summary.evictions:,})",
        f"  trades       {summary.trades:,} ({summary.traded_units:,.0f} units)",
        f"  distress     {summary.distress_calls} calls, {summary.rescues} rescues, "
        f"{summary.unanswered} unanswered; slowest: accepted {answer}, alongside {rescue}",
        f"  hazards      {summary.hazard_entries} entries, {summary.fuel_exhausted} out of fuel",
        f"  restarts     {summary.restarts} (ships and stations)",
        f"  dead letters {summary.dead_letters}" + (f" ({reasons})" if reasons else ""),
        f"  messages     {summary.messages:,} delivered by the router, "
        f"{summary.reliable_sends:,} reliable transmissions, "
        f"{summary.unheard_publishes:,} publishes heard by nobody",
    ]
    lines += [f"    {name:<22} {count:>10,}" for name, count in summary.messages_by_type.items()]
    if summary.unrun_events:
        times = ", ".join(f"{when:g} s" for when in summary.unrun_events)
        lines.append(
            f"  events       {len(summary.unrun_events)} never ran: due at or after the end "
            f"({times})"
        )
    if summary.unmatched_faults:
        lines.append(f"  faults       {len(summary.unmatched_faults)} rule(s) did nothing:")
        lines += [f"    {unmatched}" for unmatched in summary.unmatched_faults]
    skipped = len(summary.not_checked)
    failed = sum(not ok for _, ok, _ in summary.expectations)
    met = len(summary.expectations) - failed - skipped
    lines.append(
        f"  expectations {met}/{len(summary.expectations)} met"
        + (f", {skipped} not checked" if skipped else "")
    )
    for description, ok, why in summary.expectations:
        mark = "FAIL" if not ok else ("skip" if why else "ok  ")
        lines.append(f"    {mark} {description}" + (f" ({why})" if why else ""))
    return "\n".join(lines) + "\n"


def _seconds_or_dash(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s"
