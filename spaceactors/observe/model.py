"""The read model: what the observation server shows, taken from the engine's own counters.

`take` reads the tree (`spaceactors.observe.tree`: flat lists and columns made by C-level
calls) and the system's tables, each copied by one C-level call, in the server's own thread
while the run goes on: each count is exact, the whole is not one instant, and an answer never
waits for the run's longest step. A `Row` (names, paths, states as text) is made only for the
actors a document shows: ``/status?limit=50`` on 10,000 actors makes 50, and its sums and
orderings run no Python bytecode per actor.
"""

from __future__ import annotations

import functools
import math
import time
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from spaceactors.cell import ActorCell
from spaceactors.clocks import RunControl
from spaceactors.control import ActorState
from spaceactors.lifecycle import kind_of
from spaceactors.observe.rates import NO_RATES, RateView
from spaceactors.observe.tree import (
    KindCounts,
    Tree,
    Walks,
    copy_items,
    kinds,
    largest,
    trouble,
    walk,
)

if TYPE_CHECKING:
    from spaceactors.children import Child
    from spaceactors.system import ActorSystem

STATUS_VERSION = 1
SORTS = ("restarts", "mailbox", "handled", "rate")
DEFAULT_LIMIT = 500
MAX_LIMIT = 1_000_000


class Row(NamedTuple):
    """One actor, supervisor or service in the tree, as copied at one instant."""

    path: str
    name: str
    kind: str
    supervisor: bool
    state: str
    mailbox_depth: int
    mailbox_capacity: int
    handled: int
    restarts: int
    crashes: int
    last_crash: tuple[float, str] | None


class Snapshot:
    """Everything the server shows, read in the server's thread (`take`). The tree and the
    per-kind counts are read when first asked for: ``/metrics`` never walks the tree, and
    ``/status`` never sums by kind."""

    def __init__(
        self,
        system: ActorSystem,
        *,
        clock: str,
        now: float,
        sim_time: float,
        speed: float | None,
        paused: bool,
        sim: dict[str, float] | None,
        walks: Walks | None = None,
    ) -> None:
        self._system = system
        self._walks = walks
        self.clock = clock
        self.now = now  # the run's clock
        self.sim_time = sim_time
        self.wall_time = time.time()
        self.elapsed = self.wall_time - system.opened_wall
        self.speed = speed
        self.paused = paused
        self.sim = sim
        # Each live table copied by one C-level call (the system's thread may add to it
        # meanwhile), then read at leisure.
        self.retired = {kind: attrs.evolve(t) for kind, t in copy_items(system.lifecycle.retired)}
        letters = system.dead_letters
        self.dead_letters = letters.total
        self.dead_letters_by_reason = {
            reason.value: n for reason, n in copy_items(letters.by_reason)
        }
        reliable = system.reliable.state
        self.reliable = {
            "sent": reliable.book.issued - reliable.withdrawn,
            "acknowledged": reliable.acknowledged,
            "retries": reliable.retried,
            "failures": reliable.failed,
            "duplicates_suppressed": reliable.duplicates,
            "pending": len(reliable.pending),
        }
        router = system.router.state
        self.router = {
            "failed_deliveries": router.failed,
            "dropped": router.dropped,
            "publishes_without_subscribers": router.unheard,
        }
        self.delivered_by_type = {cls.__name__: n for cls, n in copy_items(router.delivered)}

    @property
    def offset(self) -> float:
        """The run's clock less sim time: subtract it from a time on the run's clock (a
        crash's) to show it in sim seconds."""
        return self.now - self.sim_time

    @functools.cached_property
    def tree(self) -> Tree:
        """Every child, in tree order, with its counters' columns."""
        return walk(self._system) if self._walks is None else self._walks.tree(self._system)

    @functools.cached_property
    def trouble(self) -> tuple[int, int]:
        """(restarts, crashes) of the children in the tree now: summed over the few that had
        any while an observer tallies (`Lifecycle.troubled`), else over the tree."""
        if self._system.lifecycle.tallying:
            return trouble(self._system)
        return sum(self.tree.restarts), sum(self.tree.crashes)

    @functools.cached_property
    def kinds(self) -> dict[str, KindCounts]:
        """Per kind, the counts of the children in the tree now (retired ones not included)."""
        return kinds(self._system)


def take(system: ActorSystem, control: RunControl, walks: Walks | None = None) -> Snapshot:
    """Read the system's counters (from any thread: it only reads, each table copied by one
    C-level call, so none can change under it); its tree from `walks` if given (a server
    keeps one: an unchanged tree is not walked again)."""
    now = control.now()
    report = system.counters.get("sim")
    sim = None if report is None else dict(report())
    return Snapshot(
        system,
        clock=control.kind,
        now=now,
        sim_time=sim_time(system, now) if sim is None else sim.get("sim_time", now),
        speed=control.speed,
        paused=control.paused,
        sim=sim,
        walks=walks,
    )


def sim_time(system: ActorSystem, now: float) -> float:
    """The simulated time at `now`: the running simulation's own, else since the system
    opened (from any thread)."""
    report = system.counters.get("sim")
    if report is not None:
        value = report().get("sim_time")
        if value is not None:
            return value
    return now - system.opened_at


def copy(prefix: str, child: Child) -> tuple[Any, ...]:
    """The counters of one child, as they stand (`row` makes its `Row`)."""
    runtime = child.runtime
    if type(runtime) is ActorCell:
        return (
            prefix,
            child,
            runtime.state,
            runtime._closing,
            len(runtime.ref._queue),
            runtime.handled,
            runtime.restarts,
            child.crashes,
            child.last_crash,
        )
    if child.running:
        state = "running"
    elif runtime.alive and child.incarnation and child.wanted:
        state = "restarting"
    else:
        state = "stopped"
    return (prefix, child, state, False, 0, 0, runtime.restarts, child.crashes, child.last_crash)


