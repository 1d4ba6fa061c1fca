"""``spaceactors replay CASE``: run a saved failing example again (docs/testing.md, "When a
fault test fails"), print the failure and the trace hash, exit 1 while it fails, 0 once fixed."""

from __future__ import annotations

import argparse
from typing import TextIO

from spaceactors.cli.report import write_output
from spaceactors.cli.run import EXIT_FAILED, EXIT_PASSED, BadInput


def replay_command(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``spaceactors replay``; returns the exit code (a bad case raises `BadInput`)."""
    try:
        from spaceactors import testing
        from spaceactors.testing.replay import render
    except ImportError as exc:  # hypothesis is in the test extra
        raise BadInput(
            f"replaying needs the test extra ({exc}): pip install 'spaceactors[test]'"
        ) from None
    try:
        result = testing.replay(args.case, trace=args.trace)
    except testing.CaseError as exc:
        raise BadInput(str(exc)) from None
    except ValueError as exc:  # --trace is not a trace format
        raise BadInput(f"--trace {args.trace}: {exc}") from None
    except OSError as exc:
        raise BadInput(f"--trace {args.trace}: cannot write it: {exc}") from None
    if result.passed:
        last = f"passed: {args.case} no longer fails (trace hash {result.trace_hash[:16]})\n"
    else:
        last = f"FAILED again: {result.failure}\n"
    if args.trace:
        last = f"the replay's trace: {args.trace}\n" + last
    write_output(out, render(result) + last)
    return EXIT_PASSED if result.passed else EXIT_FAILED
