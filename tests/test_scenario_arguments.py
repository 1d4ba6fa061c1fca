"""The simulation's API refuses bad arguments with `ScenarioError`, naming them, before
anything is spawned or scheduled; and a run's duration and the test helpers' times likewise."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.checks import short_repr
from spaceactors.testing.invariants import wait_until_idle

ORIGIN = (0.0, 0.0, 0.0)
BAD_NUMBERS: list[object] = [10**400, math.nan, math.inf, -1.0, True, "1", None, [1]]

Call = Callable[[sim.World, Any], Awaitable[object] | object]
CALLS: list[tuple[str, Call]] = [
    ("add_station(position)", lambda w, v: w.add_station("s", (0.0, v, 0.0), sector="belt")),
    ("add_station(position)", lambda w, v: w.add_station("s", v, sector="belt")),
    ("add_station(sector)", lambda w, v: w.add_station("s", ORIGIN, sector=v)),
    ("add_station(berths)", lambda w, v: w.add_station("s", ORIGIN, sector="b", berths=v)),
    ("add_station(stock)", lambda w, v: w.add_station("s", ORIGIN, sector="b", stock=v)),
    ("add_station(prices)", lambda w, v: w.add_station("s", ORIGIN, sector="b", prices={"o": v})),
    ("add_station(lease)", lambda w, v: w.add_station("s", ORIGIN, sector="b", lease=v)),
    (
        "add_station(market_interval)",
        lambda w, v: w.add_station("s", ORIGIN, sector="b", market_interval=v),
    ),
    ("add_ship(position)", lambda w, v: w.add_ship("a", (v, 0.0, 0.0))),
    ("add_ship(fuel)", lambda w, v: w.add_ship("a", ORIGIN, fuel=v)),
    ("add_ship(max_speed)", lambda w, v: w.add_ship("a", ORIGIN, max_speed=v)),
    ("add_ship(max_accel)", lambda w, v: w.add_ship("a", ORIGIN, max_accel=v)),
    ("add_ship(capacity)", lambda w, v: w.add_ship("a", ORIGIN, capacity=v)),
    ("add_ship(credits)", lambda w, v: w.add_ship("a", ORIGIN, credits=v)),
    ("add_ship(stay)", lambda w, v: w.add_ship("a", ORIGIN, stay=v)),
    ("add_ship(cargo)", lambda w, v: w.add_ship("a", ORIGIN, cargo={"ore": v})),
    ("at(time)", lambda w, v: w.at(v, lambda: None)),
    ("hazard(radius)", lambda w, v: w.hazard("h", ORIGIN, v, sector="b")),
    ("hazard(center)", lambda w, v: w.hazard("h", (0.0, 0.0, v), 1.0, sector="b")),
    ("hazard(duration)", lambda w, v: w.hazard("h", ORIGIN, 1.0, sector="b", duration=v)),
    ("weather(duration)", lambda w, v: w.weather("b", sa.WeatherSeverity.LOW, v)),
    ("emergency(severity)", lambda w, v: w.emergency("a", sa.EmergencyType.PIRATE, v)),
    ("market_shock(factor)", lambda w, v: w.market_shock("s", "ore", v)),
    ("formation(spacing)", lambda w, v: w.formation("a", [], sa.FormationType.CONVOY, v)),
]


async def _call(call: Call, world: sim.World, value: object) -> None:
    result = call(world, value)
    if isinstance(result, Awaitable):
        await result


def _allowed(label: str, value: object) -> bool:
    """Values some arguments legitimately take."""
    if value is None:
        return label in ("hazard(duration)", "add_station(prices)")
    if value == -1.0:  # a coordinate, or a ship in debt
        return label in ("add_ship(credits)",) or "position" in label or "center" in label
    return value == "1" and label == "add_station(sector)"  # a name


@pytest.mark.parametrize(("label", "call"), CALLS, ids=[label for label, _ in CALLS])
async def test_every_world_call_refuses_bad_numbers_naming_the_argument(
    autojump_clock: trio.testing.MockClock, label: str, call: Call
) -> None:
    async with sa.open_system() as system:
        world = sim.World(system)
        for value in BAD_NUMBERS:
            if _allowed(label, value):
                continue
            with pytest.raises(sim.ScenarioError) as caught:
                await _call(call, world, value)
            said = str(caught.value)
            assert label.split("(")[0] in said or "berth" in said, said
            assert len(said) < 200, said
        assert system.user.count_children().specs == 0  # nothing was spawned
        assert not world._events  # nothing was scheduled


async def test_world_refuses_wrong_kinds_and_names(autojump_clock: trio.testing.MockClock) -> None:
    async with sa.open_system() as system:
        world = sim.World(system)
        for bad in ("", 7, None):
            with pytest.raises(sim.ScenarioError, match="add_station"):
                await world.add_station(bad, ORIGIN, sector="b")  # type: ignore[arg-type]
            with pytest.raises(sim.ScenarioError, match="add_ship"):
                await world.add_ship(bad, ORIGIN)  # type: ignore[arg-type]
        with pytest.raises(sim.ScenarioError, match="hazard_type"):
            await world.hazard("h", ORIGIN, 1.0, sector="b", hazard_type="asteroid")  # type: ignore[arg-type]
        with pytest.raises(sim.ScenarioError, match="severity"):
            await world.weather("b", "high", 1.0)  # type: ignore[arg-type]
        with pytest.raises(sim.ScenarioError, match="formation"):
            await world.formation("a", ["b"], "convoy")  # type: ignore[arg-type]
        with pytest.raises(sim.ScenarioError, match="followers"):
            await world.formation("a", "b", sa.FormationType.CONVOY)  # type: ignore[arg-type]
        with pytest.raises(sim.ScenarioError, match="at"):
            world.at(1.0, "not a function")  # type: ignore[arg-type]
        with pytest.raises(sim.ScenarioError, match="expect"):
            world.expect("ok", None)  # type: ignore[arg-type]
        for step in (0.0, -1, math.nan, math.inf, 10**400, "1", True):
            with pytest.raises(sim.ScenarioError, match="the tick step must be a positive"):
                sim.World(system, step=step)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "duration", [0, -5, math.nan, math.inf, 10**400, "60", True], ids=short_repr
)
async def test_run_scenario_refuses_a_bad_duration_with_scenario_error(
    autojump_clock: trio.testing.MockClock, duration: Any
) -> None:
    chosen = sim.load("trade-route")
    with pytest.raises(sim.ScenarioError, match=r"^the duration "):
        await sim.run_scenario(chosen, duration=duration)


@pytest.mark.parametrize(
    ("options", "name"),
    [({"timeout": "1"}, "timeout"), ({"poll": 0}, "poll"), ({"poll": math.nan}, "poll")],
)
async def test_wait_until_idle_refuses_bad_times(
    autojump_clock: trio.testing.MockClock, options: dict[str, Any], name: str
) -> None:
    async with sa.open_system() as system:
        with pytest.raises(ValueError, match=f"^{name}"):
            await wait_until_idle(system, **options)


# Finite numbers beyond physics: the fleet's arrays would overflow squaring them (numpy warns,
# and the ship never moves or flies through everything). (argument, value, what the line says)
UNPHYSICAL: list[tuple[str, Call, float, str]] = [
    ("add_ship(position)", lambda w, v: w.add_ship("a", (v, 0.0, 0.0)), 1e308, "±1e+15 m"),
    ("add_ship(position)", lambda w, v: w.add_ship("a", (0.0, -v, 0.0)), 2e15, "±1e+15 m"),
    (
        "add_station(position)",
        lambda w, v: w.add_station("s", (v, 0.0, 0.0), sector="b"),
        1e16,
        "±1e+15 m",
    ),
    (
        "add_ship(max_speed)",
        lambda w, v: w.add_ship("a", ORIGIN, max_speed=v),
        3e8,
        "the speed of light",
    ),
    ("add_ship(max_accel)", lambda w, v: w.add_ship("a", ORIGIN, max_accel=v), 1e308, "m/s²"),
    (
        "hazard(center)",
        lambda w, v: w.hazard("h", (0.0, 0.0, v), 1.0, sector="b"),
        1e300,
        "±1e+15 m",
    ),
    ("hazard(radius)", lambda w, v: w.hazard("h", ORIGIN, v, sector="b"), 1e300, "1e+15"),
    (
        "formation(spacing)",
        lambda w, v: w.formation("a", [], sa.FormationType.CONVOY, v),
        1e300,
        "1e+15",
    ),
]


@pytest.mark.parametrize(
    ("label", "call", "value", "words"), UNPHYSICAL, ids=[u[0] for u in UNPHYSICAL]
)
async def test_finite_numbers_beyond_physics_are_refused(
    autojump_clock: trio.testing.MockClock, label: str, call: Call, value: float, words: str
) -> None:
    async with sa.open_system() as system:
        world = sim.World(system)
        with pytest.raises(sim.ScenarioError, match=r"\(") as caught:
            await _call(call, world, value)
        said = str(caught.value)
        assert said.startswith(label), said
        assert words in said, said
        assert system.user.count_children().specs == 0


async def test_a_ship_cannot_carry_more_than_its_hold(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        world = sim.World(system)
        with pytest.raises(sim.ScenarioError, match="holds 500 units, more than its capacity 100"):
            await world.add_ship("a", ORIGIN, cargo={"ore": 400.0, "water": 100.0})
        await world.add_ship("b", ORIGIN, cargo={"ore": 100.0})  # full is fine


@pytest.mark.parametrize("field", ["x", "vx", "max_speed", "max_accel"])
def test_a_body_beyond_physics_is_refused(field: str) -> None:
    with pytest.raises(sim.ScenarioError, match=f"^Body.{field} must be"):
        sim.Body("b", **{"x": 0.0, "y": 0.0, field: 1e300})  # type: ignore[arg-type]
