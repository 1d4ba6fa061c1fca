"""Pause, resume, step and speed: `spaceactors.clocks` (RunControl, ScaledClock) directly and
through the observation server's /control endpoints."""

from __future__ import annotations

import json
import math
import time

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import clocks
from spaceactors.clocks import RunControl, ScaledClock, run_control
from tests.observe_client import fetch, get_json


class Ticker(sa.Actor):
    """Counts a tick every simulated second."""

    def __init__(self) -> None:
        self.ticks = 0

    async def on_start(self) -> None:
        self.ctx.every(1.0, "tick")

    async def handle(self, message: object) -> object:
        if message == "tick":
            self.ticks += 1
        return self.ticks


async def ticks(ref: sa.ActorRef) -> int:
    return int(await ref.ask("count"))


async def test_pause_stops_simulated_time_until_resumed(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        url = system.observe_url
        ticker = await system.spawn(Ticker)
        # Virtual time runs flat out while this test waits for the server: it stops where
        # the pause finds it, and everything due until then has happened.
        paused = await get_json(f"{url}/control/pause", "POST")
        assert paused["paused"] is True
        at = paused["sim_time"]
        assert trio.current_time() == pytest.approx(at)
        first = await get_json(f"{url}/status")
        count = await ticks(ticker)
        await trio.to_thread.run_sync(time.sleep, 0.3)  # real time passes; simulated must not
        second = await get_json(f"{url}/status")
        assert first["paused"] is second["paused"] is True
        assert first["sim_time"] == second["sim_time"] == at
        assert await ticks(ticker) == count == math.floor(at)
        resumed = await get_json(f"{url}/control/resume", "POST")
        assert resumed["paused"] is False
        await trio.sleep(10)  # waits in virtual time again: the clock runs
        assert trio.current_time() >= at + 10
        assert await ticks(ticker) >= count + 9


@pytest.mark.parametrize("seconds", [0.25, 1, 2.5, 30])
async def test_step_advances_exactly_that_much_simulated_time(
    virtual_clock: trio.testing.MockClock, seconds: float
) -> None:
    async with sa.open_system(observe=True) as system:
        url = system.observe_url
        ticker = await system.spawn(Ticker)
        at = (await get_json(f"{url}/control/pause", "POST"))["sim_time"]
        stepped = await get_json(f"{url}/control/step?seconds={seconds}", "POST")
        assert stepped["paused"] is True
        assert stepped["sim_time"] == pytest.approx(at + seconds, abs=1e-9)
        assert trio.current_time() == pytest.approx(at + seconds, abs=1e-9)
        assert await ticks(ticker) == math.floor(at + seconds + 1e-9)  # each tick due, no more
        again = await get_json(f"{url}/status")
        assert again["sim_time"] == stepped["sim_time"]  # and it stays there
        await get_json(f"{url}/control/resume", "POST")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "x", "", None])
async def test_a_bad_step_is_400_and_changes_nothing(
    virtual_clock: trio.testing.MockClock, value: str | None
) -> None:
    async with sa.open_system(observe=True) as system:
        url = system.observe_url
        query = "" if value is None else f"?seconds={value}"
        status, _, body = await fetch(f"{url}/control/step{query}", "POST")
        state = await get_json(f"{url}/status")
    assert status == 400
    assert "seconds" in json.loads(body)["error"]
    assert state["paused"] is False


@pytest.mark.parametrize("value", ["0", "-2", "nan", "inf", "1e7", "fast", None])
async def test_a_bad_speed_is_400(virtual_clock: trio.testing.MockClock, value: str | None) -> None:
    async with sa.open_system(observe=True) as system:
        query = "" if value is None else f"?factor={value}"
        status, _, body = await fetch(f"{system.observe_url}/control/speed{query}", "POST")
    assert status == 400
    assert "factor" in json.loads(body)["error"] or "speed" in json.loads(body)["error"]


async def test_virtual_time_has_no_speed_to_set(virtual_clock: trio.testing.MockClock) -> None:
    async with sa.open_system(observe=True) as system:
        status, _, body = await fetch(f"{system.observe_url}/control/speed?factor=2", "POST")
    assert status == 400
    assert "virtual time runs flat out" in json.loads(body)["error"]


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_control_takes_post_only(virtual_clock: trio.testing.MockClock, method: str) -> None:
    async with sa.open_system(observe=True) as system:
        status, _, _ = await fetch(f"{system.observe_url}/control/pause", method)
    assert status == 405


