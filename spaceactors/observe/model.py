"""The read model: what the observation server shows, taken from the engine's own counters.

`take` copies each actor's counters into a plain tuple, walking the tree once. The server runs
it in its own thread while the run goes on (each count is exact; the whole is not one
instant), so an answer never waits for the run's longest step; the rest (sums, sorting,
limiting, JSON, per-kind sums for ``/metrics``) is done there too. A `Row` (names, paths,
states as text) is made only for the actors a document shows: ``/status?limit=50`` on 10,000
actors makes 50.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs

from spaceactors.cell import ActorCell
from spaceactors.clocks import RunControl
from spaceactors.control import ActorState
from spaceactors.lifecycle import Tally, kind_of
from spaceactors.supervisor import Supervisor

if TYPE_CHECKING:
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


class Snapshot(NamedTuple):
    """Everything the server shows, copied in the system's thread at one instant."""

    @property
    def offset(self) -> float:
        """The run's clock less sim time: subtract it from a time on the run's clock (a
        crash's) to show it in sim seconds."""
        return self.now - self.sim_time

    clock: str
    now: float  # the run's clock
    sim_time: float
    wall_time: float
    elapsed: float
    speed: float | None
    paused: bool
    rows: list[tuple[Any, ...]]  # each actor's copied counters (`row` makes its `Row`)
    retired: dict[str, Tally]
    dead_letters: int
    dead_letters_by_reason: dict[str, int]
    reliable: dict[str, int]
    router: dict[str, int]
    delivered_by_type: dict[str, int]
    sim: dict[str, float] | None


def take(system: ActorSystem, control: RunControl) -> Snapshot:
    """Copy the system's counters (from any thread: it only reads).

    Raises:
        RuntimeError: a table changed size while it was read (read again).
    """
    now = control.now()
    rows = _copy(system)
    reliable = system.reliable.state
    router = system.router.state
    report = system.counters.get("sim")
    sim = None if report is None else dict(report())
    return Snapshot(
        clock=control.kind,
        now=now,
        sim_time=sim_time(system, now) if sim is None else sim.get("sim_time", now),
        wall_time=time.time(),
        elapsed=time.time() - system.opened_wall,
        speed=control.speed,
        paused=control.paused,
        rows=rows,
        retired={kind: attrs.evolve(t) for kind, t in system.lifecycle.retired.items()},
        dead_letters=system.dead_letters.total,
        dead_letters_by_reason={
            reason.value: n for reason, n in system.dead_letters.by_reason.items()
        },
        reliable={
            "sent": reliable.book.issued - reliable.withdrawn,
            "acknowledged": reliable.acknowledged,
            "retries": reliable.retried,
            "failures": reliable.failed,
            "duplicates_suppressed": reliable.duplicates,
            "pending": len(reliable.pending),
        },
        router={
            "failed_deliveries": router.failed,
            "dropped": router.dropped,
            "publishes_without_subscribers": router.unheard,
        },
        delivered_by_type={cls.__name__: n for cls, n in router.delivered.items()},
        sim=sim,
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


def _copy(system: ActorSystem) -> list[tuple[Any, ...]]:
    """Every child below the root, parents first, children in start order: each one's
    counters copied as they stand, with as little work as can be (in the system's thread; the
    rest is done by `row`, in the server's)."""
    copied: list[tuple[Any, ...]] = []
    append = copied.append
    stack: list[tuple[str, Any]] = [("", c) for c in reversed(list(system.root._children.values()))]
    pop, extend = stack.pop, stack.extend
    while stack:  # a loop, not recursion: any depth of nesting
        prefix, child = pop()
        runtime = child.runtime
        if type(runtime) is ActorCell:
            append(
                (
                    prefix,
                    child,
                    runtime.state,
                    runtime._closing,
                    # the mailbox's length, read without building trio's statistics object
                    len(runtime.ref._receive._state.data),
                    runtime.handled,
                    runtime.restarts,
                    child.crashes,
                    child.last_crash,
                )
            )
            continue
        if child.running:
            state = "running"
        elif runtime.alive and child.incarnation and child.wanted:
            state = "restarting"
        else:
            state = "stopped"
        append(
            (prefix, child, state, False, 0, 0, runtime.restarts, child.crashes, child.last_crash)
        )
        if type(runtime) is Supervisor:
            below = f"{prefix}{child.spec.name}/"
            extend((below, c) for c in reversed(list(runtime._children.values())))
    return copied


# Where `_copy` puts each counter in an actor's tuple.
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


def kind(copied: tuple[Any, ...], facts: Facts) -> str:
    """The kind (class name) of a copied actor."""
    return spec_facts(copied[CHILD].spec, facts)[0]


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
    rows = snapshot.rows
    retired = snapshot.retired.values()
    return {
        "actors": len(rows),
        "messages_handled": sum(r[HANDLED] for r in rows) + sum(t.handled for t in retired),
        "restarts": sum(r[RESTARTS] for r in rows) + sum(t.restarts for t in retired),
        "crashes": sum(r[CRASHES] for r in rows) + sum(t.crashes for t in retired),
        "dead_letters": snapshot.dead_letters,
        "reliable_retries": snapshot.reliable["retries"],
        "reliable_failures": snapshot.reliable["failures"],
    }


def status(
    snapshot: Snapshot,
    *,
    limit: int = DEFAULT_LIMIT,
    sort: str | None = None,
    rates: Mapping[Any, float] | None = None,
) -> dict[str, Any]:
    """The ``/status`` document (shape: docs/observing.md, "HTTP API").

    `rates`: messages handled per second of the run's clock, by child record (the server
    keeps them between two snapshots); `sort` one of `SORTS` (descending), else tree order.
    """
    copied = snapshot.rows
    rates = rates or {}
    if sort == "restarts":
        copied = sorted(copied, key=lambda r: (r[RESTARTS], r[CRASHES]), reverse=True)
    elif sort == "mailbox":
        copied = sorted(copied, key=lambda r: r[DEPTH], reverse=True)
    elif sort == "handled":
        copied = sorted(copied, key=lambda r: r[HANDLED], reverse=True)
    elif sort == "rate":
        copied = sorted(copied, key=lambda r: rates.get(r[CHILD], 0.0), reverse=True)
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
        "actors": [
            row_json(row(r, snapshot.offset), rates.get(r[CHILD], 0.0)) for r in copied[:limit]
        ],
        "actors_total": len(snapshot.rows),
    }


def _finite(value: float) -> float | None:
    """JSON has no nan or infinity: those are null."""
    return value if math.isfinite(value) else None
