"""Fault plans: each rule does what it says, at its rate, in its scope and window, on the trace.

Every async test runs in virtual time (``autojump_clock``) on a fixed seed, so the statistical
checks are exact replays: a count is checked against a 5-sigma binomial band around its rate.
Rule windows are times on the system's clock, which starts at 0 under ``autojump_clock``.
"""

from __future__ import annotations

import collections
import json
import math
import random
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import spaceactors as sa

K = sa.EventKind
Log = list[tuple[float, object]]


@attrs.frozen
class Ping:
    n: int


@attrs.frozen
class Pong:
    n: int


@attrs.frozen
class Held:
    n: int


@attrs.frozen
class Forward:
    """Ask a `Recorder` to ``ctx.send`` `message` to `target` (so the send has a sender)."""

    target: str
    message: object


@attrs.frozen
class Publish:
    """Ask a `Recorder` to ``ctx.publish`` `message` on `topic`."""

    topic: str
    message: object


class Recorder(sa.Actor):
    """Records ``(time, message)`` for what it handles; forwards and publishes on request."""

    def __init__(self, log: Log) -> None:
        self.log = log

    async def handle(self, message: object) -> object:
        if isinstance(message, Forward):
            await self.ctx.send(message.target, message.message)
        elif isinstance(message, Publish):
            await self.ctx.publish(message.topic, message.message)
        else:
            self.log.append((trio.current_time(), message))
        return None


def within_five_sigma(count: int, trials: int, probability: float) -> bool:
    """Whether `count` successes in `trials` is within 5 sigma of the binomial mean."""
    mean = trials * probability
    sigma = math.sqrt(trials * probability * (1 - probability))
    return abs(count - mean) <= 5 * sigma


def events(system: sa.ActorSystem, *kinds: sa.EventKind) -> list[sa.TraceEvent]:
    assert system.trace is not None
    return system.trace.of_kind(*kinds)


def messages(log: Log) -> list[object]:
    return [message for _, message in log]


def faults_of(system: sa.ActorSystem) -> sa.FaultInjector:
    assert system.faults is not None
    return system.faults


TRIALS = 2000
RATE = 0.1


# --- each fault at its rate, on the trace ---------------------------------------------------


@attrs.frozen
class Blast:
    """What became of `TRIALS` pings sent to one actor under a plan."""

    handled: list[int]
    counts: collections.Counter[sa.EventKind]
    injected: collections.Counter[str]
    took: float


async def blast(plan: sa.FaultPlan, *, seed: int = 1, settle: float = 5.0) -> Blast:
    """Send `TRIALS` pings from outside, then give held-back copies `settle` seconds."""
    log: Log = []
    async with sa.open_system(
        seed=seed, trace=True, faults=plan, max_restarts=TRIALS, within=1.0
    ) as system:
        # Room for every copy: a duplicate that finds the mailbox full is lost (never waited for).
        await system.spawn(Recorder, log, name="target", mailbox_size=2 * TRIALS)
        start = trio.current_time()
        for n in range(TRIALS):
            await system.send("target", Ping(n))
        await trio.sleep(settle)
        assert system.trace is not None
        counts = collections.Counter(event.kind for event in system.trace.events)
        injected = faults_of(system).injected.copy()
    handled = [message.n for message in messages(log) if isinstance(message, Ping)]
    took = max(time for time, _ in log) - start
    return Blast(handled, counts, injected, took)


async def test_drop_loses_messages_at_its_rate(autojump_clock: trio.testing.MockClock) -> None:
    result = await blast(sa.FaultPlan([sa.DropMessages(probability=RATE)]))
    dropped = result.counts[K.DROP]
    assert within_five_sigma(dropped, TRIALS, RATE), dropped
    assert len(result.handled) == TRIALS - dropped
    assert result.handled == sorted(result.handled)
    assert result.injected == {"drop": dropped}


async def test_duplicate_adds_copies_at_its_rate(autojump_clock: trio.testing.MockClock) -> None:
    result = await blast(sa.FaultPlan([sa.DuplicateMessages(probability=RATE)]))
    copies = result.counts[K.DUPLICATE]
    assert within_five_sigma(copies, TRIALS, RATE), copies
    assert len(result.handled) == TRIALS + copies
    twice = [n for n, times in collections.Counter(result.handled).items() if times == 2]
    assert len(twice) == copies
    assert set(result.handled) == set(range(TRIALS))


