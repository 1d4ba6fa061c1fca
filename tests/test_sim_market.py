"""Station markets: prices follow scarcity within bounds, stocks drift back to their targets,
what a station makes or uses is accounted for, and a trade moves goods, credits and prices."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import sim
from spaceactors.sim.market import CEILING, ELASTICITY, FLOOR, Commodity, Market


def worth(base: float, low: float, high: float) -> float:
    """What a station pays or charges for the units between two stock levels (target 1000)."""
    return Commodity(base, 1000.0, 1000.0).value(low, high)


# --- prices ------------------------------------------------------------------------------------


def test_the_price_at_the_target_stock_is_the_base_price() -> None:
    market = Market.of({"ore": 10.0, "water": 4.0}, stock=500.0)
    assert market.prices() == {"ore": 10.0, "water": 4.0}
    assert market.goods["ore"] == Commodity(10.0, 500.0, 500.0)
    assert list(Market.of({"water": 1.0, "ore": 2.0, "fuel": 3.0}).prices()) == [
        "fuel",
        "ore",
        "water",
    ]


def test_the_price_follows_scarcity() -> None:
    ore = Commodity(10.0, 1000.0, 500.0)
    assert ore.price == pytest.approx(10.0 * 2.0**ELASTICITY, abs=1e-4)
    ore.stock = 2000.0
    assert ore.price == pytest.approx(10.0 * 0.5**ELASTICITY, abs=1e-4)


@pytest.mark.parametrize(
    ("stock", "factor"), [(0.0, CEILING), (1.0, CEILING), (1e9, FLOOR), (1e6, FLOOR)]
)
def test_prices_are_clamped(stock: float, factor: float) -> None:
    assert Commodity(8.0, 1000.0, stock).price == pytest.approx(8.0 * factor)


@settings(max_examples=100, deadline=None)
@given(stock=st.floats(0.0, 1e7), target=st.floats(1.0, 1e5), base=st.floats(0.01, 1000.0))
def test_a_price_stays_within_a_quarter_and_four_times_its_base(
    stock: float, target: float, base: float
) -> None:
    price = Commodity(base, target, stock).price
    assert base * FLOOR - 1e-4 <= price <= base * CEILING + 1e-4


def test_buying_raises_the_price_and_costs_each_unit_at_the_price_it_moves_to() -> None:
    market = Market.of({"ore": 10.0})
    sold, cost = market.buy_from_station("ore", 100.0, max_price=10.0)
    assert sold == 100.0
    assert market.goods["ore"].stock == 900.0
    after = market.prices()["ore"]
    assert after > 10.0
    assert 100.0 * 10.0 < cost < 100.0 * after  # between the price before and the price after


def test_selling_lowers_the_price_and_pays_each_unit_at_the_price_it_moves_to() -> None:
    market = Market.of({"ore": 10.0})
    paid = market.sell_to_station("ore", 100.0)
    assert market.goods["ore"].stock == 1100.0
    after = market.prices()["ore"]
    assert after < 10.0
    assert 100.0 * after < paid < 100.0 * 10.0


def test_a_station_sells_nothing_above_the_buyers_limit() -> None:
    market = Market.of({"ore": 10.0})
    assert market.buy_from_station("ore", 10.0, max_price=9.99) == (0.0, 0.0)
    assert market.goods["ore"].stock == 1000.0


def test_a_station_keeps_its_last_unit() -> None:
    market = Market.of({"ore": 10.0}, stock=50.0)
    sold, _ = market.buy_from_station("ore", 500.0, max_price=float("inf"))
    assert sold == 49.0
    assert market.goods["ore"].stock == 1.0
    assert market.buy_from_station("ore", 5.0, max_price=float("inf")) == (0.0, 0.0)


def test_a_station_does_not_trade_what_it_has_no_market_for() -> None:
    market = Market.of({"ore": 10.0})
    assert market.buy_from_station("gold", 1.0, max_price=float("inf")) == (0.0, 0.0)
    assert market.sell_to_station("gold", 1.0) == 0.0
    assert market.sell_to_station("ore", 0.0) == 0.0
    assert market.sell_to_station("ore", -5.0) == 0.0
    assert market.goods["ore"].stock == 1000.0
    assert "gold" not in market.goods


def test_a_round_trip_at_one_station_makes_no_profit() -> None:
    market = Market.of({"ore": 10.0})
    bought, cost = market.buy_from_station("ore", 500.0, max_price=float("inf"))
    paid = market.sell_to_station("ore", bought)
    assert market.goods["ore"].stock == 1000.0  # back where it started...
    assert paid <= cost + 1e-6  # ...so the ship cannot have made money


# --- drift and accounting ----------------------------------------------------------------------


def test_stocks_drift_back_towards_their_targets() -> None:
    market = Market.of({"ore": 10.0, "water": 4.0})
    market.goods["ore"].stock = 200.0
    market.goods["water"].stock = 3000.0
    market.drift(0.1)
    assert market.goods["ore"].stock == pytest.approx(280.0)
    assert market.goods["water"].stock == pytest.approx(2800.0)
    for _ in range(300):
        market.drift(0.05)
    assert market.prices() == {"ore": pytest.approx(10.0), "water": pytest.approx(4.0)}


def test_a_shock_multiplies_the_stock_and_counts_as_production() -> None:
    market = Market.of({"ore": 10.0})
    market.shock("ore", 3.0)
    assert market.goods["ore"].stock == pytest.approx(3000.0)
    assert market.net_production == {"ore": pytest.approx(2000.0)}
    assert market.prices()["ore"] < 10.0
    market.shock("ore", 0.1)
    assert market.goods["ore"].stock == pytest.approx(300.0)
    assert market.net_production == {"ore": pytest.approx(-700.0)}


operation = st.one_of(
    st.tuples(st.just("buy"), st.sampled_from(["ore", "water"]), st.floats(0.0, 2000.0)),
    st.tuples(st.just("sell"), st.sampled_from(["ore", "water"]), st.floats(0.0, 2000.0)),
    st.tuples(st.just("shock"), st.sampled_from(["ore", "water"]), st.floats(0.0, 4.0)),
    st.tuples(st.just("drift"), st.just(""), st.floats(0.0, 1.0)),
)


@settings(max_examples=100, deadline=None)
@given(operations=st.lists(operation, max_size=30))
def test_stock_is_what_was_there_plus_trades_plus_net_production(
    operations: list[tuple[str, str, float]],
) -> None:
    market = Market.of({"ore": 10.0, "water": 4.0})
    traded = {"ore": 0.0, "water": 0.0}  # into the station
    for kind, item, amount in operations:
        if kind == "buy":
            sold, _ = market.buy_from_station(item, amount, max_price=float("inf"))
            traded[item] -= sold
        elif kind == "sell":
            market.sell_to_station(item, amount)
            traded[item] += amount
        elif kind == "shock":
            market.shock(item, amount)
        else:
            market.drift(amount)
    for item, commodity in market.goods.items():
        expected = 1000.0 + traded[item] + market.net_production.get(item, 0.0)
        assert commodity.stock == pytest.approx(expected, rel=1e-9, abs=1e-6)
        assert commodity.stock >= 0.0


# --- trades at a station, in a running world ---------------------------------------------------

CERES = {"ore": 6.0, "water": 9.0}
VESTA = {"ore": 12.0, "water": 5.0}


@contextlib.asynccontextmanager
async def trading_world() -> AsyncIterator[sim.World]:
    """Ceres (ore cheap, water dear) and Vesta (the other way round), 20 km apart."""
    async with sa.open_system(seed=0) as system:
        world = sim.World(system, step=1.0)
        world.started = trio.current_time()
        await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt", prices=CERES)
        await world.add_station("vesta", (20_000.0, 0.0, 0.0), sector="belt", prices=VESTA)
        yield world


async def start(world: sim.World) -> None:
    """Start the world's tick service and run half a tick: the tests look between ticks."""
    await world.system.user.start_child(world.service())
    await trio.sleep(0.5)


