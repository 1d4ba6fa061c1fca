"""The supervision tree as the observation server reads it, from its own thread, while the run
goes on: flat lists in tree order and columns of counters, each made by C-level calls.

Why C-level: the server's thread shares the GIL with a system running flat out. A Python loop
over 10,000 actors costs milliseconds of bytecode, and the GIL changes hands every few
milliseconds, so such a loop both slows every answer and can see a live table change under it
("dictionary changed size during iteration"). `list(table.values())`, ``map`` with an
`operator.attrgetter`, ``sum``, ``sorted`` with a C-level key run no bytecode: the GIL is not
released during one of them, so each is one consistent read, and the Python work of a document
is per supervisor and per row shown, not per actor.
"""

from __future__ import annotations

import functools
import itertools
import operator
import types
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from spaceactors.supervisor import Supervisor

if TYPE_CHECKING:
    from spaceactors.children import Child
    from spaceactors.system import ActorSystem

K = TypeVar("K")
V = TypeVar("V")

_RUNTIME = operator.attrgetter("runtime")
_RESTARTS = operator.attrgetter("runtime.restarts")
_CRASHES = operator.attrgetter("crashes")
_QUEUE = operator.attrgetter("_queue")
_NO_MAILBOX = types.SimpleNamespace(_queue=())
"""Stands for the mailbox of a child that has none (a supervisor or a service): empty."""


def _frame(prefix: str, supervisor: Supervisor) -> list[Any]:
    """[prefix, children (copied), positions of the supervisors among them, next position to
    take, next child to emit] for the walk."""
    children = list(supervisor._children.values())  # one C call: never sees the dict change
    is_supervisor = map(
        operator.is_, map(type, map(_RUNTIME, children)), itertools.repeat(Supervisor)
    )
    positions = list(itertools.compress(range(len(children)), is_supervisor))
    return [prefix, children, positions, 0, 0]


class Tree:
    """Every child below the root, parents first, children in start order (tree order), as
    read at one time, with each one's path prefix (``user/fleet/``). Columns of counters
    (`handled`, `restarts`, ...) are read on first use, one C-level pass each."""

    def __init__(self, children: list[Child], prefixes: list[str]) -> None:
        self.children = children
        self.prefixes = prefixes

    def __len__(self) -> int:
        return len(self.children)

    @functools.cached_property
    def handled(self) -> list[int]:
        """Messages each child handled (0 for supervisors and services)."""
        return list(handled(self.children))

    @functools.cached_property
    def restarts(self) -> list[int]:
        """How many times each child was restarted."""
        return list(map(_RESTARTS, self.children))

    @functools.cached_property
    def crashes(self) -> list[int]:
        """How many incarnations of each child ended with an error."""
        return list(map(_CRASHES, self.children))

    @functools.cached_property
    def depths(self) -> list[int]:
        """Messages waiting in each child's mailbox (0 for supervisors and services)."""
        return list(depths(self.children))


def handled(children: Iterable[Child]) -> Iterator[int]:
    """Messages each of `children` handled (0 for supervisors and services): C-level."""
    return map(getattr, map(_RUNTIME, children), itertools.repeat("handled"), itertools.repeat(0))


def depths(children: Iterable[Child]) -> Iterator[int]:
    """Messages waiting in each one's mailbox (0 for supervisors and services), read without
    building trio's statistics object: C-level."""
    refs = map(
        getattr, map(_RUNTIME, children), itertools.repeat("ref"), itertools.repeat(_NO_MAILBOX)
    )
    return map(len, map(_QUEUE, refs))


class KindCounts(NamedTuple):
    """The children of one kind in the tree now, and their counts summed."""

    actors: int
    handled: int
    restarts: int
    crashes: int
    mailbox_depth: int


