"""The observation server copies the system's live tables from its own thread. A copy that
allocates an object per entry (``list(table.items())``) can start a garbage collection in the
middle, whose callbacks and finalizers run Python code, where the interpreter may pass to the
system's thread, which changes the table: the copy raises "dictionary changed size during
iteration" (seen under load in /metrics). `copy_items` copies keys then values, allocating
nothing per entry while it walks the table."""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spaceactors.observe.tree import copy_items


@pytest.fixture
def collections_hand_over() -> Iterator[None]:
    """Every garbage collection lets the other thread run (as a finalizer may), and they come
    often, and the interpreter switches threads every 10 µs."""

    def hand_over(phase: str, info: dict[str, Any]) -> None:
        time.sleep(0)  # releases the interpreter: the other thread runs here

    saved, interval = gc.get_threshold(), sys.getswitchinterval()
    gc.set_threshold(5, 1, 1)
    sys.setswitchinterval(1e-5)
    gc.callbacks.append(hand_over)
    try:
        yield
    finally:
        gc.callbacks.remove(hand_over)
        gc.set_threshold(*saved)
        sys.setswitchinterval(interval)


def copies_while_changed(copy: Callable[[dict[int, list[int]]], object]) -> list[BaseException]:
    """`copy` a table 300 times from a thread while this one adds and removes entries."""
    table: dict[int, list[int]] = {n: [n] for n in range(2000)}
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            for _ in range(300):
                copy(table)
        except RuntimeError as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    n = 2000
    while not done.is_set():
        table[n] = [n]  # a tracked object per entry: the reader's collections find garbage too
        del table[n - 2000]
        n += 1
    thread.join()
    return errors


def test_copying_items_one_tuple_at_a_time_can_see_the_table_change(
    collections_hand_over: None,
) -> None:
    errors: list[BaseException] = []
    for _ in range(10):  # it shows within a round or two; a round takes a fraction of a second
        errors = copies_while_changed(lambda table: list(table.items()))
        if errors:
            break
    assert errors, "the hazard did not show: this test no longer tests the fix below"
    assert "changed" in str(errors[0])
    assert "during iteration" in str(errors[0])


def test_copy_items_never_sees_the_table_change(collections_hand_over: None) -> None:
    for _ in range(3):
        assert copies_while_changed(copy_items) == []


def test_copy_items_is_the_table_s_entries() -> None:
    table = {"a": 1, "b": 2, "c": 3}
    assert copy_items(table) == [("a", 1), ("b", 2), ("c", 3)]
    assert copy_items({}) == []
