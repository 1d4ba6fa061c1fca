"""Spawn (Savina "Fork Join: actor creation"): start N idle actors, each with a 64-slot mailbox.

Actor: ``await system.spawn(Idle, mailbox_size=64)`` N times (`Idle` has no ``on_start``, so
spawn does not wait for it). Raw: N ``start_soon`` tasks, each parked in ``async for`` on its own
64-slot channel; both ends of every channel are kept, as an `ActorRef` keeps them.

The time runs until every task is parked (``trio.testing.wait_all_tasks_blocked``), so both
versions pay for their tasks' first steps, not just for queueing them. The memory per actor is
measured in a separate, untimed run under `tracemalloc`: the growth of traced memory while
spawning (everything still alive at the end, refs kept by the caller included) divided by N.
The teardown (leaving ``open_system``, or cancelling the raw nursery) is printed, not budgeted.

A third version starts the same N actors with one ``await system.spawn_many(specs)`` (the
`ChildSpec` list made before the timing, as a fleet's build has it), the bulk path for fleets:
it starts the batch with Python's automatic garbage collection paused through the burst and
its first steps (`spaceactors.bulk`), so the collector does not rescan it while it grows. The
raw version runs with Python's collector as it is: the figure is what a user of each gets.

Times are wall (`clock`) and CPU (`cpu_clock`) seconds; the ratios are budgeted on CPU time
(steadier on a shared machine).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import trio
import trio.testing

import spaceactors as sa
from benchmarks.harness import (
    Options,
    Run,
    best_of,
    clock,
    cpu_clock,
    header,
    show,
    show_time,
    target,
    traced_memory,
)

NAME = "spawn"
SIZE = 100_000
MAILBOX = 64


class Idle(sa.Actor):
    """Does nothing: it waits on its mailbox."""


async def actor(n: int, *, traced: bool = False) -> Run:
    async def one_at_a_time(system: sa.ActorSystem) -> list[sa.ActorRef]:
        return [await system.spawn(Idle, mailbox_size=MAILBOX) for _ in range(n)]

    return await _started(one_at_a_time, traced)


async def many(n: int, *, traced: bool = False) -> Run:
    specs = [sa.ChildSpec(f"idle-{i}", Idle, mailbox_size=MAILBOX) for i in range(n)]
    return await _started(lambda system: system.spawn_many(specs), traced)


async def _started(
    start: Callable[[sa.ActorSystem], Awaitable[list[sa.ActorRef]]], traced: bool
) -> Run:
    """Time `start` in a fresh system, until every actor it started waits on its mailbox;
    count those running, then time the teardown (leaving ``open_system``)."""
    async with sa.open_system() as system:
        with traced_memory(traced) as memory:
            begun, cpu = clock(), cpu_clock()
            refs = await start(system)
            await trio.testing.wait_all_tasks_blocked()
            seconds, cpu = clock() - begun, cpu_clock() - cpu
        count = sum(ref.status().state is sa.ActorState.RUNNING for ref in refs)
        stopping, stopping_cpu = clock(), cpu_clock()
    return Run(
        seconds,
        count,
        teardown=clock() - stopping,
        teardown_cpu=cpu_clock() - stopping_cpu,
        memory=memory.grown,
        cpu=cpu,
    )


async def raw(n: int, *, traced: bool = False) -> Run:
    count = 0

    async def idle(receive: trio.MemoryReceiveChannel[object]) -> None:
        nonlocal count
        count += 1
        async for _ in receive:
            pass

    async with trio.open_nursery() as nursery:
        with traced_memory(traced) as memory:
            start, cpu = clock(), cpu_clock()
            senders = []
            for _ in range(n):
                send, receive = trio.open_memory_channel[object](MAILBOX)
                senders.append(send)
                nursery.start_soon(idle, receive)
            await trio.testing.wait_all_tasks_blocked()
            seconds, cpu = clock() - start, cpu_clock() - cpu
        stopping, stopping_cpu = clock(), cpu_clock()
        nursery.cancel_scope.cancel()
    return Run(
        seconds,
        count,
        teardown=clock() - stopping,
        teardown_cpu=cpu_clock() - stopping_cpu,
        memory=memory.grown,
        cpu=cpu,
    )


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    header(NAME, f"{n:,} idle actors, 64-slot mailboxes (raw: {n:,} tasks on 64-slot channels)")
    actor_run = best_of(actor, n, options.repeat)
    many_run = best_of(many, n, options.repeat)
    raw_run = best_of(raw, n, options.repeat)
    actor_time = show_time("actor (spawn)", actor_run, "actor")
    many_time = show_time("actor (spawn_many)", many_run, "actor")
    raw_time = show_time("raw", raw_run, "task")
    show("actor shutdown", f"{actor_run.teardown * 1e3:,.1f}", "ms", "leaving open_system")
    show("raw shutdown", f"{raw_run.teardown * 1e3:,.1f}", "ms", "cancelling the nursery")
    actor_kib = trio.run(functools.partial(actor, traced=True), n).memory / n / 1024
    raw_kib = trio.run(functools.partial(raw, traced=True), n).memory / n / 1024
    show("actor memory", f"{actor_kib:.2f}", "KiB/actor", "tracemalloc, untimed run")
    show("raw memory", f"{raw_kib:.2f}", "KiB/task")
    return [
        target("spawn_many/raw CPU", many_time / raw_time, 1.5, at_most=True, fmt=".2f"),
        target("spawn/raw CPU", actor_time / raw_time, 1.5, at_most=True, fmt=".2f"),
        target("KiB/actor", actor_kib, 6, at_most=True, fmt=".2f"),
    ]
