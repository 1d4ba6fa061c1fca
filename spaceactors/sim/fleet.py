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
BLOCKS = {
    "position": ("x", "y", "z"),
    "velocity": ("vx", "vy", "vz"),
    "aim": ("tx", "ty", "tz"),
    "slot": ("ox", "oy", "oz"),
}
"""The float columns kept as the rows of one ``(3, capacity)`` array each."""
SCALARS = tuple(name for name in FLOATS if not any(name in rows for rows in BLOCKS.values()))
INTS = ("leader", "sector")
FEW = 2
"""When fewer than 1 / `FEW` of the bodies steer, the step works on their rows only."""
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

    position: Floats
    """``(3, capacity)``: rows `x`, `y`, `z` (each of those a view of one row)."""
    velocity: Floats
    """``(3, capacity)``: rows `vx`, `vy`, `vz`."""
    aim: Floats
    """``(3, capacity)``: rows `tx`, `ty`, `tz` (the target, where `has_target`)."""
    slot: Floats
    """``(3, capacity)``: rows `ox`, `oy`, `oz` (the offset from the leader)."""

    def __init__(self, capacity: int = 16) -> None:
        self.size = 0
        self.capacity = 0
        self.names: list[str] = []
        self.views: list[Body] = []
        self.rows: dict[str, int] = {}
        """Each body's row, by name."""
        self._grow(max(1, capacity))

    def __len__(self) -> int:
        return self.size

    def add(self, view: Body, values: Mapping[str, float]) -> int:
        """Append a row for `view` with the float columns `values` (the others: 0); returns
        its index.

        Raises:
            AttributeError: `values` names a column the fleet does not have.
        """
        if self.size == self.capacity:
            self._grow(self.capacity * 2)
        index = self.size
        self.size += 1
        for name, value in values.items():  # (a new row holds 0, False and NO_LEADER)
            getattr(self, name)[index] = value
        self.names.append(view.name)
        self.views.append(view)
        self.rows[view.name] = index
        return index

    def _grow(self, capacity: int) -> None:
        """Make room for `capacity` rows (the rows so far copied over)."""
        n = self.size
        for block, names in BLOCKS.items():
            new = np.zeros((3, capacity), dtype=np.float64)
            if n:
                new[:, :n] = getattr(self, block)[:, :n]
            setattr(self, block, new)
            for row, name in enumerate(names):
                setattr(self, name, new[row])
        for name in (*SCALARS, *FLAGS, *INTS):
            dtype = np.float64 if name in SCALARS else np.bool_ if name in FLAGS else np.int64
            column: npt.NDArray[Any] = np.full(capacity, NO_LEADER if name in INTS else 0, dtype)
            if n:
                column[:n] = getattr(self, name)[:n]
            setattr(self, name, column)
        self.capacity = capacity

    # --- the tick -------------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance every body by `dt` seconds (the world's tick).

        Every body first steers, then every body moves. A body steers towards its target, or
        its offset from its leader, with bounded acceleration along a braking curve, never
        above its top speed (times the weather's speed factor and its cruise share); each
        change of velocity burns fuel, the last drops only part of a burn; with an empty tank,
        or nothing to steer to, it keeps its velocity (it drifts). A follower aims at its
        leader's slot as it was at the start of the tick, and matches the leader's velocity
        as the scalar loop of earlier versions saw it: already changed this tick when the
        leader comes before it in the fleet, else as it was.
        """
        n = self.size
        if n == 0:
            return
        with np.errstate(divide="ignore", invalid="ignore"):
            self._steer(n, dt)
        position = self.position[:, :n]
        position += self.velocity[:, :n] * dt

    def _steer(self, n: int, dt: float) -> None:
        """Change the velocity (and fuel) of every body that steers: those with a target at
        once, then the followers."""
        lead = self.leader[:n]
        follows = lead >= 0
        rows = np.flatnonzero(follows)
        leaders = lead[rows]
        before = self.velocity[:, leaders]  # (a copy: the leaders' velocities as they were)
        aiming = self.has_target[:n] & ~follows
        self._burn(slice(0, n), self.aim[:, :n] - self.position[:, :n], None, aiming, dt)
        if not len(rows):
            return
        if follows[leaders].any():  # a leader that follows another: one by one, in order
            for i in range(len(rows)):
                self._follow(rows[i : i + 1], leaders[i : i + 1], before[:, i : i + 1], dt)
        else:
            self._follow(rows, leaders, before, dt)

    def _follow(self, rows: Ints, leaders: Ints, before: Floats, dt: float) -> None:
        """Steer the followers at `rows` to their slots by `leaders` (`before`: the leaders'
        velocities at the start of the tick)."""
        position = self.position
        goal = position[:, leaders] + self.slot[:, rows] - position[:, rows]
        match = np.where(leaders < rows, self.velocity[:, leaders], before)
        self._burn(rows, goal, match, np.ones(len(rows), dtype=np.bool_), dt)

    def _burn(
        self, rows: slice | Ints, d: Floats, w: Floats | None, wanted: Flags, dt: float
    ) -> None:
        """Steer the bodies at `rows` (those of them `wanted`, with fuel) to close the gap `d`
        and match the velocity `w` (None: stand still)."""
        velocity = self.velocity[:, rows]
        fuel = self.fuel[rows]
        distance = np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        matched = (velocity == 0.0) if w is None else (velocity == w)
        still = (distance < 1e-6) & matched.all(axis=0)  # on station: nothing to burn
        steering = wanted & (fuel > 0.0) & ~still
        if isinstance(rows, slice) and w is None:
            picked = np.flatnonzero(steering)
            if len(picked) * FEW < len(fuel):  # most hold still (docked, queued): only the rest
                if len(picked):
                    self._thrust(
                        picked, d[:, picked], None, distance[picked], velocity[:, picked], None, dt
                    )
                return
        self._thrust(rows, d, w, distance, velocity, steering, dt)

    def _thrust(
        self,
        rows: slice | Ints,
        d: Floats,
        w: Floats | None,
        distance: Floats,
        velocity: Floats,
        steering: Flags | None,
        dt: float,
    ) -> None:
        """Change the velocity and fuel of the bodies at `rows` (those `steering`; None: all)."""
        fuel = self.fuel[rows]
        accel = self.max_accel[rows]
        top = self.max_speed[rows] * self.speed_factor[rows] * self.cruise[rows]
        # Close the gap as fast as it can still brake in time, never overshoot in one tick.
        reach = np.minimum(np.minimum(top, np.sqrt(2.0 * accel * distance) * 0.9), distance / dt)
        u = d * np.where(distance > 1e-9, reach / distance, 0.0)
        if w is not None:
            u = w + u
        speed = np.sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2])
        # Even chasing a faster leader, never above its own top speed.
        u *= np.where(speed > top, top / speed, 1.0)
        dv = u - velocity
        change = np.sqrt(dv[0] * dv[0] + dv[1] * dv[1] + dv[2] * dv[2])
        limit = accel * dt
        hard = change > limit
        dv *= np.where(hard, limit / change, 1.0)
        cost = np.where(hard, limit, change) * self.burn[rows]
        short = cost > fuel  # the last drops: only part of the burn happens
        dv *= np.where(short, fuel / cost, 1.0)
        cost = np.where(short, fuel, cost)
        if steering is not None:
            cost = np.where(steering, cost, 0.0)
            dv = np.where(steering, dv, 0.0)
        self.fuel[rows] = fuel - cost
        self.velocity[:, rows] = velocity + dv

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
