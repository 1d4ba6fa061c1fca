"""A small supervised run: ships queue for the berths of one station, and one ship's engine fails.

Each ship asks the station for a berth with `RequestDocking`; the station answers with
`DockingPermission`: a berth, or a refusal with the estimated wait, after which the ship asks
again. Docked ships leave after a while and free their berth. One ship crashes once on the way
in; its fleet supervisor restarts it and it docks like the others. Everything runs on the
engine (actors, a supervision tree, ``ask``, timers) and in virtual time when run under a
``MockClock``.
"""

from __future__ import annotations

import collections

import attrs
import trio

import spaceactors as sa

HULL = sa.ShipSpecs(ship_class="Hauler", length=120.0, mass=1800.0, cargo_capacity=400.0)


@attrs.frozen
class Undock:
    """Ship → station: the ship has left its berth."""

    berth: int


@attrs.frozen
class _Approach:
    """Ship → itself: time to (re)request a berth."""


@attrs.frozen
class _Depart:
    """Ship → itself: time to leave the berth."""


@attrs.frozen
class DockingReport:
    """What happened in one run of the scenario."""

    ships: int
    berths: int
    dockings: int
    refusals: int
    crashes: int
    dead_letters: int
    simulated_seconds: float
    log: tuple[str, ...]


class Station(sa.Actor):
    """Grants free berths; refuses with an estimate of the wait when all are taken."""

    def __init__(self, berths: int, stay: float, expected: int, all_left: trio.Event) -> None:
        self.free = collections.deque(range(berths))
        self.stay = stay
        self.expected = expected
        self.all_left = all_left
        self.granted = 0
        self.refused = 0

    async def handle(self, message: object) -> object:
        if isinstance(message, sa.ShipToStation) and isinstance(message.content, sa.RequestDocking):
            if self.free:
                self.granted += 1
                berth = self.free.popleft()
                return sa.DockingPermission(granted=True, berth_assignment=berth)
            self.refused += 1
            return sa.DockingPermission(granted=False, estimated_wait=self.stay)
        if isinstance(message, Undock):
            self.free.append(message.berth)
            self.expected -= 1
            if not self.expected:
                self.all_left.set()
            return None
        if message == "totals":
            return self.granted, self.refused
        return await super().handle(message)


class Ship(sa.Actor):
    """Asks for a berth until it gets one, stays a while, leaves. May fail once on approach."""

    def __init__(
        self, number: int, station: sa.ActorRef, stay: float, fails: bool, log: list[str]
    ) -> None:
        self.number = number
        self.station = station
        self.stay = stay
        self.fails = fails
        self.log = log

    async def on_start(self) -> None:
        if self.ctx.restarts:
            now = trio.current_time()
            self.log.append(f"{now:7.1f}s {self.ctx.name} restarted by its supervisor")
        self.ctx.after(float(self.number), _Approach())

    async def handle(self, message: object) -> object:
        now = trio.current_time()
        if isinstance(message, _Approach):
            if self.fails and self.ctx.restarts == 0:
                self.log.append(f"{now:7.1f}s {self.ctx.name} engine failure")
                raise RuntimeError(f"engine failure on {self.ctx.name}")
            request = sa.ShipToStation(self.number, 0, sa.RequestDocking(HULL))
            answer = await self.station.ask(request, timeout=5.0)
            if answer.granted:
                self.berth = answer.berth_assignment
                self.log.append(f"{now:7.1f}s {self.ctx.name} docked at berth {self.berth}")
                self.ctx.after(self.stay, _Depart())
            else:
                self.ctx.after(answer.estimated_wait, _Approach())
        elif isinstance(message, _Depart):
            await self.station.send(Undock(self.berth))
            self.log.append(f"{now:7.1f}s {self.ctx.name} left berth {self.berth}")
            self.ctx.stop()
        return None


async def run_docking(
    *, ships: int = 6, berths: int = 2, stay: float = 30.0, seed: int = 0
) -> DockingReport:
    """Run the scenario until every ship has docked and left; returns what happened."""
    log: list[str] = []
    all_left = trio.Event()
    start = trio.current_time()
    async with sa.open_system(seed=seed) as system:
        station = await system.spawn(Station, berths, stay, ships, all_left, name="ceres")
        fleet = await system.spawn_supervisor("fleet", max_restarts=3, within=60.0)
        for number in range(1, ships + 1):
            spec = sa.ChildSpec(
                f"ship-{number}",
                Ship,
                args=(number, station, stay, number == 2, log),
                restart=sa.Restart.TRANSIENT,
            )
            await fleet.start_child(spec)
        await all_left.wait()
        granted, refused = await station.ask("totals")
        return DockingReport(
            ships=ships,
            berths=berths,
            dockings=granted,
            refusals=refused,
            crashes=system.dead_letters.by_reason[sa.DeadLetterReason.CRASHED_WHILE_HANDLING],
            dead_letters=system.dead_letters.total,
            simulated_seconds=trio.current_time() - start,
            log=tuple(log),
        )
