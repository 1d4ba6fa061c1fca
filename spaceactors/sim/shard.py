"""A simulation sharded across the nodes of a cluster (``spaceactors run --nodes N``).

The world is split by sector. Sectors that a ship's route links go to the same node, so a
ship and every station it trades with are simulated together; the groups of linked sectors
are dealt to the nodes by their number of ships, largest first, each to the node with the
fewest so far (`plan`). Every node runs the same scenario build with the same seed: each
spawns the ships and stations of its own sectors, and holds remote refs to the others
(`Placement`). In virtual time the nodes make each world tick together, behind a barrier
(`Placement.lockstep`), and the run's summary is the sum of the nodes' (`merge`): the same
for the same seed and the same number of nodes.

What crosses groups of sectors does not happen in a sharded run: a ship senses and rescues
only the ships of its own node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import attrs
import trio

from spaceactors.codec import default_codec
from spaceactors.control import ActorState, ActorStatus
from spaceactors.ref import ActorRef
from spaceactors.sim.scenario import TOP_RESTARTERS, Restarter, Summary

if TYPE_CHECKING:
    from spaceactors.sim.world import World

BARRIER_TIMEOUT = 30.0
"""Real seconds a node waits at a tick's barrier for the others before the run fails."""


@attrs.frozen
class RunShard:
    """Run one node's share of a scenario (asked of a worker node's ``worker.NAME`` actor).

    Attributes:
        run: the run's id (its barrier keys).
        scenario: a shipped scenario's name or a scenario file's path.
        seed: the run's seed.
        duration: the run's length in simulated seconds (None: the scenario's own).
        index: this share's number, from 0.
        sectors: sector -> the share that simulates it, for every sector of the run.
        nodes: the node name each share's simulation joins the cluster as, by share number.
        gc: the command's memory policy for the share (``--gc``): "tuned"
            (`spaceactors.cli.gcpolicy.TunedGC`, as a run on one node) or "python".
        coordinator: the node of the command that runs the scenario: when it is gone, the
            run is halted ("": none to watch).
    """

    run: str
    scenario: str
    seed: int
    duration: float | None
    index: int
    sectors: dict[str, int]
    nodes: tuple[str, ...]
    gc: str = "tuned"
    coordinator: str = ""


@attrs.frozen
class CheckShard:
    """Check the expectations of this worker's share of the run `run` on the whole run:
    its summary (`summary`, plain data), and every ship and station in ``world.ships`` and
    ``world.stations``, those of other shares as remote refs whose ``status()`` tells their
    restarts. The answer is ``[[description, held, why], ...]``; an expectation holds if it
    holds on every share (`verdicts`)."""

    run: str
    summary: dict[str, Any]
    restarts: dict[str, tuple[int, str | None]]
    """Every ship and station that restarted, on any share: (restarts, last error)."""


default_codec.register(RunShard, tag="spaceactors.RunShard")
default_codec.register(CheckShard, tag="spaceactors.CheckShard")


class Placement:
    """Which node simulates what, as a world builds (`World.placement`)."""

    def __init__(
        self,
        index: int,
        sectors: dict[str, int],
        nodes: Sequence[str],
        run: str,
        halt: Callable[[], None] | None = None,
    ) -> None:
        self.index = index
        self.sectors = sectors
        self.nodes = tuple(nodes)
        self.run = run
        self.halt = halt
        """Called when the share stops early (the run's ``stop``): a node did not come to a
        barrier, or the command raised the halt named `run` (Ctrl-C): then every share
        stops at the same tick."""
        self.failure: str | None = None
        """Why this share stopped early: a node did not reach a tick's barrier."""
        self._ticks = 0

    def _owner(self, sector: str) -> int:
        return self.sectors.get(sector, 0)  # a sector the plan never saw: the first node's

    def station_here(self, name: str, sector: str) -> bool:
        """Is the station `name` (in `sector`) simulated by this node?"""
        return self._owner(sector) == self.index

    def ship_here(self, name: str, home: str, route: Sequence[str]) -> bool:
        """Is the ship `name` (home sector `home`, its route's sectors) simulated here?"""
        return self._owner(home) == self.index

    def ref(self, world: World, name: str, sector: str) -> ActorRef:
        """A ref to `name`, which the node of `sector` simulates."""
        node = world.system.node
        assert node is not None, "a sharded world runs in a system that is a cluster's node"
        return node.remote(name, self.nodes[self._owner(sector)])

    async def lockstep(self, world: World) -> None:
        """Wait until every node has reached this tick (virtual time stands still meanwhile:
        the wait is on the broker, in real time), and take what they sent before it."""
        node = world.system.node
        assert node is not None, "a sharded world runs in a system that is a cluster's node"
        key = f"{self.run}:{self._ticks}"
        try:
            halted = await node.barrier(key, len(self.nodes), BARRIER_TIMEOUT, halt=self.run)
        except TimeoutError as exc:  # a node died: this share stops, saying so (no retry)
            self.failure = f"at tick {self._ticks}: {exc}"
            halted = True
        if halted:  # a node died, or the command halted the run (all stop before this tick)
            if self.halt is not None:
                self.halt()
            await trio.sleep_forever()
        self._ticks += 1