def kinds(system: ActorSystem) -> dict[str, KindCounts]:
    """Per kind, the counts of the children in the tree now (`Lifecycle.live`, kept while an
    observer watches): C-level passes, Python work per kind, none per actor and no walk.
    Restarts and crashes are summed over the few that ever had one (`Lifecycle.troubled`)."""
    counts = {}
    lifecycle = system.lifecycle
    for kind, members in copy_items(lifecycle.live):
        children = list(members)  # keys only: one C call that makes nothing per entry
        restarts, crashes = _trouble(lifecycle.troubled.get(kind))
        counts[kind] = KindCounts(
            len(children), sum(handled(children)), restarts, crashes, sum(depths(children))
        )
    return counts


def trouble(system: ActorSystem) -> tuple[int, int]:
    """(restarts, crashes) of the children in the tree now, summed over those that ever
    restarted or crashed (`Lifecycle.troubled`, kept while an observer watches): C-level
    passes over those few."""
    restarts = crashes = 0
    for _, members in copy_items(system.lifecycle.troubled):
        more_restarts, more_crashes = _trouble(members)
        restarts, crashes = restarts + more_restarts, crashes + more_crashes
    return restarts, crashes


def _trouble(members: dict[Child, None] | None) -> tuple[int, int]:
    children = [] if members is None else list(members)  # one C call, as `kinds`
    return sum(map(_RESTARTS, children)), sum(map(_CRASHES, children))


def copy_items(table: dict[K, V]) -> list[tuple[K, V]]:
    """The entries of a live `table` that another thread changes, as one reading: its keys
    copied by one C call, then each one's value (an entry removed meanwhile is left out).

    Not ``list(table.items())``: that makes a tuple per entry, an allocation that can start a
    garbage collection, whose callbacks and finalizers run Python code, where the interpreter
    may pass to the other thread: the table changes under the copy, which then raises
    "dictionary changed size during iteration". Copying keys (or values) allocates nothing
    per entry."""
    keys = list(table)
    values = list(map(table.get, keys))
    return [(key, value) for key, value in zip(keys, values, strict=True) if value is not None]


def walk(system: ActorSystem) -> Tree:
    """The tree of `system` (from any thread: it only reads). Python work per supervisor; per
    child only C-level copies."""
    children: list[Child] = []
    prefixes: list[str] = []
    stack = [_frame("", system.root)]
    while stack:  # a loop, not recursion: any depth of nesting
        frame = stack[-1]
        prefix, kids, positions, taken, start = frame
        if taken == len(positions):  # no supervisor left among these: the rest, done
            stack.pop()
            children += kids[start:]
            prefixes += itertools.repeat(prefix, len(kids) - start)
            continue
        end = positions[taken] + 1  # up to and including the next supervisor, then below it
        frame[3], frame[4] = taken + 1, end
        children += kids[start:end]
        prefixes += itertools.repeat(prefix, end - start)
        below = kids[end - 1]
        assert type(below.runtime) is Supervisor
        stack.append(_frame(f"{prefix}{below.spec.name}/", below.runtime))
    return Tree(children, prefixes)


class Walks:
    """Walks of one system's tree, the last one reused while no child joined or left the
    tree (`Lifecycle.changes`, kept while an observer watches): a ``/status`` on a tree that
    did not change walks nothing. Each `Tree` it gives reads its counters afresh."""

    def __init__(self) -> None:
        self._last: Tree | None = None
        self._changes = -1

    def tree(self, system: ActorSystem) -> Tree:
        """The tree of `system` now (from the server's thread)."""
        lifecycle = system.lifecycle
        changes = lifecycle.changes  # read before walking: a change during it walks again
        last = self._last
        if last is None or changes != self._changes or not lifecycle.tallying:
            self._last, self._changes = walk(system), changes
            return self._last
        return Tree(last.children, last.prefixes)


def largest(values: Sequence[Any], limit: int) -> list[int]:
    """The positions of the `limit` largest of `values`, largest first, equal ones in their
    order (as ``sorted(..., reverse=True)[:limit]``): one C-level sort."""
    return sorted(range(len(values)), key=values.__getitem__, reverse=True)[:limit]
