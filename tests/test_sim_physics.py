"""Kinematics of the simulation: bounded thrust, a speed cap, fuel, drift, braking, formations,
and the geometry ships use to leave and go round hazards."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spaceactors.sim import physics
from spaceactors.sim.physics import Body, around, exit_point, step

coordinate = st.floats(-50_000.0, 50_000.0)
velocity = st.floats(-150.0, 150.0)


def fly(bodies: list[Body], seconds: float, dt: float = 1.0) -> None:
    for _ in range(round(seconds / dt)):
        step(bodies, dt)


def segment_miss(start: physics.Point, end: physics.Point, center: physics.Point) -> float:
    """How close the straight segment `start`-`end` passes to `center`."""
    d = [e - s for s, e in zip(start, end, strict=True)]
    c = [p - s for s, p in zip(start, center, strict=True)]
    length2 = sum(x * x for x in d)
    along = max(0.0, min(1.0, sum(a * b for a, b in zip(c, d, strict=True)) / length2))
    nearest = [s + x * along for s, x in zip(start, d, strict=True)]
    return math.dist(nearest, center)


# --- thrust, speed, fuel -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    x=coordinate,
    y=coordinate,
    vx=velocity,
    vy=velocity,
    tx=coordinate,
    ty=coordinate,
    accel=st.floats(0.5, 20.0),
    dt=st.sampled_from([0.5, 1.0, 2.0]),
)
def test_every_velocity_change_is_bounded_by_max_accel_and_paid_in_fuel(
    x: float, y: float, vx: float, vy: float, tx: float, ty: float, accel: float, dt: float
) -> None:
    body = Body("b", x, y, vx=vx, vy=vy, max_accel=accel, target=(tx, ty, 0.0))
    for _ in range(40):
        before = (body.vx, body.vy, body.vz, body.fuel)
        step([body], dt)
        change = math.dist(before[:3], (body.vx, body.vy, body.vz))
        assert change <= accel * dt + 1e-9
        assert before[3] - body.fuel == pytest.approx(change * body.burn, abs=1e-9)


def test_speed_builds_up_to_max_speed_and_never_beyond() -> None:
    body = Body("b", 0.0, 0.0, max_speed=120.0, max_accel=4.0, target=(200_000.0, 0.0, 0.0))
    speeds = []
    for _ in range(200):
        step([body], 1.0)
        speeds.append(body.speed)
    assert max(speeds) <= 120.0 + 1e-9
    assert speeds[0] == pytest.approx(4.0)  # one tick of full thrust from rest
    assert speeds[-1] == pytest.approx(120.0)


def test_space_weather_halves_the_top_speed() -> None:
    body = Body("b", 0.0, 0.0, max_speed=200.0, target=(200_000.0, 0.0, 0.0), speed_factor=0.5)
    fly([body], 120.0)
    assert body.speed == pytest.approx(100.0)


def test_a_ship_faster_than_its_cap_slows_down() -> None:
    body = Body("b", 0.0, 0.0, vx=300.0, max_speed=200.0, target=(500_000.0, 0.0, 0.0))
    step([body], 1.0)
    assert body.speed == pytest.approx(295.0)
    fly([body], 30.0)
    assert body.speed == pytest.approx(200.0)


def test_an_empty_tank_leaves_the_body_drifting_at_constant_velocity() -> None:
    body = Body("b", 0.0, 0.0, fuel=0.3, target=(100_000.0, 0.0, 0.0))
    fly([body], 10.0)
    # 0.3 units buy 30 m/s: the last burn is only partly paid, then nothing more.
    assert body.fuel == 0.0
    assert body.drifting
    assert body.vx == pytest.approx(30.0)
    x, vx = body.x, body.vx
    fly([body], 100.0)
    assert (body.vx, body.vy) == (vx, 0.0)
    assert body.x == pytest.approx(x + 100.0 * vx)
    assert body.fuel == 0.0


def test_a_body_without_a_goal_coasts_and_burns_nothing() -> None:
    body = Body("b", 5.0, 6.0, vx=3.0, vy=-4.0)
    fly([body], 10.0)
    assert body.position == pytest.approx((35.0, -34.0, 0.0))
    assert body.fuel == 1000.0


# --- braking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [1_000.0, 10_000.0, 60_000.0])
def test_the_braking_curve_brings_the_body_to_its_target(distance: float) -> None:
    body = Body("b", 0.0, 0.0, target=(distance, 0.0, 0.0))
    overshoot = 0.0
    for _ in range(int(distance / 50) + 200):
        step([body], 1.0)
        overshoot = max(overshoot, body.x - distance)
    # Within the world's arrival criterion (60 m, 5 m/s), and never far past the target.
    assert body.distance_to((distance, 0.0, 0.0)) < 60.0
    assert body.speed < 5.0
    assert overshoot < 10.0


def test_a_body_at_its_target_stops_and_stops_burning_fuel() -> None:
    body = Body("b", 0.0, 0.0, target=(1_000.0, 0.0, 0.0))
    fly([body], 120.0)
    fuel = body.fuel
    fly([body], 600.0)
    assert body.speed < 0.01
    assert body.distance_to((1_000.0, 0.0, 0.0)) < 0.5
    assert body.fuel == pytest.approx(fuel)


# --- formations --------------------------------------------------------------------------------


def test_a_follower_takes_its_place_beside_a_holding_leader() -> None:
    leader = Body("lead", 1_000.0, 2_000.0)
    follower = Body("f", -3_000.0, 5_000.0, leader=leader, offset=(0.0, -300.0, 0.0))
    fly([leader, follower], 300.0)
    assert follower.distance_to((1_000.0, 1_700.0, 0.0)) < 5.0
    assert follower.speed < 5.0


def test_a_follower_holds_its_slot_behind_a_moving_leader() -> None:
    # The leader cruises below the follower's top speed (as World.formation makes it), so the
    # follower can close up; then it holds its slot, not a tick ahead of it.
    leader = Body("lead", 0.0, 0.0, target=(1_000_000.0, 0.0, 0.0), cruise=0.8)
    follower = Body("f", -1_000.0, 500.0, leader=leader, offset=(-300.0, 0.0, 0.0))
    fly([leader, follower], 300.0)
    assert leader.speed == pytest.approx(160.0)  # cruising
    slot = (leader.x - 300.0, leader.y, leader.z)
    assert follower.distance_to(slot) < 30.0


def test_a_follower_never_exceeds_its_max_speed() -> None:
    leader = Body("lead", 0.0, 0.0, target=(1_000_000.0, 0.0, 0.0))
    follower = Body("f", -5_000.0, 2_000.0, leader=leader, offset=(-300.0, 0.0, 0.0))
    top = 0.0
    for _ in range(600):
        step([leader, follower], 1.0)
        top = max(top, follower.speed)
    assert top <= follower.max_speed + 1e-9


def test_a_follower_out_of_fuel_drifts_instead_of_following() -> None:
    leader = Body("lead", 0.0, 0.0, target=(100_000.0, 0.0, 0.0))
    follower = Body("f", 0.0, 300.0, fuel=0.0, vx=7.0, leader=leader, offset=(0.0, 300.0, 0.0))
    fly([leader, follower], 60.0)
    assert (follower.x, follower.y, follower.vx) == (420.0, 300.0, 7.0)


# --- hazard geometry ---------------------------------------------------------------------------


def test_exit_point_goes_straight_out_from_the_center() -> None:
    assert exit_point((3.0, 4.0, 0.0), (0.0, 0.0, 0.0), 100.0) == pytest.approx((75.0, 100.0, 0.0))
    assert exit_point((10.0, 0.0, 0.0), (0.0, 0.0, 0.0), 100.0, margin=2.0) == pytest.approx(
        (200.0, 0.0, 0.0)
    )
    # From the very center: any way out will do (it picks +x).
    assert exit_point((5.0, 5.0, 5.0), (5.0, 5.0, 5.0), 10.0) == pytest.approx((17.5, 5.0, 5.0))


@settings(max_examples=100, deadline=None)
@given(x=coordinate, y=coordinate, cx=coordinate, cy=coordinate, radius=st.floats(10.0, 20_000.0))
def test_exit_point_is_margin_times_radius_from_the_center_on_the_ray_through_the_ship(
    x: float, y: float, cx: float, cy: float, radius: float
) -> None:
    center = (cx, cy, 0.0)
    point = exit_point((x, y, 0.0), center, radius)
    assert math.dist(point, center) == pytest.approx(radius * 1.25)
    if math.dist((x, y), (cx, cy)) > 1e-3:  # same direction from the center as the ship
        cos = ((x - cx) * (point[0] - cx) + (y - cy) * (point[1] - cy)) / (
            math.dist((x, y), (cx, cy)) * radius * 1.25
        )
        assert cos == pytest.approx(1.0)


def test_around_leaves_a_clear_path_alone() -> None:
    center = (0.0, 0.0, 0.0)
    assert around((-5_000.0, 2_000.0, 0.0), (5_000.0, 2_000.0, 0.0), center, 1_000.0) is None
    # The hazard is behind the ship and beside the way on.
    assert around((2_000.0, 0.0, 0.0), (9_000.0, 0.0, 0.0), center, 1_000.0) is None
    assert around((1.0, 1.0, 0.0), (1.0, 1.0, 0.0), center, 1_000.0) is None  # already there


def test_around_passes_on_the_near_side_of_an_offset_hazard() -> None:
    waypoint = around((-3_000.0, 500.0, 0.0), (3_000.0, 500.0, 0.0), (0.0, 0.0, 0.0), 1_000.0)
    assert waypoint == pytest.approx((0.0, 1_500.0, 0.0))


def test_around_passes_head_on_hazards_on_the_left() -> None:
    waypoint = around((-3_000.0, 0.0, 0.0), (3_000.0, 0.0, 0.0), (0.0, 0.0, 0.0), 1_000.0)
    assert waypoint == pytest.approx((0.0, 1_500.0, 0.0))
    waypoint = around((0.0, -3_000.0, 0.0), (0.0, 3_000.0, 0.0), (0.0, 0.0, 0.0), 1_000.0)
    assert waypoint == pytest.approx((-1_500.0, 0.0, 0.0))


@settings(max_examples=100, deadline=None)
@given(
    angle=st.floats(0.0, 2 * math.pi),
    turn=st.floats(-0.9, 0.9),
    start=st.floats(2.0, 5.0),
    end=st.floats(2.0, 5.0),
)
def test_both_legs_round_the_waypoint_clear_the_hazard(
    angle: float, turn: float, start: float, end: float
) -> None:
    radius = 1_000.0
    center = (100.0, -200.0, 0.0)
    # From well outside the hazard to a point roughly across it.
    position = (
        center[0] + start * radius * math.cos(angle),
        center[1] + start * radius * math.sin(angle),
        0.0,
    )
    across = angle + math.pi + turn
    target = (
        center[0] + end * radius * math.cos(across),
        center[1] + end * radius * math.sin(across),
        0.0,
    )
    waypoint = around(position, target, center, radius)
    if waypoint is None:
        assert segment_miss(position, target, center) >= radius * 1.1 - 1e-6
        return
    assert math.dist(waypoint, center) == pytest.approx(radius * 1.5)
    assert segment_miss(position, waypoint, center) > radius
    assert segment_miss(waypoint, target, center) > radius
