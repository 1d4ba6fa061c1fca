"""Scenarios: a decorated async function that builds a world, and the runner that runs it.

A scenario file defines one or more::

    from spaceactors import sim

    @sim.scenario(duration=1800, description="two stations and a hauler")
    async def trade_route(world: sim.World) -> None:
        await world.add_station("ceres", (0, 0, 0), sector="belt")
        ...
        world.at(600, lambda: world.emergency("hauler-1", sa.EmergencyType.ENGINE_FAILURE))
        world.expect("a trade happened", lambda s: s.trades > 0)

`run_scenario` opens a system, builds the world, starts its tick service under the supervision
tree, runs for the scenario's duration in simulation time, and returns a `Summary` that says
what happened and which expectations held.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import trio

from spaceactors import checks
from spaceactors.errors import SpaceActorsError
from spaceactors.faults import FaultPlan
from spaceactors.sim.world import World
from spaceactors.system import ActorSystem, open_system
from spaceactors.trace import Trace
from spaceactors.virtual import current_seed

Build = Callable[[World], Awaitable[None]]


class ScenarioNotFound(SpaceActorsError, LookupError):
    """No shipped scenario has that name, and no file has that path (or it defines none)."""


class ScenarioBroken(SpaceActorsError, ValueError):
    """A scenario file could not be loaded (a syntax error, an import that failed...)."""


@attrs.frozen
class Scenario:
    """A named way to build a world, with its default duration and tick step."""

    name: str
    build: Build
    description: str = ""
    duration: float = 600.0
    step: float = 1.0


def scenario(
    name: str | None = None,
    *,
    duration: float = 600.0,
    step: float = 1.0,
    description: str | None = None,
) -> Callable[[Build], Scenario]:
    """Turn ``async def build(world)`` into a `Scenario` (named after the function, with
    underscores as dashes, unless `name` is given; described by its docstring)."""

    def make(build: Build) -> Scenario:
        return Scenario(
            name or build.__name__.replace("_", "-"),
            build,
            description if description is not None else (build.__doc__ or "").strip(),
            duration,
            step,
        )

    return make


# --- finding scenarios ------------------------------------------------------------------------


def shipped() -> list[Scenario]:
    """The scenarios in `spaceactors.scenarios`, by name."""
    import spaceactors.scenarios as package

    found: dict[str, Scenario] = {}
    for module in pkgutil.iter_modules(package.__path__):
        loaded = importlib.import_module(f"{package.__name__}.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, Scenario):
                found[value.name] = value
    return [found[name] for name in sorted(found)]


def load(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or the (first) scenario a Python file defines.

    Raises:
        ScenarioNotFound: no such name or file, or the file defines no scenario.
        ScenarioBroken: the file does not load; the message has the line and the error.
    """
    path = Path(name_or_path)
    if path.suffix == ".py" or path.exists():
        return _from_file(path)
    for known in shipped():
        if known.name == name_or_path:
            return known
    names = ", ".join(s.name for s in shipped())
    raise ScenarioNotFound(f"no scenario named {name_or_path!r} (shipped: {names})")


def _from_file(path: Path) -> Scenario:
    if not path.is_file():
        raise ScenarioNotFound(f"no scenario file at {path}")
    module_name = f"spaceactors_scenario_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ScenarioBroken(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:
        line = _line_in(exc, str(path))
        raise ScenarioBroken(f"{path}:{line}: {type(exc).__name__}: {exc}") from None
    scenarios = [value for value in vars(module).values() if isinstance(value, Scenario)]
    own = [found for found in scenarios if found.build.__module__ == module_name]
    if not (own or scenarios):
        raise ScenarioNotFound(f"{path} defines no @sim.scenario function")
    return (own or scenarios)[0]  # its own, before any it imported to build on


def _line_in(exc: BaseException, filename: str) -> int | None:
    """The line of `filename` that the error passed through last (else the innermost one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [frame for frame in frames if frame.filename == filename]
    return (mine or frames)[-1].lineno if frames else None


# --- running ----------------------------------------------------------------------------------


@attrs.frozen
class Progress:
    """Where a run is: shown by the command's progress bar."""

    sim_time: float
    duration: float
    messages: int
    actors: int
    restarts: int
    wall_seconds: float


@attrs.frozen
class Summary:
    """What a run did, and whether its expectations held."""

    scenario: str
    seed: int
    duration: float
    ships: int
    stations: int
    messages: int
    messages_by_type: dict[str, int]
    dockings: int
    refusals: int
    evictions: int
    trades: int
    traded_units: float
    distress_calls: int
    rescues: int
    unanswered: int
    max_answer_time: float | None
    hazard_entries: int
    fuel_exhausted: int
    restarts: int
    dead_letters: int
    cargo_imbalance: float
    ship_updates: int
    wall_seconds: float
    expectations: tuple[tuple[str, bool, str], ...] = ()

    @property
    def passed(self) -> bool:
        """Every expectation held."""
        return all(ok for _, ok, _ in self.expectations)