async def test_delay_holds_messages_back_at_its_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.DelayMessages(probability=RATE, minimum=0.5, maximum=1.0)])
    result = await blast(plan)
    delayed = result.counts[K.DELAY]
    assert within_five_sigma(delayed, TRIALS, RATE), delayed
    assert result.counts[K.DELIVER] == delayed
    assert sorted(result.handled) == list(range(TRIALS))
    assert result.handled != sorted(result.handled)  # the delayed ones came in late


async def test_reorder_holds_messages_back_at_its_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    result = await blast(sa.FaultPlan([sa.ReorderMessages(probability=RATE)]))
    held = result.counts[K.REORDER]
    assert within_five_sigma(held, TRIALS, RATE), held
    assert result.counts[K.DELIVER] == held
    assert sorted(result.handled) == list(range(TRIALS))
    assert result.handled != sorted(result.handled)


async def test_slow_actor_takes_longer_at_its_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.SlowActor(actors="target", seconds=0.5, probability=RATE)])
    result = await blast(plan, settle=300.0)
    slowed = result.counts[K.SLOW]
    assert within_five_sigma(slowed, TRIALS, RATE), slowed
    assert result.handled == list(range(TRIALS))
    assert result.took == pytest.approx(0.5 * slowed)  # handling is otherwise instantaneous


async def test_crash_with_a_probability_crashes_at_its_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    result = await blast(sa.FaultPlan([sa.CrashActor(actors="target", probability=RATE)]))
    crashes = result.counts[K.CRASH]
    assert within_five_sigma(crashes, TRIALS, RATE), crashes
    assert result.counts[K.RESTART] == crashes
    assert len(result.handled) == TRIALS - crashes  # each crash loses the message it was on


async def test_crash_on_the_nth_message_crashes_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.CrashActor(name="third", actors="target", nth=3)])
    async with sa.open_system(trace=True, faults=plan) as system:
        ref = await system.spawn(Recorder, log, name="target")
        for n in range(1, 11):
            await system.send("target", Ping(n))
        await trio.sleep(1)
        (crash,) = events(system, K.CRASH)
        letters = system.dead_letters.recent()
    assert messages(log) == [Ping(n) for n in range(1, 11) if n != 3]
    assert crash.actor == "target"
    assert "InjectedCrash" in crash.detail
    assert "fault rule third crashed 'target' on Ping" in crash.detail
    assert [(d.message, d.reason) for d in letters] == [
        (Ping(3), sa.DeadLetterReason.CRASHED_WHILE_HANDLING)
    ]
    assert ref.status().restarts == 1


async def test_crash_every_nth_message_counts_across_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.CrashActor(actors="target", every=4)])
    async with sa.open_system(trace=True, faults=plan) as system:
        await system.spawn(Recorder, log, name="target")
        for n in range(1, 13):
            await system.send("target", Ping(n))
        await trio.sleep(1)
        crashes = events(system, K.CRASH)
    assert messages(log) == [Ping(n) for n in range(1, 13) if n % 4]
    assert len(crashes) == 3


async def test_pause_stops_handling_from_start_for_its_duration(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.PauseActor(actors="target", start=5.0, duration=10.0)])
    async with sa.open_system(trace=True, faults=plan) as system:
        ref = await system.spawn(Recorder, log, name="target")
        depths: list[int] = []
        for n in range(20):  # a ping at 0.5, 1.5, ... 19.5
            await trio.sleep_until(n + 0.5)
            depths.append(ref.mailbox_depth)
            await system.send("target", Ping(n))
        await trio.sleep(1)
        pause = events(system, K.PAUSE, K.RESUME)
    assert [(e.kind, e.actor, e.time) for e in pause] == [
        (K.PAUSE, "target", 5.0),
        (K.RESUME, "target", 15.0),
    ]
    handled_at = {message.n: time for time, message in log if isinstance(message, Ping)}
    assert sorted(handled_at) == list(range(20))
    for n, time in handled_at.items():
        expected = 15.0 if 5 <= n < 15 else n + 0.5
        assert time == expected, (n, time)
    assert depths[5:15] == list(range(10))  # the mailbox filled while it was paused
    assert depths[15:] == [0] * 5
    assert depths[:5] == [0] * 5


# --- delays and reordering ------------------------------------------------------------------


def drawn_delay(event: sa.TraceEvent) -> float:
    match = re.fullmatch(r"(\S+) s", event.detail)
    assert match is not None, event.detail
    return float(match.group(1))


