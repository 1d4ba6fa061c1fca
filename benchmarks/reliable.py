"""Reliable delivery and the token bucket: what acknowledgements and rate checks cost.

Reliable: the main task does ``await system.reliable.send(ref, i)`` N times to a counting actor
(the one of `benchmarks.counting`, 64-slot mailbox), then awaits ``delivered()`` of the last id
(inside the timing). The mailbox is FIFO, so the last acknowledgement comes after all the others;
the count is ``stats().acknowledged``, checked against what the actor itself counted (outside
the timing). Plain: the same actor, ``await ref.send(i)`` N times and a final ``ask`` that reads
the count. Each reliable message costs an id, an envelope numbered in its sender→receiver
stream, a pending entry, a place in the first-check queue (no timer of its own unless its
timeout passes unacknowledged), a high-water-mark update at the receiver and a share of one
cumulative acknowledgement per mailbox drain; the target is that all of it keeps at least 0.4x
of the plain rate (goal 0.5x).

Token bucket: ``bucket.try_take(1)`` N times in one task, on a bucket whose capacity and rate are
so large it never refuses (every call refills from the clock and takes). The figure is ns per
call, loop included; for context, ``trio.current_time()`` is timed the same way, since the
bucket reads the clock once per call. The target is under 1 µs per call.

Both versions measure wall and CPU time; the rates and ratios budgeted are per CPU second
(steadier on a shared machine).
"""

from __future__ import annotations

import trio

import spaceactors as sa
from benchmarks.counting import MAILBOX, Counter, Read
from benchmarks.counting import actor as direct_sends
from benchmarks.harness import (
    Options,
    Run,
    best_of,
    clock,
    cpu_clock,
    header,
    show,
    show_rate,
    target,
)

NAME = "reliable"
SIZE = 20_000
BUCKET_SIZE = 200_000
HUGE = 1e12
"""The bucket's capacity and rate: it never runs out, so every ``try_take`` succeeds."""


async def reliable(n: int) -> Run:
    async with sa.open_system() as system:
        ref = await system.spawn(Counter, mailbox_size=MAILBOX)
        send = system.reliable.send
        start, cpu = clock(), cpu_clock()
        last = 0
        for i in range(n):
            last = await send(ref, i)
        await system.reliable.delivered(last)
        seconds, cpu = clock() - start, cpu_clock() - cpu
        stats = system.reliable.stats()
        handled: int = await ref.ask(Read())
    if handled != stats.acknowledged or stats.pending or stats.failed:
        raise RuntimeError(f"the actor handled {handled}, but the reliable layer reports {stats}")
    return Run(seconds, stats.acknowledged, cpu=cpu)


async def bucket(n: int) -> Run:
    take = sa.TokenBucket(capacity=HUGE, rate=HUGE).try_take
    taken = 0
    start = clock()
    for _ in range(n):
        taken += take(1)
    seconds = clock() - start
    return Run(seconds, taken)


async def current_time(n: int) -> Run:
    now = trio.current_time
    calls = 0
    start = clock()
    for _ in range(n):
        now()
        calls += 1
    seconds = clock() - start
    return Run(seconds, calls)


def show_ns(label: str, run: Run) -> float:
    """Print and return the nanoseconds per call."""
    ns = run.seconds / run.count * 1e9
    show(label, f"{ns:,.0f}", "ns/call", f"{run.seconds * 1e3:9,.1f} ms")
    return ns


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    header(NAME, f"{n:,} reliable sends to 1 actor, then delivered(last) (vs plain ref.send)")
    reliable_rate = show_rate("reliable", best_of(reliable, n, options.repeat), "msg/s")
    plain_rate = show_rate("plain", best_of(direct_sends, n, options.repeat), "msg/s")
    calls = options.size(BUCKET_SIZE)
    header("token bucket", f"{calls:,} try_take(1) calls that all succeed, 1 task")
    bucket_ns = show_ns("try_take(1)", best_of(bucket, calls, options.repeat))
    show_ns("trio.current_time()", best_of(current_time, calls, options.repeat))
    return [
        target("reliable/plain", reliable_rate / plain_rate, 0.4, fmt=".2f"),
        target("try_take ns", bucket_ns, 1000, at_most=True, fmt=",.0f"),
    ]
