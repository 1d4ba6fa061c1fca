"""The soak profiles: reliable delivery through a hostile network, in virtual time.

``make soak`` (``python -m spaceactors.testing.soak --profile all``) runs two profiles:

- ``million``: 1,000,000 reliable messages from one producer to a pool of actors through 10%
  loss, 5% duplication, long-tailed delays on a fifth of them, and an actor crash every 10,000
  messages handled, at most 2,000 unsettled at a time.
- ``in-flight``: 200,000 reliable messages from four senders to eight actors, with 20,000
  unacknowledged at every moment, through 10% loss, 5% duplication, 5% reordering, delays of up
  to 10 s on a fifth of them, and an actor crash every 10,000 handled; it also checks that
  memory is flat after warm-up (see `spaceactors.testing.memory`).

Each checks: zero lost (every message processed; none failed or pending), zero processed twice,
zero unknown outcomes (every id `delivered` answers with a receipt or `DeliveryFailed` that
agrees with what the actor processed, when the message settles and again at the very end), and
every crash restarted without a supervisor giving up. It prints the figures; the exit code is 0
for PASS, 1 for FAIL. ``make test`` runs both scaled down (`tests/test_soak.py`).
"""

from __future__ import annotations

import argparse
import array
import functools
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
    ReorderMessages,
)
from spaceactors.outcomes import KEEP_RECEIPTS
from spaceactors.ref import ActorRef
from spaceactors.system import ActorSystem, open_system
from spaceactors.testing.memory import MemoryCheck, MemoryProbe
from spaceactors.virtual import run

CRASH_EVERY = 10_000
IN_FLIGHT = 20_000
PROFILES = ("million", "in-flight")

# What `delivered` said about a message (one byte per message).
_NOT_ASKED, _DELIVERED, _FAILED, _UNKNOWN = 0, 1, 2, 3


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