async def delays_of(rule: sa.DelayMessages, count: int = 200) -> list[tuple[float, float]]:
    """Send `count` pings a second apart under `rule`; each one's (drawn, observed) delay."""
    log: Log = []
    async with sa.open_system(seed=3, trace=True, faults=sa.FaultPlan([rule])) as system:
        await system.spawn(Recorder, log, name="target")
        start = trio.current_time()
        for n in range(count):
            await trio.sleep_until(start + n)
            await system.send("target", Ping(n))
        await trio.sleep(rule.maximum + 1)
        drawn = [drawn_delay(event) for event in events(system, K.DELAY)]
        delivered = [event.time for event in events(system, K.DELIVER)]
    handled_at = {message.n: time for time, message in log if isinstance(message, Ping)}
    assert sorted(handled_at) == list(range(count))
    assert [handled_at[n] for n in range(count)] == delivered
    observed = [handled_at[n] - (start + n) for n in range(count)]
    return list(zip(drawn, observed, strict=True))


async def test_a_delayed_message_arrives_after_its_uniform_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pairs = await delays_of(sa.DelayMessages(minimum=0.2, maximum=0.7))
    for drawn, observed in pairs:
        assert observed == pytest.approx(drawn, rel=1e-5)
        assert 0.2 <= observed <= 0.7
    spread = [observed for _, observed in pairs]
    assert min(spread) < 0.25
    assert max(spread) > 0.65


