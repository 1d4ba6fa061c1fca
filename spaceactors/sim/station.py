"""The station: berths with a docking queue, services, and a market.

A ship asks for a berth with `RequestDocking`; the station grants a free berth or queues the
ship and refuses with an estimated wait (queue position x average stay / berths). When a berth
frees, the first ship in the queue gets a grant by reliable delivery: a grant must not be lost.
Every `BerthCheck` frees berths whose ship has stopped for good or overstayed the lease, so a
ship that dies docked does not keep its berth forever. Trades are idempotent by trade id. Every
`market_interval` stocks drift back towards their targets and the price changes go out on
``market.<sector>.<station>`` (subscribe to ``market.<sector>.*`` for a whole sector).
"""

from __future__ import annotations

import collections

import attrs
import trio

from spaceactors import messages as m
from spaceactors.actor import Actor
from spaceactors.errors import ActorNotFound
from spaceactors.sim import events as ev
from spaceactors.sim.market import Market
from spaceactors.sim.world import World

BERTH_CHECK = 30.0  # seconds between berth checks
REMEMBERED_TRADES = 1000  # results kept to answer repeated trades


@attrs.define
class StationState:
    """Everything a station knows, kept in the world (`World.station_states`) so that it
    outlives a crash: a restarted station carries on with the same berths, queue and market.

    Attributes:
        sector: the sector the station is in.
        market: its goods, stocks and prices.
        services: what it offers docked ships.
        market_interval: seconds between two production steps and price updates.
        lease: the longest stay, in seconds, before a docked ship is evicted.
        berths: one entry per berth: the docked ship's name, or None while free.
        docked_at: when each docked ship docked, in seconds on the run's clock.
        queue: the ships waiting for a berth, first come first served.
        trades: each trade's result by trade id, so that a repeated trade gets the same answer.
        credits: the station's money.
        stays: the last 20 stays, in seconds, from which the wait of a queued ship is estimated.
        last_prices: the prices it last published, by commodity.
        published_at: when it published them, in seconds on the run's clock.
    """

    sector: str
    market: Market
    services: m.ServiceAvailability
    market_interval: float
    lease: float
    berths: list[str | None]
    docked_at: dict[str, float] = attrs.field(factory=dict)
    queue: collections.deque[str] = attrs.field(factory=collections.deque)
    trades: collections.OrderedDict[int, ev.TradeResult] = attrs.field(
        factory=collections.OrderedDict
    )
    credits: float = 1_000_000.0
    stays: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque([60.0], maxlen=20)
    )
    last_prices: dict[str, float] = attrs.field(factory=dict)
    published_at: float = 0.0