# Where `copy` puts each counter in an actor's tuple.
PREFIX, CHILD, STATE, CLOSING, DEPTH, HANDLED, RESTARTS, CRASHES, LAST_CRASH = range(9)
Facts = dict[int, tuple[str, bool, int]]
"""id(spec) -> (kind, is a supervisor, mailbox capacity): valid while the snapshot that holds
the specs lives (one per document made)."""


def spec_facts(spec: Any, facts: Facts) -> tuple[str, bool, int]:
    """(kind, is a supervisor, mailbox capacity) of a child spec, worked out once per spec."""
    known = facts.get(id(spec))
    if known is None:
        known = facts[id(spec)] = (
            kind_of(spec),
            hasattr(spec, "strategy"),
            getattr(spec, "mailbox_size", 0),
        )
    return known


def row(copied: tuple[Any, ...], offset: float = 0.0) -> Row:
    """The `Row` of one copied actor (in the server's thread); its last crash's time on the
    run's clock less `offset`: in sim seconds, as ``sim_time`` (`Snapshot.offset`)."""
    prefix, child, state, closing, depth, handled, restarts, crashes, crash = copied
    if crash is not None:
        crash = (crash[0] - offset, crash[1])
    spec = child.spec
    kind, supervisor, capacity = spec_facts(spec, {})
    if isinstance(state, ActorState):
        alive = state is not ActorState.STOPPED
        state = (ActorState.STOPPING if closing and alive else state).value
        depth = depth if alive else 0
    return Row(
        f"{prefix}{spec.name}",
        spec.name,
        kind,
        supervisor,
        state,
        depth,
        capacity,
        handled,
        restarts,
        crashes,
        crash,
    )


# --- what the server thread makes of a snapshot ------------------------------------------------


def row_json(row: Row, rate: float | None = None) -> dict[str, Any]:
    """One actor as ``/status`` shows it."""
    crash = row.last_crash
    data: dict[str, Any] = {
        "path": row.path,
        "name": row.name,
        "kind": row.kind,
        "supervisor": row.supervisor,
        "state": row.state,
        "mailbox_depth": row.mailbox_depth,
        "mailbox_capacity": row.mailbox_capacity,
        "handled": row.handled,
        "restarts": row.restarts,
        "crashes": row.crashes,
        "last_crash": None if crash is None else {"time": crash[0], "reason": crash[1]},
    }
    if rate is not None:
        data["rate"] = rate
    return data


def totals(snapshot: Snapshot) -> dict[str, int]:
    """The whole system's counts (actors that left the tree included in the sums)."""
    tree = snapshot.tree
    retired = list(snapshot.retired.values())
    restarts, crashes = snapshot.trouble
    return {
        "actors": len(tree),
        "messages_handled": sum(tree.handled) + sum(t.handled for t in retired),
        "restarts": restarts + sum(t.restarts for t in retired),
        "crashes": crashes + sum(t.crashes for t in retired),
        "dead_letters": snapshot.dead_letters,
        "reliable_retries": snapshot.reliable["retries"],
        "reliable_failures": snapshot.reliable["failures"],
    }


def status(
    snapshot: Snapshot,
    *,
    limit: int = DEFAULT_LIMIT,
    sort: str | None = None,
    rates: RateView = NO_RATES,
) -> dict[str, Any]:
    """The ``/status`` document (shape: docs/observing.md, "HTTP API").

    `rates`: messages handled per second of the run's clock, between this snapshot and the one
    before (`spaceactors.observe.rates.Rates`); `sort` one of `SORTS` (descending), else tree
    order.
    """
    tree = snapshot.tree
    shown = order(tree, sort, limit, rates)
    rate = rates.at(tree)
    offset = snapshot.offset
    return {
        "version": STATUS_VERSION,
        "clock": snapshot.clock,
        "sim_time": _finite(snapshot.sim_time),
        "wall_time": snapshot.wall_time,
        "elapsed": snapshot.elapsed,
        "speed": snapshot.speed,
        "paused": snapshot.paused,
        "totals": totals(snapshot),
        "sim": None if snapshot.sim is None else {k: _finite(v) for k, v in snapshot.sim.items()},
        "actors": [row_json(row(_shown(tree, i, sort), offset), rate(i)) for i in shown],
        "actors_total": len(tree),
    }


def _shown(tree: Tree, position: int, sort: str | None) -> tuple[Any, ...]:
    """The copied counters of the child at `position`, its counts as the order of the
    document and its rate read them (so that a sorted list is sorted, and a rate is the
    change of the count shown)."""
    copied = list(copy(tree.prefixes[position], tree.children[position]))
    copied[HANDLED] = tree.handled[position]
    if sort == "restarts":
        copied[RESTARTS] = tree.restarts[position]
        copied[CRASHES] = tree.crashes[position]
    if sort == "mailbox":
        copied[DEPTH] = tree.depths[position]
    return tuple(copied)


def order(tree: Tree, sort: str | None, limit: int, rates: RateView) -> list[int] | range:
    """The positions in `tree` of the `limit` children a document shows: by `sort`
    (descending, equal ones in tree order), else the first in tree order."""
    if sort not in SORTS:
        return range(min(limit, len(tree)))
    if sort == "restarts":
        column: list[Any] = list(zip(tree.restarts, tree.crashes, strict=True))
    elif sort == "mailbox":
        column = tree.depths
    elif sort == "handled":
        column = tree.handled
    else:
        column = rates.column(tree)
    return largest(column, limit)


def _finite(value: float) -> float | None:
    """JSON has no nan or infinity: those are null."""
    return value if math.isfinite(value) else None