async def until(predicate: Callable[[], bool], within: float) -> None:
    """Sleep a second at a time until `predicate` holds (the world has no events to wait on)."""
    with trio.fail_after(within):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(1.0)


async def test_a_trade_moves_cargo_credits_and_prices_on_both_sides(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trading_world() as world:
        await world.add_ship(
            "hauler",
            (0.0, 0.0, 0.0),
            route=("ceres", "vesta"),
            cargo={"ore": 20.0, "water": 10.0},
            credits=1000.0,
            stay=30.0,
        )
        ceres = world.station_states["ceres"]
        await start(world)
        await until(lambda: world.metrics.trades == 1, within=10.0)
        record = world.records["hauler"]
        # It knew only Ceres's prices: it sold what Ceres buys, and bought nothing.
        assert record.cargo == {}
        earned = worth(6.0, 1000.0, 1020.0) + worth(9.0, 1000.0, 1010.0)
        assert earned == pytest.approx(20 * 6.0 + 10 * 9.0, rel=0.02)  # about list price
        assert record.credits == pytest.approx(1000.0 + earned)
        assert ceres.credits == pytest.approx(1_000_000.0 - earned)
        assert ceres.market.goods["ore"].stock == 1020.0
        assert ceres.market.goods["water"].stock == 1010.0
        assert ceres.market.prices()["ore"] < 6.0
        assert ceres.market.prices()["water"] < 9.0
        assert world.metrics.traded_units == 30.0
        assert record.prices["ceres"] == CERES  # the prices it was told on docking

        # At Vesta, knowing both markets, it buys water (5 here, ~9 at Ceres) for the way back.
        vesta = world.station_states["vesta"]
        await until(lambda: world.metrics.trades == 2, within=300.0)
        record = world.records["hauler"]
        assert set(record.cargo) == {"water"}
        bought = record.cargo["water"]
        assert bought == 50.0  # capped at 50 units a trade
        paid = worth(5.0, 950.0, 1000.0)
        assert record.credits == pytest.approx(1000.0 + earned - paid)
        assert vesta.credits == pytest.approx(1_000_000.0 + paid)
        assert vesta.market.goods["water"].stock == 1000.0 - bought
        assert vesta.market.prices()["water"] > 5.0
        assert vesta.market.goods["ore"].stock == 1000.0  # nothing else moved
        # Credits only changed hands.
        total = record.credits + ceres.credits + vesta.credits
        assert total == pytest.approx(1000.0 + 2_000_000.0)


async def test_a_ship_refuels_at_a_station_that_sells_fuel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=0) as system:
        world = sim.World(system, step=1.0)
        world.started = trio.current_time()
        await world.add_station("depot", (10_000.0, 0.0, 0.0), sector="belt", prices={"fuel": 2.0})
        await world.add_ship("tug", (0.0, 0.0, 0.0), route=("depot",), fuel=500.0, credits=100.0)
        await start(world)
        await until(lambda: world.metrics.trades == 1, within=300.0)
        depot = world.station_states["depot"]
        burnt = 1000.0 - depot.market.goods["fuel"].stock  # what it bought back
        assert 0.0 < burnt < 20.0
        assert world.bodies["tug"].fuel == pytest.approx(500.0, abs=0.1)  # full again
        paid = worth(2.0, 1000.0 - burnt, 1000.0)
        assert world.records["tug"].credits == pytest.approx(100.0 - paid)
        assert depot.credits == pytest.approx(1_000_000.0 + paid)
        assert world.metrics.traded_units == 0.0  # fuel is not cargo