class Station(Actor):
    """One station of the simulation; spawned by `World.add_station`."""

    def __init__(self, world: World, state: StationState) -> None:
        self.world = world
        self.state = state

    async def on_start(self) -> None:
        if self.ctx.restarts:  # (counted by the world as it happens: progress reads it)
            self.world.note_restart(self.ctx.name, self.ctx.self_ref)
        self.ctx.every(BERTH_CHECK, ev.BerthCheck())
        self.ctx.every(self.state.market_interval, ev.MarketTick())
        if not self.state.last_prices:
            self.state.last_prices = self.state.market.prices()
            self.state.published_at = trio.current_time()

    async def handle(self, message: object) -> object:
        if isinstance(message, m.ShipToStation) and isinstance(message.content, m.RequestDocking):
            try:
                ship = self.ctx.system.lookup(message.sender).name
            except ActorNotFound:
                return None  # it stopped since it asked
            await self._docking_request(ship)
        elif isinstance(message, ev.Undock):
            await self._undock(message.ship)
        elif isinstance(message, ev.Trade):
            return self._trade(message)
        elif isinstance(message, ev.BerthCheck):
            await self._check_berths()
        elif isinstance(message, ev.MarketTick):
            await self._market_tick()
        elif isinstance(message, ev.MarketShock):
            self.state.market.shock(message.commodity, message.factor)
        elif isinstance(message, ev.Sabotage):
            raise RuntimeError(f"sabotage aboard {self.ctx.name}")
        return None

    # --- docking -------------------------------------------------------------------------------

    def estimated_wait(self, position: int) -> float:
        """Seconds until the ship at `position` in the queue (0-based) gets a berth."""
        average_stay = sum(self.state.stays) / len(self.state.stays)
        return round(average_stay * (position // len(self.state.berths) + 1), 1)

    async def _docking_request(self, ship: str) -> None:
        if ship in self.state.docked_at:  # asked again (after a crash, a rescue): same berth
            berth = self.state.berths.index(ship)
            await self._tell(ship, m.DockingPermission(granted=True, berth_assignment=berth))
            return
        if None in self.state.berths and (not self.state.queue or self.state.queue[0] == ship):
            if self.state.queue and self.state.queue[0] == ship:
                self.state.queue.popleft()
            await self._grant(ship, reliably=False)
            return
        if ship not in self.state.queue:
            self.state.queue.append(ship)
        self.world.metrics.refusals += 1
        wait = self.estimated_wait(self.state.queue.index(ship))
        await self._tell(ship, m.DockingPermission(granted=False, estimated_wait=wait))

    async def _grant(self, ship: str, *, reliably: bool) -> None:
        berth = self.state.berths.index(None)
        self.state.berths[berth] = ship
        self.state.docked_at[ship] = trio.current_time()
        self.world.metrics.dockings += 1
        self.world.metrics.docked_at.add((ship, self.ctx.name))
        # The prices as last published: the market updates a ship hears next apply to these.
        prices = m.MarketPrices(self.state.last_prices, self.state.published_at)
        await self._tell(ship, prices, reliably=reliably)
        await self._tell(
            ship, m.DockingPermission(granted=True, berth_assignment=berth), reliably=reliably
        )

    async def _tell(self, ship: str, content: m.StationMessage, *, reliably: bool = False) -> None:
        try:
            ref = self.ctx.system.lookup(ship)
        except ActorNotFound:
            return
        envelope = m.StationToShip(self.ctx.self_ref.id, ref.id, content)
        if reliably:  # pushed later, unasked: it must not be lost
            await self.ctx.system.reliable.send(
                ref, envelope, sender=self.ctx.self_ref, ordered=True
            )
        else:
            await self.ctx.send(ref, envelope)

    async def _undock(self, ship: str) -> None:
        if ship not in self.state.docked_at:
            return
        self.state.stays.append(trio.current_time() - self.state.docked_at.pop(ship))
        self.state.berths[self.state.berths.index(ship)] = None
        self.world.metrics.undockings += 1
        await self._serve_queue()

    async def _serve_queue(self) -> None:
        while self.state.queue and None in self.state.berths:
            ship = self.state.queue.popleft()
            if self._alive(ship):
                await self._grant(ship, reliably=True)

    def _alive(self, ship: str) -> bool:
        try:
            self.ctx.system.lookup(ship)
        except ActorNotFound:
            return False
        return True

    async def _check_berths(self) -> None:
        now = trio.current_time()
        for ship, since in list(self.state.docked_at.items()):
            gone = not self._alive(ship)
            if gone or now - since > self.state.lease:
                del self.state.docked_at[ship]
                self.state.berths[self.state.berths.index(ship)] = None
                self.world.metrics.evictions += 1
                if not gone:
                    await self.ctx.send(ship, ev.Evicted())
        await self._serve_queue()

    # --- trade ---------------------------------------------------------------------------------

    def _trade(self, trade: ev.Trade) -> ev.TradeResult:
        known = self.state.trades.get(trade.trade_id)
        if known is not None:
            return known  # a repeat after the ship crashed: the same answer, applied once
        credits = 0.0
        sold = []
        for item in trade.offer.offering:
            paid = self.state.market.sell_to_station(item.item_type, item.quantity)
            if paid:
                sold.append(m.CargoItem(item.item_type, item.quantity, paid / item.quantity))
                credits += paid
        bought = []
        for request in trade.offer.requesting:
            quantity, cost = self.state.market.buy_from_station(
                request.resource_type, request.quantity, request.max_price
            )
            if quantity:
                bought.append(m.CargoItem(request.resource_type, quantity, cost / quantity))
                credits -= cost
        fuel = 0.0
        if trade.fuel and self.state.services.refueling:
            fuel, cost = self.state.market.buy_from_station("fuel", trade.fuel, float("inf"))
            credits -= cost
        self.state.credits -= credits
        metrics = self.world.metrics
        metrics.trades += 1
        metrics.traded_units += sum(i.quantity for i in sold) + sum(i.quantity for i in bought)
        result = ev.TradeResult(trade.trade_id, tuple(sold), tuple(bought), fuel, credits)
        self.state.trades[trade.trade_id] = result
        while len(self.state.trades) > REMEMBERED_TRADES:
            self.state.trades.popitem(last=False)
        return result

    async def _market_tick(self) -> None:
        self.state.market.drift(0.05)
        prices = self.state.market.prices()
        changes = {
            f"{self.ctx.name}/{item}": round(price - self.state.last_prices.get(item, price), 4)
            for item, price in prices.items()
            if price != self.state.last_prices.get(item)
        }
        self.state.last_prices = prices
        self.state.published_at = trio.current_time()
        if changes:
            await self.ctx.publish(
                self.world.market_topic(self.ctx.name), m.MarketUpdate(self.state.sector, changes)
            )
