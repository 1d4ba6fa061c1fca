"""Ships, stations and the world, driven directly: docking and berths, distress and rescue, fuel,
hazards, formations, weather, sector topics, and restarts from the last consistent state."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.sim import events as ev
from spaceactors.sim.physics import Point
from spaceactors.sim.ship import RESCUE_FUEL, Ship
from spaceactors.sim.station import Station
from spaceactors.sim.world import formation_offset

ORIGIN: Point = (0.0, 0.0, 0.0)
DOCKED = sim.ShipMode.DOCKED


@contextlib.asynccontextmanager
async def new_world(
    *, trace: bool = False, faults: sa.FaultPlan | None = None
) -> AsyncIterator[sim.World]:
    """A world in a fresh system; add stations and ships, then `start` it."""
    async with sa.open_system(
        seed=0, trace=trace or None, faults=faults, max_restarts=100, within=60.0
    ) as system:
        world = sim.World(system, step=1.0)
        world.started = trio.current_time()
        yield world


async def start(world: sim.World) -> None:
    """Start the world's tick service, and run half a tick.

    The world ticks on whole seconds; the tests look in between, so that a tick and the
    messages it set off have all run (a task waking at the very instant of a tick may run
    before or after it).
    """
    await world.system.user.start_child(world.service())
    await trio.sleep(0.5)


def elapsed(world: sim.World) -> float:
    return trio.current_time() - world.started


async def until(predicate: Callable[[], bool], within: float) -> float:
    """Sleep a second at a time until `predicate` holds; the simulation time that took."""
    began = trio.current_time()
    with trio.fail_after(within):
        while not predicate():  # noqa: ASYNC110 - the world has no events to wait on
            await trio.sleep(1.0)
    return trio.current_time() - began


async def sleep_until(world: sim.World, when: float) -> None:
    """Sleep until half a tick after `when` seconds of simulation time."""
    await trio.sleep_until(world.started + when + 0.5)


def spy_permissions(
    monkeypatch: pytest.MonkeyPatch,
) -> list[tuple[float, str, sa.DockingPermission]]:
    """Every DockingPermission a ship handles: (time, ship, permission)."""
    seen: list[tuple[float, str, sa.DockingPermission]] = []
    original = Ship._from_station

    async def spy(self: Ship, content: object) -> None:
        if isinstance(content, sa.DockingPermission):
            seen.append((trio.current_time(), self.rec.name, content))
        await original(self, content)

    monkeypatch.setattr(Ship, "_from_station", spy)
    return seen


# --- docking -----------------------------------------------------------------------------------


async def test_a_ship_docks_at_a_free_berth_and_trades(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    permissions = spy_permissions(monkeypatch)
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt", berths=2)
        await world.add_ship("a", (3_000.0, 0.0, 0.0), route=("ceres",), stay=600.0)
        await start(world)
        took = await until(lambda: world.records["a"].mode is DOCKED, within=120.0)
        assert 20.0 < took < 60.0  # 3 km from rest
        record, ceres = world.records["a"], world.station_states["ceres"]
        assert (record.station, record.berth) == ("ceres", 0)
        assert ceres.berths == ["a", None]
        assert set(ceres.docked_at) == {"a"}
        assert world.bodies["a"].distance_to(ORIGIN) < 60.0
        assert [(ship, p.granted, p.berth_assignment) for _, ship, p in permissions] == [
            ("a", True, 0)
        ]
        assert (world.metrics.dockings, world.metrics.refusals, world.metrics.trades) == (1, 0, 1)


async def test_full_berths_refuse_with_an_estimated_wait_and_queue_the_ship(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    permissions = spy_permissions(monkeypatch)
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt", berths=1)
        await world.add_station("vesta", (100_000.0, 0.0, 0.0), sector="belt")
        route = ("ceres", "vesta")
        await world.add_ship("a", ORIGIN, route=route, stay=40.0)
        await world.add_ship("b", (10.0, 0.0, 0.0), route=route, stay=40.0)
        await world.add_ship("c", (1_500.0, 0.0, 0.0), route=route, stay=40.0)
        await start(world)
        await sleep_until(world, 35.0)
        ceres = world.station_states["ceres"]
        assert ceres.berths == ["a"]
        assert list(ceres.queue) == ["b", "c"]
        refusals = [(ship, p.estimated_wait) for _, ship, p in permissions if not p.granted]
        # Queue position x average stay (60 s until a stay is known) / berths.
        assert refusals == [("b", 60.0), ("c", 120.0)]
        assert world.metrics.refusals == 2
        for ship in ("b", "c"):
            assert world.records[ship].mode is sim.ShipMode.DOCKING
            assert world.records[ship].berth is None

        # a leaves after its 40 s: b (first in the queue) gets the berth, then c after b.
        await sleep_until(world, 42.0)
        assert world.records["a"].mode is sim.ShipMode.FLYING
        assert (world.records["b"].mode, world.records["b"].berth) == (DOCKED, 0)
        assert ceres.berths == ["b"]
        assert list(ceres.queue) == ["c"]
        assert world.metrics.undockings == 1
        await sleep_until(world, 83.0)
        assert ceres.berths == ["c"]
        assert world.records["c"].mode is DOCKED
        granted = [(round(t - world.started), ship) for t, ship, p in permissions if p.granted]
        assert granted == [(0, "a"), (40, "b"), (80, "c")]
        assert world.metrics.dockings == 3
        assert ceres.stays[-1] == pytest.approx(40.0, abs=1.0)  # the estimates learn real stays


async def test_a_queued_ship_gets_its_berth_even_if_the_grant_is_lost_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lose_grant = sa.DropMessages(
        start=39.5, stop=40.5, scope=sa.Scope(message_types="StationToShip", actors="b")
    )
    async with new_world(trace=True, faults=sa.FaultPlan([lose_grant])) as world:
        await world.add_station("ceres", ORIGIN, sector="belt", berths=1)
        await world.add_ship("a", ORIGIN, route=("ceres",), stay=40.0)
        await world.add_ship("b", (10.0, 0.0, 0.0), route=("ceres",), stay=40.0)
        await start(world)
        await sleep_until(world, 39.0)
        assert world.records["b"].mode is sim.ShipMode.DOCKING
        await until(lambda: world.records["b"].mode is DOCKED, within=10.0)
        assert 40.5 < elapsed(world) < 43.0  # the retry, about a second after the loss
        trace = world.system.trace
        assert trace is not None
        lost = [e for e in trace.of_kind(sa.EventKind.DROP) if e.actor == "b"]
        assert lost
        assert world.system.reliable.stats().retried >= 1
        assert world.station_states["ceres"].berths == ["b"]


async def test_a_ship_that_dies_docked_loses_its_berth_at_the_next_berth_check(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt", berths=1)
        await world.add_ship("a", ORIGIN, route=("ceres",), stay=1_000.0)
        await world.add_ship("b", (10.0, 0.0, 0.0), route=("ceres",), stay=1_000.0)
        await start(world)
        await sleep_until(world, 5.0)
        ceres = world.station_states["ceres"]
        assert ceres.berths == ["a"]
        await world.ships["a"].stop()  # for good: no restart
        await sleep_until(world, 29.0)
        assert ceres.berths == ["a"]  # nobody noticed yet
        await sleep_until(world, 31.0)  # the berth check at 30 s
        assert ceres.berths == ["b"]
        assert "a" not in ceres.docked_at
        assert world.records["b"].mode is DOCKED
        assert world.metrics.evictions == 1


async def test_the_lease_evicts_a_ship_that_overstays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt", berths=1, lease=60.0)
        await world.add_station("vesta", (50_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("a", ORIGIN, route=("ceres", "vesta"), stay=1_000.0)
        await world.add_ship("b", (10.0, 0.0, 0.0), route=("ceres", "vesta"), stay=1_000.0)
        await start(world)
        await sleep_until(world, 85.0)
        ceres = world.station_states["ceres"]
        assert ceres.berths == ["a"]
        assert world.metrics.evictions == 0
        await sleep_until(world, 91.0)  # the first berth check more than 60 s after docking
        assert world.metrics.evictions == 1
        assert ceres.berths == ["b"]
        record = world.records["a"]
        assert (record.mode, record.station, record.berth, record.leg) == (
            sim.ShipMode.FLYING,
            None,
            None,
            1,
        )
        assert world.bodies["a"].target == (50_000.0, 0.0, 0.0)  # on to the next station


async def test_a_ship_restarted_while_docked_still_leaves_after_its_stay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt")
        await world.add_station("vesta", (50_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("a", ORIGIN, route=("ceres", "vesta"), stay=40.0)
        await start(world)
        await sleep_until(world, 10.0)
        assert world.records["a"].mode is DOCKED
        await world.crash("a")
        await sleep_until(world, 11.0)
        assert world.ships["a"].status().restarts == 1
        assert world.records["a"].mode is DOCKED  # restarted where it was
        await sleep_until(world, 60.0)
        assert world.station_states["ceres"].berths == [None, None]
        assert world.records["a"].mode is sim.ShipMode.FLYING


# --- restarts ----------------------------------------------------------------------------------


async def test_a_crashed_ship_restarts_from_its_last_consistent_state_and_keeps_flying(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt")
        await world.add_station("vesta", (20_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship(
            "a", (2_000.0, 500.0, 0.0), route=("vesta", "ceres"), cargo={"ore": 5.0}, stay=30.0
        )
        await start(world)
        await sleep_until(world, 20.0)
        before = world.records["a"].snapshot()
        assert before.mode is sim.ShipMode.FLYING
        x = world.bodies["a"].x
        await world.crash("a")
        await sleep_until(world, 22.0)
        assert world.ships["a"].status().restarts == 1
        assert world.records["a"] == before
        assert world.bodies["a"].x > x  # still on its way
        assert world.bodies["a"].target == (20_000.0, 0.0, 0.0)
        await until(lambda: world.records["a"].mode is DOCKED, within=200.0)
        assert world.records["a"].station == "vesta"


async def test_a_crash_mid_trade_neither_loses_nor_duplicates_cargo(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The station applies the trade and then crashes: its reply never reaches the ship, whose
    ask fails, so the ship crashes too; restarted, it repeats the trade (its `pending_trade`),
    and the station answers the repeat with the result it already applied."""
    handle = Station.handle
    crashed: list[int] = []

    async def lose_first_reply(self: Station, message: object) -> object:
        result = await handle(self, message)
        if isinstance(message, ev.Trade) and not crashed:
            crashed.append(message.trade_id)
            raise RuntimeError("the station lost its reply")
        return result

    monkeypatch.setattr(Station, "handle", lose_first_reply)
    kept: list[sim.World] = []

    @sim.scenario(duration=60.0)
    async def mid_trade(world: sim.World) -> None:
        await world.add_station("ceres", ORIGIN, sector="belt", prices={"ore": 6.0, "water": 9.0})
        await world.add_station("vesta", (80_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship(
            "a", ORIGIN, route=("ceres", "vesta"), cargo={"ore": 20.0, "water": 10.0}, stay=10.0
        )
        world.expect(*sim.no_cargo_lost())

    summary = await sim.run_scenario(mid_trade, keep_world=kept.append)
    (world,) = kept
    assert crashed == [1]
    assert summary.trades == 1  # applied once, answered twice
    assert summary.restarts == 2  # the station and the ship
    assert summary.cargo_imbalance == 0.0
    assert summary.passed
    record = world.records["a"]
    assert record.pending_trade is None
    assert record.cargo == {}
    (result,) = world.station_states["ceres"].trades.values()
    assert result.credits == pytest.approx(20 * 6.0 + 10 * 9.0, rel=0.02)  # about list price
    assert record.credits == pytest.approx(1000.0 + result.credits)  # paid once
    ceres = world.station_states["ceres"]
    assert ceres.market.goods["ore"].stock == 1020.0 + ceres.market.net_production["ore"]
    assert ceres.credits == pytest.approx(1_000_000.0 - result.credits)


# --- fuel, distress and rescue -----------------------------------------------------------------


async def test_a_ship_out_of_fuel_drifts_and_calls_for_help(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("vesta", (100_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("drifter", ORIGIN, route=("vesta",), fuel=1.0)
        await start(world)
        await until(lambda: world.records["drifter"].mode is sim.ShipMode.EMERGENCY, within=60.0)
        body = world.bodies["drifter"]
        assert body.fuel == 0.0
        assert body.drifting
        assert world.metrics.fuel_exhausted == 1
        assert world.metrics.distress_calls == 1
        assert world.metrics.unanswered == {"drifter"}
        assert world.records["drifter"].distress_since is not None
        x, vx = body.x, body.vx
        assert vx == pytest.approx(100.0)  # 1 unit of fuel buys 100 m/s
        await trio.sleep(50.0)
        assert (body.vx, body.vy) == (vx, 0.0)
        assert body.x == pytest.approx(x + 50.0 * vx)
        assert world.metrics.fuel_exhausted == 1  # told once


async def test_a_distress_call_is_answered_by_the_nearest_able_ship(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_ship("victim", ORIGIN, sector="belt")
        await world.add_ship("far", (0.0, 10_000.0, 0.0), sector="belt")
        await world.add_ship("near", (2_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("mid", (-5_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("dry", (1_000.0, 0.0, 0.0), sector="belt", fuel=50.0)  # unable
        await world.add_ship("elsewhere", (500.0, 0.0, 0.0), sector="outer")  # does not hear
        await start(world)
        await sleep_until(world, 5.0)
        await world.emergency("victim", sa.EmergencyType.HULL_BREACH, severity=9)
        await sleep_until(world, 8.0)
        assert world.records["victim"].mode is sim.ShipMode.EMERGENCY
        assert world.metrics.answer_times == [pytest.approx(2.0)]  # the offer window
        rescuing = {name: record.rescuing for name, record in world.records.items()}
        assert rescuing == {
            "victim": None,
            "far": None,
            "near": "victim",
            "mid": None,
            "dry": None,
            "elsewhere": None,
        }
        assert world.bodies["near"].leader is world.bodies["victim"]  # flying to its side
        fuel = world.bodies["near"].fuel
        took = await until(lambda: bool(world.metrics.rescue_times), within=120.0)
        assert world.bodies["near"].distance_to(world.bodies["victim"].position) < 60.0
        (rescue_time,) = world.metrics.rescue_times
        assert rescue_time == pytest.approx(took + 3.0, abs=1.0)
        assert 20.0 < rescue_time < 80.0  # about 2 km from rest, and back to rest
        assert world.metrics.unanswered == set()
        assert world.metrics.distress_calls == 1
        victim = world.records["victim"]  # its record after the rescue
        assert victim.mode is sim.ShipMode.IDLE
        assert world.records["near"].rescuing is None
        handed = world.bodies["victim"].fuel - 1000.0
        assert handed > 0
        assert handed == pytest.approx(RESCUE_FUEL * fuel, rel=0.05)


class Listener(sa.Actor):
    """Subscribes to `topic` and keeps what it hears, with the time."""

    def __init__(self, topic: str, heard: list[tuple[float, object]]) -> None:
        self.topic = topic
        self.heard = heard

    async def on_start(self) -> None:
        self.ctx.subscribe(self.topic)

    async def handle(self, message: object) -> object:
        self.heard.append((trio.current_time(), message))
        return None


async def test_an_unanswered_call_goes_out_again_until_someone_comes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    heard: list[tuple[float, object]] = []
    async with new_world() as world:
        await world.system.spawn(Listener, "distress.belt", heard)
        await world.add_ship("victim", ORIGIN, sector="belt")
        await start(world)
        await world.emergency("victim", sa.EmergencyType.ENGINE_FAILURE)
        await sleep_until(world, 100.0)
        # Each call waits 2 s for offers, then 30 s before it goes out again.
        assert [t - world.started for t, _ in heard] == [0.5, 32.5, 64.5, 96.5]
        assert all(isinstance(m, ev.Distress) and m.ship == "victim" for _, m in heard)
        assert world.metrics.distress_calls == 1  # one emergency, called out four times
        assert world.metrics.unanswered == {"victim"}
        # Somebody able turns up in the sector: the next call is answered.
        await world.add_ship("helper", (0.0, 3_000.0, 0.0), sector="belt")
        await until(lambda: world.records["helper"].rescuing == "victim", within=40.0)
        await until(lambda: not world.metrics.unanswered, within=120.0)
        assert world.metrics.answer_times == [pytest.approx(130.0, abs=1.0)]


async def test_a_drifting_ship_is_rescued_alongside(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("vesta", (40_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("drifter", ORIGIN, route=("vesta",), fuel=1.0)
        await world.add_ship("helper", (0.0, 5_000.0, 0.0), sector="belt")
        await start(world)
        await until(lambda: world.records["helper"].rescuing == "drifter", within=60.0)
        await until(lambda: bool(world.metrics.rescue_times), within=300.0)
        helper, drifter = world.bodies["helper"], world.bodies["drifter"]
        assert helper.distance_to(drifter.position) < 500.0


async def test_a_ship_rescued_while_docked_gets_going_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt", berths=1)
        await world.add_station("vesta", (30_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("a", ORIGIN, route=("ceres", "vesta"), stay=60.0)
        await world.add_ship("helper", (3_000.0, 0.0, 0.0), sector="belt")
        await start(world)
        await sleep_until(world, 10.0)
        assert world.records["a"].mode is DOCKED
        await world.emergency("a", sa.EmergencyType.ENGINE_FAILURE)
        await until(lambda: bool(world.metrics.rescue_times), within=120.0)
        await trio.sleep(150.0)  # its stay at Ceres, at most, and it is on its way
        record = world.records["a"]
        assert (record.mode, record.leg) == (sim.ShipMode.FLYING, 1)
        assert world.station_states["ceres"].berths == [None]


# --- hazards, weather, formations --------------------------------------------------------------


async def test_a_ship_inside_a_hazard_steers_out_and_goes_on_to_its_destination(
    autojump_clock: trio.testing.MockClock,
) -> None:
    center: Point = (0.0, 0.0, 0.0)
    async with new_world() as world:
        await world.add_station("vesta", (30_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("a", (-1_000.0, 0.0, 0.0), route=("vesta",), stay=600.0)
        await world.hazard("field", center, 3_000.0, sector="belt")
        await start(world)
        body = world.bodies["a"]
        await sleep_until(world, 2.0)
        assert world.records["a"].hazard == "field"
        left = await until(lambda: body.distance_to(center) >= 3_000.0, within=120.0)
        assert left < 60.0
        await sleep_until(world, elapsed(world) + 2.0)
        assert world.records["a"].hazard is None
        assert world.metrics.hazard_exits == 1
        # Round the field, not through it, and on to Vesta.
        closest = math.inf
        while world.records["a"].mode is not DOCKED:
            await trio.sleep(1.0)
            closest = min(closest, body.distance_to(center))
            assert elapsed(world) < 500.0
        assert closest >= 3_000.0
        assert world.records["a"].station == "vesta"
        assert world.metrics.hazard_entries == 1


async def test_a_hazard_that_ends_clears_the_ships_inside(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_ship("victim", ORIGIN, sector="belt")
        await start(world)
        await world.emergency("victim", sa.EmergencyType.ENGINE_FAILURE)  # it stays put
        await world.hazard("storm-cell", (100.0, 0.0, 0.0), 2_000.0, sector="belt", duration=20.0)
        await sleep_until(world, 5.0)
        assert world.records["victim"].hazard == "storm-cell"
        assert world.bodies["victim"].distance_to(ORIGIN) < 10.0  # in distress: it waits
        await sleep_until(world, 25.0)
        assert world.records["victim"].hazard is None
        assert world.hazards == []
        assert (world.metrics.hazard_entries, world.metrics.hazard_exits) == (1, 1)


async def test_space_weather_slows_the_ships_of_its_sector_until_it_passes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("ceres", (200_000.0, 0.0, 0.0), sector="belt")
        await world.add_station("pallas", (0.0, 200_000.0, 0.0), sector="outer")
        await world.add_ship("belter", ORIGIN, route=("ceres",))
        await world.add_ship("outsider", ORIGIN, route=("pallas",))
        await start(world)
        await world.weather("belt", sa.WeatherSeverity.HIGH, 100.0)
        await sleep_until(world, 90.0)
        assert world.bodies["belter"].speed == pytest.approx(100.0)
        assert world.bodies["outsider"].speed == pytest.approx(200.0)
        await sleep_until(world, 130.0)
        assert world.bodies["belter"].speed == pytest.approx(200.0)
        assert world.storms == {}


@pytest.mark.parametrize(
    "formation",
    [sa.FormationType.CONVOY, sa.FormationType.DEFENSIVE, sa.FormationType.EXPLORATION],
)
async def test_followers_take_and_hold_their_places_around_the_leader(
    autojump_clock: trio.testing.MockClock, formation: sa.FormationType
) -> None:
    leader: Point = (5_000.0, -2_000.0, 0.0)
    followers = ["f1", "f2", "f3"]
    async with new_world() as world:
        await world.add_ship("lead", leader, sector="belt")
        for i, name in enumerate(followers):
            await world.add_ship(name, (1_000.0 * i, 3_000.0, 0.0), sector="belt")
        await start(world)
        await world.formation("lead", followers, formation, spacing=250.0)
        await sleep_until(world, 150.0)
        for index, name in enumerate(followers, start=1):
            dx, dy, dz = formation_offset(formation, index, 250.0)
            slot = (leader[0] + dx, leader[1] + dy, leader[2] + dz)
            for _ in range(10):  # settled: it stays there
                assert world.bodies[name].distance_to(slot) < 10.0
                await trio.sleep(3.0)
            assert world.records[name].leader == "lead"
            assert world.bodies[name].leader is world.bodies["lead"]


def test_formation_offsets() -> None:
    convoy = [formation_offset(sa.FormationType.CONVOY, i, 100.0) for i in (1, 2, 3)]
    assert convoy == [(-100.0, 0.0, 0.0), (-200.0, 0.0, 0.0), (-300.0, 0.0, 0.0)]
    wide = [formation_offset(sa.FormationType.EXPLORATION, i, 100.0) for i in (1, 2, 3, 4)]
    assert wide == [(0.0, 300.0, 0.0), (0.0, -300.0, 0.0), (0.0, 600.0, 0.0), (0.0, -600.0, 0.0)]
    ring = [formation_offset(sa.FormationType.DEFENSIVE, i, 100.0) for i in range(1, 7)]
    assert all(math.hypot(x, y) == pytest.approx(100.0) for x, y, _ in ring)
    assert len({(round(x), round(y)) for x, y, _ in ring}) == 6


async def test_a_convoy_holds_its_spacing_behind_a_moving_leader(
    autojump_clock: trio.testing.MockClock,
) -> None:
    followers = ["f1", "f2"]
    async with new_world() as world:
        await world.add_station("vesta", (200_000.0, 0.0, 0.0), sector="belt")
        await world.add_ship("lead", (1_000.0, 0.0, 0.0), route=("vesta",))
        for i, name in enumerate(followers, start=1):
            await world.add_ship(name, (1_000.0 - 300.0 * i, 200.0, 0.0), sector="belt")
        await start(world)
        await world.formation("lead", followers, sa.FormationType.CONVOY)
        await sleep_until(world, 200.0)
        lead = world.bodies["lead"]
        assert lead.speed == pytest.approx(160.0)  # a formation's leader cruises at 80%
        for index, name in enumerate(followers, start=1):
            slot = (lead.x - 300.0 * index, lead.y, lead.z)
            assert world.bodies[name].distance_to(slot) < 50.0


# --- sector topics -----------------------------------------------------------------------------


async def test_a_ship_that_changes_sector_hears_the_new_sector_only(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        await world.add_station("ceres", ORIGIN, sector="belt")
        await world.add_station("pallas", (10_000.0, 0.0, 0.0), sector="outer")
        await world.add_ship("hauler", ORIGIN, route=("ceres", "pallas"), stay=20.0)
        await start(world)
        router = world.system.router
        hauler = world.ships["hauler"]

        def hears(topic: str) -> bool:
            return hauler in router.subscribers(topic)

        await sleep_until(world, 5.0)
        assert world.records["hauler"].sector == "belt"
        assert all(hears(f"{kind}.belt") for kind in ("distress", "hazard", "weather"))
        assert not any(hears(f"{kind}.outer") for kind in ("distress", "hazard", "weather"))
        await sleep_until(world, 25.0)  # left Ceres for Pallas
        assert world.records["hauler"].sector == "outer"
        assert all(hears(f"{kind}.outer") for kind in ("distress", "hazard", "weather"))
        assert not any(hears(f"{kind}.belt") for kind in ("distress", "hazard", "weather"))
        # The markets it follows are those on its route it has asked a berth of (it knows
        # their prices), wherever it is: Ceres's, and Pallas's once it asks there.
        assert hears("market.belt.ceres")
        assert not hears("market.outer.pallas")
        with trio.fail_after(600.0):
            while world.records["hauler"].station != "pallas":  # noqa: ASYNC110
                await trio.sleep(1.0)
        assert hears("market.outer.pallas")
        assert hears("market.belt.ceres")


# --- building a world --------------------------------------------------------------------------


async def test_a_world_refuses_impossible_requests(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with new_world() as world:
        with pytest.raises(sim.ScenarioError, match="positive"):
            sim.World(world.system, step=0.0)
        await world.add_station("ceres", ORIGIN, sector="belt")
        await world.add_ship("a", ORIGIN)
        with pytest.raises(sim.ScenarioError, match="'ceres' is taken"):
            await world.add_station("ceres", ORIGIN, sector="belt")
        with pytest.raises(sim.ScenarioError, match="'a' is taken"):
            await world.add_ship("a", ORIGIN)
        with pytest.raises(sim.ScenarioError, match="'ceres' is taken"):
            await world.add_ship("ceres", ORIGIN)
        with pytest.raises(sim.ScenarioError, match="at least one berth"):
            await world.add_station("vesta", ORIGIN, sector="belt", berths=0)
        with pytest.raises(sim.ScenarioError, match=r"unknown stations on its route: \['vesta'\]"):
            await world.add_ship("b", ORIGIN, route=("ceres", "vesta"))
        with pytest.raises(sim.ScenarioError, match="no ship named 'ghost'"):
            await world.emergency("ghost", sa.EmergencyType.ENGINE_FAILURE)
        with pytest.raises(sim.ScenarioError, match="no ship named 'ghost'"):
            await world.formation("ghost", ["a"], sa.FormationType.CONVOY)
        with pytest.raises(sim.ScenarioError, match="no station named 'vesta'"):
            await world.market_shock("vesta", "ore", 2.0)
        assert world.records["a"].sector == "belt"  # the nearest station's


async def test_scheduled_events_run_at_their_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ran: list[tuple[str, float]] = []
    async with new_world() as world:

        async def later() -> None:
            ran.append(("async", elapsed(world)))

        world.at(30.0, later)
        world.at(10.0, lambda: ran.append(("sync", elapsed(world))))
        world.at(10.0, lambda: ran.append(("same time, later", elapsed(world))))
        await start(world)
        await sleep_until(world, 40.0)
        assert ran == [("sync", 10.0), ("same time, later", 10.0), ("async", 30.0)]
        assert world.metrics.ticks == 41