# --- market updates ----------------------------------------------------------------------------


def market_sends(system: sa.ActorSystem) -> list[tuple[float, str | None, str | None, str]]:
    """Every MarketUpdate that went out: (time, receiver, station, detail)."""
    assert system.trace is not None
    return [
        (event.time, event.actor, event.peer, event.detail)
        for event in system.trace.of_kind(sa.EventKind.SEND)
        if event.message_type == "MarketUpdate"
    ]


class Listener(sa.Actor):
    """Subscribes to `topic` and drops what it hears (the trace shows what reached it)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def on_start(self) -> None:
        self.ctx.subscribe(self.topic)

    async def handle(self, message: object) -> object:
        return None


async def test_market_updates_reach_only_the_subscribers_of_that_market(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=0, trace=True) as system:
        world = sim.World(system, step=1.0)
        world.started = trio.current_time()
        for name, x, sector in (
            ("ceres", 0.0, "belt"),
            ("vesta", 9e5, "belt"),
            ("pallas", -9e5, "outer"),
        ):
            await world.add_station(name, (x, 0.0, 0.0), sector=sector, market_interval=10.0)
        assert world.market_topic("vesta") == "market.belt.vesta"
        # A ship follows a station of its route's market from when it first asks it for a
        # berth (it learns the prices as it docks): far away, ceres-vesta hears none yet;
        # pallas-only, already there, hears its own.
        await world.add_ship("ceres-vesta", (0.0, 4e5, 0.0), route=("ceres", "vesta"))
        await world.add_ship("pallas-only", (-9e5, 10.0, 0.0), route=("pallas",))
        await world.add_ship("idle", (0.0, 6e5, 0.0), sector="belt")
        await system.spawn(Listener, "market.belt.*", name="belt-listener")
        await start(world)
        for station in world.stations:
            await world.market_shock(station, "ore", 2.0)
        await trio.sleep(35.0)
        sends = market_sends(system)
        heard_by = {
            station: {receiver for _, receiver, peer, _ in sends if peer == station}
            for station in world.stations
        }
        assert heard_by == {
            "ceres": {"belt-listener"},
            "vesta": {"belt-listener"},
            "pallas": {"pallas-only"},
        }
        assert {(peer, detail) for _, _, peer, detail in sends} == {
            ("ceres", "topic market.belt.ceres"),
            ("vesta", "topic market.belt.vesta"),
            ("pallas", "topic market.outer.pallas"),
        }
        # One update per station per market tick (at 10, 20 and 30 s), to each subscriber.
        assert len(sends) == 3 * (1 + 1 + 1)


async def test_a_station_whose_prices_hold_still_publishes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=0, trace=True) as system:
        world = sim.World(system, step=1.0)
        world.started = trio.current_time()
        await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt", market_interval=10.0)
        await world.add_ship("hauler", (0.0, 5e5, 0.0), route=("ceres",))
        await start(world)
        await trio.sleep(45.0)
        assert market_sends(system) == []
        assert world.station_states["ceres"].market.net_production == {
            "fuel": 0.0,
            "ore": 0.0,
            "water": 0.0,
        }


async def docked_prices_world(system: sa.ActorSystem, *, second_ship_at: float | None) -> sim.World:
    world = sim.World(system, step=1.0)
    world.started = trio.current_time()
    await world.add_station(
        "ceres", (0.0, 0.0, 0.0), sector="belt", prices=CERES, market_interval=120.0
    )
    # It sells 200 ore on docking: the ore price falls well below 6.
    await world.add_ship(
        "seller",
        (0.0, 0.0, 0.0),
        route=("ceres",),
        cargo={"ore": 200.0},
        capacity=300.0,
        stay=1_000.0,
    )
    if second_ship_at is not None:
        await world.add_ship(
            "latecomer", (second_ship_at, 0.0, 0.0), route=("ceres",), stay=1_000.0
        )
    await start(world)
    return world


async def test_a_docked_ship_keeps_up_with_its_stations_market_updates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=0) as system:
        world = await docked_prices_world(system, second_ship_at=None)
        await trio.sleep(5.0)
        ceres = world.station_states["ceres"]
        assert world.records["seller"].prices["ceres"] == CERES
        assert ceres.market.prices()["ore"] < 5.5
        await trio.sleep(120.0)  # the market tick at 120 s drifted stocks and published
        assert ceres.market.net_production["ore"] < 0
        known = world.records["seller"].prices["ceres"]
        assert known == pytest.approx(ceres.market.prices(), abs=1e-3)


async def test_a_ship_that_docked_between_ticks_keeps_up_with_market_updates(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=0) as system:
        world = await docked_prices_world(system, second_ship_at=3_000.0)
        await until(lambda: world.records["latecomer"].berth is not None, within=110.0)
        ceres = world.station_states["ceres"]
        # A docking ship is told the prices as last published, which later updates build on.
        assert world.records["latecomer"].prices["ceres"] == ceres.last_prices
        assert ceres.last_prices != ceres.market.prices()  # the seller's trade moved them since
        await trio.sleep(125.0 - (trio.current_time() - world.started))
        assert world.records["seller"].prices["ceres"] == pytest.approx(
            ceres.market.prices(), abs=1e-3
        )
        assert world.records["latecomer"].prices["ceres"] == pytest.approx(
            ceres.market.prices(), abs=1e-3
        )
