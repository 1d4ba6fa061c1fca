"""The values a state file takes and gives: its records, and the checks of the arguments
`StateFile` is given (every bad one is a `StateFileError`)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import attrs

from spaceactors import checks
from spaceactors.errors import StateFileError


@attrs.frozen
class Checkpoint:
    """A verified checkpoint as stored: `number` (1, 2, ... in order of writing), `sim_time`
    (virtual seconds on the run's clock), `trace_count` (trace events before it), `taken_at`
    (wall-clock seconds since the epoch) and `payload` (the caller's msgpack bytes)."""

    number: int
    sim_time: float
    trace_count: int
    taken_at: float
    payload: bytes


@attrs.frozen
class TraceSegment:
    """A verified run of `count` trace events from event index `first` (0-based), encoded by
    the codec named `codec` as `data`."""

    first: int
    count: int
    codec: str
    data: bytes


@attrs.frozen
class StateMeta:
    """The run a state file belongs to, as `StateFile.create` recorded it; `created_at` is
    wall-clock seconds since the epoch, `info` the caller's JSON object."""

    scenario: str
    seed: int
    code: str
    spaceactors_version: str
    created_at: float
    info: dict[str, Any]
    keep: int


def checked_path(path: object) -> Path:
    """`path` as a `Path`: a str or str PathLike the file system can take (else refused)."""
    if isinstance(path, str | os.PathLike) and isinstance(text := os.fspath(path), str):
        with contextlib.suppress(UnicodeEncodeError):
            if 0 < len(os.fsencode(text)) <= 4096 and "\0" not in text:
                return Path(text)
    raise StateFileError(
        f"a state file path must be a non-empty str or PathLike of at most 4096 bytes that the "
        f"file system can encode, got {checks.short_repr(path)}"
    )


def checked_segment(first: object, count: object, codec: object, data: object) -> TraceSegment:
    """A trace segment from checked arguments."""
    return TraceSegment(
        checks.integer("first", first, StateFileError, high=2**62),
        checks.integer("count", count, StateFileError, low=1, high=2**62),
        checks.name("codec", codec, StateFileError),
        checked_blob("data", data),
    )


def checked_flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise StateFileError(f"{name} must be True or False, got {checks.short_repr(value)}")


def checked_blob(name: str, value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise StateFileError(f"{name} must be bytes, got {checks.short_repr(value)}")


def checked_info(info: object) -> str:
    """`info` as JSON text, if it is a JSON object that survives the round trip unchanged."""
    try:
        text = json.dumps({} if info is None else info, allow_nan=False, sort_keys=True)
        if isinstance(info, dict | None) and json.loads(text) == (info or {}):
            return text
    except (TypeError, ValueError, RecursionError):
        pass
    raise StateFileError(
        f"info must be a JSON object (a dict with str keys and JSON values), "
        f"got {checks.short_repr(info)}"
    )