async def test_an_exponential_delay_is_at_least_minimum_and_capped_at_maximum(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pairs = await delays_of(sa.DelayMessages(minimum=0.1, maximum=0.5, mean=0.3))
    observed = [o for _, o in pairs]
    assert all(0.1 <= o <= 0.5 + 1e-9 for o in observed)
    capped = sum(1 for drawn, _ in pairs if drawn == 0.5)
    # P(minimum + Exp(mean) > maximum) = exp(-(0.5 - 0.1) / 0.3)
    assert within_five_sigma(capped, len(pairs), math.exp(-0.4 / 0.3)), capped


def test_delay_draws_stay_in_bounds() -> None:
    rng = random.Random(0)
    uniform = sa.DelayMessages(minimum=1.0, maximum=2.0)
    tail = sa.DelayMessages(minimum=1.0, maximum=2.0, mean=5.0)
    fixed = sa.DelayMessages(minimum=1.5, maximum=2.0, mean=0.0)
    assert all(1.0 <= uniform.draw(rng) <= 2.0 for _ in range(1000))
    draws = [tail.draw(rng) for _ in range(1000)]
    assert all(1.0 <= d <= 2.0 for d in draws)
    assert draws.count(2.0) > 500  # a long tail, capped
    assert fixed.draw(rng) == 1.5


async def test_a_held_message_is_overtaken_by_the_next_one_to_the_same_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    rule = sa.ReorderMessages(max_hold=1.0, scope=sa.Scope(message_types="Held"))
    async with sa.open_system(trace=True, faults=sa.FaultPlan([rule])) as system:
        await system.spawn(Recorder, log, name="target")
        start = trio.current_time()
        await system.send("target", Held(1))
        await system.send("target", Ping(2))
        await trio.sleep(2)
        reorder = events(system, K.REORDER, K.DELIVER)
    assert messages(log) == [Ping(2), Held(1)]
    assert [time - start for time, _ in log] == [0.0, 0.0]
    assert [(e.kind, e.message_type, e.time - start) for e in reorder] == [
        (K.REORDER, "Held", 0.0),
        (K.DELIVER, "Held", 0.0),
    ]


async def test_a_held_message_is_released_after_max_hold_if_nothing_follows(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    other: Log = []
    rule = sa.ReorderMessages(max_hold=1.5, scope=sa.Scope(message_types="Held"))
    async with sa.open_system(faults=sa.FaultPlan([rule])) as system:
        await system.spawn(Recorder, log, name="target")
        await system.spawn(Recorder, other, name="bystander")
        start = trio.current_time()
        await system.send("target", Held(1))
        await system.send("bystander", Ping(2))  # to another actor: does not overtake it
        await trio.sleep(3)
    assert [(time - start, message) for time, message in log] == [(1.5, Held(1))]
    assert messages(other) == [Ping(2)]


# --- partitions -----------------------------------------------------------------------------


async def test_a_partition_drops_exactly_the_cross_group_traffic_until_it_heals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    logs: dict[str, Log] = {
        name: [] for name in ("ship-1", "ship-2", "station-1", "station-2", "relay")
    }
    plan = sa.FaultPlan(
        [sa.Partition(name="storm", groups=[["ship-*"], ["station-*"]], start=10, stop=20)]
    )
    routes = [
        ("ship-1", "station-1"),  # across
        ("station-2", "ship-2"),  # across
        ("ship-1", "ship-2"),  # within
        ("station-1", "station-2"),  # within
        ("relay", "station-1"),  # from an actor in no group
        ("ship-2", "relay"),  # to an actor in no group
    ]
    async with sa.open_system(trace=True, faults=plan) as system:
        for name, log in logs.items():
            await system.spawn(Recorder, log, name=name)
        start = trio.current_time()
        for phase, at in enumerate((5, 15, 25)):
            await trio.sleep_until(start + at)
            for sender, target in routes:
                await system.send(sender, Forward(target, Ping(phase)))
            await system.send("ship-1", Pong(phase))  # from outside any actor
            await system.send("station-1", Pong(phase))
        await trio.sleep(1)
        drops = events(system, K.DROP)
        cuts = events(system, K.PARTITION, K.HEAL)
    received = {name: collections.Counter(messages(log)) for name, log in logs.items()}
    across = [Ping(0), Ping(2)]  # none in phase 1, during the partition
    outside = [Pong(0), Pong(1), Pong(2)]
    assert received == {
        "ship-1": collections.Counter(outside),
        "ship-2": collections.Counter([*across, Ping(0), Ping(1), Ping(2)]),
        "station-1": collections.Counter([*across, Ping(0), Ping(1), Ping(2), *outside]),
        "station-2": collections.Counter([Ping(0), Ping(1), Ping(2)]),
        "relay": collections.Counter([Ping(0), Ping(1), Ping(2)]),
    }
    assert sorted((e.actor, e.peer, e.time - start, e.detail) for e in drops) == [
        ("ship-2", "station-2", 15, "partition"),
        ("station-1", "ship-1", 15, "partition"),
    ]
    assert [(e.kind, e.time - start, e.detail) for e in cuts] == [
        (K.PARTITION, 10, "storm on"),
        (K.HEAL, 20, "storm off"),
    ]


# --- scope ----------------------------------------------------------------------------------


async def test_a_rule_scoped_to_message_types_spares_other_types(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.DropMessages(scope=sa.Scope(message_types=["Ping", "Held"]))])
    async with sa.open_system(faults=plan) as system:
        await system.spawn(Recorder, log, name="target")
        for n in range(3):
            await system.send("target", Ping(n))
            await system.send("target", Pong(n))
            await system.send("target", Held(n))
        await trio.sleep(1)
    assert messages(log) == [Pong(0), Pong(1), Pong(2)]


async def test_a_rule_scoped_to_actor_patterns_covers_their_traffic_both_ways(
    autojump_clock: trio.testing.MockClock,
) -> None:
    logs: dict[str, Log] = {name: [] for name in ("ship-1", "shipyard", "station")}
    plan = sa.FaultPlan([sa.DropMessages(scope=sa.Scope(actors="ship-*"))])
    async with sa.open_system(trace=True, faults=plan) as system:
        for name, log in logs.items():
            await system.spawn(Recorder, log, name=name)
        await system.send("ship-1", Ping(1))  # to a ship: dropped
        await system.send("shipyard", Ping(2))  # "shipyard" is not "ship-*"
        await system.send("station", Ping(3))
        await system.send("station", Forward("shipyard", Ping(4)))
        await system.send("shipyard", Forward("station", Ping(5)))
        await trio.sleep(1)
        drops = events(system, K.DROP)
    assert {name: messages(log) for name, log in logs.items()} == {
        "ship-1": [],
        "shipyard": [Ping(2), Ping(4)],
        "station": [Ping(3), Ping(5)],
    }
    assert [(e.actor, e.message_type) for e in drops] == [("ship-1", "Ping")]


async def test_a_rule_scoped_to_actors_matches_the_sender_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    logs: dict[str, Log] = {name: [] for name in ("ship-1", "station")}
    plan = sa.FaultPlan([sa.DropMessages(scope=sa.Scope(actors="ship-*", message_types="Ping"))])
    async with sa.open_system(trace=True, faults=plan) as system:
        for name, log in logs.items():
            await system.spawn(Recorder, log, name=name)
        await system.send("ship-1", Forward("station", Ping(1)))  # from a ship: dropped
        await system.send("ship-1", Forward("station", Pong(2)))  # not a Ping: flows
        await trio.sleep(1)
        (drop,) = events(system, K.DROP)
    assert messages(logs["station"]) == [Pong(2)]
    assert (drop.actor, drop.peer) == ("station", "ship-1")


async def test_a_rule_scoped_to_topics_only_touches_those_publishes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.DropMessages(scope=sa.Scope(topics="market.*"))])
    async with sa.open_system(trace=True, faults=plan) as system:
        trader = await system.spawn(Recorder, log, name="trader")
        await system.spawn(Recorder, [], name="exchange")
        system.router.subscribe(trader, "market.*")
        system.router.subscribe(trader, "news")
        await system.send("exchange", Publish("market.ore", Ping(1)))
        await system.send("exchange", Publish("news", Ping(2)))
        await trio.sleep(1)
        await system.send("trader", Ping(3))  # point to point: out of a topic scope
        await system.router.publish("market.water", Ping(4))  # from outside: still a publish
        await trio.sleep(1)
        drops = events(system, K.DROP)
        sends = events(system, K.SEND)
    assert messages(log) == [Ping(2), Ping(3)]
    assert [(e.actor, e.peer) for e in drops] == [("trader", "exchange"), ("trader", None)]
    assert "topic market.ore" in [e.detail for e in sends]


