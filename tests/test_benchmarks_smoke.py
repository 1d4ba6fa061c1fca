"""The benchmarks do the work they time: every version, at a tiny size, handles every message.

Correctness only: counts must match, timings are never asserted (``make bench`` measures them on
the real clock). The benchmark code times itself with `time.perf_counter`, so running it under
the suite's virtual clock changes nothing it checks.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from benchmarks import (
    counting,
    fanout,
    fleet,
    nodes,
    peers,
    pingpong,
    reliable,
    routing,
    scaling,
    spawn,
    thread_ring,
    tracing,
)
from benchmarks.__main__ import BENCHMARKS
from benchmarks.harness import Options, Run, best_of

N = 1_000

VERSIONS = {
    f"{module.NAME}.{version.__name__}": version
    for module, versions in [
        (counting, (counting.actor, counting.raw)),
        (pingpong, (pingpong.actor, pingpong.raw)),
        (thread_ring, (thread_ring.actor, thread_ring.raw)),
        (spawn, (spawn.actor, spawn.many, spawn.raw)),
        (fanout, (fanout.broadcast, fanout.publish, fanout.raw)),
        (routing, (routing.router,)),
        (reliable, (reliable.reliable, reliable.bucket, reliable.current_time)),
        (tracing, (tracing.untraced, tracing.memory, tracing.file)),
    ]
    for version in versions
}


@pytest.mark.parametrize("version", VERSIONS.values(), ids=VERSIONS.keys())
async def test_each_version_does_all_its_work(
    autojump_clock: trio.testing.MockClock, version: Callable[[int], Awaitable[Run]]
) -> None:
    with trio.fail_after(60):  # virtual seconds: a lost message fails the test, never hangs it
        run = await version(N)
    assert run.count == N
    assert run.seconds > 0


async def test_spawn_measures_the_memory_its_actors_keep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    actors = await spawn.actor(N, traced=True)
    batch = await spawn.many(N, traced=True)
    tasks = await spawn.raw(N, traced=True)
    assert actors.count == batch.count == tasks.count == N
    assert actors.memory > tasks.memory > 0
    assert batch.memory > tasks.memory
    assert actors.cpu is not None
    assert batch.cpu is not None
    assert tasks.cpu is not None


def test_every_benchmark_is_registered_under_its_name() -> None:
    assert list(BENCHMARKS) == [
        "counting",
        "pingpong",
        "thread_ring",
        "spawn",
        "fanout",
        "routing",
        "reliable",
        "tracing",
        "fleet",
        "scaling",
        "observe",
        "checkpoint-values",
        "checkpoint",
        "nodes",
        "peers",
    ]
    assert Options(scale=10).size(counting.SIZE) == counting.SIZE // 10
    assert fanout.receivers_of(fanout.SIZE) == 10_000
    assert fanout.receivers_of(Options(scale=10).size(fanout.SIZE)) == 1_000


async def test_the_bucket_counts_only_the_takes_that_succeeded(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reliable, "HUGE", 10.0)  # virtual time stands still: 10 takes, no more
    run = await reliable.bucket(N)
    assert run.count == 10


async def test_fleet_runs_large_fleet_scaled_down(autojump_clock: trio.testing.MockClock) -> None:
    ships = Options(scale=10).size(fleet.SIZE)  # the --quick size
    with trio.fail_after(600):  # virtual seconds: the scenario's 120, its start and its end
        run = await fleet.fleet(ships, duration=120.0)
    summary = run.summary
    assert (summary.ships, summary.stations) == (ships, 50)
    assert summary.ship_updates == ships * run.ticks > 0
    assert fleet.large_fleet.SHIPS == fleet.SIZE == 10_000  # restored after the build
    assert 0 < run.simulated < summary.duration == 120.0
    assert run.updates == summary.ship_updates * run.simulated / 120.0
    assert run.window > 0
    assert run.build > 0
    assert run.messages > 0


async def test_scaling_counts_build_run_and_shutdown_per_ship_tick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ships = Options(scale=10).size(scaling.SIZES[0])  # the --quick smallest size
    duration = scaling.TICKS * fleet.large_fleet.large_fleet.step
    with trio.fail_after(600):
        run = await fleet.fleet(ships, duration=duration)
    assert run.ticks == scaling.TICKS
    assert run.summary.ship_updates == ships * scaling.TICKS
    assert 0 < run.cpu_build < run.cpu_total
    assert 0 <= run.cpu_shutdown < run.cpu_total
    assert scaling.per_ship(run, ships) == run.cpu_total / (ships * scaling.TICKS) * 1e6
    assert [Options(scale=10).size(n) for n in scaling.SIZES] == [100, 1_000, 10_000]


def test_nodes_runs_quick_and_loses_nothing_at_a_kill(capsys: pytest.CaptureFixture[str]) -> None:
    """Real processes, a real redis-server and the real clock: the --quick sizes, once."""
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    results = nodes.bench(Options(repeat=1, scale=10))  # raises if a one-way message is lost
    out = capsys.readouterr().out
    assert len(results) == 9, out
    assert results[4], out  # 0 lost at the kill: every payload handled before it or claimed
    assert results[5], out  # reliable delivery: each payload handled once, none lost
    assert results[7], out  # the sharded fleet lost no cargo, and its expectations held
    assert "shares of 1,000 + 1,000 ships" in out


PEERS = ["pykka", "thespian", "triotp"]


@pytest.mark.parametrize("workload", peers.SIZES)
@pytest.mark.parametrize("engine", peers.ENGINES)
def test_each_peer_does_all_its_work(engine: str, workload: str) -> None:
    """Real threads and the real clock: each run's count is checked (and must be N)."""
    try:
        loaded = peers.ENGINES[engine]()
    except ImportError:
        assert engine in PEERS  # raw Trio and spaceactors are always there
        pytest.skip(f"{engine} is {peers.INSTALL}")
    sample = getattr(loaded, workload)(100)
    assert sample.count == 100
    assert sample.wall > 0
    assert sample.cpu >= 0


def test_a_peer_not_installed_is_reported_and_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for module in [*PEERS, "thespian.actors"]:  # imported by name, cached or not
        monkeypatch.setitem(sys.modules, module, None)  # its import raises ImportError
    assert peers.bench(Options(repeat=1, scale=100)) == []
    out = capsys.readouterr().out
    for package in PEERS:
        assert f"{package:<22}{peers.INSTALL}" in out
        assert f"  {package} " not in out.split("peers tell")[1]  # no row
    assert "spaceactors" in out.split("peers spawn")[1]


def test_peers_refuses_a_run_that_did_not_do_all_its_work() -> None:
    with pytest.raises(RuntimeError, match=r"pykka tell\(100\) counted 99, expected 100"):
        peers.measure("pykka tell", lambda n: peers.Sample(0.001, 0.001, n - 1), 100, repeat=1)


def test_fanout_refuses_a_size_that_is_not_whole_rounds() -> None:
    with pytest.raises(ValueError, match="do not split into 4 rounds"):
        fanout.receivers_of(fanout.ROUNDS + 1)


def test_best_of_refuses_a_run_that_did_not_do_all_its_work() -> None:
    async def short(n: int) -> Run:
        await trio.lowlevel.checkpoint()
        return Run(0.001, n - 1)

    with pytest.raises(RuntimeError, match="counted 99, expected 100"):
        best_of(short, 100, repeat=1)
