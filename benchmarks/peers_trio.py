"""The Trio-based engines of `benchmarks.peers`: raw Trio (the floor), spaceactors and triotp.

Each workload is a plain function ``f(n) -> Sample`` that makes its own ``trio.run``, times its
hot part with `Stopwatch` (setup and teardown outside), and returns how much it verifiably did.
spaceactors' three and raw Trio's ask and spawn are the suite's own benchmarks
(`benchmarks.counting`, `benchmarks.pingpong`, `benchmarks.spawn`), run at the peers' sizes;
raw Trio's tell here drains its channel in a second task, as a mailbox does.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import trio
import trio.testing

from benchmarks import counting, pingpong, spawn
from benchmarks.counting import MAILBOX, Read
from benchmarks.harness import Run


@dataclass(frozen=True)
class Sample:
    """One run: wall and CPU seconds of its timed part, how much it did, and its teardown."""

    wall: float
    cpu: float
    count: int
    teardown_wall: float = 0.0
    teardown_cpu: float = 0.0


class Stopwatch:
    """Wall (`time.perf_counter`) and process CPU (`time.process_time`, every thread) together."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


Workload = Callable[[int], Sample]


def _sample(run: Run) -> Sample:
    """A run of one of the suite's own benchmarks (`benchmarks.counting`, `pingpong`, `spawn`:
    the same workloads, spaceactors' and raw Trio's) as a peers' sample."""
    assert run.cpu is not None, "the suite's versions used here measure CPU time"
    return Sample(run.seconds, run.cpu, run.count, run.teardown, run.teardown_cpu)


@dataclass(frozen=True)
class Engine:
    """One engine's three workloads and the largest size each may run at (0: no limit)."""

    name: str
    version: str
    tell: Workload
    ask: Workload
    spawn: Workload
    limits: dict[str, int]
    note: str = ""


# --- raw Trio: tasks and memory channels ---------------------------------------------------


async def _raw_tell(n: int) -> Sample:
    send, receive = trio.open_memory_channel[object](MAILBOX)
    count = 0

    async def counter() -> None:
        nonlocal count
        async for first in receive:
            message: object = first
            while True:  # drain what is there before yielding again, as a mailbox does
                if type(message) is Read:
                    replies.send_nowait(count)
                else:
                    count += 1
                try:
                    message = receive.receive_nowait()
                except trio.WouldBlock:
                    break

    replies, reply = trio.open_memory_channel[int](1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(counter)
        watch = Stopwatch()
        for i in range(n):
            try:  # what ActorRef.send does: no yield while there is room
                send.send_nowait(i)
            except trio.WouldBlock:
                await send.send(i)
        await send.send(Read())
        counted = await reply.receive()
        wall, cpu = watch.read()
        await send.aclose()
    return Sample(wall, cpu, counted)


def raw_trio() -> Engine:
    return Engine(
        "raw trio",
        trio.__version__,
        tell=lambda n: trio.run(_raw_tell, n),
        ask=lambda n: _sample(trio.run(pingpong.raw, n)),
        spawn=lambda n: _sample(trio.run(spawn.raw, n)),
        limits={},
        note="tasks on 64-slot memory channels: the floor",
    )


# --- spaceactors -------------------------------------------------------------------------


def spaceactors() -> Engine:
    return Engine(
        "spaceactors",
        importlib.metadata.version("spaceactors"),
        tell=lambda n: _sample(trio.run(counting.actor, n)),
        ask=lambda n: _sample(trio.run(pingpong.actor, n)),
        spawn=lambda n: _sample(trio.run(spawn.actor, n)),
        limits={},
        note="64-slot mailboxes",
    )


# --- triotp: gen_servers (callbacks on a module-like object) under a nursery -------------


def triotp() -> Engine:
    """triotp's gen_server: ``cast`` is tell, ``call`` is ask; a server is addressed by name.

    Raises `ImportError` when triotp is not installed. Its mailboxes are unbuffered channels
    (every cast waits for the server to take it), its registries live in context variables set
    by ``mailbox._init()``, which ``triotp.node.run`` calls before starting applications (we
    call it directly: ``node.run`` owns the ``trio.run`` and has no way to hand back results).
    Its teardown is quadratic in named servers (each mailbox's destroy scans the whole name
    registry): 2,000 take a fifth of a second to stop, 10,000 five seconds.
    """
    from triotp import gen_server, mailbox

    def server(**callbacks: Callable[..., Any]) -> SimpleNamespace:
        return SimpleNamespace(__name__="benchmarks.peers", **callbacks)

    async def init(arg: object) -> object:
        return arg

    async def count_cast(message: object, state: list[int]) -> tuple[object, list[int]]:
        state[0] += 1
        return gen_server.NoReply(), state

    async def read_call(message: object, caller: object, state: list[int]) -> tuple[object, Any]:
        return gen_server.Reply(payload=state[0]), state

    async def echo_call(message: object, caller: object, state: object) -> tuple[object, object]:
        return gen_server.Reply(payload=message), state

    counter = server(init=init, handle_cast=count_cast, handle_call=read_call)
    echo = server(init=init, handle_call=echo_call)

    async def tell(n: int) -> Sample:
        mailbox._init()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gen_server.start, counter, [0], "counter")
            await trio.testing.wait_all_tasks_blocked()
            cast = gen_server.cast
            watch = Stopwatch()
            for i in range(n):
                await cast("counter", i)
            count: int = await gen_server.call("counter", Read())
            wall, cpu = watch.read()
            nursery.cancel_scope.cancel()
        return Sample(wall, cpu, count)

    async def ask(n: int) -> Sample:
        mailbox._init()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(gen_server.start, echo, None, "echo")
            await trio.testing.wait_all_tasks_blocked()
            call = gen_server.call
            count = 0
            watch = Stopwatch()
            for i in range(n):
                count += await call("echo", i) == i
            wall, cpu = watch.read()
            nursery.cancel_scope.cancel()
        return Sample(wall, cpu, count)

    started = [0]

    async def idle_init(arg: object) -> object:
        started[0] += 1
        return arg

    idle = server(init=idle_init)

    async def spawn(n: int) -> Sample:
        mailbox._init()
        started[0] = 0
        async with trio.open_nursery() as nursery:
            watch = Stopwatch()
            for i in range(n):  # named: a gen_server started this way is reachable by name only
                nursery.start_soon(gen_server.start, idle, None, f"idle-{i}")
            await trio.testing.wait_all_tasks_blocked()
            wall, cpu = watch.read()
            stopping = Stopwatch()
            nursery.cancel_scope.cancel()
        teardown_wall, teardown_cpu = stopping.read()
        return Sample(wall, cpu, started[0], teardown_wall, teardown_cpu)

    return Engine(
        "triotp",
        importlib.metadata.version("triotp"),
        tell=lambda n: trio.run(tell, n),
        ask=lambda n: trio.run(ask, n),
        spawn=lambda n: trio.run(spawn, n),
        limits={},
        note="gen_servers under a nursery, unbuffered mailboxes",
    )
