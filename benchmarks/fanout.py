"""Fan-out (the design note's "broadcast / topic fan-out"): one sender reaches 10,000 idle actors.

Broadcast: ``await system.router.broadcast(i)``, one call per round, to 10,000 actors that each
add one to a shared tally per message. Publish: the same rounds as
``await system.router.publish("market.sol", i)``, with every other actor subscribed to
``market.sol`` and the rest to the pattern ``market.*``.

Raw: 10,000 tasks, each draining its own channel with ``async for`` and adding to the same kind of
tally; a round is ``send_nowait`` into every channel, then one ``trio.lowlevel.checkpoint()``, as
`Router.broadcast` and `Router.publish` end with one. All versions are timed from the first round
until the tally says every receiver handled every round, so each pays for waking its receivers.
Every receiver is parked on its empty mailbox or channel before the timing starts.

No mailbox ever fills: actors and channels get one slot per round, so no send ever waits and the
runs measure fan-out, not backpressure. A round takes 0.1 s or more, so 4 rounds make a run of
about half a second. Most of that time is not the router's: it is Trio waking 10,000 tasks, and
Python's cyclic garbage collector, which every round sets off (each woken task holds a fresh
object until it runs) and which has more to walk in the actor version's larger heap. Both
versions pay for both, as a user would. The figures are deliveries per second (rounds x
receivers); the size N is the number of deliveries, so N / 4 receivers.
"""

from __future__ import annotations

import trio
import trio.testing

import spaceactors as sa
from benchmarks.harness import Options, Run, best_of, clock, header, show_rate, target

NAME = "fanout"
ROUNDS = 4
SIZE = ROUNDS * 10_000
TOPIC = "market.sol"
PATTERN = "market.*"


class Tally:
    """What every receiver adds to; the one that completes the count sets `done`."""

    def __init__(self, expected: int) -> None:
        self.count = 0
        self.expected = expected
        self.done = trio.Event()

    def add(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


class Receiver(sa.Actor):
    def __init__(self, tally: Tally) -> None:
        self.tally = tally

    async def handle(self, message: object) -> object:
        self.tally.add()
        return None


def receivers_of(n: int) -> int:
    """How many receivers `n` deliveries in `ROUNDS` rounds make."""
    if n < ROUNDS or n % ROUNDS:
        raise ValueError(f"{n:,} deliveries do not split into {ROUNDS} rounds")
    return n // ROUNDS


async def _spawn(system: sa.ActorSystem, tally: Tally, n: int) -> list[sa.ActorRef]:
    return [
        await system.spawn(Receiver, tally, name=f"receiver-{index}", mailbox_size=ROUNDS)
        for index in range(receivers_of(n))
    ]


async def broadcast(n: int) -> Run:
    tally = Tally(n)
    async with sa.open_system() as system:
        await _spawn(system, tally, n)
        await trio.testing.wait_all_tasks_blocked()
        reached = 0
        start = clock()
        for i in range(ROUNDS):
            reached += await system.router.broadcast(i)
        await tally.done.wait()
        seconds = clock() - start
    if reached != n:
        raise RuntimeError(f"broadcast reached {reached:,} receivers, expected {n:,}")
    return Run(seconds, tally.count)


async def publish(n: int) -> Run:
    tally = Tally(n)
    async with sa.open_system() as system:
        refs = await _spawn(system, tally, n)
        for index, ref in enumerate(refs):
            system.router.subscribe(ref, TOPIC if index % 2 else PATTERN)
        await trio.testing.wait_all_tasks_blocked()
        reached = 0
        start = clock()
        for i in range(ROUNDS):
            reached += await system.router.publish(TOPIC, i)
        await tally.done.wait()
        seconds = clock() - start
    if reached != n:
        raise RuntimeError(f"publish reached {reached:,} receivers, expected {n:,}")
    return Run(seconds, tally.count)


async def raw(n: int) -> Run:
    tally = Tally(n)

    async def receiver(receive: trio.MemoryReceiveChannel[int]) -> None:
        async for _ in receive:
            tally.add()

    async with trio.open_nursery() as nursery:
        senders = []
        for _ in range(receivers_of(n)):
            send, receive = trio.open_memory_channel[int](ROUNDS)
            senders.append(send)
            nursery.start_soon(receiver, receive)
        await trio.testing.wait_all_tasks_blocked()
        start = clock()
        for i in range(ROUNDS):
            for send in senders:
                send.send_nowait(i)
            await trio.lowlevel.checkpoint()
        await tally.done.wait()
        seconds = clock() - start
        nursery.cancel_scope.cancel()
    return Run(seconds, tally.count)


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    receivers = receivers_of(n)
    header(
        NAME,
        f"{ROUNDS} rounds to {receivers:,} idle actors "
        f"(raw: send_nowait into {receivers:,} channels, 1 task each)",
    )
    rate = "deliveries/s"
    broadcast_rate = show_rate("broadcast", best_of(broadcast, n, options.repeat), rate)
    publish_rate = show_rate("publish", best_of(publish, n, options.repeat), rate)
    raw_rate = show_rate("raw", best_of(raw, n, options.repeat), rate)
    return [
        target("broadcast/raw", broadcast_rate / raw_rate, 0.5, fmt=".2f"),
        target("publish/raw", publish_rate / raw_rate, 0.5, fmt=".2f"),
    ]
