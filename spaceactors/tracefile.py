"""Reading trace files back: `load_trace` for JSON Lines (with or without the header line) and
SQLite traces, refusing anything else with a `ValueError` that names the place first."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from spaceactors.checks import short_repr
from spaceactors.trace import (
    COLUMNS,
    FORMAT,
    FORMAT_VERSION,
    SQLITE_SUFFIXES,
    TraceEvent,
    _sink_path,
)

MAX_LINE_BYTES = 64 * 2**20
"""A line of a JSON Lines trace longer than this is refused (a line is read whole)."""

_log = logging.getLogger(__name__)


def load_trace(path: str | os.PathLike[str]) -> list[TraceEvent]:
    """Read a trace written by a JSON Lines or SQLite sink.

    A JSON Lines file starts with a header line naming the format, its version and the columns
    (see `spaceactors.trace.header_line`); files written before the header existed have none
    and load the same (their columns are those of version 1). The header is not an event.

    Raises:
        ValueError: the file holds something that is not a trace event (but for a last line
            cut mid-write, without its newline, by a killed run: it is left out, with a
            warning on the ``spaceactors.tracefile`` logger); the message starts
            with ``<path>:<line>:`` (``<path>:row <seq>:`` for SQLite). This is the only error
            a file's content can cause, whatever it holds (bytes that are not UTF-8, JSON
            nested however deep, numbers however large, NaN or infinite times, a line over
            `MAX_LINE_BYTES`, a header of another format or of a newer version).
        OSError: the file cannot be read.
        ValueError: `path` is not a str or an ``os.PathLike``.
    """
    return list(_read(_sink_path(path)))


def _read(path: Path) -> Iterator[TraceEvent]:
    if path.suffix in SQLITE_SUFFIXES:
        yield from _read_sqlite(path)
        return
    with path.open("rb") as lines:
        number = events = 0
        while raw := lines.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError(
                    f"{path}:{number}: not a trace event: a line of over "
                    f"{MAX_LINE_BYTES // 2**20} MiB"
                )
            try:
                event = _parse_line(path, number, raw)
            except ValueError:
                if raw.endswith(b"\n"):
                    raise
                # Every event is written with its newline: a last line without one is an
                # event whose write was cut (a killed run). The events before it stand.
                _log.warning(
                    "%s:%d: the last line was cut mid-write (%d bytes); read the %d event(s) "
                    "before it",
                    path,
                    number,
                    len(raw),
                    events,
                )
                return
            if event is not None:
                events += 1
                yield event


def _parse_line(path: Path, number: int, raw: bytes) -> TraceEvent | None:
    try:
        line = raw.decode("utf-8")
        if number == 1 and line.lstrip().startswith("{"):
            _check_header(line)
            return None
        return TraceEvent.from_json(line) if line.strip() else None
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except ValueError as exc:
        raise ValueError(f"{path}:{number}: {exc}") from None


def _check_header(line: str) -> None:
    """Check the header line of a JSON Lines trace (a ValueError says what is wrong)."""
    try:
        header = json.loads(line)
    except RecursionError:
        problem = "JSON nested too deeply"
    except ValueError as exc:
        problem = f"not JSON ({exc})"
    else:
        problem = _header_problem(header)
    if problem:
        raise ValueError(f"not a trace header: {problem}")


def _header_problem(header: object) -> str:
    """What is wrong with a header line's JSON value ('' when nothing is)."""
    if not isinstance(header, dict):  # pragma: no cover - a line starting with '{' is an object
        return f"expected a JSON object, got {short_repr(header)}"
    if header.get("format") != FORMAT:
        return f'expected "format": "{FORMAT}", got {short_repr(header.get("format"))}'
    version = header.get("version")
    if type(version) is not int or version < 1:
        return f"the version must be a whole number from 1, got {short_repr(version)}"
    if version > FORMAT_VERSION:
        return (
            f"format version {short_repr(version)} is newer than this spaceactors reads (up to "
            f"{FORMAT_VERSION}): upgrade spaceactors to read it"
        )
    if header.get("columns") != list(COLUMNS):
        return (
            f"version {version} has the columns {list(COLUMNS)}, the header says "
            f"{short_repr(header.get('columns'))}"
        )
    return ""


def _read_sqlite(path: Path) -> Iterator[TraceEvent]:
    if not path.is_file():
        raise FileNotFoundError(f"no trace database at {path}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # read only: never create one
    try:
        rows = db.execute(
            "SELECT seq, time, kind, actor, peer, message_type, message_id, detail"
            " FROM events ORDER BY seq"
        ).fetchall()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a damaged file's SQLite
        # message may itself not be UTF-8
        raise ValueError(f"{path} is not a trace database ({exc})") from None
    finally:
        db.close()
    for seq, *fields in rows:
        try:
            event = TraceEvent.checked(*fields)
        except ValueError as exc:
            raise ValueError(f"{path}:row {seq}: not a trace event: {exc}") from None
        yield event
