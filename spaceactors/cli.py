"""The ``spaceactors`` command: renders what the library does (the library itself never prints)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

import spaceactors as sa


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


def _demo(out: TextIO) -> int:
    out.write("spaceactors demo: one docking exchange through the wire codec\n\n")
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="run the built-in demo")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Entry point of the ``spaceactors`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return _demo(out)
    return 2  # pragma: no cover - argparse rejects unknown commands first