async def test_a_crash_rule_only_crashes_the_actors_it_names(
    autojump_clock: trio.testing.MockClock,
) -> None:
    logs: dict[str, Log] = {name: [] for name in ("ship-1", "ship-2", "station")}
    plan = sa.FaultPlan([sa.CrashActor(actors="ship-*", every=2)])
    async with sa.open_system(trace=True, faults=plan, max_restarts=10) as system:
        for name, log in logs.items():
            await system.spawn(Recorder, log, name=name)
        for n in range(4):
            for name in logs:
                await system.send(name, Ping(n))
        await trio.sleep(1)
        crashed = [str(e.actor) for e in events(system, K.CRASH)]
    assert {name: messages(log) for name, log in logs.items()} == {
        "ship-1": [Ping(0), Ping(2)],
        "ship-2": [Ping(0), Ping(2)],
        "station": [Ping(n) for n in range(4)],
    }
    assert sorted(crashed) == ["ship-1", "ship-1", "ship-2", "ship-2"]


# --- switching rules and time windows -------------------------------------------------------


async def test_a_named_rule_is_switched_off_and_on_mid_run(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan(
        [
            sa.DropMessages(name="blackout", scope=sa.Scope(message_types="Ping")),
            sa.CrashActor(name="gremlin", actors="target", every=1),
        ]
    )
    async with sa.open_system(trace=True, faults=plan) as system:
        faults = faults_of(system)
        faults.disable("gremlin")
        await system.spawn(Recorder, log, name="target")
        await system.send("target", Ping(1))
        faults.disable("blackout")
        faults.disable("blackout")  # idempotent
        await system.send("target", Ping(2))
        faults.enable("blackout")
        await system.send("target", Ping(3))
        faults.disable("blackout")
        await system.send("target", Ping(4))
        await trio.sleep(1)
        assert not events(system, K.CRASH)
        faults.enable("gremlin")
        await system.send("target", Pong(5))
        await trio.sleep(1)
        (crash,) = events(system, K.CRASH)
    assert messages(log) == [Ping(2), Ping(4)]
    assert "fault rule gremlin crashed 'target' on Pong" in crash.detail


async def test_switching_an_unknown_rule_names_the_known_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan(
        [
            sa.DropMessages(name="loss", probability=0.0),
            sa.DuplicateMessages(probability=0.0),  # unnamed: cannot be switched
            sa.Partition(name="cut", groups=["a", "b"]),
        ]
    )
    async with sa.open_system(faults=plan) as system:
        faults = faults_of(system)
        expected = r"no fault rule is named 'nope'; named rules: \['cut', 'loss'\]"
        with pytest.raises(KeyError, match=expected):
            faults.disable("nope")
        with pytest.raises(KeyError, match=expected):
            faults.enable("nope")


async def test_a_disabled_partition_lets_cross_traffic_through(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.Partition(name="cut", groups=["a", "b"])])
    async with sa.open_system(faults=plan) as system:
        await system.spawn(Recorder, [], name="a")
        await system.spawn(Recorder, log, name="b")
        await system.send("a", Forward("b", Ping(1)))
        await trio.sleep(1)
        faults_of(system).disable("cut")
        await system.send("a", Forward("b", Ping(2)))
        await trio.sleep(1)
    assert messages(log) == [Ping(2)]