async def run_scenario(
    chosen: Scenario,
    *,
    seed: int | None = None,
    duration: float | None = None,
    trace: Trace | str | None = None,
    faults: FaultPlan | None = None,
    progress: Callable[[Progress], None] | None = None,
    updates: int = 100,
    keep_world: Callable[[World], None] | None = None,
) -> Summary:
    """Run `chosen` in the current Trio run (use `spaceactors.run` for virtual time).

    `progress` is called `updates` times along the way; `keep_world` gets the world before
    it runs (to record trajectories, say).
    """
    if seed is None:
        seed = current_seed() or 0
    length = chosen.duration if duration is None else duration
    try:  # NaN, bools, strings, huge ints: one ValueError
        length = checks.seconds("duration", length, zero=False)
    except ValueError:
        raise ValueError(
            f"duration must be positive, finite seconds, got {checks.short_repr(length)}"
        ) from None
    wall = time.perf_counter()
    async with open_system(
        seed=seed, trace=trace, faults=faults, max_restarts=1000, within=60.0
    ) as system:
        world = World(system, step=chosen.step)
        world.started = trio.current_time()
        if keep_world is not None:
            keep_world(world)
        try:
            await chosen.build(world)
        except Exception as exc:  # the scenario's own code failed: say where, in one line
            code = getattr(chosen.build, "__code__", None)
            script = code.co_filename if code is not None else "<scenario>"
            raise ScenarioBroken(
                f"scenario {chosen.name!r} failed while building its world at "
                f"{script}:{_line_in(exc, script)}: {type(exc).__name__}: {exc}"
            ) from exc
        goods_before = _goods(world)
        end = world.started + length
        world.ends_at = end
        await system.user.start_child(world.service())
        chunk = length / max(updates, 1)
        while (now := trio.current_time()) < end:
            await trio.sleep_until(min(end, now + chunk))
            if progress is not None:
                progress(_progress(system, world, length, wall))
        summary = _summarize(chosen, system, world, seed, length, wall, goods_before)
    checked = _event_check(world) + tuple(
        _check(expectation.description, expectation.check, summary)
        for expectation in world.expectations
    )
    return attrs.evolve(summary, expectations=checked)


def _check(
    description: str, check: Callable[[Any], bool], summary: Summary
) -> tuple[str, bool, str]:
    try:
        return description, bool(check(summary)), ""
    except Exception as exc:  # a broken check fails its expectation, with why
        return description, False, f"{type(exc).__name__}: {exc}"


def _progress(system: ActorSystem, world: World, length: float, wall: float) -> Progress:
    stats = system.router.state
    return Progress(
        sim_time=trio.current_time() - world.started,
        duration=length,
        messages=sum(stats.delivered.values()),
        actors=len(system.registry),
        restarts=_restarts(world),
        wall_seconds=time.perf_counter() - wall,
    )


def _restarts(world: World) -> int:
    """Restarts of every ship and station so far."""
    refs = [*world.ships.values(), *(site.ref for site in world.stations.values())]
    return sum(ref._cell.restarts for ref in refs)


def _event_check(world: World) -> tuple[tuple[str, bool, str], ...]:
    """A failed expectation for scheduled events that raised (a scenario bug), if any."""
    if not world.event_errors:
        return ()
    return (("every scheduled event ran", False, "; ".join(world.event_errors)),)


def _goods(world: World) -> float:
    """Every unit of cargo (not fuel) in ships and stations, less what stations produced."""
    total = 0.0
    for record in world.records.values():
        total += sum(q for item, q in record.cargo.items() if item != "fuel")
        trade = record.pending_trade
        if trade is not None and record.station is not None:  # applied by the station only
            result = world.station_states[record.station].trades.get(trade.trade_id)
            if result is not None:
                total -= sum(item.quantity for item in result.sold)
                total += sum(item.quantity for item in result.bought)
    for state in world.station_states.values():
        market = state.market
        total += sum(c.stock for item, c in market.goods.items() if item != "fuel")
        total -= sum(q for item, q in market.net_production.items() if item != "fuel")
    return total


def _summarize(
    chosen: Scenario,
    system: ActorSystem,
    world: World,
    seed: int,
    length: float,
    wall: float,
    goods_before: float,
) -> Summary:
    metrics = world.metrics
    stats = system.router.stats()
    return Summary(
        scenario=chosen.name,
        seed=seed,
        duration=length,
        ships=len(world.ships),
        stations=len(world.stations),
        messages=stats.total_messages,
        messages_by_type=dict(sorted(stats.by_type.items())),
        dockings=metrics.dockings,
        refusals=metrics.refusals,
        evictions=metrics.evictions,
        trades=metrics.trades,
        traded_units=round(metrics.traded_units, 3),
        distress_calls=metrics.distress_calls,
        rescues=len(metrics.rescue_times),
        unanswered=len(metrics.unanswered),
        max_answer_time=max(metrics.answer_times, default=None),
        hazard_entries=metrics.hazard_entries,
        fuel_exhausted=metrics.fuel_exhausted,
        restarts=_restarts(world),
        dead_letters=sum(system.dead_letters.by_reason.values()),
        cargo_imbalance=round(abs(_goods(world) - goods_before), 6),
        ship_updates=metrics.ship_updates,
        wall_seconds=time.perf_counter() - wall,
    )


# --- expectations users reach for -------------------------------------------------------------


def every_distress_answered_within(seconds: float) -> tuple[str, Callable[[Summary], bool]]:
    """Every distress call got a rescuer within `seconds` (and none is left unanswered)."""
    return (
        f"every distress call answered within {seconds:g} s",
        lambda s: s.unanswered == 0 and (s.max_answer_time is None or s.max_answer_time <= seconds),
    )


def no_cargo_lost() -> tuple[str, Callable[[Summary], bool]]:
    """Cargo is conserved: every unit is in a hold or a store, or was made or used by a
    station (crashes in the middle of trades included)."""
    return "no cargo lost", lambda s: s.cargo_imbalance < 1e-6
