"""Ping-pong (Savina "Ping Pong"): N ``ask`` round trips to one actor that returns the message.

Actor: the main task does ``await ref.ask(i)`` N times and checks every reply is ``i``.

Raw: two tasks on two capacity-1 channels: the pinger does ``await ping.send(i)`` then
``await pong.receive()``, the ponger receives and sends back, each reply checked the same way.

Both versions measure wall and CPU time; the ratio budgeted is per CPU second (steadier on a
shared machine). `benchmarks.peers` runs both as its "ask" of spaceactors and raw Trio.
"""

from __future__ import annotations

import trio

import spaceactors as sa
from benchmarks.harness import Options, Run, best_of, clock, cpu_clock, header, show_rate, target

NAME = "pingpong"
SIZE = 40_000


class Echo(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


async def actor(n: int) -> Run:
    async with sa.open_system() as system:
        ref = await system.spawn(Echo)
        count = 0
        start, cpu = clock(), cpu_clock()
        for i in range(n):
            count += await ref.ask(i) == i
        seconds, cpu = clock() - start, cpu_clock() - cpu
    return Run(seconds, count, cpu=cpu)


async def raw(n: int) -> Run:
    ping_send, ping_receive = trio.open_memory_channel[int](1)
    pong_send, pong_receive = trio.open_memory_channel[int](1)

    async def ponger() -> None:
        async for message in ping_receive:
            await pong_send.send(message)

    count = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ponger)
        start, cpu = clock(), cpu_clock()
        for i in range(n):
            await ping_send.send(i)
            count += await pong_receive.receive() == i
        seconds, cpu = clock() - start, cpu_clock() - cpu
        await ping_send.aclose()
    return Run(seconds, count, cpu=cpu)


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    header(NAME, f"{n:,} ask round trips (raw: 2 tasks on cap-1 channels)")
    actor_rate = show_rate("actor", best_of(actor, n, options.repeat), "round trips/s")
    raw_rate = show_rate("raw", best_of(raw, n, options.repeat), "round trips/s")
    return [target("actor/raw", actor_rate / raw_rate, 0.6, fmt=".2f")]
