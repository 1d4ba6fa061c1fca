"""Kinematics of the simulation: bodies that thrust towards a target, burn fuel, and drift.

A `Body` is a ship's physical state, owned by the world (not by the ship's actor, so a crashed
ship restarts where it was). `step` advances every body by one fixed time step: each steers
towards its goal (a target point, or its place in a formation) with bounded acceleration along a
braking curve, pays for every change of velocity in fuel, and with an empty tank keeps its
velocity: it drifts.
"""

from __future__ import annotations

import math

import attrs

from spaceactors import messages as m
from spaceactors.sim import arguments as check

Point = tuple[float, float, float]
"""A position or offset ``(x, y, z)`` in metres."""


@attrs.define(eq=False)
class Body:
    """A ship's position (m), velocity (m/s), limits and fuel; it steers to `target`, or to
    `offset` from `leader`.

    Raises:
        ScenarioError: a field is out of its domain when the body is built (positions and
            velocities finite, limits > 0, fuel and burn >= 0); the message names the field.
    """

    name: str
    x: float
    y: float
    z: float = 0.0
    vx: float = 0.0
    vy: float = 0.0
    vz: float = 0.0
    max_accel: float = 5.0  # m/s^2: bounded thrust
    max_speed: float = 200.0  # m/s
    fuel: float = 1000.0  # units
    burn: float = 0.01  # fuel per m/s of velocity change
    target: Point | None = None  # steer to this point and stop there
    leader: Body | None = None  # or hold `offset` from this body (a formation)
    offset: Point = (0.0, 0.0, 0.0)
    speed_factor: float = 1.0  # < 1 while space weather slows the sector
    cruise: float = 1.0  # < 1 for a formation's leader, so that its followers can keep up

    def __attrs_post_init__(self) -> None:
        check.name("Body.name", self.name)
        for label in ("x", "y", "z", "vx", "vy", "vz"):
            check.finite(f"Body.{label}", getattr(self, label))
        for label in ("max_accel", "max_speed", "speed_factor", "cruise"):
            check.positive(f"Body.{label}", getattr(self, label))
        check.non_negative("Body.fuel", self.fuel)
        check.non_negative("Body.burn", self.burn)
        if self.target is not None:
            check.point("Body.target", self.target)
        check.point("Body.offset", self.offset)
        if self.leader is not None and not isinstance(self.leader, Body):
            raise check.ScenarioError(
                f"Body.leader must be a Body or None, got {check.short_repr(self.leader)}"
            )

    @property
    def position(self) -> Point:
        return (self.x, self.y, self.z)

    @property
    def speed(self) -> float:
        return math.sqrt(self.vx * self.vx + self.vy * self.vy + self.vz * self.vz)

    @property
    def drifting(self) -> bool:
        """Out of fuel: it can no longer change its velocity."""
        return self.fuel <= 0.0

    def distance_to(self, point: Point) -> float:
        """The straight-line distance from the body to `point`, in metres."""
        return math.dist(self.position, point)


