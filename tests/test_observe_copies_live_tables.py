"""The observation server copies the system's live tables from its own thread. A copy that
allocates an object per entry (``list(table.items())``) can start a garbage collection in the
middle, whose callbacks and finalizers run Python code, where the interpreter may pass to the
system's thread, which changes the table: the copy raises "dictionary changed size during
iteration" (seen under load in /metrics). `copy_items` copies keys then values, allocating
nothing per entry while it walks the table.

The tests make that interleaving certain rather than likely: a collection callback changes the
table itself, as the system's thread would at that moment."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spaceactors.observe.tree import copy_items

Table = dict[int, list[int]]


@pytest.fixture
def changed_at_each_collection() -> Iterator[Table]:
    """A table of 2,000 entries that every garbage collection changes (one entry added, the
    oldest removed), with collections after every few allocations."""
    table: Table = {n: [n] for n in range(2000)}
    added = [2000]

    def change(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            table[added[0]] = [added[0]]
            del table[next(iter(table))]
            added[0] += 1

    saved = gc.get_threshold()
    gc.set_threshold(5, 1, 1)
    gc.callbacks.append(change)
    try:
        yield table
    finally:
        gc.callbacks.remove(change)
        gc.set_threshold(*saved)


def copied(copy: Callable[[Table], object], table: Table) -> RuntimeError | None:
    try:
        copy(table)
    except RuntimeError as exc:
        return exc
    return None


def test_copying_items_a_tuple_at_a_time_sees_the_table_change(
    changed_at_each_collection: Table,
) -> None:
    error = copied(lambda table: list(table.items()), changed_at_each_collection)
    assert error is not None
    assert "during iteration" in str(error)


def test_copy_items_never_sees_the_table_change(changed_at_each_collection: Table) -> None:
    for _ in range(20):
        assert copied(copy_items, changed_at_each_collection) is None
    entries = copy_items(changed_at_each_collection)
    assert all(value == [key] for key, value in entries)


def test_copy_items_is_the_table_s_entries() -> None:
    table = {"a": 1, "b": 2, "c": 3}
    assert copy_items(table) == [("a", 1), ("b", 2), ("c", 3)]
    assert copy_items({}) == []
