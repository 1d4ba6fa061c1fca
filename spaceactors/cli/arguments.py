"""Option types of the command: a number read from the text, then checked against its range."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TypeVar

from spaceactors.checks import short_repr
from spaceactors.clocks import MAX_SPEED

N = TypeVar("N", int, float)


def number(
    convert: Callable[[str], N], kind: str, within: Callable[[N], bool], wanted: str
) -> Callable[[str], N]:
    """An argparse ``type``: `convert` the text (``not <kind>: ...`` if it cannot), then
    require `within` of the value (``must be <wanted>, got ...`` otherwise)."""

    def option(text: str) -> N:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {kind}: {short_repr(text)}") from None
        if not within(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {short_repr(text)}")
        return value

    return option


SECONDS = number(
    float,
    "a number of seconds",
    lambda v: 0 < v < math.inf,
    "a positive number of seconds (and finite)",
)
SEED = number(int, "a whole number", lambda v: 0 <= v < 2**64, "a whole number from 0 to 2**64 - 1")
COUNT = number(
    int, "a whole number", lambda v: 0 <= v <= 1_000_000, "a whole number from 0 to 1,000,000"
)
POSITIVE_COUNT = number(
    int, "a whole number", lambda v: 1 <= v <= 1_000_000, "a whole number from 1 to 1,000,000"
)
MAX_NODES = 64
"""The most nodes ``spaceactors run --nodes`` shards a run across."""
NODES = number(
    int, "a whole number", lambda v: 1 <= v <= MAX_NODES, f"a whole number from 1 to {MAX_NODES}"
)
TIME = number(float, "a time in seconds", math.isfinite, "a finite time")
SPEED = number(
    float,
    "a speed factor",
    lambda v: 0 < v <= MAX_SPEED,
    f"a factor > 0 and <= {MAX_SPEED:g}",
)
DEFAULT_OBSERVE = "127.0.0.1:8765"
"""Where ``--observe`` serves when given no address."""
