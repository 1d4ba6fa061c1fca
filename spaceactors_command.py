"""The ``spaceactors`` console script's entry point, outside the `spaceactors` package.

Importing `spaceactors` takes a while (the whole engine, Trio, attrs...). A module inside the
package would run only after the package's ``__init__`` was imported, so a SIGINT or SIGTERM in
that time would end the command with a traceback or silently. This module imports nothing of
the project until it has installed handlers that record the signal and raise
`KeyboardInterrupt`; a signal during the import ends the command with one line on stderr and
its exit code (130, 143). The signals it saw are handed on to `spaceactors.cli.main`.
(``python -m spaceactors`` imports the package first: it cannot be covered this way.)
"""

from __future__ import annotations

import contextlib
import signal
import sys
from types import FrameType

_seen: list[int] = []


def _raise(signum: int, frame: FrameType | None) -> None:
    _seen.append(signum)
    raise KeyboardInterrupt


def _record(signum: int, frame: FrameType | None) -> None:
    _seen.append(signum)


def main() -> int:
    """Install the handlers, import the command, run it; returns the exit code."""
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _raise)
    except ValueError:  # not the main thread: Python's defaults apply
        pass
    try:
        from spaceactors.cli import main as command
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _record)  # the last line is written whatever comes
        last = _seen[-1] if _seen else signal.SIGINT
        try:
            sys.stderr.write(
                f"spaceactors: interrupted by {signal.Signals(last).name} while starting\n"
            )
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass
        return _ended(128 + (_seen[-1] if _seen else last))
    return _ended(command(seen=_seen))


def _ended(code: int) -> int:
    """The command has written its last line: a signal from now on (while Python shuts down)
    no longer changes its exit code, so it is held until the process exits."""
    with contextlib.suppress(AttributeError, ValueError, OSError):  # none on Windows
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    return code


if __name__ == "__main__":
    raise SystemExit(main())
