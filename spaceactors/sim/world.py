"""The world: the bodies, stations, sectors, hazards and weather of one simulation, and the tick
service that drives its physics at a fixed step in simulation time.

The world holds what must outlive any actor: each ship's body (where it is: a row of the
fleet's arrays, `Fleet`, seen through a `Body`) and its last consistent `ShipRecord` (what it is
doing, carrying and owns), so a crashed ship restarts where it was. It runs as the ``world``
service under the supervision tree; each tick (`spaceactors.sim.tick`) it runs the scenario's
events that are due, moves the whole fleet at once, and tells the ships concerned what their
sensors see: arrival, an empty tank, entering or leaving a hazard.

Sectors are named regions; each has topics ``hazard.<sector>``, ``weather.<sector>`` and
``distress.<sector>``, and each station in it publishes its market on
``market.<sector>.<station>`` (so ``market.<sector>.*`` hears the whole sector's markets, and a
ship listens only to the markets on its route, from its first request for a berth at each).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import trio

from spaceactors import messages as m
from spaceactors.errors import CheckpointError
from spaceactors.ref import ActorRef
from spaceactors.sim import arguments
from spaceactors.sim import events as ev
from spaceactors.sim.arguments import ScenarioError as ScenarioError
from spaceactors.sim.expectations import Check
from spaceactors.sim.expectations import Expectation as Expectation
from spaceactors.sim.fleet import Fleet
from spaceactors.sim.market import Market
from spaceactors.sim.physics import Body, Point
from spaceactors.sim.physics import formation_offset as formation_offset
from spaceactors.sim.records import Hazard, Metrics, StationSite
from spaceactors.sim.records import ShipMode as ShipMode
from spaceactors.sim.records import ShipRecord as ShipRecord
from spaceactors.sim.tick import ARRIVAL_RADIUS as ARRIVAL_RADIUS
from spaceactors.sim.tick import ARRIVAL_SPEED as ARRIVAL_SPEED
from spaceactors.sim.tick import run_tick
from spaceactors.specs import ServiceSpec

if TYPE_CHECKING:
    from spaceactors.sim.shard import Placement
    from spaceactors.sim.station import StationState
    from spaceactors.system import ActorSystem

FORMATION_CRUISE = 0.8  # a leader's share of its top speed, so that followers can close up


class World:
    """One simulation: what outlives any actor (each ship's body and record, each station's
    state) and the tick service that moves the bodies every `step` seconds.

    `run_scenario` creates it and hands it to the scenario function, which builds the run with
    `add_station`, `add_ship`, `at` (events at simulation times) and `expect` (what must hold at
    the end). Positions are metres, times seconds of simulation time.

    Args:
        system: the actor system the ships and stations run in.
        step: seconds of simulation time between two ticks.

    Raises:
        ScenarioError: `step` is not a positive, finite number of seconds.
    """

    def __init__(
        self, system: ActorSystem, *, step: float = 1.0, duration: float = math.inf
    ) -> None:
        step = arguments.world_step(step)
        self.system = system
        self._clock = trio.lowlevel.current_clock()  # the run's, read by observers' threads too
        self.finished = trio.Event()
        """Set once the world has made its last tick (before `ends_at`)."""
        self.first_tick: float | None = None
        """When the first tick is due (None: as the service starts). A wall-clock run sets it
        to the start of simulated time, so that a world that starts late still makes every
        tick, late, rather than none."""
        self.step = step
        self.duration = duration
        """How long this run lasts, in seconds of simulation time (what `--duration` says,
        else the scenario's own): expectations scale with it (`sim.scaled`)."""
        self.fleet = Fleet()
        """Every ship's body here, as arrays the tick steps at once (`Fleet`)."""
        self.bodies: dict[str, Body] = {}
        """Each ship's body (a view of its row of `fleet`), by name."""
        self.records: dict[str, ShipRecord] = {}
        self.ships: dict[str, ActorRef] = {}
        self.stations: dict[str, StationSite] = {}
        self.station_states: dict[str, StationState] = {}
        self.hazards: list[Hazard] = []
        self.storms: dict[str, float] = {}  # sector -> until
        self.metrics = Metrics()
        self.expectations: list[Expectation] = []
        self.event_errors: list[str] = []
        self.trajectories: dict[str, list[tuple[float, float, float]]] | None = None
        self._events: list[tuple[float, int, Callable[[], Awaitable[None] | None]]] = []
        self._sequence = itertools.count()
        self.inside: dict[str, str] = {}  # ship -> hazard it is in
        self.intercepts: dict[str, str] = {}  # ship -> the ship it is flying alongside
        self.sectors: dict[str, int] = {}  # sector -> its number in `fleet.sector`
        self.restarted: dict[str, ActorRef] = {}
        """The ships and stations that have restarted (or crashed) at least once: the
        run's restarts are summed over these few (`restarts`), not over every actor."""
        self.trade_ids = itertools.count(1)
        self.started = 0.0
        self.next_tick: float | None = None
        """When the tick service makes its next tick (None: not started yet)."""
        self.build_from = 0
        """The sequence number of the scenario build's first event."""
        self.declared_events = 0
        """How many events the scenario's build scheduled (those after it: during the run)."""
        self.declaring = False
        """True while a resumed run replays the scenario's build to learn its events and
        expectations (`spaceactors.sim.persist`): what would change the world (adding a ship,
        a hazard...) changes nothing, as the checkpoint holds the world."""
        self.ends_at = math.inf
        """No tick at or after this time (the runner sets it, so the last tick is certain)."""
        self.placement: Placement | None = None
        """In a run sharded across nodes (``spaceactors run --nodes``): which sectors this
        node simulates (`spaceactors.sim.shard`); None: all of them."""
        self.elsewhere: dict[str, StationSite] = {}
        """Stations that another node of a sharded run simulates (their refs are remote)."""
        self.elsewhere_ships: dict[str, ActorRef] = {}
        """Ships that another node of a sharded run simulates."""
        system.counters["sim"] = self.counters

    def counters(self) -> dict[str, float]:
        """What the simulation has counted so far, for observers (``/metrics``, ``/status``):
        ship updates, dockings, trades, rescues, distress calls, ticks, ships, stations, and
        ``sim_time``, the seconds of simulated time since the run started. It only reads, so
        an observer may call it from its own thread."""
        metrics = self.metrics
        return {
            "ship_updates": metrics.ship_updates,
            "dockings": metrics.dockings,
            "trades": metrics.trades,
            "rescues": len(metrics.rescue_times),
            "distress_calls": metrics.distress_calls,
            "ticks": metrics.ticks,
            "ships": len(self.ships),
            "stations": len(self.stations),
            "sim_time": min(self._clock.current_time(), self.ends_at) - self.started,
        }

    # --- building a scenario ------------------------------------------------------------------

    async def add_station(
        self,
        name: str,
        position: Point,
        *,
        sector: str,
        berths: int = 2,
        prices: Mapping[str, float] | None = None,
        stock: float = 1000.0,
        services: m.ServiceAvailability | None = None,
        market_interval: float = 60.0,
        lease: float = 900.0,
    ) -> ActorRef:
        """Add a station (an actor) with a market; its updates go to `market_topic`.

        Args:
            name: the station's actor name, unique among ships and stations.
            position: where it is, ``(x, y, z)`` in metres.
            sector: the sector it is in (its topics are ``market.<sector>.<name>``).
            berths: how many ships can dock at once (at least 1).
            prices: each commodity's base price in credits per unit (default: ore 10, water 4,
                fuel 2); the price at any time follows the stock (`Commodity`).
            stock: the units of each commodity in store at the start, and its target stock.
            services: what it offers (default: repairs, refuelling and crew quarters).
            market_interval: seconds between two production steps and price updates.
            lease: the longest stay, in seconds, before a docked ship is evicted.

        Returns:
            The station's ref.

        Raises:
            ScenarioError: an argument is invalid (named), or the name is taken.
        """
        from spaceactors.sim.station import Station, StationState

        arguments.station(
            name, position, sector, berths, prices, stock, services, market_interval, lease
        )
        if self.declaring:
            return self._declared(name, self.stations)
        self._check_free(name)
        if self.placement is not None and not self.placement.station_here(name, sector):
            site = StationSite(name, position, sector, self.placement.ref(self, name, sector))
            self.elsewhere[name] = site
            return site.ref
        state = StationState(
            sector,
            Market.of(prices or {"ore": 10.0, "water": 4.0, "fuel": 2.0}, stock),
            services or m.ServiceAvailability(repairs=True, refueling=True, crew_quarters=True),
            market_interval,
            lease,
            [None] * berths,
        )
        self.station_states[name] = state
        ref = await self.system.spawn(Station, self, state, name=name)
        self.stations[name] = StationSite(name, position, sector, ref)
        return ref

    async def add_ship(
        self,
        name: str,
        position: Point,
        *,
        route: tuple[str, ...] | list[str] = (),
        cargo: Mapping[str, float] | None = None,
        capacity: float = 100.0,
        credits: float = 1000.0,
        fuel: float = 1000.0,
        max_speed: float = 200.0,
        max_accel: float = 5.0,
        stay: float = 30.0,
        sector: str | None = None,
    ) -> ActorRef:
        """Add a ship (an actor and a body); with a `route`, it trades between those stations.

        Args:
            name: the ship's actor name, unique among ships and stations.
            position: where it starts, ``(x, y, z)`` in metres.
            route: stations it flies to in a loop, docking and trading at each.
            cargo: units of each commodity in its hold at the start.
            capacity: how many units its hold takes.
            credits: its money at the start.
            fuel: its tank, full at the start (every m/s of velocity change burns 0.01).
            max_speed: its top speed, in m/s (halved in space weather).
            max_accel: its top acceleration, in m/s².
            stay: seconds it stays docked at each station of its route.
            sector: its home sector (default: its route's first station's, else the nearest
                station's, else ``"deep"``).

        Returns:
            The ship's ref.

        Raises:
            ScenarioError: an argument is invalid (named), the name is taken, or `route` names
                a station not added yet.
        """
        from spaceactors.sim.ship import Ship

        if self.declaring:  # (a resumed run's build, checked when it first ran: same code)
            return self._declared(name, self.ships)
        numbers = {"capacity": capacity, "fuel": fuel, "max_speed": max_speed}
        numbers |= {"max_accel": max_accel, "credits": credits}
        arguments.ship(name, position, route, cargo, numbers, stay, sector)
        self._check_free(name)
        sites = self.stations if not self.elsewhere else {**self.stations, **self.elsewhere}
        unknown = [station for station in route if station not in sites]
        if unknown:
            raise ScenarioError(f"ship {name!r} has unknown stations on its route: {unknown}")
        home = sector or (sites[route[0]].sector if route else self._nearest_sector(position))
        if self.placement is not None and not self.placement.ship_here(
            name, home, [sites[station].sector for station in route]
        ):
            self.elsewhere_ships[name] = self.placement.ref(self, name, home)
            return self.elsewhere_ships[name]
        self.records[name] = ShipRecord(
            name,
            capacity,
            credits,
            dict(cargo or {}),
            tuple(route),
            sector=home,
            stay=stay,
            tank=fuel,
        )
        body = Body.in_fleet(
            self.fleet, name, position, max_accel=max_accel, max_speed=max_speed, fuel=fuel
        )
        self.fleet.sector[body.index] = self.sector_number(home)
        self.bodies[name] = body
        ref = await self.system.spawn(Ship, self, name=name)
        self.ships[name] = ref
        return ref

    def _check_free(self, name: str) -> None:
        if name in self.stations or name in self.ships or (self.placement and self._away(name)):
            raise ScenarioError(f"the name {name!r} is taken")

    def _away(self, name: str) -> bool:
        """True when another node of a sharded run simulates the ship or station `name`."""
        return name in self.elsewhere or name in self.elsewhere_ships

    def at(self, time: float, action: Callable[[], Awaitable[None] | None]) -> None:
        """Run `action` (a function, sync or async) when the simulation reaches `time` seconds."""
        arguments.at(time, action)
        heapq.heappush(self._events, (self.started + time, next(self._sequence), action))

    def expect(self, description: str, check: Check, *, needs: float | None = None) -> None:
        """State an expectation: `check(summary)` must hold at the end, or the run fails.

        `check` returns a bool, or a `sim.Verdict` that says why it failed: return
        ``sim.compare("trades", s.trades, ">=", 2)`` and a failure reads ``trades: 1 < 2``.

        `needs` (seconds) is the shortest run in which the check means anything (say, one
        that counts on an event scheduled at 1,200 s): a shorter run reports it as not
        checked, saying why, instead of failing it or passing it unseen. A check can also
        raise `sim.NotChecked` itself (no distress call to time, no cargo to lose...).
        """
        arguments.expectation(description, check)
        if needs is not None:
            needs = arguments.seconds("expect(needs=...)", needs)
        self.expectations.append(Expectation(description, check, needs))

    def unrun_events(self) -> list[float]:
        """When (seconds since the start) each scheduled event that never ran was due: those
        `at` placed at or after the run's end."""
        return sorted(when - self.started for when, _, _ in self._events)

    # --- scenario events ---------------------------------------------------------------------

    async def hazard(
        self,
        name: str,
        center: Point,
        radius: float,
        *,
        sector: str,
        hazard_type: m.HazardType = m.HazardType.ASTEROID,
        duration: float | None = None,
    ) -> None:
        """A hazard appears (announced on ``hazard.<sector>``); ships inside steer out."""
        arguments.hazard(name, center, radius, sector, hazard_type, duration)
        if self.declaring:
            return
        until = None if duration is None else trio.current_time() + duration
        self.hazards.append(Hazard(name, center, radius, hazard_type, sector, until))
        notice = m.NavigationHazard(m.Vec3(*center), radius, hazard_type)
        await self.system.router.publish(f"hazard.{sector}", notice)

    async def weather(self, sector: str, severity: m.WeatherSeverity, duration: float) -> None:
        """Space weather over a sector: ships there fly slower until it passes."""
        arguments.weather(sector, severity, duration)
        if self.declaring:
            return
        self.storms[sector] = trio.current_time() + duration
        alert = m.WeatherAlert((sector,), severity)
        await self.system.router.publish(f"weather.{sector}", alert)

    async def emergency(
        self, ship: str, emergency_type: m.EmergencyType, severity: int = 5
    ) -> None:
        """Something goes wrong aboard `ship`: it stops and calls for help."""
        arguments.emergency(emergency_type, severity)
        if self.declaring or self._away(ship):
            return
        await self.system.send(self._ship(ship), ev.Emergency(emergency_type, severity))

    async def crash(self, name: str) -> None:
        """Make the actor `name` crash (its supervisor restarts it)."""
        if self.declaring or self._away(name):
            return
        await self.system.send(name, ev.Sabotage())

    async def market_shock(self, station: str, commodity: str, factor: float) -> None:
        """A commodity's stock at `station` is multiplied by `factor` (its price follows)."""
        arguments.non_negative("market_shock(factor)", factor)
        if self.declaring or self._away(station):
            return
        site = self.stations.get(station)
        if site is None:
            raise ScenarioError(f"no station named {station!r}")
        goods = self.station_states[station].market.goods
        if commodity not in goods:
            raise ScenarioError(
                f"station {station!r} does not trade {commodity!r} (it trades {sorted(goods)})"
            )
        await self.system.send(site.ref, ev.MarketShock(commodity, factor))

    async def formation(
        self, leader: str, followers: list[str], formation: m.FormationType, spacing: float = 300.0
    ) -> None:
        """`followers` hold station around `leader` (each told with a FormationRequest); the
        leader cruises at 80% of its top speed so that they can catch up and keep up."""
        followers = list(arguments.formation(followers, formation, spacing))
        if self.declaring or self._away(leader):
            return  # (a formation's ships share a sector, so a node: `Placement`)
        lead = self._ship(leader)
        self.bodies[leader].cruise = FORMATION_CRUISE
        for index, follower in enumerate(followers, start=1):
            offset = formation_offset(formation, index, spacing)
            request = m.FormationRequest(formation, m.Vec3(*offset))
            await self.system.send(
                self._ship(follower), m.ShipToShip(lead.id, self._ship(follower).id, request)
            )

    def _declared(self, name: str, found: Mapping[str, object]) -> ActorRef:
        """(declaring) the ref of `name` as the checkpoint holds it."""
        if name not in found:
            raise CheckpointError(
                f"the scenario's build adds {name!r}, which the checkpoint does not hold: "
                "was it written by another version of the scenario?"
            )
        return self.ships[name] if name in self.ships else self.stations[name].ref

    def market_topic(self, station: str) -> str:
        """Where `station` publishes its market updates: ``market.<sector>.<station>``."""
        return f"market.{self.stations[station].sector}.{station}"

    def _ship(self, name: str) -> ActorRef:
        ref = self.ships.get(name)
        if ref is None:
            raise ScenarioError(f"no ship named {name!r}")
        return ref

    def _nearest_sector(self, position: Point) -> str:
        sites = [*self.stations.values(), *self.elsewhere.values()]
        if not sites:
            return "deep"
        site = min(sites, key=lambda s: math.dist(position, s.position))
        return site.sector

    def sector_number(self, sector: str) -> int:
        """`sector`'s number in the fleet's ``sector`` column (numbered as first met)."""
        number = self.sectors.get(sector)
        if number is None:
            number = self.sectors[sector] = len(self.sectors)
        return number

    def restarts(self) -> int:
        """How many times the ships and stations have restarted so far (O(restarted))."""
        return sum(ref._cell.restarts for ref in self.restarted.values())

    def find_restarted(self) -> None:
        """Find the ships and stations that have restarted (once: a resumed run's)."""
        refs = [*self.ships.items(), *((name, site.ref) for name, site in self.stations.items())]
        self.restarted = {name: ref for name, ref in refs if ref._cell.restarts}

    def note_restart(self, name: str, ref: ActorRef) -> None:
        """`name` (a ship or station) crashed or restarted: count its restarts from now on."""
        self.restarted[name] = ref

    # --- the tick service ---------------------------------------------------------------------

    def service(self) -> ServiceSpec:
        return ServiceSpec("world", self.serve)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Tick forever: due events, physics, sensors (run as the ``world`` service)."""
        task_status.started()
        if self.next_tick is None:  # (else resumed from a checkpoint)
            self.next_tick = trio.current_time() if self.first_tick is None else self.first_tick
        while self.next_tick < self.ends_at:
            await trio.sleep_until(self.next_tick)  # late (a wall clock too fast): no skip
            if self.placement is not None:  # every node makes this tick together
                await self.placement.lockstep(self)
            await self.tick()
            self.next_tick += self.step
        self.finished.set()
        await trio.sleep_forever()  # the run is over; the system stops us

    async def tick(self) -> None:
        """One tick: the due events, the weather, the physics, the sensors (`sim.tick`)."""
        await run_tick(self)

    # --- used by ships ------------------------------------------------------------------------

    def steer(self, ship: str, target: Point | None) -> None:
        """Point `ship`'s autopilot at `target` (None: stop where it is)."""
        body = self.bodies[ship]
        body.leader = None
        self.intercepts.pop(ship, None)
        body.target = target if target is not None else body.position
        self.fleet.arrived[body.index] = False

    def intercept(self, ship: str, other: str) -> None:
        """Fly `ship` alongside `other`, wherever it goes; `Arrived` once matched with it."""
        self.follow(ship, other, (0.0, 0.0, 0.0))
        self.intercepts[ship] = other
        self.fleet.arrived[self.bodies[ship].index] = False

    def follow(self, ship: str, leader: str, offset: Point) -> None:
        body = self.bodies[ship]
        body.leader, body.offset, body.target = self.bodies[leader], offset, None

    def refuelled(self, ship: str, fuel: float) -> None:
        body = self.bodies[ship]
        body.fuel += fuel
        if body.fuel > 0:
            self.fleet.stranded[body.index] = False

    def commit(self, record: ShipRecord) -> None:
        """Make `record` the ship's last consistent state."""
        name = record.name
        if record.sector != self.records[name].sector:  # (the weather reads it by number)
            self.fleet.sector[self.bodies[name].index] = self.sector_number(record.sector)
        self.records[name] = record