def step(bodies: list[Body], dt: float) -> None:
    """Advance every body by `dt` seconds (the world's tick; the hot loop of the simulation).

    Two passes: every body first steers from where everyone was at the start of the tick (so a
    follower aims at its leader's slot, not at where the leader has just moved), then every
    body moves.
    """
    sqrt = math.sqrt
    for body in bodies:
        leader, target = body.leader, body.target
        if (leader is None and target is None) or body.fuel <= 0.0:
            continue
        vx, vy, vz = body.vx, body.vy, body.vz
        if leader is not None:
            ox, oy, oz = body.offset
            dx, dy, dz = leader.x + ox - body.x, leader.y + oy - body.y, leader.z + oz - body.z
            wx, wy, wz = leader.vx, leader.vy, leader.vz
        else:
            assert target is not None
            dx, dy, dz = target[0] - body.x, target[1] - body.y, target[2] - body.z
            wx = wy = wz = 0.0
        distance = sqrt(dx * dx + dy * dy + dz * dz)
        if distance < 1e-6 and vx == wx and vy == wy and vz == wz:
            continue  # on station: nothing to burn
        accel = body.max_accel
        top = body.max_speed * body.speed_factor * body.cruise
        # Close the gap as fast as it can still brake in time, and never overshoot in one tick.
        if distance > 1e-9:
            scale = min(top, sqrt(2.0 * accel * distance) * 0.9, distance / dt) / distance
        else:
            scale = 0.0
        ux, uy, uz = wx + dx * scale, wy + dy * scale, wz + dz * scale
        wanted = sqrt(ux * ux + uy * uy + uz * uz)
        if wanted > top:  # even chasing a faster leader, never above its own top speed
            cap = top / wanted
            ux, uy, uz = ux * cap, uy * cap, uz * cap
        dvx, dvy, dvz = ux - vx, uy - vy, uz - vz
        change = sqrt(dvx * dvx + dvy * dvy + dvz * dvz)
        limit = accel * dt
        if change > limit:
            shrink = limit / change
            dvx, dvy, dvz, change = dvx * shrink, dvy * shrink, dvz * shrink, limit
        cost = change * body.burn
        fuel = body.fuel
        if cost > fuel:  # the last drops: only part of the burn happens
            part = fuel / cost
            dvx, dvy, dvz = dvx * part, dvy * part, dvz * part
            cost = fuel
        body.fuel = fuel - cost
        body.vx, body.vy, body.vz = vx + dvx, vy + dvy, vz + dvz
    for body in bodies:
        body.x += body.vx * dt
        body.y += body.vy * dt
        body.z += body.vz * dt


def exit_point(position: Point, center: Point, radius: float, margin: float = 1.25) -> Point:
    """The nearest point `margin` x `radius` away from `center`, going straight out."""
    dx, dy, dz = (p - c for p, c in zip(position, center, strict=True))
    distance = math.sqrt(dx * dx + dy * dy + dz * dz)
    if distance < 1e-9:
        dx, dy, dz, distance = 1.0, 0.0, 0.0, 1.0
    scale = radius * margin / distance
    return (center[0] + dx * scale, center[1] + dy * scale, center[2] + dz * scale)


def around(position: Point, target: Point, center: Point, radius: float) -> Point | None:
    """A waypoint that takes the straight path from `position` to `target` clear of the circle
    (`center`, `radius`), or None if that path is clear already."""
    px, py, pz = position
    dx, dy, dz = target[0] - px, target[1] - py, target[2] - pz
    length2 = dx * dx + dy * dy + dz * dz
    if length2 < 1e-9:
        return None
    cx, cy, cz = center[0] - px, center[1] - py, center[2] - pz
    along = max(0.0, min(1.0, (cx * dx + cy * dy + cz * dz) / length2))
    nx, ny, nz = (
        px + dx * along - center[0],
        py + dy * along - center[1],
        pz + dz * along - center[2],
    )
    miss = math.sqrt(nx * nx + ny * ny + nz * nz)
    if miss >= radius * 1.1:
        return None
    if miss < 1e-6:  # head-on: pass on the left of the direction of travel
        nx, ny, nz, miss = -dy, dx, 0.0, math.sqrt(dx * dx + dy * dy) or 1.0
    scale = radius * 1.5 / miss
    return (center[0] + nx * scale, center[1] + ny * scale, center[2] + nz * scale)


def formation_offset(formation: m.FormationType, index: int, spacing: float) -> Point:
    """Where the `index`-th follower (1-based) holds station relative to the leader."""
    if formation is m.FormationType.CONVOY:  # a line astern
        return (-spacing * index, 0.0, 0.0)
    if formation is m.FormationType.EXPLORATION:  # a wide line abreast
        side = 1 if index % 2 else -1
        return (0.0, side * 3 * spacing * ((index + 1) // 2), 0.0)
    angle = 2 * math.pi * index / 6  # DEFENSIVE: a ring around the leader
    return (spacing * math.cos(angle), spacing * math.sin(angle), 0.0)