async def test_a_rule_acts_only_within_its_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.DropMessages(name="window", start=5.0, stop=10.0)])
    async with sa.open_system(trace=True, faults=plan) as system:
        await system.spawn(Recorder, log, name="target")
        for at in (2.5, 4.999, 5.0, 7.5, 9.999, 10.0, 12.5):
            await trio.sleep_until(at)
            await system.send("target", Ping(int(at * 1000)))
        await trio.sleep(1)
        switches = events(system, K.FAULT)
        drops = events(system, K.DROP)
    assert messages(log) == [Ping(2500), Ping(4999), Ping(10000), Ping(12500)]
    assert [e.time for e in drops] == [5.0, 7.5, 9.999]
    assert [(e.time, e.detail) for e in switches] == [(5.0, "window on"), (10.0, "window off")]


async def test_switching_a_rule_by_name_is_on_the_trace(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.DropMessages(name="blackout")])
    async with sa.open_system(trace=True, faults=plan) as system:
        faults_of(system).disable("blackout")
        await trio.sleep(1)
        faults_of(system).enable("blackout")
        switches = events(system, K.FAULT)
    assert [e.detail for e in switches] == ["blackout off", "blackout on"]


async def test_a_disabled_pause_does_not_pause(autojump_clock: trio.testing.MockClock) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.PauseActor(name="freeze", actors="target", start=1, duration=5)])
    async with sa.open_system(faults=plan) as system:
        await system.spawn(Recorder, log, name="target")
        faults_of(system).disable("freeze")
        await trio.sleep(2)
        await system.send("target", Ping(1))
        await trio.sleep(0.5)
    assert log == [(2.0, Ping(1))]


async def test_a_pause_from_the_start_pauses_actors_spawned_at_the_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.PauseActor(actors="target", duration=5)])
    async with sa.open_system(trace=True, faults=plan) as system:
        await system.spawn(Recorder, log, name="target")
        await system.send("target", Ping(1))
        await trio.sleep(10)
        pause = events(system, K.PAUSE, K.RESUME)
    assert [(e.kind, e.time) for e in pause] == [(K.PAUSE, 0.0), (K.RESUME, 5.0)]
    assert log == [(5.0, Ping(1))]


def test_a_rule_window_counts_from_when_the_system_opened() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    clock.jump(150_000)  # where Trio's wall clock may well start
    plan = sa.FaultPlan([sa.DropMessages(start=3600)])

    async def main() -> list[object]:
        log: Log = []
        async with sa.open_system(faults=plan) as system:
            await system.spawn(Recorder, log, name="target")
            await system.send("target", Ping(1))
            await trio.sleep(1)
        return messages(log)

    assert sa.run(main, clock=clock) == [Ping(1)]


# --- faults and reliable delivery -----------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_reliable_message_is_handled_once_or_reported_failed(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.DropMessages(probability=0.3), sa.DuplicateMessages(probability=0.2)])
    outcome: dict[int, bool] = {}
    async with sa.open_system(seed=seed, trace=True, faults=plan) as system:
        sender = await system.spawn(Recorder, [], name="sender")
        await system.spawn(Recorder, log, name="receiver")
        ids = [
            await system.reliable.send("receiver", Ping(n), sender=sender, timeout=0.5)
            for n in range(300)
        ]
        for n, mid in enumerate(ids):
            try:
                await system.reliable.delivered(mid)
                outcome[n] = True
            except sa.DeliveryFailed:
                outcome[n] = False
        await trio.sleep(60)  # copies still in flight must not be handled again
        stats = system.reliable.stats()
        kinds = collections.Counter(e.kind for e in events(system, K.DROP, K.DUPLICATE))
    times = collections.Counter(message.n for message in messages(log) if isinstance(message, Ping))
    for n in range(300):
        assert times[n] == (1 if outcome[n] else 0), (n, times[n], outcome[n])
    assert stats.acknowledged == sum(outcome.values())
    assert stats.failed == 300 - stats.acknowledged
    assert stats.retried > 0
    assert stats.duplicates_suppressed > 0
    assert kinds[K.DROP] > 0
    assert kinds[K.DUPLICATE] > 0


