"""Reading an `itertools.count` without taking a number from it."""

from __future__ import annotations

import itertools


def peek(counter: itertools.count[int]) -> tuple[int, itertools.count[int]]:
    """The number `counter` would give next, and a counter to use in its place (an
    ``itertools.count`` cannot be read without consuming it, so the caller swaps in the new one:
    ``value, self._sequence = peek(self._sequence)``)."""
    value = next(counter)
    return value, itertools.count(value)
