"""Thread ring (Savina "Thread Ring"): a token goes round a ring of 100 actors for N hops.

Actor: actor ``i`` holds the shared list of refs and forwards ``n - 1`` to actor ``i + 1`` with
``await next.send(n - 1)``; whoever receives 0 sets a `trio.Event`. Timed from the first send to
the event; the hops are counted and must equal N.

Raw: the same ring of 100 tasks, each reading its own 64-slot channel (the actors' mailbox size)
with ``async for`` and forwarding with ``send_nowait``, falling back to ``await send`` when the
channel is full, which is what `ActorRef.send` does. The plain ``await send`` would be a weaker
reference: it always yields, even with room in the channel, which costs this ring a third or more
of its speed (the actor version then beats raw and the ratio says nothing about the runtime).
"""

from __future__ import annotations

import trio

import spaceactors as sa
from benchmarks.harness import Options, Run, best_of, clock, header, show_rate, target

NAME = "thread_ring"
SIZE = 100_000
RING = 100
MAILBOX = 64


class Ring:
    """What the members share: the next hop, the hop count, and the end."""

    def __init__(self) -> None:
        self.refs: list[sa.ActorRef] = []
        self.hops = 0
        self.done = trio.Event()


class Member(sa.Actor):
    def __init__(self, ring: Ring, index: int) -> None:
        self.ring = ring
        self.index = index

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        ring = self.ring
        if message == 0:
            ring.done.set()
        else:
            ring.hops += 1
            await ring.refs[(self.index + 1) % RING].send(message - 1)
        return None


async def actor(n: int) -> Run:
    ring = Ring()
    async with sa.open_system() as system:
        for index in range(RING):
            ring.refs.append(await system.spawn(Member, ring, index, mailbox_size=MAILBOX))
        start = clock()
        await ring.refs[0].send(n)
        await ring.done.wait()
        seconds = clock() - start
    return Run(seconds, ring.hops)


async def raw(n: int) -> Run:
    channels = [trio.open_memory_channel[int](MAILBOX) for _ in range(RING)]
    hops = 0
    done = trio.Event()

    async def member(index: int) -> None:
        nonlocal hops
        forward = channels[(index + 1) % RING][0]
        async for message in channels[index][1]:
            if message == 0:
                done.set()
            else:
                hops += 1
                try:
                    forward.send_nowait(message - 1)
                except trio.WouldBlock:
                    await forward.send(message - 1)

    async with trio.open_nursery() as nursery:
        for index in range(RING):
            nursery.start_soon(member, index)
        start = clock()
        await channels[0][0].send(n)
        await done.wait()
        seconds = clock() - start
        nursery.cancel_scope.cancel()
    return Run(seconds, hops)


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    header(NAME, f"{RING} actors, a token passed {n:,} hops (raw: ring of {RING} tasks)")
    actor_rate = show_rate("actor", best_of(actor, n, options.repeat), "hops/s")
    raw_rate = show_rate("raw", best_of(raw, n, options.repeat), "hops/s")
    return [target("actor/raw", actor_rate / raw_rate, 0.5, fmt=".2f")]
