"""``python -m benchmarks [--quick] [--repeat N] [--only NAME]``: run and print the suite."""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence

import trio

from benchmarks import (
    checkpoint,
    checkpoint_values,
    counting,
    fanout,
    fleet,
    nodes,
    observing,
    peers,
    pingpong,
    reliable,
    routing,
    scaling,
    spawn,
    thread_ring,
    tracing,
)
from benchmarks.harness import Options

BENCHMARKS = {
    module.NAME: module
    for module in (
        counting,
        pingpong,
        thread_ring,
        spawn,
        fanout,
        routing,
        reliable,
        tracing,
        fleet,
        scaling,
        observing,
        checkpoint_values,
        checkpoint,
        nodes,
        peers,
    )
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="every size / 10 (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N", help="best of N (3)")
    parser.add_argument(
        "--only",
        choices=sorted(BENCHMARKS),
        action="append",
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    options = Options(repeat=args.repeat, scale=10 if args.quick else 1)
    print(
        f"spaceactors benchmarks: Python {platform.python_version()}, trio {trio.__version__}, "
        f"{platform.machine()}; warm-up + best of {options.repeat}"
        + (", sizes / 10 (--quick)" if args.quick else "")
    )
    results: list[bool] = []
    for name, module in BENCHMARKS.items():
        if not args.only or name in args.only:
            results += module.bench(options)
    print(f"\n{sum(results)}/{len(results)} targets met (benchmarks never fail on a MISS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
