"""Reliable messages to a topic: `system.reliable.publish` gives every subscriber its own reliable
message, handled exactly once, with the guarantees of `system.reliable.send`."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger import Ledger

import spaceactors as sa

MARKET = "market.sol"


class Listener(Ledger):
    """A `Ledger` that records (its name, the message)."""

    def record(self, message: object) -> object:
        return (self.ctx.name, message)


class Quoter(Listener):
    """Listens to every market; on ("quote", x) publishes x reliably as itself."""

    async def handle(self, message: object) -> object:
        if isinstance(message, tuple) and message[0] == "quote":
            ids = await self.ctx.system.reliable.publish(
                MARKET, message[1], sender=self.ctx.self_ref
            )
            return sorted(ref.name for ref in ids)
        return await super().handle(message)


def seen_by(handled: list[tuple[str, object]], name: str) -> list[object]:
    return [message for who, message in handled if who == name]


async def outcome(system: sa.ActorSystem, message_id: int) -> sa.Receipt | None:
    """The receipt, or None if the message failed."""
    try:
        return await system.reliable.delivered(message_id)
    except sa.DeliveryFailed:
        return None


# --- who gets it ---------------------------------------------------------------------------


async def test_each_subscriber_gets_its_own_message_once_wildcards_included(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system(seed=3) as system:
        topics = {
            "exact": [MARKET],
            "sector": ["market.*"],
            "everything": ["*"],
            "twice": [MARKET, "market.*"],
            "belt": ["market.sol.belt"],
            "news": ["news"],
        }
        for name, subscriptions in topics.items():
            ref = await system.spawn(Listener, handled, name=name)
            for topic in subscriptions:
                system.router.subscribe(ref, topic)
        ids = await system.reliable.publish(MARKET, "price 7")
        assert sorted(ref.name for ref in ids) == ["everything", "exact", "sector", "twice"]
        assert set(ids) == set(system.router.subscribers(MARKET))
        assert len(set(ids.values())) == 4  # one message, with its own id, per subscriber
        for message_id in ids.values():
            receipt = await system.reliable.delivered(message_id)
            assert receipt.attempts == 1
        await trio.sleep(10)
        assert system.reliable.stats().sent == 4
    assert sorted(handled) == [
        ("everything", "price 7"),
        ("exact", "price 7"),
        ("sector", "price 7"),
        ("twice", "price 7"),
    ]


async def test_the_publishing_actor_is_left_out(autojump_clock: trio.testing.MockClock) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system() as system:
        quoter = await system.spawn(Quoter, handled, name="quoter")
        trader = await system.spawn(Listener, handled, name="trader")
        system.router.subscribe(quoter, "market.*")
        system.router.subscribe(trader, MARKET)
        assert await quoter.ask(("quote", "bid 5")) == ["trader"]
        system.router.unsubscribe(trader, MARKET)
        assert await quoter.ask(("quote", "bid 6")) == []  # only the sender listens
        assert system.router.stats().publishes_without_subscribers == 1
        await trio.sleep(10)
    assert handled == [("trader", "bid 5")]


async def test_a_topic_nobody_listens_to_gives_no_ids_and_is_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        listener = await system.spawn(Listener, [], name="listener")
        system.router.subscribe(listener, "news")
        assert await system.reliable.publish(MARKET, "nobody hears") == {}
        assert await system.reliable.publish("market", "nor this") == {}
        assert system.router.stats().publishes_without_subscribers == 2
        assert system.reliable.stats().sent == 0


async def test_a_late_subscriber_never_gets_an_earlier_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system() as system:
        early = await system.spawn(Listener, handled, name="early")
        system.router.subscribe(early, MARKET)
        early.pause()  # acknowledges nothing: the message keeps being retried meanwhile
        ids = await system.reliable.publish(MARKET, "first", max_retries=10, jitter=0.0)
        late = await system.spawn(Listener, handled, name="late")
        system.router.subscribe(late, MARKET)
        await trio.sleep(20)
        assert system.reliable.stats().retried >= 4  # retries went out after `late` joined
        early.resume()
        await system.reliable.delivered(ids[early])
        later = await system.reliable.publish(MARKET, "second")
        assert set(later) == {early, late}
        for message_id in later.values():
            await system.reliable.delivered(message_id)
        await trio.sleep(10)
    assert seen_by(handled, "early") == ["first", "second"]
    assert seen_by(handled, "late") == ["second"]


# --- exactly once under faults ---------------------------------------------------------------


async def test_a_duplicated_publish_is_handled_once_by_each_subscriber(
    autojump_clock: trio.testing.MockClock,
) -> None:
    doubled = sa.FaultPlan([sa.DuplicateMessages(scope=sa.Scope(topics=["market.*"]))])
    handled: list[tuple[str, object]] = []
    async with sa.open_system(seed=5, faults=doubled) as system:
        for name in ("a", "b", "c"):
            ref = await system.spawn(Listener, handled, name=name)
            system.router.subscribe(ref, "market.*" if name == "c" else MARKET)
        for n in range(5):
            ids = await system.reliable.publish(MARKET, n)
            for message_id in ids.values():
                await system.reliable.delivered(message_id)
        await trio.sleep(30)
        assert system.reliable.stats().duplicates_suppressed == 15
    for name in ("a", "b", "c"):
        assert seen_by(handled, name) == [0, 1, 2, 3, 4]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 8),
    drop=st.sampled_from([0.0, 0.3, 0.7]),
    duplicate=st.sampled_from([0.0, 0.3, 1.0]),
    delay=st.sampled_from([0.0, 0.3]),
    reorder=st.sampled_from([0.0, 0.3]),
    crashes=st.sets(st.integers(0, 7), max_size=3),
    ordered=st.booleans(),
)
def test_every_subscriber_handles_each_message_once_or_is_told_it_failed(
    seed: int,
    count: int,
    drop: float,
    duplicate: float,
    delay: float,
    reorder: float,
    crashes: set[int],
    ordered: bool,
) -> None:
    network = sa.FaultPlan(
        [
            sa.DropMessages(probability=drop),
            sa.DuplicateMessages(probability=duplicate),
            sa.DelayMessages(probability=delay, minimum=0.0, maximum=3.0),
            sa.ReorderMessages(probability=reorder, max_hold=2.0),
        ]
    )
    subscriptions = {"exact": [MARKET], "wild": ["market.*"], "both": ["*", MARKET]}
    handled: list[tuple[str, object]] = []
    outcomes: dict[tuple[str, int], bool] = {}

    async def main() -> None:
        async with sa.open_system(seed=seed, max_restarts=100, faults=network) as system:
            for name, topics in subscriptions.items():
                crash = set(crashes) if name == "exact" else set()
                ref = await system.spawn(Listener, handled, crash, name=name)
                for topic in topics:
                    system.router.subscribe(ref, topic)
            published = [
                await system.reliable.publish(
                    MARKET, n, max_retries=5, timeout=0.5, ordered=ordered
                )
                for n in range(count)
            ]
            for n, ids in enumerate(published):
                assert sorted(ref.name for ref in ids) == sorted(subscriptions)
                for ref, message_id in ids.items():
                    outcomes[ref.name, n] = await outcome(system, message_id) is not None
            await trio.sleep(500)  # copies still in flight must not be handled

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    for name in subscriptions:
        seen = seen_by(handled, name)
        for n in range(count):
            expected = 1 if outcomes[name, n] else 0
            assert seen.count(n) == expected, f"{name} handled {n} {seen.count(n)}x"
        if ordered:
            assert seen == [n for n in range(count) if outcomes[name, n]]


# --- crashes, stops, order -------------------------------------------------------------------


async def test_a_subscriber_that_crashes_gets_the_retry_after_its_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system(seed=7) as system:
        fragile = await system.spawn(Listener, handled, {"cargo"}, name="fragile")
        sturdy = await system.spawn(Listener, handled, name="sturdy")
        system.router.subscribe(fragile, MARKET)
        system.router.subscribe(sturdy, MARKET)
        ids = await system.reliable.publish(MARKET, "cargo", jitter=0.0)
        assert (await system.reliable.delivered(ids[fragile])).attempts == 2
        assert (await system.reliable.delivered(ids[sturdy])).attempts == 1
        await trio.sleep(10)
        reasons = [letter.reason.value for letter in system.dead_letters.recent()]
        assert reasons == ["crashed_while_handling"]
        assert fragile.status().restarts == 1
    assert sorted(handled) == [("fragile", "cargo"), ("sturdy", "cargo")]


async def test_a_subscriber_that_stops_after_the_publish_fails_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system() as system:
        leaving = await system.spawn(Listener, handled, name="leaving")
        staying = await system.spawn(Listener, handled, name="staying")
        system.router.subscribe(leaving, MARKET)
        system.router.subscribe(staying, MARKET)
        leaving.pause()
        ids = await system.reliable.publish(MARKET, "notice", max_retries=2)
        await leaving.stop()
        with pytest.raises(sa.DeliveryFailed, match="'leaving'"):
            await system.reliable.delivered(ids[leaving])
        assert (await system.reliable.delivered(ids[staying])).attempts == 1
        reasons = {letter.reason.value for letter in system.dead_letters.recent()}
        assert "delivery_failed" in reasons
    assert handled == [("staying", "notice")]


async def test_a_subscriber_that_stopped_before_its_turn_gets_no_id_and_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system() as system:
        busy = await system.spawn(Listener, handled, name="busy", mailbox_size=1)
        gone = await system.spawn(Listener, handled, name="gone")
        system.router.subscribe(busy, MARKET)
        system.router.subscribe(gone, MARKET)
        busy.pause()
        await busy.send("backlog")  # full: the publish waits for room at `busy`, first
        result: list[dict[sa.ActorRef, int]] = []

        async def publish() -> None:
            result.append(await system.reliable.publish(MARKET, "update"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(publish)
            await trio.testing.wait_all_tasks_blocked()
            assert not result
            await gone.stop()  # while the publish still waits for `busy`
            busy.resume()
        (ids,) = result
        assert list(ids) == [busy]
        assert (await system.reliable.delivered(ids[busy])).attempts == 1
        letter = system.dead_letters.recent()[-1]
        assert (letter.reason.value, letter.target, letter.message) == (
            "actor_stopped",
            "gone",
            "update",
        )
    assert handled == [("busy", "backlog"), ("busy", "update")]


@pytest.mark.parametrize("ordered", [True, False])
async def test_ordered_publishes_reach_each_subscriber_in_order_despite_a_crash(
    autojump_clock: trio.testing.MockClock, ordered: bool
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system(seed=7) as system:
        fragile = await system.spawn(Listener, handled, {1}, name="fragile")
        sturdy = await system.spawn(Listener, handled, name="sturdy")
        system.router.subscribe(fragile, MARKET)
        system.router.subscribe(sturdy, "market.*")
        published = [await system.reliable.publish(MARKET, n, ordered=ordered) for n in (1, 2, 3)]
        for ids in published:
            for message_id in ids.values():
                await system.reliable.delivered(message_id)
    assert seen_by(handled, "sturdy") == [1, 2, 3]
    assert seen_by(handled, "fragile") == ([1, 2, 3] if ordered else [2, 3, 1])


async def test_ordered_publishes_and_sends_from_one_sender_share_its_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system(seed=7) as system:
        fragile = await system.spawn(Listener, handled, {"a"}, name="fragile")
        system.router.subscribe(fragile, MARKET)
        first = await system.reliable.send(fragile, "a", ordered=True)
        ids = await system.reliable.publish(MARKET, "b", ordered=True)
        last = await system.reliable.send(fragile, "c", ordered=True)
        for message_id in (first, ids[fragile], last):
            await system.reliable.delivered(message_id)
    assert handled == [("fragile", "a"), ("fragile", "b"), ("fragile", "c")]


# --- the subscription's policy, cancellation --------------------------------------------------


@pytest.mark.parametrize("policy", list(sa.Delivery))
async def test_a_reliable_publish_waits_for_room_whatever_the_subscription_policy(
    autojump_clock: trio.testing.MockClock, policy: sa.Delivery
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system() as system:
        slow = await system.spawn(Listener, handled, None, 1.0, name="slow", mailbox_size=1)
        system.router.subscribe(slow, MARKET, policy=policy)
        for n in range(4):
            ids = await system.reliable.publish(MARKET, n, timeout=10.0)
            assert list(ids) == [slow]
        assert trio.current_time() >= 2.0  # the publisher waited for room
        await trio.sleep(10)
        assert system.router.stats().dropped == 0
        assert system.reliable.stats().retried == 0
    assert seen_by(handled, "slow") == [0, 1, 2, 3]


async def test_a_publish_cancelled_before_any_transmission_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        listener = await system.spawn(Listener, [], name="listener")
        system.router.subscribe(listener, MARKET)
        with trio.CancelScope() as scope:
            scope.cancel()
            await system.reliable.publish(MARKET, "never")
        assert scope.cancelled_caught
        assert system.reliable.stats().sent == 0
        assert listener.mailbox_depth == 0


async def test_a_publish_cancelled_while_waiting_for_room_keeps_what_went_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[tuple[str, object]] = []
    async with sa.open_system() as system:
        ready = await system.spawn(Listener, handled, name="ready")
        full = await system.spawn(Listener, handled, name="full", mailbox_size=1)
        system.router.subscribe(ready, MARKET)
        system.router.subscribe(full, MARKET)
        full.pause()
        await full.send("backlog")
        with trio.move_on_after(5.0):
            await system.reliable.publish(MARKET, "update")
        assert system.reliable.stats().sent == 1  # `ready`'s message, and nothing for `full`
        full.resume()
        await trio.sleep(30)
        assert system.reliable.stats().acknowledged == 1
        assert system.reliable.pending_count() == 0
    assert sorted(handled) == [("full", "backlog"), ("ready", "update")]


# --- refused calls ---------------------------------------------------------------------------

_deep: list[Any] = []
_cursor = _deep
for _ in range(10_000):
    _cursor.append([])
    _cursor = _cursor[0]

HOSTILE_TOPICS = {
    "None": None,
    "int": 5,
    "bytes": b"market.sol",
    "list": ["market", "sol"],
    "deep": _deep,
    "object": object(),
    "empty": "",
    "blank": "   ",
    "empty part": "market..sol",
    "leading dot": ".market",
    "trailing dot": "market.",
    "padded part": "market. sol",
    "pattern": "market.*",
    "all": "*",
    "inner wildcard": "*.sol",
    "surrogate": "market.\ud800",
    "long": "m" * 100_000 + ".*",
}


@pytest.mark.parametrize("topic", list(HOSTILE_TOPICS.values()), ids=list(HOSTILE_TOPICS))
@pytest.mark.parametrize("listening", [True, False])
async def test_a_malformed_topic_is_refused_before_anything_is_sent(
    autojump_clock: trio.testing.MockClock, topic: object, listening: bool
) -> None:
    async with sa.open_system() as system:
        listener = await system.spawn(Listener, [], name="listener")
        if listening:
            system.router.subscribe(listener, "*")
        with pytest.raises(sa.InvalidTopic) as caught:
            await system.reliable.publish(topic, "m")  # type: ignore[arg-type]
        assert len(str(caught.value)) < 400
        assert system.reliable.stats().sent == 0
        assert system.router.stats().publishes_without_subscribers == 0


HOSTILE_OPTIONS: dict[str, dict[str, Any]] = {
    "negative retries": {"max_retries": -1},
    "bool retries": {"max_retries": True},
    "float retries": {"max_retries": 1.5},
    "None retries": {"max_retries": None},
    "zero timeout": {"timeout": 0},
    "nan timeout": {"timeout": float("nan")},
    "infinite timeout": {"timeout": float("inf")},
    "text timeout": {"timeout": "1"},
    "max_delay below timeout": {"timeout": 2.0, "max_delay": 1.0},
    "negative max_delay": {"max_delay": -1.0},
    "jitter of one": {"jitter": 1.0},
    "negative jitter": {"jitter": -0.1},
    "huge jitter": {"jitter": 10**400},
}


@pytest.mark.parametrize("options", list(HOSTILE_OPTIONS.values()), ids=list(HOSTILE_OPTIONS))
@pytest.mark.parametrize("listening", [True, False])
async def test_bad_options_are_refused_even_when_nobody_listens(
    autojump_clock: trio.testing.MockClock, options: dict[str, Any], listening: bool
) -> None:
    async with sa.open_system() as system:
        listener = await system.spawn(Listener, [], name="listener")
        if listening:
            system.router.subscribe(listener, MARKET)
        (named,) = options if len(options) == 1 else ["max_delay"]
        with pytest.raises(ValueError, match=named) as caught:
            await system.reliable.publish(MARKET, "m", **options)
        assert not isinstance(caught.value, sa.InvalidTopic)
        assert len(str(caught.value)) < 400
        assert system.reliable.stats().sent == 0
        assert listener.mailbox_depth == 0


@pytest.mark.parametrize("sender", ["quoter", 1, object()])
async def test_a_sender_that_is_not_a_ref_is_refused(
    autojump_clock: trio.testing.MockClock, sender: object
) -> None:
    async with sa.open_system() as system:
        listener = await system.spawn(Listener, [], name="listener")
        system.router.subscribe(listener, MARKET)
        with pytest.raises(TypeError, match="sender must be an ActorRef"):
            await system.reliable.publish(MARKET, "m", sender=sender)  # type: ignore[arg-type]
        assert system.reliable.stats().sent == 0


@pytest.mark.parametrize("listening", [True, False])
async def test_a_reliable_publish_is_refused_once_the_system_closed(
    autojump_clock: trio.testing.MockClock, listening: bool
) -> None:
    async with sa.open_system() as system:
        listener = await system.spawn(Listener, [], name="listener")
        if listening:
            system.router.subscribe(listener, MARKET)
    with pytest.raises(sa.ActorUnavailable, match="the reliable service has stopped"):
        await system.reliable.publish(MARKET, "m")
    assert system.reliable.stats().sent == 0


async def test_a_reliable_publish_is_refused_once_the_services_are_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        listener = await system.spawn(Listener, [], name="listener")
        system.router.subscribe(listener, MARKET)
        await system.services.stop()
        with pytest.raises(sa.ActorUnavailable, match="the reliable service has stopped"):
            await system.reliable.publish(MARKET, "m")
        assert system.reliable.stats().sent == 0
        assert listener.mailbox_depth == 0


# --- fault rules scoped to the topic --------------------------------------------------------


async def test_a_drop_rule_scoped_to_the_topic_drops_every_transmission_retries_included(
    autojump_clock: trio.testing.MockClock,
) -> None:
    lossy = sa.FaultPlan([sa.DropMessages(scope=sa.Scope(topics=["market.*"]))])
    handled: list[tuple[str, object]] = []
    async with sa.open_system(seed=1, trace=True, faults=lossy) as system:
        trader = await system.spawn(Listener, handled, name="trader")
        system.router.subscribe(trader, MARKET)
        system.router.subscribe(trader, "news")
        lost = await system.reliable.publish(MARKET, "quote", max_retries=2)
        heard = await system.reliable.publish("news", "headline", max_retries=2)
        direct = await system.reliable.send(trader, "letter", max_retries=2)
        with pytest.raises(sa.DeliveryFailed, match="'trader'"):
            await system.reliable.delivered(lost[trader])
        assert (await system.reliable.delivered(heard[trader])).attempts == 1
        assert (await system.reliable.delivered(direct)).attempts == 1
        assert system.trace is not None
        message_id = lost[trader]
        sends = [e for e in system.trace.of_kind(sa.EventKind.SEND) if e.message_id == message_id]
        drops = [e for e in system.trace.of_kind(sa.EventKind.DROP) if e.message_id == message_id]
        assert [e.detail for e in sends] == [f"topic {MARKET}", "retry 1", "retry 2"]
        assert len(drops) == 3  # the first transmission and both retries
    assert handled == [("trader", "headline"), ("trader", "letter")]


async def test_a_delay_rule_scoped_to_the_topic_delays_only_published_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slow_news = sa.FaultPlan(
        [sa.DelayMessages(minimum=0.5, maximum=0.5, scope=sa.Scope(topics=[MARKET]))]
    )
    async with sa.open_system(seed=1, faults=slow_news) as system:
        trader = await system.spawn(Listener, [], name="trader")
        system.router.subscribe(trader, MARKET)
        ids = await system.reliable.publish(MARKET, "quote", timeout=2.0)
        direct = await system.reliable.send(trader, "letter", timeout=2.0)
        assert (await system.reliable.delivered(direct)).latency == 0.0
        receipt = await system.reliable.delivered(ids[trader])
        assert (receipt.attempts, receipt.latency) == (1, 0.5)