class Survey(Placement):
    """A placement that simulates nothing and notes the layout, for `plan`: the coordinator
    builds the scenario once with it."""

    def __init__(self) -> None:
        super().__init__(-1, {}, (), "survey")
        self.order: list[str] = []  # sectors, as first seen
        self.ships: dict[str, int] = {}  # sector -> ships based there
        self.links: list[tuple[str, ...]] = []  # the sectors each ship's route links

    def _seen(self, sector: str) -> None:
        if sector not in self.ships:
            self.ships[sector] = 0
            self.order.append(sector)

    def station_here(self, name: str, sector: str) -> bool:
        self._seen(sector)
        return False

    def ship_here(self, name: str, home: str, route: Sequence[str]) -> bool:
        self._seen(home)
        self.ships[home] += 1
        linked = tuple(dict.fromkeys((home, *route)))
        if len(linked) > 1:
            self.links.append(linked)
        return False

    def ref(self, world: World, name: str, sector: str) -> ActorRef:
        return cast(ActorRef, None)  # a survey's world never runs

    async def lockstep(self, world: World) -> None:
        raise AssertionError("a survey never ticks")


def plan(survey: Survey, nodes: int) -> dict[str, int]:
    """Deal the surveyed sectors to `nodes` shares: linked sectors together, the groups by
    their ships, largest first, each to the share with the fewest ships so far (ties: the
    lower share). Deterministic: the same survey gives the same plan."""
    parent = {sector: sector for sector in survey.order}

    def root(sector: str) -> str:
        while parent[sector] != sector:
            parent[sector] = parent[parent[sector]]
            sector = parent[sector]
        return sector

    for linked in survey.links:
        for other in linked[1:]:
            a, b = root(linked[0]), root(other)
            if a != b:
                first, second = sorted((a, b), key=survey.order.index)
                parent[second] = first
    groups: dict[str, list[str]] = {}
    for sector in survey.order:
        groups.setdefault(root(sector), []).append(sector)
    sized = sorted(
        groups.values(),
        key=lambda group: (-sum(survey.ships[s] for s in group), survey.order.index(group[0])),
    )
    load = [0] * nodes
    owner: dict[str, int] = {}
    for group in sized:
        share = min(range(nodes), key=lambda i: (load[i], i))
        load[share] += sum(survey.ships[s] for s in group)
        for sector in group:
            owner[sector] = share
    return owner


_SUMMED = (
    "ships", "stations", "messages", "dockings", "refusals", "evictions", "trades",
    "distress_calls", "rescues", "unanswered", "hazard_entries", "fuel_exhausted", "restarts",
    "dead_letters", "ship_updates", "ships_docked", "reliable_sends", "unheard_publishes",
)  # fmt: skip
_SUMMED_FLOATS = ("traded_units", "cargo_imbalance", "cargo_units")
_LONGEST = ("max_answer_time", "max_rescue_time", "longest_wait")


def merge(parts: Sequence[Summary]) -> Summary:
    """The summary of a sharded run: the shares' counts summed, their longest times the
    longest, the top restarters of all; expectations are left to check on it."""
    first = parts[0]
    fields: dict[str, Any] = {}
    for name in _SUMMED:
        fields[name] = sum(getattr(part, name) for part in parts)
    for name in _SUMMED_FLOATS:
        fields[name] = round(sum(getattr(part, name) for part in parts), 6)
    fields["traded_units"] = round(fields["traded_units"], 3)
    for name in _LONGEST:
        values = [v for v in (getattr(part, name) for part in parts) if v is not None]
        fields[name] = max(values, default=None)
    fields["messages_by_type"] = _sum_maps(part.messages_by_type for part in parts)
    fields["dead_letters_by_reason"] = _sum_maps(part.dead_letters_by_reason for part in parts)
    restarters = sorted(
        (r for part in parts for r in part.top_restarters), key=lambda r: (-r.restarts, r.name)
    )
    stopped = [part.interrupted_at for part in parts if part.interrupted_at is not None]
    return attrs.evolve(
        first,
        **fields,
        wall_seconds=max(part.wall_seconds for part in parts),
        top_restarters=tuple(restarters[:TOP_RESTARTERS]),
        expectations=(),
        interrupted_at=min(stopped) if stopped else None,
        trace_hash=None,
    )


def _sum_maps(maps: Iterable[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in maps:
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
    return dict(sorted(total.items()))


def whole_world(world: World, restarts: dict[str, tuple[int, str | None]]) -> None:
    """Show `world` the ships and stations of the other shares too, after the run, as refs
    whose ``status()`` tells their `restarts` (what the shares reported), for its checks."""
    for name, ref in world.elsewhere_ships.items():
        world.ships[name] = ref
    world.stations.update(world.elsewhere)
    for name, ref in [
        *world.elsewhere_ships.items(),
        *((n, s.ref) for n, s in world.elsewhere.items()),
    ]:
        count, error = restarts.get(name, (0, None))
        ref._cell.last_status = ActorStatus(  # type: ignore[attr-defined]
            1, name, ActorState.RUNNING, 0, ref.capacity, count, 0, error
        )


def restarted(world: World) -> dict[str, tuple[int, str | None]]:
    """The ships and stations of this share that restarted: (restarts, last error)."""
    refs = [*world.ships.values(), *(site.ref for site in world.stations.values())]
    return {
        ref.name: (ref._cell.restarts, ref._cell.last_error) for ref in refs if ref._cell.restarts
    }


def verdicts(
    per_share: Sequence[Sequence[tuple[str, bool, str]]],
) -> tuple[tuple[str, bool, str], ...]:
    """Each expectation held if it held on every share (the first failure says why)."""
    checked: dict[str, tuple[str, bool, str]] = {}
    for share in per_share:
        for description, held, why in share:
            known = checked.get(description)
            if known is None or (known[1] and not held):
                checked[description] = (description, held, why)
    return tuple(checked.values())


__all__ = [
    "CheckShard",
    "Placement",
    "Restarter",
    "RunShard",
    "Survey",
    "merge",
    "plan",
    "restarted",
    "verdicts",
    "whole_world",
]
