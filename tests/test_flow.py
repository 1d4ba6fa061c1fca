"""Token bucket and flow controller, in virtual time."""

from __future__ import annotations

import math
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

import spaceactors as sa


def run_virtual(main: Any) -> Any:
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# --- token bucket -------------------------------------------------------------------------


async def test_refill_is_continuous(autojump_clock: trio.testing.MockClock) -> None:
    bucket = sa.TokenBucket(capacity=4, rate=2.0)
    assert bucket.try_take(4)
    assert not bucket.try_take(1)
    await trio.sleep(0.5)
    assert bucket.available == pytest.approx(1.0)  # half a second at rate 2 is one token
    assert bucket.try_take(1)
    await trio.sleep(100)
    assert bucket.available == 4  # never above capacity


async def test_take_sleeps_exactly_until_the_tokens_exist(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = sa.TokenBucket(capacity=10, rate=4.0)
    await bucket.take(10)
    start = trio.current_time()
    await bucket.take(3)
    assert trio.current_time() - start == pytest.approx(0.75)


async def test_takers_are_served_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    bucket = sa.TokenBucket(capacity=5, rate=1.0)
    bucket.try_take(5)
    order: list[tuple[str, float]] = []
    start = trio.current_time()

    async def taker(name: str, n: float) -> None:
        await bucket.take(n)
        order.append((name, round(trio.current_time() - start, 6)))

    async with trio.open_nursery() as nursery:
        for name, n in [("big", 4), ("small", 1), ("medium", 2)]:
            nursery.start_soon(taker, name, n)
            await trio.testing.wait_all_tasks_blocked()
        assert not bucket.try_take(0.5)  # no jumping the queue
    assert order == [("big", 4.0), ("small", 5.0), ("medium", 7.0)]


async def test_a_cancelled_taker_takes_nothing_and_blocks_nobody(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bucket = sa.TokenBucket(capacity=5, rate=1.0)
    bucket.try_take(5)
    start = trio.current_time()
    got: list[tuple[str, float]] = []
    scope = trio.CancelScope()

    async def taker(name: str, n: float) -> None:
        await bucket.take(n)
        got.append((name, round(trio.current_time() - start, 6)))

    async def cancellable() -> None:
        with scope:
            await taker("cancelled", 5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(cancellable)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(taker, "next", 1)  # queued behind the big one
        await trio.sleep(2)
        scope.cancel()
    assert got == [("next", 2.0)]  # served the moment the one before it gave up
    assert bucket.available == pytest.approx(1.0)  # 2 tokens accrued, 1 taken, none lost


@pytest.mark.parametrize("bad", [0, -1, 11, math.nan, math.inf, True])
def test_taking_outside_zero_to_capacity_is_a_value_error(bad: Any) -> None:
    bucket = sa.TokenBucket(capacity=10, rate=1.0)
    with pytest.raises(ValueError, match="between 0 and the capacity"):
        bucket.try_take(bad)


@pytest.mark.parametrize(
    ("capacity", "rate"), [(0, 1), (1, 0), (-1, 1), (math.inf, 1), (1, math.nan)]
)
def test_bucket_parameters_must_be_positive_and_finite(capacity: float, rate: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        sa.TokenBucket(capacity, rate)


@settings(max_examples=80, deadline=None)
@given(
    capacity=st.integers(1, 10),
    rate=st.sampled_from([0.5, 1.0, 2.0, 8.0]),
    requests=st.lists(
        st.tuples(st.sampled_from([0.0, 0.05, 0.3, 1.0, 2.5]), st.integers(1, 3), st.booleans()),
        max_size=40,
    ),
)
def test_admissions_never_exceed_capacity_plus_rate_times_any_interval(
    capacity: int, rate: float, requests: list[tuple[float, int, bool]]
) -> None:
    async def main() -> list[tuple[float, int]]:
        bucket = sa.TokenBucket(capacity, rate)
        admitted: list[tuple[float, int]] = []

        async def waiting_taker(n: int) -> None:
            await bucket.take(n)
            admitted.append((trio.current_time(), n))

        async with trio.open_nursery() as nursery:
            for gap, n, wait in requests:
                await trio.sleep(gap)
                n = min(n, capacity)
                if wait:
                    nursery.start_soon(waiting_taker, n)
                elif bucket.try_take(n):
                    admitted.append((trio.current_time(), n))
        return admitted

    admitted = run_virtual(main)
    for i, (start, _) in enumerate(admitted):
        total = 0
        for end, n in admitted[i:]:
            total += n
            assert total <= capacity + rate * (end - start) + 1e-6


# --- flow controller ---------------------------------------------------------------------


async def test_permits_never_exceed_the_limit_and_refusals_are_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flow = sa.FlowController(max_concurrent=2, queue_limit=1)
    inside = peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        try:
            permit = await flow.acquire()
        except sa.QueueFull:
            return
        with permit:
            inside += 1
            peak = max(peak, inside)
            await trio.sleep(1)
            inside -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(worker)
            await trio.testing.wait_all_tasks_blocked()
        assert flow.stats() == sa.FlowStats(
            current=2, limit=2, queue_limit=1, waiting=1, dropped=2, available=0
        )
        with pytest.raises(sa.QueueFull, match="all 2 permits are in use"):
            flow.try_acquire()
    assert peak == 2
    assert flow.stats().dropped == 3
    assert flow.stats().current == 0


async def test_permits_return_on_exceptions_and_cancellation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flow = sa.FlowController(max_concurrent=1, queue_limit=5)
    with pytest.raises(RuntimeError):
        async with await flow.acquire():
            raise RuntimeError("boom")
    assert flow.stats().available == 1
    held = flow.try_acquire()
    with trio.move_on_after(1):
        await flow.acquire()  # cancelled while waiting: takes nothing
    assert flow.stats().waiting == 0
    held.release()
    held.release()  # idempotent
    assert flow.stats().available == 1


@pytest.mark.parametrize(("limit", "queue"), [(0, 1), (-1, 1), (1, -1), (1.5, 1), (True, 1)])
def test_flow_controller_arguments_are_validated(limit: Any, queue: Any) -> None:
    with pytest.raises(ValueError, match="must be"):
        sa.FlowController(limit, queue)


def test_a_bucket_carried_into_another_trio_run_follows_that_runs_clock() -> None:
    bucket = sa.TokenBucket(capacity=1, rate=1.0)

    async def two_takes() -> float:
        start = trio.current_time()
        await bucket.take()
        await bucket.take()
        return trio.current_time() - start

    for _ in range(2):  # the second run's clock starts again at 0; the bucket must follow it
        clock = trio.testing.MockClock(autojump_threshold=0)
        took = trio.run(two_takes, clock=clock)
        assert took in (1.0, 2.0)  # the first run starts full; the second inherits no tokens
