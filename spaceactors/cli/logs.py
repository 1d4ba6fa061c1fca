"""The engine's log as the command shows it: one line per record on stderr, or JSON lines.

The library logs through `logging` (``spaceactors.*`` loggers) and never prints; the command
attaches its handlers to the ``spaceactors`` logger for as long as it runs (`command_logging`)
and takes them away after, so that running the command in-process (tests, notebooks) leaves
logging as it found it.

On stderr, for ``spaceactors run`` without ``-v``: warnings and errors, one line each, without
tracebacks, and no line for an actor's crash (the restart line that follows names its cause);
the other commands show none. With ``-v``: every record from INFO on (crashes, injected ones
included), with the traceback of a real crash.

``--log-json FILE`` (``-`` for stderr, in place of the lines above) writes one JSON object per
record from INFO on: see `json_record` for its fields.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import traceback
from collections.abc import Callable, Iterator
from typing import IO, Any, TextIO

import trio

from spaceactors.logfields import FIELDS

ENGINE_LOGGER = "spaceactors"
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class LogFileError(Exception):
    """The ``--log-json`` file cannot be opened for writing (the command's bad input)."""


def sim_time_of(record: logging.LogRecord) -> float | None:
    """The simulated time of `record`: the engine's own field, else the clock of the Trio run
    that logged it (None outside one)."""
    value = getattr(record, "sim_time", None)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    try:
        return trio.current_time()
    except RuntimeError:
        return None


def json_record(record: logging.LogRecord, *, tracebacks: bool) -> dict[str, Any]:
    """One record as the JSON object ``--log-json`` writes.

    Fields: ``time`` (wall clock, Unix seconds), ``sim_time`` (seconds of the run's clock, or
    null outside a run), ``level`` (``"INFO"``, ``"WARNING"``...), ``logger``, ``message``; then,
    when the engine set them (`spaceactors.logfields`), ``event``, ``actor``, ``restarts`` and
    ``cause``; and ``traceback`` (text) for a record with one when `tracebacks` is set (``-v``).
    """
    data: dict[str, Any] = {
        "time": record.created,
        "sim_time": sim_time_of(record),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    for field in FIELDS:
        if field != "sim_time" and hasattr(record, field):
            data[field] = getattr(record, field)
    if tracebacks and record.exc_info and record.exc_info[1] is not None:
        data["traceback"] = "".join(traceback.format_exception(record.exc_info[1]))
    return data


class _QuietHandler(logging.Handler):
    """A handler whose output may fail (a full or closed stderr): it falls silent, never
    prints logging's own error report."""

    def handleError(self, record: logging.LogRecord) -> None:
        self.setLevel(logging.CRITICAL + 1)


class TextHandler(_QuietHandler):
    """One line per record (``LEVEL logger: message``), through `write` (the progress
    display's console while it is shown, so lines appear above it); a traceback follows
    only with `tracebacks`."""

    def __init__(self, write: Callable[[str], None], *, tracebacks: bool) -> None:
        super().__init__()
        self.write = write
        self.tracebacks = tracebacks
        self.setFormatter(logging.Formatter(TEXT_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if self.tracebacks:
                text = self.format(record)
            else:
                text = TEXT_FORMAT % {
                    "levelname": record.levelname,
                    "name": record.name,
                    "message": record.getMessage(),
                }
            self.write(text)
        except Exception:
            self.handleError(record)


class JsonHandler(_QuietHandler):
    """One JSON object per line (`json_record`), flushed as written."""

    def __init__(self, stream: IO[str], *, tracebacks: bool) -> None:
        super().__init__()
        self.stream = stream
        self.tracebacks = tracebacks

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.dumps(json_record(record, tracebacks=self.tracebacks), default=str)
            self.stream.write(line + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)


def _no_crash_lines(record: logging.LogRecord) -> bool:
    """Without ``-v``: an actor's crash has no line of its own (its restart line says why)."""
    return getattr(record, "event", None) != "crash"


@contextlib.contextmanager
def command_logging(
    err: TextIO | None,
    write: Callable[[str], None],
    *,
    verbose: bool,
    json_path: str | None,
    warnings: bool = True,
) -> Iterator[None]:
    """Show the engine's log while the command runs (see the module docstring).

    `write` writes one line of text on stderr; `json_path` is ``--log-json``'s file, ``"-"``
    for `err`. Without `warnings` (commands other than ``run``), stderr shows the log only
    with `verbose`.

    Raises:
        LogFileError: `json_path` cannot be opened for writing.
    """
    handlers: list[logging.Handler] = []
    owned: IO[str] | None = None
    if json_path is not None:
        if json_path == "-":
            stream: IO[str] | None = err
        else:
            try:
                stream = owned = open(json_path, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise LogFileError(
                    f"cannot write the log {json_path}: {exc.strerror or exc}"
                ) from None
        if stream is not None:
            handler: logging.Handler = JsonHandler(stream, tracebacks=verbose)
            handler.setLevel(logging.INFO)
            handlers.append(handler)
    if json_path != "-" and (verbose or warnings):
        text = TextHandler(write, tracebacks=verbose)
        text.setLevel(logging.INFO if verbose else logging.WARNING)
        if not verbose:
            text.addFilter(_no_crash_lines)
        handlers.append(text)
    logger = logging.getLogger(ENGINE_LOGGER)
    level = logger.level
    logger.setLevel(min((h.level for h in handlers), default=level))
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
        logger.setLevel(level)
        if owned is not None:
            with contextlib.suppress(OSError):
                owned.close()


class LogLines:
    """Where the command's log lines go: through the progress display while a run shows one
    (above its bar), else straight to stderr. A stderr that fails falls silent."""

    def __init__(self, err: TextIO | None) -> None:
        self.err = err
        self.display: Callable[[str], None] | None = None
        """The progress display's ``line``, while it is shown."""

    def write(self, line: str) -> None:
        if self.display is not None:
            self.display(line)
            return
        if self.err is not None:
            self.err.write(line + "\n")
            self.err.flush()
