"""The soak profile: a million reliable messages through a hostile network, in virtual time.

``make soak`` (or ``python -m spaceactors.testing.soak``) sends 1,000,000 reliable messages
from a producer to a pool of actors through a fault plan of 10% loss, 5% duplication, random
delays, and an actor crash every 10,000 messages handled, then checks: zero lost (every message
acknowledged; none failed or pending), zero processed twice, and every crash restarted without
a supervisor giving up. It prints the figures. ``make test`` runs the same with fewer messages.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import attrs
import trio

from spaceactors.actor import Actor
from spaceactors.errors import DeliveryFailed
from spaceactors.faultplan import (
    CrashActor,
    DelayMessages,
    DropMessages,
    DuplicateMessages,
    FaultPlan,
)
from spaceactors.system import ActorSystem, open_system
from spaceactors.virtual import run

CRASH_EVERY = 10_000


def soak_plan(crash_every: int = CRASH_EVERY) -> FaultPlan:
    """10% loss, 5% duplication, a long-tailed delay on 20%, a crash every `crash_every`."""
    return FaultPlan(
        [
            DropMessages(probability=0.10),
            DuplicateMessages(probability=0.05),
            DelayMessages(probability=0.20, maximum=2.0, mean=0.05),
            CrashActor(actors="sink-*", every=crash_every),
        ]
    )


class Sink(Actor):
    """Counts each message it processes in a shared tally (which outlives its crashes)."""

    def __init__(self, tally: bytearray) -> None:
        self.tally = tally

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        self.tally[message] += 1
        return None


@attrs.frozen
class SoakReport:
    """What a soak run did, and whether it kept every guarantee."""

    messages: int
    acknowledged: int
    failed: int
    pending: int
    lost: int  # sent but never processed
    processed_twice: int
    retried: int
    duplicates_suppressed: int
    faults: dict[str, int]
    restarts: int
    virtual_seconds: float
    wall_seconds: float

    @property
    def ok(self) -> bool:
        """Zero lost, zero processed twice, every crash restarted."""
        return (
            self.lost == 0
            and self.processed_twice == 0
            and self.failed == 0
            and self.pending == 0
            and self.restarts == self.faults.get("crash", 0)
        )

    def render(self) -> str:
        faults = ", ".join(f"{kind} {n:,}" for kind, n in sorted(self.faults.items()))
        rate = self.messages / self.wall_seconds if self.wall_seconds else 0.0
        return "\n".join(
            [
                f"messages            {self.messages:>12,}",
                f"acknowledged        {self.acknowledged:>12,}",
                f"failed / pending    {self.failed:>12,} / {self.pending:,}",
                f"lost                {self.lost:>12,}",
                f"processed twice     {self.processed_twice:>12,}",
                f"retried             {self.retried:>12,}",
                f"duplicates dropped  {self.duplicates_suppressed:>12,}",
                f"injected faults     {faults}",
                f"restarts            {self.restarts:>12,}",
                f"virtual time        {self.virtual_seconds:>12,.1f} s",
                f"wall time           {self.wall_seconds:>12,.1f} s ({rate:,.0f} msg/s)",
                "verdict             " + ("PASS" if self.ok else "FAIL"),
            ]
        )


async def soak(
    messages: int, *, sinks: int = 8, window: int = 2_000, crash_every: int = CRASH_EVERY
) -> SoakReport:
    """Run the soak in the current Trio run (use virtual time: `spaceactors.run`)."""
    tally = bytearray(messages)
    wall = time.perf_counter()
    start = trio.current_time()
    async with open_system(faults=soak_plan(crash_every), max_restarts=10, within=1.0) as system:
        refs = [await system.spawn(Sink, tally, name=f"sink-{i}") for i in range(sinks)]
        reliable = system.reliable
        in_flight: list[int] = []
        for n in range(messages):
            in_flight.append(
                await reliable.send(refs[n % sinks], n, max_retries=20, timeout=0.5, max_delay=5.0)
            )
            if len(in_flight) >= window:  # bounded memory: wait for the oldest half
                await _settle(system, in_flight[: window // 2])
                del in_flight[: window // 2]
        await _settle(system, in_flight)
        stats = reliable.stats()
        restarts = sum(ref.status().restarts for ref in refs)
        assert system.faults is not None
        injected = dict(system.faults.injected)
        virtual = trio.current_time() - start
    return SoakReport(
        messages=messages,
        acknowledged=stats.acknowledged,
        failed=stats.failed,
        pending=stats.pending,
        lost=tally.count(0),
        processed_twice=sum(1 for count in tally if count > 1),
        retried=stats.retried,
        duplicates_suppressed=stats.duplicates_suppressed,
        faults=injected,
        restarts=restarts,
        virtual_seconds=virtual,
        wall_seconds=time.perf_counter() - wall,
    )


async def _settle(system: ActorSystem, message_ids: list[int]) -> None:
    for message_id in message_ids:
        with contextlib.suppress(DeliveryFailed):  # counted in the stats, reported as failed
            await system.reliable.delivered(message_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spaceactors.testing.soak")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    report = run(soak, options.messages, seed=options.seed)
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
