"""Rate-limited sending and the limiter service, in virtual time."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa


class Log(sa.Actor):
    def __init__(self, log: list[tuple[float, Any]], seconds: float = 0.0) -> None:
        self.log = log
        self.seconds = seconds

    async def handle(self, message: object) -> object:
        if self.seconds:
            await trio.sleep(self.seconds)
        self.log.append((trio.current_time(), message))
        return None


async def test_send_fails_fast_like_the_seed(autojump_clock: trio.testing.MockClock) -> None:
    log: list[tuple[float, Any]] = []
    async with sa.open_system() as system:
        await system.spawn(Log, log, name="station")
        sender = sa.RateLimitedSender(
            system.router, max_concurrent=4, queue_limit=4, rate=2.0, burst=3
        )
        for i in range(3):
            await sender.send("station", i)
        with pytest.raises(sa.RateLimited, match="over the rate of 2 messages/s"):
            await sender.send("station", "too fast")
        await trio.sleep(0.5)
        await sender.send("station", 3)  # one token refilled
        await trio.sleep(0.5)
        with pytest.raises(sa.ActorNotFound):
            await sender.send("nobody", "x")  # the router's error, as is
        stats = sender.rate_stats()
        assert (stats.capacity, stats.rate) == (3.0, 2.0)


async def test_send_raises_queue_full_when_every_permit_is_in_flight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        await system.spawn(Log, [], 100.0, name="slow", mailbox_size=1)
        sender = sa.RateLimitedSender(system.router, max_concurrent=1, queue_limit=1, rate=100.0)
        await sender.send("slow", "handled")  # slow starts handling it
        await trio.sleep(1)
        await sender.send("slow", "queued")  # fills its mailbox
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sender.send, "slow", "in flight")  # holds the permit, waiting
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(sa.QueueFull):
                await sender.send("slow", "refused")
            assert sender.flow_stats().dropped == 1
            nursery.cancel_scope.cancel()


async def test_send_waiting_paces_messages_at_the_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, Any]] = []
    async with sa.open_system() as system:
        await system.spawn(Log, log, name="station")
        sender = sa.RateLimitedSender(
            system.router, max_concurrent=2, queue_limit=10, rate=4.0, burst=2
        )
        start = trio.current_time()
        for i in range(6):
            await sender.send_waiting("station", i)
        await trio.sleep(0.01)
    assert [(round(t - start, 6), m) for t, m in log] == [
        (0.0, 0),
        (0.0, 1),
        (0.25, 2),
        (0.5, 3),
        (0.75, 4),
        (1.0, 5),
    ]


async def test_the_limiter_service_drains_submitted_messages_in_order_at_the_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, Any]] = []
    async with sa.open_system() as system:
        await system.spawn(Log, log, name="station")
        sender = sa.RateLimitedSender(
            system.router, max_concurrent=1, queue_limit=3, rate=1.0, burst=1
        )
        start = trio.current_time()
        for i in range(3):
            sender.submit("station", i)
        with pytest.raises(sa.QueueFull, match="outbound queue is full"):
            sender.submit("station", "overflow")
        await trio.sleep(5)
        assert sender.queued == 0
    assert [(round(t - start, 6), m) for t, m in log] == [(0.0, 0), (1.0, 1), (2.0, 2)]


async def test_a_crash_of_the_limiter_service_loses_no_queued_message(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (A failing *request* is only a dead letter: see test_service_failures.py. This crashes the
    # service itself, while message 2 waits for its token.)
    drain = sa.RateLimitedSender.drain
    crashed: list[bool] = []

    async def drain_then_crash_once(self: sa.RateLimitedSender) -> None:
        if crashed:
            await drain(self)
            return
        with trio.move_on_after(0.15):
            await drain(self)
        crashed.append(True)
        raise RuntimeError("limiter failure")

    monkeypatch.setattr(sa.RateLimitedSender, "drain", drain_then_crash_once)
    log: list[tuple[float, Any]] = []
    async with sa.open_system() as system:
        await system.spawn(Log, log, name="station")
        sender = sa.RateLimitedSender(
            system.router, max_concurrent=1, queue_limit=5, rate=10.0, burst=1.0
        )
        for i in range(4):
            sender.submit("station", i)
        await trio.sleep(2)
        assert system.services.child("limiter").restarts == 1
    assert [m for _, m in log] == [0, 1, 2, 3]
