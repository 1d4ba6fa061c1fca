"""Routing: point-to-point tells through the router, against the direct `ActorRef.send`.

Router: the main task does ``await system.router.route(ref, i)`` N times to a counting actor (the
one of `benchmarks.counting`, 64-slot mailbox); a final ``ask`` (inside the timing) reads the
count back, which must equal N. Direct: the same with ``await ref.send(i)``.

The reference here is not raw Trio but the actor's own fast path: the router resolves the target
and counts the message by type, then makes the same ``send``. The target is that this costs at
most a tenth of the direct rate (router/direct >= 0.9).

Both versions measure wall and CPU time; the rates and ratios budgeted are per CPU second
(steadier on a shared machine).
"""

from __future__ import annotations

import spaceactors as sa
from benchmarks.counting import MAILBOX, Counter, Read
from benchmarks.counting import actor as direct_sends
from benchmarks.harness import Options, Run, best_of, clock, cpu_clock, header, show_rate, target

NAME = "routing"
SIZE = 200_000


async def router(n: int) -> Run:
    async with sa.open_system() as system:
        ref = await system.spawn(Counter, mailbox_size=MAILBOX)
        route = system.router.route
        start, cpu = clock(), cpu_clock()
        for i in range(n):
            await route(ref, i)
        count: int = await ref.ask(Read())
        seconds, cpu = clock() - start, cpu_clock() - cpu
    return Run(seconds, count, cpu=cpu)


def bench(options: Options) -> list[bool]:
    n = options.size(SIZE)
    header(NAME, f"{n:,} tells to 1 actor through system.router.route (vs direct ref.send)")
    router_rate = show_rate("router", best_of(router, n, options.repeat), "msg/s")
    direct_rate = show_rate("direct", best_of(direct_sends, n, options.repeat), "msg/s")
    return [target("router/direct", router_rate / direct_rate, 0.9, fmt=".2f")]
