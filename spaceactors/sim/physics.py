"""Kinematics of the simulation: bodies that thrust towards a target, burn fuel, and drift.

A `Body` is a ship's physical state, owned by the world (not by the ship's actor, so a crashed
ship restarts where it was): a view of one row of a `spaceactors.sim.fleet.Fleet`, the arrays
the physics steps for the whole fleet at once. `step` advances bodies by one fixed time step:
each steers towards its goal (a target point, or its place in a formation) with bounded
acceleration along a braking curve, pays for every change of velocity in fuel, and with an
empty tank keeps its velocity: it drifts. The module also holds the geometry ships steer by
(`exit_point`, `around`, `formation_offset`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import overload

import numpy as np

from spaceactors import messages as m
from spaceactors.checks import short_repr
from spaceactors.sim import arguments as check
from spaceactors.sim.fleet import FLOATS, NO_LEADER, Fleet, Floats

Point = tuple[float, float, float]
"""A position or offset ``(x, y, z)`` in metres."""


class _Column:
    """A body's float attribute: the column `name` of its fleet, at its row."""

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, body: None, owner: type[Body]) -> _Column: ...
    @overload
    def __get__(self, body: Body, owner: type[Body]) -> float: ...
    def __get__(self, body: Body | None, owner: type[Body]) -> float | _Column:
        if body is None:
            return self
        column: Floats = getattr(body.fleet, self.name)
        return float(column[body.index])

    def __set__(self, body: Body, value: float) -> None:
        column: Floats = getattr(body.fleet, self.name)
        column[body.index] = value


class Body:
    """A ship's position (m), velocity (m/s), limits and fuel; it steers to `target`, or to
    `offset` from `leader`.

    A body is a view of one row of a `Fleet` (the arrays the physics steps): reading or
    setting an attribute reads or sets that row. A body built on its own has a fleet of its
    own; the world adds its bodies to its fleet (`Body.in_fleet`).

    Raises:
        ScenarioError: a field is out of its domain when the body is built (positions and
            velocities finite, limits > 0, fuel and burn >= 0); the message names the field.
    """

    __slots__ = ("_leader", "fleet", "index", "name")

    def __init__(
        self,
        name: str,
        x: float,
        y: float,
        z: float = 0.0,
        vx: float = 0.0,
        vy: float = 0.0,
        vz: float = 0.0,
        max_accel: float = 5.0,  # m/s^2: bounded thrust
        max_speed: float = 200.0,  # m/s
        fuel: float = 1000.0,  # units
        burn: float = 0.01,  # fuel per m/s of velocity change
        target: Point | None = None,  # steer to this point and stop there
        leader: Body | None = None,  # or hold `offset` from this body (a formation)
        offset: Point = (0.0, 0.0, 0.0),
        speed_factor: float = 1.0,  # < 1 while space weather slows the sector
        cruise: float = 1.0,  # < 1 for a formation's leader, so that its followers keep up
    ) -> None:
        values = {"x": x, "y": y, "z": z, "vx": vx, "vy": vy, "vz": vz}
        values |= {"max_accel": max_accel, "max_speed": max_speed, "fuel": fuel, "burn": burn}
        values |= {"speed_factor": speed_factor, "cruise": cruise}
        _check(name, values, target, leader, offset)
        self._place(Fleet(1), name, values)
        self.target = target
        self.offset = offset
        self.leader = leader

    @classmethod
    def in_fleet(
        cls,
        fleet: Fleet,
        name: str,
        position: Point,
        *,
        max_accel: float = 5.0,
        max_speed: float = 200.0,
        fuel: float = 1000.0,
    ) -> Body:
        """A body at rest at `position`, as a new row of `fleet` (the world's ships; their
        arguments are checked by `World.add_ship`)."""
        values = {"x": position[0], "y": position[1], "z": position[2]}
        values |= {"max_accel": max_accel, "max_speed": max_speed, "fuel": fuel, "burn": 0.01}
        values |= {"speed_factor": 1.0, "cruise": 1.0}
        body = cls.__new__(cls)
        body._place(fleet, name, values)
        return body

    @classmethod
    def view(cls, fleet: Fleet, index: int) -> Body:
        """The body of row `index` of `fleet` (its leader is set apart: `link_leaders`)."""
        body = cls.__new__(cls)
        body.name, body.fleet, body.index, body._leader = fleet.names[index], fleet, index, None
        return body

    def _place(self, fleet: Fleet, name: str, values: dict[str, float]) -> None:
        self.name = name
        self.fleet = fleet
        self._leader: Body | None = None
        self.index = fleet.add(self, {k: float(v) for k, v in values.items()})

    def __repr__(self) -> str:
        return (
            f"Body(name={self.name!r}, position={self.position}, "
            f"velocity={(self.vx, self.vy, self.vz)}, fuel={self.fuel})"
        )

    x = _Column("x")
    y = _Column("y")
    z = _Column("z")
    vx = _Column("vx")
    vy = _Column("vy")
    vz = _Column("vz")
    max_accel = _Column("max_accel")
    max_speed = _Column("max_speed")
    fuel = _Column("fuel")
    burn = _Column("burn")
    speed_factor = _Column("speed_factor")
    cruise = _Column("cruise")

    @property
    def target(self) -> Point | None:
        fleet, i = self.fleet, self.index
        if not fleet.has_target[i]:
            return None
        return (float(fleet.tx[i]), float(fleet.ty[i]), float(fleet.tz[i]))

    @target.setter
    def target(self, point: Point | None) -> None:
        fleet, i = self.fleet, self.index
        fleet.has_target[i] = point is not None
        if point is not None:
            fleet.tx[i], fleet.ty[i], fleet.tz[i] = point

    @property
    def offset(self) -> Point:
        fleet, i = self.fleet, self.index
        return (float(fleet.ox[i]), float(fleet.oy[i]), float(fleet.oz[i]))

    @offset.setter
    def offset(self, point: Point) -> None:
        fleet, i = self.fleet, self.index
        fleet.ox[i], fleet.oy[i], fleet.oz[i] = point

    @property
    def leader(self) -> Body | None:
        return self._leader

    @leader.setter
    def leader(self, leader: Body | None) -> None:
        self._leader = leader
        same = leader is not None and leader.fleet is self.fleet
        self.fleet.leader[self.index] = leader.index if same and leader is not None else NO_LEADER

    @property
    def position(self) -> Point:
        fleet, i = self.fleet, self.index
        return (float(fleet.x[i]), float(fleet.y[i]), float(fleet.z[i]))

    @property
    def speed(self) -> float:
        vx, vy, vz = self.vx, self.vy, self.vz
        return math.sqrt(vx * vx + vy * vy + vz * vz)

    @property
    def drifting(self) -> bool:
        """Out of fuel: it can no longer change its velocity."""
        return self.fuel <= 0.0

    def distance_to(self, point: Point) -> float:
        """The straight-line distance from the body to `point`, in metres."""
        return math.dist(self.position, point)


