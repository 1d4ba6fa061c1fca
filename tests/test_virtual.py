"""Seeded virtual runs (`sa.run`): the same seed replays the same trace, in any process.

`fleet_trace` is the workload: ships tick on timers, ping their neighbour with ``ctx.send``
and ship cargo reliably to the ship after, through a plan with every message fault and
random crashes. The subprocess test imports this module to run it in a fresh interpreter.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from trio._core import _run as trio_run_internals

import spaceactors as sa
from spaceactors.virtual import current_seed

K = sa.EventKind


class Tick:
    """A timer's message to its own actor."""


@attrs.frozen
class Ping:
    n: int


@attrs.frozen
class Cargo:
    n: int


FAULTY_NETWORK = sa.FaultPlan(
    [
        sa.DropMessages(probability=0.1),
        sa.DuplicateMessages(probability=0.1),
        sa.DelayMessages(probability=0.2, minimum=0.05, maximum=0.6),
        sa.ReorderMessages(probability=0.1, max_hold=0.4),
        sa.CrashActor(actors="ship-*", probability=0.02),
    ]
)


class Ship(sa.Actor):
    """Every tick pings the next ship; every fourth tick also ships cargo, reliably, to the
    ship after that. Counts what it receives in `tally`."""

    def __init__(self, index: int, fleet: int, tally: collections.Counter[str]) -> None:
        self.neighbour = f"ship-{(index + 1) % fleet}"
        self.customer = f"ship-{(index + 2) % fleet}"
        self.tally = tally
        self.ticks = 0

    async def on_start(self) -> None:
        self.ctx.every(0.25, Tick())

    async def handle(self, message: object) -> object:
        if isinstance(message, Tick):
            self.ticks += 1
            await self.ctx.send(self.neighbour, Ping(self.ticks))
            if self.ticks % 4 == 0:
                await self.ctx.system.reliable.send(
                    self.customer, Cargo(self.ticks), sender=self.ctx.self_ref, timeout=0.5
                )
        else:
            self.tally[type(message).__name__] += 1
        return None


@attrs.frozen
class FleetRun:
    hash: str
    events: int
    kinds: collections.Counter[str]
    received: collections.Counter[str]


def fleet_trace(seed: int, *, fleet: int = 5, seconds: float = 30.0) -> FleetRun:
    """Run the fleet under the faulty plan with `seed` (the systems take the run's seed)."""

    async def main() -> FleetRun:
        received: collections.Counter[str] = collections.Counter()
        async with sa.open_system(
            trace=True, faults=FAULTY_NETWORK, max_restarts=1000, within=1.0
        ) as system:
            for index in range(fleet):
                await system.spawn(Ship, index, fleet, received, name=f"ship-{index}")
            await trio.sleep(seconds)
        trace = system.trace
        assert trace is not None
        kinds = collections.Counter(event.kind.value for event in trace.events)
        return FleetRun(trace.hash, trace.count, kinds, received)

    return sa.run(main, seed=seed)


# --- the same seed, the same trace ----------------------------------------------------------


def test_the_same_seed_replays_the_same_faulty_run() -> None:
    first, second = fleet_trace(11), fleet_trace(11)
    assert first.hash == second.hash
    assert first == second
    for kind in ("drop", "duplicate", "delay", "reorder", "crash", "restart", "deliver"):
        assert first.kinds[kind] > 0, f"the workload injected no {kind}: {first.kinds}"
    assert first.received["Ping"] > 0
    assert first.received["Cargo"] > 0


def test_different_seeds_give_different_runs() -> None:
    hashes = {fleet_trace(seed).hash for seed in (1, 2, 3)}
    assert len(hashes) == 3


def test_a_system_inside_run_takes_the_run_seed_unless_given_one() -> None:
    async def main() -> tuple[int | None, int, int]:
        async with sa.open_system() as inherited, sa.open_system(seed=5) as own:
            return current_seed(), inherited.seed, own.seed

    assert sa.run(main, seed=42) == (42, 42, 5)
    assert sa.run(main, seed=0) == (0, 0, 5)
    assert current_seed() is None


async def test_a_system_outside_run_has_seed_zero(autojump_clock: trio.testing.MockClock) -> None:
    assert current_seed() is None
    async with sa.open_system() as system:
        assert system.seed == 0


