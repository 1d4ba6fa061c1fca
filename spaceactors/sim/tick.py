"""The world's tick: the scenario's events that are due, the weather, the physics of the whole
fleet (`Fleet.step`), and the sensors, run on the fleet's arrays.

Each tick the world finds, with array operations over the whole fleet, the few ships something
may have happened to: close and slow enough at their target (arrival), an empty tank not yet
reported, near a live hazard or inside one they have not left, intercepting another ship. Only
those rows are looked at one by one, in fleet order, and only the ships concerned are told
(`Arrived`, `FuelExhausted`, `HazardEntered`, `HazardCleared`); a ship with nothing new gets no
message. Space weather sets the speed factor of every ship of a stormy sector, by sector number.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

import numpy as np
import trio

from spaceactors.errors import ActorUnavailable, MailboxFull
from spaceactors.sim import events as ev
from spaceactors.sim.fleet import Flags, Fleet

if TYPE_CHECKING:
    from spaceactors.sim.physics import Body
    from spaceactors.sim.records import Hazard
    from spaceactors.sim.world import World

ARRIVAL_RADIUS = 60.0  # m: close enough to a target to have arrived
ARRIVAL_SPEED = 5.0  # m/s: ... and slow enough
STORM_FACTOR = 0.5  # a ship's share of its top speed in space weather
HAZARD_MARGIN = 1.0 + 1e-9  # the array test's radius, a hair wide: the exact test decides


async def run_tick(world: World) -> None:
    """One tick of `world`, at the current time (`World.tick`)."""
    now = trio.current_time()
    await _run_due_events(world, now)
    weather(world, now)
    world.fleet.step(world.step)
    world.metrics.ticks += 1
    world.metrics.ship_updates += len(world.fleet)
    sense(world, now)
    if world.trajectories is not None:
        _record_trajectories(world, world.trajectories, now)


async def _run_due_events(world: World, now: float) -> None:
    """Run the scenario's events due by `now`; one that raises is a scenario bug: the run
    fails, saying which event (`World.event_errors`)."""
    events = world._events
    while events and events[0][0] <= now:
        _, _, action = heapq.heappop(events)
        try:
            result = action()
            if result is not None:
                await result
        except Exception as exc:
            when = trio.current_time() - world.started
            world.event_errors.append(f"at {when:g} s: {type(exc).__name__}: {exc}")
            lifecycle = world.system.lifecycle
            if lifecycle.listeners:  # the summary's "every scheduled event ran" fails
                lifecycle.emit(
                    "expectation_failed",
                    trio.current_time(),
                    "world",
                    f"every scheduled event ran: at {when:g} s: {type(exc).__name__}: {exc}",
                )


def _record_trajectories(
    world: World, trajectories: dict[str, list[tuple[float, float, float]]], now: float
) -> None:
    fleet = world.fleet
    n = len(fleet)
    for name, x, y in zip(fleet.names, fleet.x[:n].tolist(), fleet.y[:n].tolist(), strict=True):
        trajectories.setdefault(name, []).append((now, x, y))


def weather(world: World, now: float) -> None:
    """End the storms that are over; set each ship's speed factor from its sector's weather."""
    if not world.storms:
        return
    for sector, until in list(world.storms.items()):
        if until <= now:
            del world.storms[sector]
    fleet = world.fleet
    n = len(fleet)
    stormy = [world.sector_number(sector) for sector in world.storms]
    slowed = np.isin(fleet.sector[:n], stormy)
    fleet.speed_factor[:n] = np.where(slowed, STORM_FACTOR, 1.0)


def sense(world: World, now: float) -> None:
    """Tell ships what changed this tick: arrival, an empty tank, a hazard entered or left."""
    hazards = [h for h in world.hazards if h.until is None or h.until > now]
    if len(hazards) != len(world.hazards):
        world.hazards = hazards
    fleet = world.fleet
    watch = _arriving(fleet) | (fleet.fuel[: len(fleet)] <= 0.0) & ~fleet.stranded[: len(fleet)]
    if hazards:
        watch |= _near(fleet, hazards)
    rows = set(np.flatnonzero(watch).tolist())
    rows.update(fleet.rows[name] for name in world.inside)
    rows.update(fleet.rows[name] for name in world.intercepts)
    views = fleet.views
    for row in sorted(rows):
        _sense_one(world, views[row], row, hazards)


def _arriving(fleet: Fleet) -> Flags:
    """Rows steering to a target, not yet told they arrived, close and slow enough there."""
    n = len(fleet)
    dx, dy, dz = fleet.tx[:n] - fleet.x[:n], fleet.ty[:n] - fleet.y[:n], fleet.tz[:n] - fleet.z[:n]
    vx, vy, vz = fleet.vx[:n], fleet.vy[:n], fleet.vz[:n]
    close = dx * dx + dy * dy + dz * dz < ARRIVAL_RADIUS**2
    slow = vx * vx + vy * vy + vz * vz < ARRIVAL_SPEED**2
    result: Flags = fleet.has_target[:n] & ~fleet.arrived[:n] & close & slow
    return result


def _near(fleet: Fleet, hazards: list[Hazard]) -> Flags:
    """Rows that may be inside one of `hazards` (`_sense_one` decides exactly)."""
    n = len(fleet)
    x, y, z = fleet.x[:n], fleet.y[:n], fleet.z[:n]
    near = np.zeros(n, dtype=np.bool_)
    for hazard in hazards:
        cx, cy, cz = hazard.center
        reach = (hazard.radius * HAZARD_MARGIN) ** 2
        near |= (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 < reach
    return near


def _sense_one(world: World, body: Body, row: int, hazards: list[Hazard]) -> None:
    """The sensors of one ship, as earlier versions ran them for every ship."""
    fleet = world.fleet
    name = body.name
    if name in world.intercepts:
        _check_intercept(world, body)
    elif fleet.has_target[row] and not fleet.arrived[row]:
        target = body.target
        assert target is not None
        dx, dy, dz = target[0] - body.x, target[1] - body.y, target[2] - body.z
        vx, vy, vz = body.vx, body.vy, body.vz
        if (
            dx * dx + dy * dy + dz * dz < ARRIVAL_RADIUS**2
            and vx * vx + vy * vy + vz * vz < ARRIVAL_SPEED**2
            and tell(world, name, ev.Arrived(target))
        ):
            fleet.arrived[row] = True
    stranded = body.fuel <= 0.0 and not fleet.stranded[row]
    if stranded and tell(world, name, ev.FuelExhausted()):
        fleet.stranded[row] = True
        world.metrics.fuel_exhausted += 1
    if hazards or name in world.inside:
        _check_hazards(world, body, hazards)


def _check_intercept(world: World, body: Body) -> None:
    other = world.bodies[world.intercepts[body.name]]
    relative = math.dist((body.vx, body.vy, body.vz), (other.vx, other.vy, other.vz))
    close = body.distance_to(other.position) < ARRIVAL_RADIUS
    if close and relative < ARRIVAL_SPEED and tell(world, body.name, ev.Arrived(other.position)):
        del world.intercepts[body.name]


def _check_hazards(world: World, body: Body, hazards: list[Hazard]) -> None:
    name = body.name
    inside = next((h for h in hazards if body.distance_to(h.center) < h.radius), None)
    current = world.inside.get(name)
    if inside is not None and current is None:
        entered = ev.HazardEntered(inside.name, inside.center, inside.radius)
        if tell(world, name, entered):
            world.inside[name] = inside.name
            world.metrics.hazard_entries += 1
    elif inside is None and current is not None and tell(world, name, ev.HazardCleared(current)):
        del world.inside[name]
        world.metrics.hazard_exits += 1


def tell(world: World, ship: str, message: object) -> bool:
    """Put a sensor reading in the ship's mailbox; False to try again next tick."""
    try:
        world.ships[ship].try_send(message)
    except (MailboxFull, ActorUnavailable):
        return False
    return True