def _check(
    name: str,
    values: dict[str, float],
    target: Point | None,
    leader: object,
    offset: Point,
) -> None:
    check.name("Body.name", name)
    for label in ("x", "y", "z"):
        check.at_most(
            f"Body.{label}", check.finite(f"Body.{label}", values[label]), check.MAX_DISTANCE,
            "m", both=True,
        )  # fmt: skip
    for label in ("vx", "vy", "vz"):
        velocity = check.finite(f"Body.{label}", values[label])
        check.at_most(f"Body.{label}", velocity, check.LIGHT_SPEED, "m/s", both=True)
    for label in ("max_accel", "max_speed", "speed_factor", "cruise"):
        check.positive(f"Body.{label}", values[label])
    check.at_most("Body.max_speed", values["max_speed"], check.LIGHT_SPEED, "m/s")
    check.at_most("Body.max_accel", values["max_accel"], check.MAX_ACCEL, "m/s²")
    check.non_negative("Body.fuel", values["fuel"])
    check.non_negative("Body.burn", values["burn"])
    if target is not None:
        check.point("Body.target", target)
    check.point("Body.offset", offset)
    if leader is not None and not isinstance(leader, Body):
        raise check.ScenarioError(f"Body.leader must be a Body or None, got {short_repr(leader)}")


def link_leaders(fleet: Fleet) -> None:
    """Set each view's leader from the fleet's leader column (a restored fleet)."""
    views = fleet.views
    for index in np.flatnonzero(fleet.leader[: fleet.size] >= 0).tolist():
        views[index]._leader = views[int(fleet.leader[index])]


def step(bodies: Sequence[Body], dt: float) -> None:
    """Advance every body by `dt` seconds (`Fleet.step`).

    The bodies of a world's fleet are stepped together by the world's tick; `step` steps any
    list of bodies: when they are not exactly one fleet's, they move into a fleet of their
    own first (a leader must be among them).

    Raises:
        ScenarioError: a body's leader is not among `bodies`.
    """
    fleets = {id(body.fleet) for body in bodies}
    fleet = bodies[0].fleet if bodies else Fleet(1)
    alone = len(fleets) == 1 and len(fleet) == len(bodies)
    if not alone or any(b.leader is not None and b.leader.fleet is not fleet for b in bodies):
        fleet = _regroup(bodies)
    fleet.step(dt)


def _regroup(bodies: Sequence[Body]) -> Fleet:
    """Move `bodies` into one new fleet (their rows copied, their leaders kept)."""
    fleet = Fleet(len(bodies))
    leaders = [body.leader for body in bodies]
    members = {id(body) for body in bodies}
    for body, leader in zip(bodies, leaders, strict=True):
        if leader is not None and id(leader) not in members:
            raise check.ScenarioError(
                f"step(): the leader {leader.name!r} of {body.name!r} is not among the bodies"
            )
    for body in bodies:
        old, row = body.fleet, body.index
        values = {name: float(getattr(old, name)[row]) for name in FLOATS}
        target = body.target
        body.fleet, body.index = fleet, fleet.add(body, values)
        body.target = target
    for body, leader in zip(bodies, leaders, strict=True):
        body.leader = leader
    return fleet


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