def in_flight_plan(crash_every: int = CRASH_EVERY, max_delay: float = 10.0) -> FaultPlan:
    """10% loss, 5% duplication, 5% reordering, a delay uniform in [0, `max_delay`] s on 20%,
    a crash of each sink on every `crash_every`-th message it handles."""
    return FaultPlan(
        [
            DropMessages(probability=0.10),
            DuplicateMessages(probability=0.05),
            ReorderMessages(probability=0.05),
            DelayMessages(probability=0.20, maximum=max_delay),
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


class Source(Actor):
    """A sender of reliable messages (it handles nothing itself)."""

    async def handle(self, message: object) -> object:
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
    unknown_outcomes: int = 0
    """Ids `delivered` answered with neither a receipt nor `DeliveryFailed`, or with one that
    disagrees with what the actor processed, or differently at the end than when settled."""
    unknown_examples: tuple[str, ...] = ()
    in_flight: int = 0
    """The most messages unsettled at once (the profile keeps this many in flight)."""
    memory: MemoryCheck | None = None

    @property
    def ok(self) -> bool:
        """Zero lost, processed twice or unknown; every crash restarted; memory flat."""
        return not self.problems

    @property
    def problems(self) -> list[str]:
        """Each guarantee the run broke, with the value measured and what it must be
        (``"lost: 3 > 0"``); empty when the run kept them all."""
        found = [
            f"{what}: {count:,} > 0"
            for what, count in (
                ("lost", self.lost),
                ("processed twice", self.processed_twice),
                ("failed", self.failed),
                ("pending", self.pending),
                ("unknown outcomes", self.unknown_outcomes),
            )
            if count
        ]
        crashes = self.faults.get("crash", 0)
        if self.restarts != crashes:
            found.append(f"restarts: {self.restarts:,} != {crashes:,} crashes injected")
        if self.memory is not None and not self.memory.flat:
            found.append(f"memory: {self.memory.render()}")
        return found

    def render(self) -> str:
        faults = ", ".join(f"{kind} {n:,}" for kind, n in sorted(self.faults.items()))
        rate = self.messages / self.wall_seconds if self.wall_seconds else 0.0
        lines = [
            f"messages            {self.messages:>12,}",
            f"most in flight      {self.in_flight:>12,}",
            f"acknowledged        {self.acknowledged:>12,}",
            f"failed / pending    {self.failed:>12,} / {self.pending:,}",
            f"lost                {self.lost:>12,}",
            f"processed twice     {self.processed_twice:>12,}",
            f"unknown outcomes    {self.unknown_outcomes:>12,}",
            *(f"  e.g. {example}" for example in self.unknown_examples),
            f"retried             {self.retried:>12,}",
            f"duplicates dropped  {self.duplicates_suppressed:>12,}",
            f"injected faults     {faults}",
            f"restarts            {self.restarts:>12,}",
            f"virtual time        {self.virtual_seconds:>12,.1f} s",
            f"wall time           {self.wall_seconds:>12,.1f} s ({rate:,.0f} msg/s)",
        ]
        if self.memory is not None:
            lines.append(f"memory              {self.memory.render()}")
        verdict = "PASS" if self.ok else f"FAIL ({'; '.join(self.problems)})"
        lines.append(f"verdict             {verdict}")
        return "\n".join(lines)


@attrs.define
class _Outcomes:
    """What `delivered` said about each message, checked against what the sinks processed."""

    tally: bytearray
    ids: array.array[int]  # not a list: a list would keep one int object per message alive
    said: bytearray
    unknown: bytearray  # 1 for each message whose outcome was unknown at least once
    examples: list[str] = attrs.field(factory=list)

    @classmethod
    def for_messages(cls, messages: int) -> _Outcomes:
        ids = array.array("q", bytes(8 * messages))
        return cls(bytearray(messages), ids, bytearray(messages), bytearray(messages))

    async def ask(self, system: ActorSystem, n: int) -> None:
        """Ask for message `n`'s outcome; note it, or why it is unknown."""
        message_id = self.ids[n]
        try:
            await system.reliable.delivered(message_id)
            answer, what = _DELIVERED, "a receipt"
        except DeliveryFailed:
            answer, what = _FAILED, "DeliveryFailed"
        except Exception as error:  # what the caller could not tell apart: unknown
            answer, what = _UNKNOWN, f"{type(error).__name__}: {error}"
        before, self.said[n] = self.said[n], answer
        processed = self.tally[n]
        if answer == _UNKNOWN:
            self._note(n, f"id {message_id}: delivered() raised {what}")
        elif before not in (_NOT_ASKED, answer):
            self._note(n, f"id {message_id}: delivered() changed its answer to {what}")
        elif (answer == _DELIVERED) != (processed > 0):
            self._note(n, f"id {message_id}: {what} but processed {processed}x")

    def _note(self, n: int, problem: str) -> None:
        if not self.unknown[n]:
            self.unknown[n] = 1
            if len(self.examples) < 5:
                self.examples.append(problem)

    async def ask_all_again(self, system: ActorSystem) -> None:
        """Long after: every id must still answer, the same as when it settled."""
        for n in range(len(self.ids)):
            await self.ask(system, n)


async def soak(
    messages: int, *, sinks: int = 8, window: int = 2_000, crash_every: int = CRASH_EVERY
) -> SoakReport:
    """The ``million`` profile, in the current Trio run (use virtual time: `spaceactors.run`):
    `messages` to `sinks` actors, settling the oldest half whenever `window` are unsettled."""
    outcomes = _Outcomes.for_messages(messages)
    wall, start = time.perf_counter(), trio.current_time()
    async with open_system(faults=soak_plan(crash_every), max_restarts=10, within=1.0) as system:
        refs = [await system.spawn(Sink, outcomes.tally, name=f"sink-{i}") for i in range(sinks)]
        reliable = system.reliable
        unsettled: list[int] = []
        for n in range(messages):
            outcomes.ids[n] = await reliable.send(
                refs[n % sinks], n, max_retries=20, timeout=0.5, max_delay=5.0
            )
            unsettled.append(n)
            if len(unsettled) >= window:  # bounded memory: wait for the oldest half
                for oldest in unsettled[: window // 2]:
                    await outcomes.ask(system, oldest)
                del unsettled[: window // 2]
        for oldest in unsettled:
            await outcomes.ask(system, oldest)
        await outcomes.ask_all_again(system)
        return _report(system, outcomes, refs, start, wall, in_flight=min(window, messages))


async def soak_in_flight(
    messages: int,
    *,
    in_flight: int = IN_FLIGHT,
    sinks: int = 8,
    senders: int = 4,
    crash_every: int = CRASH_EVERY,
    max_delay: float = 10.0,
    memory: MemoryProbe | None = None,
) -> SoakReport:
    """The ``in-flight`` profile, in the current Trio run (use virtual time: `spaceactors.run`).

    `messages` reliable messages go to `sinks` actors from `senders` actors in turn, as fast
    as the network allows `in_flight` to be unacknowledged at once (the producer waits a tick of
    virtual time while that many are); meanwhile a second task asks `delivered` about each in
    send order. A `memory` probe is told of every message sent.
    """
    outcomes = _Outcomes.for_messages(messages)
    wall, start = time.perf_counter(), trio.current_time()
    plan = in_flight_plan(crash_every, max_delay)
    async with open_system(faults=plan, max_restarts=10, within=1.0) as system:
        refs = [
            await system.spawn(Sink, outcomes.tally, name=f"sink-{i}", mailbox_size=in_flight)
            for i in range(sinks)
        ]
        sources = [await system.spawn(Source, name=f"source-{i}") for i in range(senders)]
        reliable = system.reliable
        progress = _Progress()

        async def produce() -> None:
            for n in range(messages):
                # Polls: the count falls as acknowledgements come, with no event to wait on.
                while reliable.pending_count() >= in_flight:  # noqa: ASYNC110
                    await trio.sleep(_TICK)
                outcomes.ids[n] = await reliable.send(
                    refs[n % sinks],
                    n,
                    sender=sources[n % senders],
                    max_retries=20,
                    timeout=1.0,
                    max_delay=max_delay,
                )
                progress.sent = n + 1
                progress.most = max(progress.most, reliable.pending_count())
                if memory is not None and memory.due(n + 1):
                    # Sample the memory at rest: what is in flight ebbs and flows (a retry
                    # timer and delayed copies for each late message), so let everything
                    # settle and every copy land first; a leak is what stays behind.
                    while reliable.pending_count():  # noqa: ASYNC110 - no event to wait on
                        await trio.sleep(_TICK)
                    await trio.sleep(2 * max_delay)
                    memory.passed(n + 1)

        async def settle() -> None:
            for n in range(messages):
                while n >= progress.sent:  # noqa: ASYNC110 - the producer is behind (rarely)
                    await trio.sleep(_TICK)
                await outcomes.ask(system, n)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(produce)
            nursery.start_soon(settle)
        await trio.sleep(2 * max_delay)  # copies still on the way land, and must change nothing
        await outcomes.ask_all_again(system)
        report = _report(system, outcomes, refs, start, wall, in_flight=progress.most)
    return attrs.evolve(report, memory=None if memory is None else memory.result())


_TICK = 0.05  # seconds of virtual time a waiting producer or settler sleeps


@attrs.define
class _Progress:
    sent: int = 0
    most: int = 0  # the most messages unacknowledged at once


def _report(
    system: ActorSystem,
    outcomes: _Outcomes,
    refs: list[ActorRef],
    start: float,
    wall: float,
    *,
    in_flight: int,
) -> SoakReport:
    stats = system.reliable.stats()
    assert system.faults is not None
    tally = outcomes.tally
    return SoakReport(
        messages=len(tally),
        acknowledged=stats.acknowledged,
        failed=stats.failed,
        pending=stats.pending,
        lost=tally.count(0),
        processed_twice=sum(1 for count in tally if count > 1),
        retried=stats.retried,
        duplicates_suppressed=stats.duplicates_suppressed,
        faults=dict(system.faults.injected),
        restarts=sum(ref.status().restarts for ref in refs),
        virtual_seconds=trio.current_time() - start,
        wall_seconds=time.perf_counter() - wall,
        unknown_outcomes=outcomes.unknown.count(1),
        unknown_examples=tuple(outcomes.examples),
        in_flight=in_flight,
    )


def memory_probe(messages: int, in_flight: int, samples: int = 16) -> MemoryProbe:
    """A probe for an in-flight soak of `messages`: a warm-up of twice the in-flight window and
    the receipts the engine keeps, then `samples` spread over the rest of the sends."""
    warm_up = 2 * in_flight + KEEP_RECEIPTS
    every = max((messages - warm_up) // samples, 1)
    return MemoryProbe(warm_up=warm_up, every=every)


def _runs(profile: str, options: argparse.Namespace) -> SoakReport:
    """Run one profile as the command-line options say."""
    if profile == "million":
        return run(soak, options.messages or 1_000_000, seed=options.seed)
    in_flight = options.in_flight
    count = options.messages or 10 * in_flight
    probe = memory_probe(count, in_flight)
    profile_run = functools.partial(soak_in_flight, in_flight=in_flight, memory=probe)
    return run(profile_run, count, seed=options.seed)


def main(argv: list[str] | None = None) -> int:
    """``python -m spaceactors.testing.soak``: run the chosen profiles; 0 if all pass, else 1."""
    parser = argparse.ArgumentParser(prog="python -m spaceactors.testing.soak")
    parser.add_argument("--profile", choices=[*PROFILES, "all"], default="million")
    parser.add_argument(
        "--messages",
        type=int,
        default=None,
        help="messages per profile (default: 1,000,000 for million, 10x --in-flight for in-flight)",
    )
    parser.add_argument("--in-flight", type=int, default=IN_FLIGHT, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    passed = True
    for profile in PROFILES if options.profile == "all" else [options.profile]:
        report = _runs(profile, options)
        print(f"== soak profile: {profile}\n{report.render()}\n", flush=True)
        passed = passed and report.ok
    print("soak: PASS" if passed else "soak: FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