# --- plans: validation and JSON -------------------------------------------------------------


INVALID_RULES: list[tuple[Callable[[], object], str]] = [
    (lambda: sa.DropMessages(probability=1.5), r"probability must be .* \[0, 1\], got 1.5"),
    (lambda: sa.DuplicateMessages(probability=-0.1), r"probability .* got -0.1"),
    (
        lambda: sa.ReorderMessages(probability="often"),  # type: ignore[arg-type]
        r"probability .* got 'often'",
    ),
    (lambda: sa.CrashActor(actors="a", probability=2), r"probability .* got 2"),
    (lambda: sa.SlowActor(actors="a", seconds=1, probability=math.nan), r"probability .* nan"),
    (lambda: sa.DropMessages(start=-1), r"start must be a finite number of seconds >= 0"),
    (lambda: sa.DropMessages(stop=math.inf), r"stop must be a finite number of seconds"),
    (lambda: sa.DelayMessages(minimum=-0.5), r"minimum must be .* got -0.5"),
    (lambda: sa.DelayMessages(mean=-1.0), r"mean must be .* got -1.0"),
    (lambda: sa.DelayMessages(minimum=2.0, maximum=1.0), r"maximum \(1.0\) must be >= minimum"),
    (lambda: sa.ReorderMessages(max_hold=-1), r"max_hold must be .* got -1"),
    (lambda: sa.PauseActor(actors="a", duration=-1), r"duration must be .* got -1"),
    (lambda: sa.SlowActor(actors="a", seconds=math.nan), r"seconds must be .* got nan"),
    (lambda: sa.Partition(groups=[["a", "b"]]), r"a partition needs at least two groups"),
    (lambda: sa.Partition(groups=[]), r"a partition needs at least two groups, got \(\)"),
    (lambda: sa.CrashActor(actors="a"), r"CrashActor needs nth, every or a probability > 0"),
    (lambda: sa.CrashActor(actors="a", nth=0), r"nth must be a message count >= 1, got 0"),
    (lambda: sa.CrashActor(actors="a", every=True), r"every must be .* >= 1, got True"),
    (
        lambda: sa.FaultPlan([sa.DropMessages(name="x"), sa.DelayMessages(name="x")]),
        r"fault rule names must be unique, got \['x', 'x'\]",
    ),
]


@pytest.mark.parametrize(("make", "message"), INVALID_RULES)
def test_an_invalid_rule_or_plan_is_refused_with_a_clear_message(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: sa.DropMessages(start=10.0, stop=5.0),
        lambda: sa.CrashActor(actors="a", nth=2.5),  # type: ignore[arg-type]
        lambda: sa.CrashActor(actors="a", every=2.5),  # type: ignore[arg-type]
        lambda: sa.Partition(groups="ab"),
        lambda: sa.Partition(groups=[["a"], ["a", "b"]]),
        lambda: sa.FaultPlan(["drop"]),  # type: ignore[list-item]
    ],
    ids=["stop-before-start", "nth-float", "every-float", "groups-str", "overlap", "not-a-rule"],
)
def test_more_invalid_rules_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        make()


EVERY_RULE = sa.FaultPlan(
    [
        sa.DropMessages(name="loss", probability=0.25, scope=sa.Scope(actors="ship-*")),
        sa.DuplicateMessages(probability=0.5, start=1.0, stop=2.0),
        sa.DelayMessages(minimum=0.1, maximum=0.9, mean=0.3, scope=sa.Scope(topics="market.*")),
        sa.ReorderMessages(max_hold=0.5, scope=sa.Scope(message_types=("Ping", "Pong"))),
        sa.Partition(name="cut", groups=[["ship-*"], ["station-1", "station-2"]], start=3),
        sa.CrashActor(actors="ship-1", nth=3, every=10, probability=0.01),
        sa.PauseActor(actors="station-*", start=4, duration=2.5),
        sa.SlowActor(actors=["a", "b"], seconds=0.2, probability=0.5),
    ]
)


def test_a_plan_round_trips_through_json() -> None:
    data = EVERY_RULE.to_json()
    assert isinstance(data, bytes)
    assert sa.FaultPlan.from_json(data) == EVERY_RULE
    assert sa.FaultPlan.from_json(data.decode()) == EVERY_RULE
    assert sa.FaultPlan.from_json(sa.FaultPlan([]).to_json()) == sa.FaultPlan([])


