"""The ship: an actor that flies trade routes, docks, trades, dodges hazards, answers distress
calls and keeps formation.

A ship's body (position, velocity, fuel) lives in the world, and so does its `ShipRecord`: the
actor works on a copy while it handles a message and commits it when the message is done. A
crash discards the half-done copy, and the restarted ship resumes from its last consistent
state. A trade is made durable before it is sent (`ShipRecord.pending_trade`) and carries an id,
so a ship that crashes mid-trade repeats it after the restart and the station answers the
repeat with the same result: no cargo or credit is lost or made twice.
"""

from __future__ import annotations

import math

import trio

from spaceactors import messages as m
from spaceactors.actor import Actor
from spaceactors.errors import ActorNotFound, ActorUnavailable
from spaceactors.sim import events as ev
from spaceactors.sim.physics import Point, around, exit_point
from spaceactors.sim.records import ShipMode, ShipRecord
from spaceactors.sim.world import World

OFFER_WINDOW = 2.0  # seconds a distressed ship collects rescue offers
RECALL_AFTER = 30.0  # seconds before a call nobody answered goes out again
RESCUE_RANGE = 50_000.0  # m: farther than this, a ship does not offer help
RESCUE_FUEL = 0.25  # the share of its fuel a rescuer hands over
SECTOR_TOPICS = ("distress", "hazard", "weather")  # what a ship hears in the sector it is in
HULL = m.ShipSpecs(ship_class="Hauler", length=120.0, mass=1800.0, cargo_capacity=100.0)