# --- the scaled wall clock ----------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(clocks.time, "perf_counter", fake)
    return fake


def test_a_scaled_clock_runs_speed_times_real_time_and_changes_without_a_jump(
    fake_time: FakeTime,
) -> None:
    clock = ScaledClock(4.0)
    clock.start_clock()
    fake_time.now += 2.0
    assert clock.current_time() == pytest.approx(8.0)
    assert clock.deadline_to_sleep_time(16.0) == pytest.approx(2.0)  # 8 s of it at x4
    clock.speed = 0.5
    assert clock.current_time() == pytest.approx(8.0)
    fake_time.now += 2.0
    assert clock.current_time() == pytest.approx(9.0)
    assert clock.deadline_to_sleep_time(10.0) == pytest.approx(2.0)
    assert clock.deadline_to_sleep_time(5.0) == 0.0


def test_a_paused_scaled_clock_stands_still(fake_time: FakeTime) -> None:
    clock = ScaledClock(10.0)
    clock.start_clock()
    fake_time.now += 1.0
    clock.pause()
    fake_time.now += 50.0
    assert clock.paused
    assert clock.current_time() == pytest.approx(10.0)
    assert clock.deadline_to_sleep_time(11.0) >= 3600  # Trio sleeps until woken
    clock.resume()
    fake_time.now += 0.5
    assert clock.current_time() == pytest.approx(15.0)


@pytest.mark.parametrize("speed", [0, -1, math.nan, math.inf, 1e7, "2", True, None])
def test_a_scaled_clock_refuses_a_bad_speed(speed: object) -> None:
    with pytest.raises(ValueError, match="speed must be"):
        ScaledClock(speed)  # type: ignore[arg-type]
    clock = ScaledClock(1.0)
    with pytest.raises(ValueError, match="speed must be"):
        clock.speed = speed  # type: ignore[assignment]
    assert clock.speed == 1.0


def test_a_real_run_at_speed_100_sleeps_a_hundredth() -> None:
    async def main() -> float:
        started = time.perf_counter()
        await trio.sleep(20.0)
        return time.perf_counter() - started

    real = trio.run(main, clock=ScaledClock(100.0))
    assert 0.15 <= real < 5.0  # 0.2 s ideally; bounded for a busy machine


def test_speed_and_pause_change_a_wall_run_as_it_goes() -> None:
    """Through the server: a wall-clock system at x50, slowed, paused and stepped."""

    async def main() -> None:
        async with sa.open_system(observe=True) as system:
            url = system.observe_url
            state = await get_json(f"{url}/control/speed?factor=200", "POST")
            assert state == {"paused": False, "sim_time": state["sim_time"], "speed": 200.0}
            before = trio.current_time()
            started = time.perf_counter()
            await trio.sleep(10.0)
            assert time.perf_counter() - started < 5.0  # 0.05 s at x200
            assert trio.current_time() - before >= 10.0
            await get_json(f"{url}/control/pause", "POST")
            frozen = trio.current_time()
            await trio.to_thread.run_sync(time.sleep, 0.2)
            assert trio.current_time() == frozen
            stepped = await get_json(f"{url}/control/step?seconds=4", "POST")
            assert stepped["paused"] is True
            # it stops as the step's sleeper wakes: on the wall clock, a moment after
            assert frozen + 4.0 <= trio.current_time() <= frozen + 4.0 + 200 * 0.5
            status = await get_json(f"{url}/status")
            assert status["clock"] == "wall"
            assert status["speed"] == 200.0

    trio.run(main, clock=ScaledClock(50.0))


async def test_step_needs_its_server(virtual_clock: trio.testing.MockClock) -> None:
    control = RunControl(virtual_clock)
    with pytest.raises(RuntimeError, match="serve is not running"):
        control.step(1.0)
    assert run_control() is run_control()


async def test_a_clock_paused_from_the_server_runs_again_once_the_system_closes(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        await get_json(f"{system.observe_url}/control/pause", "POST")
        assert run_control().paused
    assert not run_control().paused  # nobody could resume it any more
    assert virtual_clock.autojump_threshold == 0
    await trio.sleep(5)  # and virtual time jumps again