def plan_document(rules: object) -> str:
    return json.dumps({"schema": 1, "type": "FaultPlan", "body": {"rules": rules}})


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("", "malformed json payload"),
        ("{", "malformed json payload"),
        ("[]", "expected an object, got list"),
        ('{"rules": []}', "missing body, schema, type"),
        ('{"schema": 1, "type": "Scope", "body": {}}', "expected a FaultPlan, got Scope"),
        ('{"schema": 1, "type": "Nope", "body": {}}', "unknown message type 'Nope'"),
        (plan_document(5), r"expected an array, got int @ \$\.body\.rules"),
        (plan_document([{"kind": "explode"}]), r"unknown kind 'explode'.* @ \$\.body\.rules\[0\]"),
        (
            plan_document([{"kind": "drop", "probability": "high"}]),
            r"expected a number, got str @ \$\.body\.rules\[0\]\.probability",
        ),
        (plan_document([{"kind": "drop", "bogus": 1}]), r"extra fields found \(bogus\)"),
        (plan_document([{"kind": "drop", "probability": 2}]), r"@ \$\.body\.rules\[0\]"),
        (plan_document([{"kind": "partition", "groups": [["a"]]}]), r"@ \$\.body\.rules\[0\]"),
        (plan_document([{"kind": "crash", "actors": ["a"]}]), r"@ \$\.body\.rules\[0\]"),
        (plan_document([{"kind": "drop", "name": "x"}, {"kind": "drop", "name": "x"}]), r"@ \$"),
    ],
)
def test_a_malformed_plan_document_raises_decode_error(document: str, problem: str) -> None:
    with pytest.raises(sa.DecodeError, match=problem):
        sa.FaultPlan.from_json(document)


@pytest.mark.parametrize(
    ("rule", "why"),
    [
        ({"kind": "drop", "probability": 2}, "probability must be a probability in [0, 1]"),
        ({"kind": "partition", "groups": [["a"]]}, "a partition needs at least two groups"),
        ({"kind": "crash", "actors": ["a"]}, "CrashActor needs nth, every or a probability"),
    ],
)
def test_a_plan_document_with_an_invalid_rule_says_why(rule: dict[str, Any], why: str) -> None:
    with pytest.raises(sa.DecodeError, match=re.escape(why)):
        sa.FaultPlan.from_json(plan_document([rule]))


async def test_a_duplicate_that_finds_the_mailbox_full_is_lost_not_waited_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan([sa.DuplicateMessages(probability=1.0)])
    async with sa.open_system(faults=plan) as system:
        ref = await system.spawn(Recorder, log, name="target", mailbox_size=1)
        ref.pause()
        await trio.sleep(0.1)
        system.try_send("target", Ping(1))  # the first copy fits, the second does not
        assert ref.mailbox_depth == 1
        assert system.router.stats().failed_deliveries == 0
        ref.resume()
        await trio.sleep(1)
    assert messages(log) == [Ping(1)]


async def test_a_cancelled_reliable_send_calls_off_the_copies_a_fault_held_back(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    plan = sa.FaultPlan(
        [sa.DuplicateMessages(probability=1.0), sa.DelayMessages(probability=1.0, maximum=1.0)]
    )
    async with sa.open_system(faults=plan) as system:
        ref = await system.spawn(Recorder, log, name="target", mailbox_size=1)
        ref.pause()
        await trio.sleep(0.1)
        ref.try_send(Ping(0))  # the mailbox is full: the send below waits for room
        with trio.move_on_after(0.5):
            await system.reliable.send(ref, Ping(1))
        assert system.reliable.stats().sent == 0
        ref.resume()
        await trio.sleep(10)
    assert messages(log) == [Ping(0)]  # the held-back copy of the cancelled send never lands


async def test_a_send_that_a_fault_drops_is_still_a_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.DropMessages(probability=1.0)])
    async with sa.open_system(faults=plan) as system:
        ref = await system.spawn(Recorder, [], name="target")
        for send in (system.send("target", Ping(1)), system.reliable.send(ref, Ping(2))):
            with trio.CancelScope() as scope:
                scope.cancel()
                await send  # a cancellation point even though nothing goes out
                pytest.fail("a dropped send returned without a checkpoint")