class Ship(Actor):
    """One ship of the simulation; spawned by `World.add_ship`."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.offers: list[ev.RescueOffer] = []

    @property
    def body_position(self) -> Point:
        return self.world.bodies[self.rec.name].position

    async def on_start(self) -> None:
        if self.ctx.restarts:  # (counted by the world as it happens: progress reads it)
            self.world.note_restart(self.ctx.name, self.ctx.self_ref)
        self.rec: ShipRecord = self.world.records[self.ctx.name].snapshot()
        self._subscribe(self.rec.sector)
        self._follow_markets()
        rec = self.rec
        if rec.pending_trade is not None:  # crashed mid-trade: finish it
            await self._trade(rec.pending_trade)
        if rec.mode is ShipMode.EMERGENCY and not rec.answered:
            await self._call_for_help(m.EmergencyType.ENGINE_FAILURE, 5, again=True)
        elif rec.mode is ShipMode.IDLE and rec.route:
            self._fly_to(rec.route[rec.leg % len(rec.route)])
        elif rec.mode is ShipMode.DOCKING:  # the answer may have died with the crash: ask again
            await self._request_berth()
        elif rec.mode is ShipMode.DOCKED and rec.depart_at is not None:  # its timer died too
            self.ctx.after(max(0.0, rec.depart_at - trio.current_time()), ev.Depart())
        self.world.commit(rec.snapshot())

    async def handle(self, message: object) -> object:
        if type(message) is m.MarketUpdate:  # the most frequent message: no copy of the record
            if _prices_moved(message, self.rec.prices):  # the last commit moves the same way
                _prices_moved(message, self.world.records[self.rec.name].prices)
            return None
        await self._dispatch(message)
        self.world.commit(self.rec.snapshot())  # a crash above leaves the last commit standing
        return None

    async def _dispatch(self, message: object) -> None:
        rec = self.rec
        if isinstance(message, ev.Arrived):
            await self._arrived(message.point)
        elif isinstance(message, m.StationToShip):
            await self._from_station(message.content)
        elif isinstance(message, ev.Depart):
            await self._depart()
        elif isinstance(message, ev.Evicted):
            rec.station = rec.berth = None
            self._next_leg()
        elif isinstance(message, ev.Emergency):
            await self._call_for_help(message.emergency_type, message.severity)
        elif isinstance(message, ev.FuelExhausted):
            if rec.mode is not ShipMode.EMERGENCY and rec.mode is not ShipMode.DOCKED:
                await self._call_for_help(m.EmergencyType.ENGINE_FAILURE, 6)
        elif isinstance(message, ev.Distress):
            await self._maybe_offer(message)
        elif isinstance(message, ev.RescueOffer):
            self.offers.append(message)
        elif isinstance(message, ev.CollectOffers):
            await self._choose_rescuer()
        elif isinstance(message, ev.RescueAccepted):
            await self._go_rescue(message)
        elif isinstance(message, ev.RescueDeclined):
            rec.answered = False
            await self._call_for_help(m.EmergencyType.ENGINE_FAILURE, 5, again=True)
        elif isinstance(message, ev.Rescued):
            self._rescued(message)
        elif isinstance(message, ev.HazardEntered):
            self._avoid(message)
        elif isinstance(message, ev.HazardCleared):
            self._hazard_cleared()
        elif isinstance(message, m.ShipToShip) and isinstance(message.content, m.FormationRequest):
            self._join_formation(message)
        elif isinstance(message, ev.Sabotage):
            raise RuntimeError(f"sabotage aboard {rec.name}")
        # NavigationHazard and WeatherAlert notices need no action: the world's sensors and
        # physics apply them.

    # --- routes and docking --------------------------------------------------------------------

    def _fly_to(self, station: str) -> None:
        site = self.world.stations[station]
        self.rec.mode = ShipMode.FLYING
        self.rec.station = None
        if site.sector != self.rec.sector:
            self._unsubscribe(self.rec.sector)
            self.rec.sector = site.sector
            self._subscribe(site.sector)
        self.world.steer(self.rec.name, site.position)

    def _next_leg(self) -> None:
        rec = self.rec
        if not rec.route:
            rec.mode = ShipMode.IDLE
            return
        rec.leg = (rec.leg + 1) % len(rec.route)
        self._fly_to(rec.route[rec.leg])

    async def _arrived(self, point: Point) -> None:
        rec = self.rec
        if rec.rescuing is not None:
            await self._alongside()
        elif rec.resume is not None:  # a detour waypoint: on to where it was going
            target, rec.resume = rec.resume, None
            self.world.steer(rec.name, target)
        elif rec.mode is ShipMode.FLYING and rec.route:
            rec.mode, rec.station = ShipMode.DOCKING, rec.route[rec.leg % len(rec.route)]
            await self._request_berth()

    async def _request_berth(self) -> None:
        rec = self.rec
        assert rec.station is not None
        if rec.station not in rec.prices:  # its first request there: the prices come with the
            self._follow_market(rec.station)  # berth, and from now on the updates follow
        manifest = [m.CargoItem(k, v, 0.0) for k, v in sorted(rec.cargo.items()) if v > 0]
        request = m.RequestDocking(HULL, manifest)
        site = self.world.stations[rec.station]
        await self.ctx.send(site.ref, m.ShipToStation(self.ctx.self_ref.id, site.ref.id, request))

    async def _from_station(self, content: object) -> None:
        rec = self.rec
        if isinstance(content, m.DockingPermission):
            if not content.granted or rec.mode is not ShipMode.DOCKING:
                return  # refused: the station queued us and grants a berth when one is free
            rec.mode, rec.berth = ShipMode.DOCKED, content.berth_assignment
            rec.depart_at = trio.current_time() + rec.stay
            assert rec.station is not None
            await self._trade(self._plan_trade(rec.station))
            self.ctx.after(rec.stay, ev.Depart())
        elif isinstance(content, m.MarketPrices) and rec.station is not None:
            rec.prices[rec.station] = dict(content.commodities)

    async def _depart(self) -> None:
        rec = self.rec
        if rec.mode is not ShipMode.DOCKED or rec.station is None or rec.berth is None:
            return
        await self.ctx.send(self.world.stations[rec.station].ref, ev.Undock(rec.name, rec.berth))
        rec.berth = rec.depart_at = None
        self._next_leg()

    # --- trade ---------------------------------------------------------------------------------

    def _plan_trade(self, station: str) -> ev.Trade:
        """Sell what this station buys; buy what sells dearer at the next station; refuel."""
        rec = self.rec
        here = rec.prices.get(station, {})
        selling = tuple(
            m.CargoItem(item, quantity, here[item])
            for item, quantity in sorted(rec.cargo.items())
            if quantity > 0 and item in here and item != "fuel"
        )
        requesting: tuple[m.ResourceRequest, ...] = ()
        if rec.route:
            there = rec.prices.get(rec.route[(rec.leg + 1) % len(rec.route)], {})
            margins = [
                (there[item] - price, item)
                for item, price in sorted(here.items())
                if item in there and item != "fuel" and there[item] > price > 0
            ]
            if margins:
                _, item = max(margins)
                room = rec.capacity - rec.load() + sum(c.quantity for c in selling)
                budget = rec.credits * 0.8 / here[item]
                quantity = math.floor(min(room, budget, 50.0))
                if quantity > 0:
                    requesting = (m.ResourceRequest(item, quantity, here[item] * 1.05),)
        body = self.world.bodies[rec.name]
        fuel = max(0.0, rec.tank - body.fuel) if "fuel" in here else 0.0
        offer = m.TradeOffer(offering=selling, requesting=requesting)
        return ev.Trade(next(self.world.trade_ids), rec.name, offer, fuel)

    async def _trade(self, trade: ev.Trade) -> None:
        rec = self.rec
        rec.pending_trade = trade
        self.world.commit(rec.snapshot())  # durable before it leaves: a crash repeats it
        assert rec.station is not None
        rec.mode = ShipMode.TRADING
        result: ev.TradeResult = await self.ctx.system.ask(
            self.world.stations[rec.station].ref, trade, timeout=30.0
        )
        for item in result.sold:
            rec.cargo[item.item_type] = rec.cargo.get(item.item_type, 0.0) - item.quantity
        for item in result.bought:
            rec.cargo[item.item_type] = rec.cargo.get(item.item_type, 0.0) + item.quantity
        rec.cargo = {item: q for item, q in rec.cargo.items() if q > 1e-9}
        rec.credits += result.credits
        rec.pending_trade = None
        rec.mode = ShipMode.DOCKED
        self.world.refuelled(rec.name, result.fuel)  # with the commit: no await in between
        self.world.commit(rec.snapshot())

    # --- distress and rescue -------------------------------------------------------------------

    async def _call_for_help(
        self, kind: m.EmergencyType, severity: int, *, again: bool = False
    ) -> None:
        rec = self.rec
        if rec.mode is ShipMode.EMERGENCY and not again:
            return
        if rec.mode is not ShipMode.EMERGENCY:
            rec.mode = ShipMode.EMERGENCY
            rec.distress_since = trio.current_time()
            rec.answered = False
            self.world.metrics.distress_calls += 1
            self.world.metrics.unanswered.add(rec.name)
            self.world.steer(rec.name, None)
        self.offers = []
        x, y, z = self.body_position
        signal = m.DistressSignal(kind, m.Vec3(x, y, z), severity)
        await self.ctx.publish(f"distress.{rec.sector}", ev.Distress(rec.name, signal))
        self.ctx.after(OFFER_WINDOW, ev.CollectOffers())

    def _able(self) -> bool:
        rec = self.rec
        fuel = self.world.bodies[rec.name].fuel
        return rec.mode in (ShipMode.IDLE, ShipMode.FLYING) and rec.rescuing is None and fuel > 100

    async def _maybe_offer(self, call: ev.Distress) -> None:
        if call.ship == self.rec.name or not self._able():
            return
        location = call.signal.location
        distance = math.dist(self.body_position, (location.x, location.y, location.z))
        if distance <= RESCUE_RANGE:
            await self.ctx.send(call.ship, ev.RescueOffer(self.rec.name, distance))

    async def _choose_rescuer(self) -> None:
        rec = self.rec
        if rec.mode is not ShipMode.EMERGENCY or rec.answered:
            return
        if not self.offers:
            self.ctx.after(RECALL_AFTER, ev.RescueDeclined(rec.name))  # call again later
            return
        for best in sorted(self.offers, key=lambda offer: (offer.distance, offer.ship)):
            try:
                await self.ctx.send(best.ship, ev.RescueAccepted(rec.name, self.body_position))
            except (ActorNotFound, ActorUnavailable):
                continue  # that rescuer is gone: the next nearest
            rec.answered = True
            assert rec.distress_since is not None
            self.world.metrics.answer_times.append(trio.current_time() - rec.distress_since)
            return
        self.ctx.after(RECALL_AFTER, ev.RescueDeclined(rec.name))  # all gone: call again

    async def _go_rescue(self, accepted: ev.RescueAccepted) -> None:
        rec = self.rec
        if not self._able():
            await self.ctx.send(accepted.ship, ev.RescueDeclined(rec.name))
            return
        rec.rescuing = accepted.ship
        rec.resume = self.world.bodies[rec.name].target
        self.world.intercept(rec.name, accepted.ship)  # it may be drifting: chase it

    async def _alongside(self) -> None:
        rec = self.rec
        assert rec.rescuing is not None
        body = self.world.bodies[rec.name]
        fuel = body.fuel * RESCUE_FUEL
        try:
            await self.ctx.send(rec.rescuing, ev.Rescued(rec.name, fuel))
        except (ActorNotFound, ActorUnavailable):
            fuel = 0.0  # the caller is gone for good: nothing to hand over
        body.fuel -= fuel
        rec.rescuing = None
        if rec.mode is ShipMode.FLYING and rec.route:
            self._fly_to(rec.route[rec.leg % len(rec.route)])
        else:
            rec.mode = ShipMode.IDLE
        rec.resume = None

    def _rescued(self, rescued: ev.Rescued) -> None:
        rec = self.rec
        if rec.mode is not ShipMode.EMERGENCY:
            return
        assert rec.distress_since is not None
        self.world.metrics.rescue_times.append(trio.current_time() - rec.distress_since)
        self.world.metrics.unanswered.discard(rec.name)
        self.world.refuelled(rec.name, rescued.fuel)
        rec.distress_since, rec.answered = None, False
        if rec.route:
            self._fly_to(rec.route[rec.leg % len(rec.route)])
        else:
            rec.mode = ShipMode.IDLE

    # --- hazards and formations ----------------------------------------------------------------

    def _avoid(self, hazard: ev.HazardEntered) -> None:
        rec = self.rec
        body = self.world.bodies[rec.name]
        rec.hazard = hazard.hazard
        if rec.resume is None:
            rec.resume = body.target
        if body.leader is not None or rec.mode is ShipMode.EMERGENCY:
            return  # a follower keeps formation; a ship in distress waits for help
        self.world.steer(rec.name, exit_point(body.position, hazard.center, hazard.radius))

    def _hazard_cleared(self) -> None:
        rec = self.rec
        left, rec.hazard = rec.hazard, None
        if rec.resume is None or rec.mode is ShipMode.EMERGENCY:
            return
        hazard = next((h for h in self.world.hazards if h.name == left), None)
        here = self.body_position
        waypoint = (
            None if hazard is None else around(here, rec.resume, hazard.center, hazard.radius)
        )
        if waypoint is not None:  # the way on crosses the hazard: go round it first
            self.world.steer(rec.name, waypoint)
        else:
            target, rec.resume = rec.resume, None
            self.world.steer(rec.name, target)

    def _join_formation(self, envelope: m.ShipToShip) -> None:
        request = envelope.content
        assert isinstance(request, m.FormationRequest)
        try:
            leader = self.ctx.system.lookup(envelope.sender).name
        except ActorNotFound:
            return  # the leader is gone already
        offset = (request.position.x, request.position.y, request.position.z)
        self.rec.leader = leader
        self.rec.mode = ShipMode.FLYING
        self.world.follow(self.rec.name, leader, offset)

    # --- topics --------------------------------------------------------------------------------

    def _subscribe(self, sector: str) -> None:
        for kind in SECTOR_TOPICS:
            self.ctx.subscribe(f"{kind}.{sector}")

    def _unsubscribe(self, sector: str) -> None:
        router = self.ctx.system.router
        for kind in SECTOR_TOPICS:
            router.unsubscribe(self.ctx.self_ref, f"{kind}.{sector}")

    def _follow_markets(self) -> None:
        """Listen to the markets of the stations on its route whose prices it knows (a ship
        learns a station's prices when it docks there; an update to prices it does not know
        would change nothing)."""
        for station in dict.fromkeys(self.rec.route):
            if station in self.rec.prices:
                self._follow_market(station)

    def _follow_market(self, station: str) -> None:
        """Listen to `station`'s market from now on (a ship asks a berth of a station of its
        route only: it follows the markets of its route, from its first request at each; the
        prices it knows say which it follows, so a checkpoint saves nothing more)."""
        self.ctx.subscribe(self.world.market_topic(station))


def _prices_moved(update: m.MarketUpdate, prices: dict[str, dict[str, float]]) -> bool:
    """Apply a market update to `prices` (station -> commodity -> price, what a ship knows);
    True if any moved."""
    moved = False
    for key, change in update.price_changes.items():
        station, _, item = key.partition("/")
        known = prices.get(station)
        if known is not None and item in known:
            known[item] = max(0.0, known[item] + change)
            moved = True
    return moved
