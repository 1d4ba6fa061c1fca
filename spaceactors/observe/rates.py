"""Message rates: messages each actor handled per second of the run's clock, between the last
two readings of the tree (``/status``'s ``rate``, and its ``?sort=rate``).

A reading keeps the tree's own columns (no copy). A rate is worked out only when a document
asks for it: for the rows it shows, by position, while the tree has the same children as the
reading before (the usual case: one C-level comparison); for every child when it sorts by rate
(one C-level pass). Only when the tree changed between the two readings is an index by child
made (one C-level pass).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spaceactors.observe.tree import Tree


class RateView(Mapping[Any, float]):
    """The rates between two readings: by child record (a `Mapping`), or by position in the
    later reading's tree (`at`, `column`). A child new since the earlier reading has rate 0."""

    def __init__(self, before: Tree | None, after: Tree | None, span: float) -> None:
        self._before = before
        self._after = after
        self._span = span
        self._same = before is not None and after is not None and before.children == after.children
        self._positions: dict[Any, int] | None = None
        self._before_by_child: dict[Any, int] | None = None

    def _rate(self, position: int) -> float:
        assert self._after is not None
        assert self._before is not None
        handled = self._after.handled[position]
        if self._same:
            before = self._before.handled[position]
        else:
            if self._before_by_child is None:
                self._before_by_child = dict(
                    zip(self._before.children, self._before.handled, strict=True)
                )
            before = self._before_by_child.get(self._after.children[position], handled)
        return max(handled - before, 0) / self._span

    def at(self, tree: Tree) -> Callable[[int], float]:
        """The rate of the child at a position of `tree` (0 when unknown)."""
        if tree is self._after:
            return self._rate
        return lambda position: self.get(tree.children[position], 0.0)

    def column(self, tree: Tree) -> list[float]:
        """The rate of every child of `tree`, in its order."""
        after, before = self._after, self._before
        if tree is after and self._same:
            assert before is not None
            grown = map(operator.sub, tree.handled, before.handled)
            return list(
                map(
                    operator.truediv,
                    map(max, grown, itertools.repeat(0)),
                    itertools.repeat(self._span),
                )
            )
        return list(map(self.get, tree.children, itertools.repeat(0.0)))

    def __getitem__(self, child: Any) -> float:
        if self._after is None:
            raise KeyError(child)
        if self._positions is None:
            children = self._after.children
            self._positions = dict(zip(children, range(len(children)), strict=True))
        return self._rate(self._positions[child])

    def __iter__(self) -> Iterator[Any]:
        return iter(() if self._after is None else self._after.children)

    def __len__(self) -> int:
        return 0 if self._after is None else len(self._after)


NO_RATES = RateView(None, None, 1.0)
"""Before two readings: no rate is known."""


class Rates:
    """The readings a server has seen: `update` with each new one gives the rates between it
    and the one before (the same as before while no time passed)."""

    def __init__(self) -> None:
        self._last: tuple[float, Tree] | None = None
        self._view = NO_RATES

    def update(self, now: float, tree: Tree) -> RateView:
        """Take a reading of `tree` at `now` (seconds on the run's clock)."""
        _ = tree.handled  # read now: the next reading's rates are the growth from these counts
        last = self._last
        if last is not None and now > last[0]:
            self._view = RateView(last[1], tree, now - last[0])
        self._last = (now, tree)
        return self._view
