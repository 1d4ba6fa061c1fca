"""The data-oriented core: the fleet's arrays step every body as the scalar loop of earlier
versions did, grow as bodies are added, save and load exactly; restarts are counted as they
happen."""

from __future__ import annotations

import math

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import sim
from spaceactors.sim.fleet import Fleet
from spaceactors.sim.physics import Body, link_leaders, step


def scalar_step(bodies: list[Body], dt: float) -> list[tuple[float, ...]]:
    """The scalar loop of earlier versions (the oracle), on plain copies: the bodies' new
    (x, y, z, vx, vy, vz, fuel)."""
    state = [[b.x, b.y, b.z, b.vx, b.vy, b.vz, b.fuel] for b in bodies]
    index = {id(b): i for i, b in enumerate(bodies)}
    for i, body in enumerate(bodies):
        me = state[i]
        leader, target = body.leader, body.target
        if (leader is None and target is None) or me[6] <= 0.0:
            continue
        vx, vy, vz = me[3], me[4], me[5]
        if leader is not None:
            other = state[index[id(leader)]]
            ox, oy, oz = body.offset
            dx, dy, dz = other[0] + ox - me[0], other[1] + oy - me[1], other[2] + oz - me[2]
            wx, wy, wz = other[3], other[4], other[5]
        else:
            assert target is not None
            dx, dy, dz = target[0] - me[0], target[1] - me[1], target[2] - me[2]
            wx = wy = wz = 0.0
        distance = math.sqrt(dx * dx + dy * dy + dz * dz)
        if distance < 1e-6 and vx == wx and vy == wy and vz == wz:
            continue
        accel = body.max_accel
        top = body.max_speed * body.speed_factor * body.cruise
        if distance > 1e-9:
            scale = min(top, math.sqrt(2.0 * accel * distance) * 0.9, distance / dt) / distance
        else:
            scale = 0.0
        ux, uy, uz = wx + dx * scale, wy + dy * scale, wz + dz * scale
        wanted = math.sqrt(ux * ux + uy * uy + uz * uz)
        if wanted > top:
            cap = top / wanted
            ux, uy, uz = ux * cap, uy * cap, uz * cap
        dvx, dvy, dvz = ux - vx, uy - vy, uz - vz
        change = math.sqrt(dvx * dvx + dvy * dvy + dvz * dvz)
        limit = accel * dt
        if change > limit:
            shrink = limit / change
            dvx, dvy, dvz, change = dvx * shrink, dvy * shrink, dvz * shrink, limit
        cost = change * body.burn
        fuel = me[6]
        if cost > fuel:
            part = fuel / cost
            dvx, dvy, dvz = dvx * part, dvy * part, dvz * part
            cost = fuel
        me[6] = fuel - cost
        me[3], me[4], me[5] = vx + dvx, vy + dvy, vz + dvz
    for me in state:
        me[0] += me[3] * dt
        me[1] += me[4] * dt
        me[2] += me[5] * dt
    return [tuple(me) for me in state]


coordinate = st.floats(-20_000.0, 20_000.0)
body_strategy = st.tuples(
    coordinate,  # x
    coordinate,  # y
    st.floats(-100.0, 100.0),  # vx
    st.one_of(st.none(), st.tuples(coordinate, coordinate)),  # target
    st.floats(0.0, 3.0) | st.just(1000.0),  # fuel: empty, the last drops, or plenty
    st.sampled_from([0.5, 1.0]),  # speed factor
    st.integers(-1, 7),  # leader (an index, -1: none)
)


@settings(max_examples=80, deadline=None)
@given(specs=st.lists(body_strategy, min_size=1, max_size=8), dt=st.sampled_from([1.0, 2.0]))
def test_the_fleet_steps_every_body_as_the_scalar_loop_did(
    specs: list[tuple[float, float, float, tuple[float, float] | None, float, float, int]],
    dt: float,
) -> None:
    bodies = [
        Body(f"b{i}", x, y, vx=vx, fuel=fuel, speed_factor=factor)
        for i, (x, y, vx, _, fuel, factor, _) in enumerate(specs)
    ]
    for body, (_, _, _, target, _, _, lead) in zip(bodies, specs, strict=True):
        if 0 <= lead < len(bodies) and bodies[lead] is not body:
            body.leader, body.offset = bodies[lead], (-300.0, 100.0, 0.0)
        elif target is not None:
            body.target = (target[0], target[1], 0.0)
    for _ in range(5):
        expected = scalar_step(bodies, dt)
        step(bodies, dt)
        got = [(b.x, b.y, b.z, b.vx, b.vy, b.vz, b.fuel) for b in bodies]
        assert got == expected


def test_a_fleet_grows_by_doubling_and_keeps_every_row() -> None:
    fleet = Fleet(1)
    bodies = [
        Body.in_fleet(fleet, f"s{i}", (float(i), -float(i), 0.5), fuel=float(i)) for i in range(100)
    ]
    assert len(fleet) == 100
    assert fleet.capacity == 128
    assert [b.index for b in bodies] == list(range(100))
    assert all(b.position == (float(i), -float(i), 0.5) for i, b in enumerate(bodies))
    assert all(b.fuel == float(i) and b.target is None for i, b in enumerate(bodies))
    assert fleet.rows["s42"] == 42


def test_a_saved_fleet_loads_exactly_with_its_leaders() -> None:
    fleet = Fleet()
    lead = Body.in_fleet(fleet, "lead", (1.0 / 3.0, -0.0, 2.0))
    wing = Body.in_fleet(fleet, "wing", (5.0, 6.0, 7.0), fuel=0.1)
    lead.target = (1e6, 0.0, 0.0)
    wing.leader, wing.offset = lead, (-300.0, 0.0, 0.0)
    fleet.arrived[0] = True
    step(fleet.views, 1.0)
    loaded = Fleet()
    loaded.load(fleet.save(), Body.view)
    link_leaders(loaded)
    assert loaded.save() == fleet.save()
    again = {b.name: b for b in loaded.views}
    assert again["wing"].leader is again["lead"]
    assert again["lead"].target == (1e6, 0.0, 0.0)
    assert math.copysign(1.0, again["lead"].y) == math.copysign(1.0, lead.y)
    assert bool(loaded.arrived[0])


async def test_restarts_are_counted_as_they_happen(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=0, max_restarts=10, within=60.0) as system:
        world = sim.World(system, step=1.0)
        world.started = trio.current_time()
        await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
        for i in range(3):
            await world.add_ship(f"hauler-{i}", (1e5, float(i), 0.0), route=("ceres",))
        await system.user.start_child(world.service())
        assert world.restarts() == 0
        await world.crash("hauler-1")
        await world.crash("ceres")
        await trio.sleep(1.0)
        await world.crash("hauler-1")
        await trio.sleep(1.0)
        assert sorted(world.restarted) == ["ceres", "hauler-1"]  # only these are summed
        assert world.restarts() == 3
