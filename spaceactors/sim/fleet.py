"""The fleet's physical state as arrays, one row per body, and its step for the whole fleet.

A `Fleet` holds what the physics reads and writes each tick as numpy arrays (a struct of
arrays): position, velocity, limits, fuel, the autopilot's target or the leader and offset of
a formation, the weather's speed factor, the cruise share; and, for the world's sensors, which
bodies have been told they arrived or ran dry. `Fleet.step` advances every body at once with
array operations (the same arithmetic, element by element, as the scalar loop of earlier
versions). The arrays grow by doubling as bodies are added, so adding is amortised O(1).

A `spaceactors.sim.Body` is a view of one row (its name and index): ship code, tests and
checkpoints read and write bodies through it, the tick reads the arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from spaceactors.sim.physics import Body

Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

FLOATS = (
    "x",
    "y",
    "z",
    "vx",
    "vy",
    "vz",
    "max_accel",
    "max_speed",
    "fuel",
    "burn",
    "tx",
    "ty",
    "tz",
    "ox",
    "oy",
    "oz",
    "speed_factor",
    "cruise",
)
"""The float columns (`tx`...: the target; `ox`...: the offset from the leader)."""
FLAGS = ("has_target", "arrived", "stranded")
"""The boolean columns: steering to a target; told `Arrived` there; told `FuelExhausted`."""
INTS = ("leader", "sector")
"""The integer columns: the leader's row (-1: none); the home sector's number (the world's)."""
NO_LEADER = -1


class Fleet:
    """The bodies of one world (or of one `physics.step` call) as columns of arrays.

    Rows ``0 .. len(fleet) - 1`` are the bodies, in the order they were added; `views` holds
    the `Body` of each row and `names` its name.
    """

    x: Floats
    y: Floats
    z: Floats
    vx: Floats
    vy: Floats
    vz: Floats
    max_accel: Floats
    max_speed: Floats
    fuel: Floats
    burn: Floats
    tx: Floats
    ty: Floats
    tz: Floats
    ox: Floats
    oy: Floats
    oz: Floats
    speed_factor: Floats
    cruise: Floats
    has_target: Flags
    arrived: Flags
    stranded: Flags
    leader: Ints
    sector: Ints

    def __init__(self, capacity: int = 16) -> None:
        self.size = 0
        self.capacity = max(1, capacity)
        self.names: list[str] = []
        self.views: list[Body] = []
        self.rows: dict[str, int] = {}
        """Each body's row, by name."""
        for name in FLOATS:
            setattr(self, name, np.zeros(self.capacity, dtype=np.float64))
        for name in FLAGS:
            setattr(self, name, np.zeros(self.capacity, dtype=np.bool_))
        for name in INTS:
            setattr(self, name, np.full(self.capacity, NO_LEADER, dtype=np.int64))

    def __len__(self) -> int:
        return self.size

    def add(self, view: Body, values: Mapping[str, float]) -> int:
        """Append a row for `view` with the float columns `values` (the others: 0, or
        ``speed_factor`` and ``cruise`` 1); returns its index."""
        if self.size == self.capacity:
            self._grow(self.capacity * 2)
        index = self.size
        self.size += 1
        for name in FLOATS:
            getattr(self, name)[index] = values.get(name, 0.0)
        for name in FLAGS:
            getattr(self, name)[index] = False
        for name in INTS:
            getattr(self, name)[index] = NO_LEADER
        self.names.append(view.name)
        self.views.append(view)
        self.rows[view.name] = index
        return index

    def _grow(self, capacity: int) -> None:
        for name in (*FLOATS, *FLAGS, *INTS):
            old = getattr(self, name)
            new = np.full(capacity, NO_LEADER, dtype=old.dtype) if name in INTS else None
            if new is None:
                new = np.zeros(capacity, dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)
        self.capacity = capacity

    # --- the tick -------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance every body by `dt` seconds (the world's tick).

        Every body first steers from where everyone was at the start of the tick (a follower
        aims at its leader's slot, not where the leader has just moved), then every body moves.
        A body steers towards its target, or its offset from its leader, with bounded
        acceleration along a braking curve, never above its top speed (times the weather's
        speed factor and its cruise share); each change of velocity burns fuel, the last drops
        only part of a burn; with an empty tank it keeps its velocity (it drifts).
        """
        n = self.size
        if n == 0:
            return
        x, y, z = self.x[:n], self.y[:n], self.z[:n]
        vx, vy, vz = self.vx[:n], self.vy[:n], self.vz[:n]
        fuel = self.fuel[:n]
        lead = self.leader[:n]
        follows = lead >= 0
        steering = (follows | self.has_target[:n]) & (fuel > 0.0)
        rows = np.flatnonzero(steering)
        if len(rows):
            self._steer(rows, lead, follows, dt)
        x += vx * dt
        y += vy * dt
        z += vz * dt

    def _steer(self, rows: Ints, lead: Ints, follows: Flags, dt: float) -> None:
        """Change the velocity (and fuel) of the bodies at `rows` (those that steer)."""
        x, y, z = self.x[rows], self.y[rows], self.z[rows]
        vx, vy, vz = self.vx[rows], self.vy[rows], self.vz[rows]
        following = follows[rows]
        leaders = np.where(following, lead[rows], 0)
        # The goal: the leader's slot (and its velocity), else the target (and standing still).
        dx = np.where(following, self.x[leaders] + self.ox[rows], self.tx[rows]) - x
        dy = np.where(following, self.y[leaders] + self.oy[rows], self.ty[rows]) - y
        dz = np.where(following, self.z[leaders] + self.oz[rows], self.tz[rows]) - z
        wx = np.where(following, self.vx[leaders], 0.0)
        wy = np.where(following, self.vy[leaders], 0.0)
        wz = np.where(following, self.vz[leaders], 0.0)
        distance = np.sqrt(dx * dx + dy * dy + dz * dz)
        moving = ~((distance < 1e-6) & (vx == wx) & (vy == wy) & (vz == wz))  # else on station
        accel = self.max_accel[rows]
        top = self.max_speed[rows] * self.speed_factor[rows] * self.cruise[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            # Close the gap as fast as it can still brake in time, never overshoot in one tick.
            reach = np.minimum(
                np.minimum(top, np.sqrt(2.0 * accel * distance) * 0.9), distance / dt
            )
            scale = np.where(distance > 1e-9, reach / distance, 0.0)
            ux, uy, uz = wx + dx * scale, wy + dy * scale, wz + dz * scale
            wanted = np.sqrt(ux * ux + uy * uy + uz * uz)
            over = wanted > top  # even chasing a faster leader, never above its top speed
            cap = np.where(over, top / wanted, 1.0)
            ux, uy, uz = (
                np.where(over, ux * cap, ux),
                np.where(over, uy * cap, uy),
                np.where(over, uz * cap, uz),
            )
            dvx, dvy, dvz = ux - vx, uy - vy, uz - vz
            change = np.sqrt(dvx * dvx + dvy * dvy + dvz * dvz)
            limit = accel * dt
            hard = change > limit
            shrink = np.where(hard, limit / change, 1.0)
            dvx, dvy, dvz = _where(hard, shrink, dvx, dvy, dvz)
            change = np.where(hard, limit, change)
            cost = change * self.burn[rows]
            tank = self.fuel[rows]
            short = cost > tank  # the last drops: only part of the burn happens
            part = np.where(short, tank / cost, 1.0)
            dvx, dvy, dvz = _where(short, part, dvx, dvy, dvz)
            cost = np.where(short, tank, cost)
        self.fuel[rows] = np.where(moving, tank - cost, tank)
        self.vx[rows] = np.where(moving, vx + dvx, vx)
        self.vy[rows] = np.where(moving, vy + dvy, vy)
        self.vz[rows] = np.where(moving, vz + dvz, vz)

    # --- checkpoints ---------------------------------------------------------------------------

    def save(self) -> dict[str, Any]:
        """The fleet as plain data (names and each column as a list): exact, floats and all."""
        n = self.size
        doc: dict[str, Any] = {"names": list(self.names)}
        for name in (*FLOATS, *FLAGS, *INTS):
            doc[name] = getattr(self, name)[:n].tolist()
        return doc

    def load(self, doc: Mapping[str, Any], view: Callable[[Fleet, int], Body]) -> None:
        """Fill an empty fleet with what `save` returned; `view(fleet, row)` makes the body of
        each row.

        Raises:
            KeyError, TypeError, ValueError: `doc` is damaged.
        """
        names = [str(name) for name in doc["names"]]
        n = len(names)
        self._grow(max(n, 1))
        for name in (*FLOATS, *FLAGS, *INTS):
            target: npt.NDArray[Any] = getattr(self, name)
            column = np.asarray(doc[name], dtype=target.dtype)
            if column.shape != (n,):
                raise ValueError(f"the fleet's column {name!r} has {column.shape} values")
            target[:n] = column
        self.size = n
        self.names = names
        self.rows = {name: index for index, name in enumerate(names)}
        self.views = [view(self, index) for index in range(n)]


def _where(
    mask: Flags, factor: Floats, a: Floats, b: Floats, c: Floats
) -> tuple[Floats, Floats, Floats]:
    """``(a, b, c) * factor`` where `mask`, else unchanged."""
    return (
        np.where(mask, a * factor, a),
        np.where(mask, b * factor, b),
        np.where(mask, c * factor, c),
    )