def test_an_inherited_seed_decides_faults_as_the_same_explicit_seed_does() -> None:
    plan = sa.FaultPlan([sa.DropMessages(probability=0.5)])

    async def drops(seed: int | None) -> list[int]:
        handled: list[int] = []

        class Keep(sa.Actor):
            async def handle(self, message: object) -> object:
                assert isinstance(message, int)
                handled.append(message)
                return None

        async with sa.open_system(seed=seed, faults=plan) as system:
            await system.spawn(Keep, name="keep")
            for n in range(64):
                await system.send("keep", n)
            await trio.sleep(1)
        return handled

    inherited = sa.run(drops, None, seed=7)
    assert inherited == sa.run(drops, 7, seed=123)
    assert inherited != sa.run(drops, None, seed=8)
    assert 0 < len(inherited) < 64


def test_the_same_seed_gives_the_same_trace_in_fresh_processes() -> None:
    tests_dir = Path(__file__).resolve().parent
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(tests_dir)!r})\n"
        "import test_virtual\n"
        "print(test_virtual.fleet_trace(11).hash)\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for hash_seed in ("1", "4242")
    ]
    hashes = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        hashes.append(out.strip())
    assert hashes[0] == hashes[1] == fleet_trace(11).hash


# --- sa.run itself --------------------------------------------------------------------------


@pytest.mark.parametrize("flag_before", [False, True])
def test_run_restores_the_scheduler_state_it_found(
    monkeypatch: pytest.MonkeyPatch, flag_before: bool
) -> None:
    monkeypatch.setattr(trio_run_internals, "_ALLOW_DETERMINISTIC_SCHEDULING", flag_before)
    state_before = trio_run_internals._r.getstate()
    inside: list[bool] = []

    async def main(value: int) -> int:
        inside.append(trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING)
        await trio.sleep(1)
        return value * 2

    assert sa.run(main, 21, seed=3) == 42
    assert inside == [True]
    assert trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING is flag_before
    assert trio_run_internals._r.getstate() == state_before


def test_run_restores_the_scheduler_state_when_main_raises() -> None:
    flag_before = trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING
    state_before = trio_run_internals._r.getstate()

    async def main() -> None:
        await trio.sleep(1)
        raise LookupError("main failed")

    with pytest.raises(LookupError, match="main failed"):
        sa.run(main, seed=3)
    assert trio_run_internals._ALLOW_DETERMINISTIC_SCHEDULING is flag_before
    assert trio_run_internals._r.getstate() == state_before
    assert current_seed() is None


def test_run_is_in_virtual_time_from_zero() -> None:
    async def main() -> tuple[float, float]:
        start = trio.current_time()
        await trio.sleep(86_400)
        return start, trio.current_time()

    assert sa.run(main) == (0.0, 86_400.0)


# --- an hour of simulated time ---------------------------------------------------------------


class Node(sa.Actor):
    """Ticks every second; once a minute (every 60th tick) it pings its neighbour."""

    def __init__(self, neighbour: str, counts: collections.Counter[str]) -> None:
        self.neighbour = neighbour
        self.counts = counts
        self.ticks = 0

    async def on_start(self) -> None:
        self.ctx.every(1.0, Tick())

    async def handle(self, message: object) -> object:
        if type(message) is Tick:
            self.ticks += 1
            self.counts["tick"] += 1
            if self.ticks % 60 == 0:
                await self.ctx.send(self.neighbour, Ping(self.ticks))
        else:
            self.counts["ping"] += 1
        return None


def test_an_hour_of_a_hundred_ticking_actors_runs_to_the_end() -> None:
    actors, hour = 100, 3600

    async def main() -> tuple[collections.Counter[str], list[int], float]:
        counts: collections.Counter[str] = collections.Counter()
        async with sa.open_system() as system:
            refs = [
                await system.spawn(Node, f"node-{(i + 1) % actors}", counts, name=f"node-{i}")
                for i in range(actors)
            ]
            await trio.sleep(hour + 0.5)
            handled = [ref.status().handled for ref in refs]
        return counts, handled, trio.current_time()

    counts, handled, ended = sa.run(main, seed=0)
    assert ended == hour + 0.5
    assert counts["tick"] == actors * hour == 360_000
    assert counts["ping"] == actors * hour // 60
    assert handled == [hour + hour // 60] * actors  # its ticks and its neighbour's pings
