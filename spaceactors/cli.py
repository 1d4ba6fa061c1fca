"""The ``spaceactors`` command: renders what the library does (the library itself never prints)."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Sequence
from typing import TextIO

import spaceactors as sa
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spaceactors", description=sa.__doc__)
    parser.add_argument("--version", action="version", version=f"spaceactors {sa.__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the engine's log (crashes, restarts)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="run the built-in demo (in process, virtual time)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Entry point of the ``spaceactors`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "demo":
        return _demo(out, args.seed)
    return 2  # pragma: no cover - argparse rejects unknown commands first
