"""The router: routing by ref/id/name, broadcast, topics, slow-receiver policies, statistics."""

from __future__ import annotations

import collections
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import example, given, settings
from hypothesis import strategies as st

import spaceactors as sa


class Inbox(sa.Actor):
    """Keeps what it receives; answers "get"; optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.got: list[Any] = []
        self.delay = delay

    async def handle(self, message: object) -> object:
        if message == "get":
            return list(self.got)
        if self.delay:
            await trio.sleep(self.delay)
        self.got.append(message)
        return None


def run_virtual(main: Callable[[], Awaitable[Any]]) -> Any:
    """Run `main` in virtual time (for Hypothesis tests, one trio.run per example)."""
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_route_by_ref_id_and_name_and_count_by_type(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, name="ceres")
        await system.router.route(ref, "a")
        await system.router.route(ref.id, 1)
        await system.router.route("ceres", 2.5)
        system.router.try_route("ceres", "b")
        assert await ref.ask("get") == ["a", 1, 2.5, "b"]
        stats = system.router.stats()
        assert stats.total_messages == 4
        assert dict(stats.by_type) == {"str": 2, "int": 1, "float": 1}
        assert stats.active_actors == 1


async def test_routing_to_an_unknown_name_is_a_counted_dead_letter_naming_the_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Forwarder(sa.Actor):
        async def handle(self, message: object) -> object:
            await self.ctx.send("nobody", message)
            return None

    async with sa.open_system() as system:
        forwarder = await system.spawn(Forwarder, name="relay")
        await forwarder.send("hello")
        await trio.sleep(1)
        (crash, lost) = sorted(system.dead_letters.recent(), key=lambda d: d.reason.value)
        assert crash.reason is sa.DeadLetterReason.CRASHED_WHILE_HANDLING
        assert (lost.target, lost.sender, lost.reason) == (
            "nobody",
            "relay",
            sa.DeadLetterReason.UNKNOWN_ACTOR,
        )
        assert system.router.stats().failed_deliveries == 1


async def test_a_name_is_routable_again_after_its_actor_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        old = await system.spawn(Inbox, name="ship")
        await old.stop()
        with pytest.raises(sa.ActorNotFound):
            await system.router.route("ship", "lost")
        new = await system.spawn(Inbox, name="ship")
        await system.router.route("ship", "found")
        assert await new.ask("get") == ["found"]


async def test_broadcast_reaches_every_live_actor_once_except_the_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        refs = [await system.spawn(Inbox) for _ in range(5)]
        await refs[4].stop()
        assert await system.router.broadcast("hail", sender=refs[0]) == 3
        assert [await ref.ask("get") for ref in refs[:4]] == [[], ["hail"], ["hail"], ["hail"]]
        assert await system.router.broadcast("all") == 4


async def test_publish_reaches_exactly_the_matching_subscribers_once_each(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        exact, wild, everything, other, both = [await system.spawn(Inbox) for _ in range(5)]
        router = system.router
        router.subscribe(exact, "market.sol")
        router.subscribe(wild, "market.*")
        router.subscribe(everything, "*")
        router.subscribe(other, "market.vega")
        router.subscribe(both, "market.sol")
        router.subscribe(both, "market.*")
        assert await router.publish("market.sol", "tick") == 4
        assert await router.publish("market.sol.belt", "deep") == 3  # wild, everything, both
        assert await router.publish("market", "bare") == 1  # only "*": market.* wants a suffix
        assert await exact.ask("get") == ["tick"]
        assert await wild.ask("get") == ["tick", "deep"]
        assert await everything.ask("get") == ["tick", "deep", "bare"]
        assert await other.ask("get") == []
        assert await both.ask("get") == ["tick", "deep"]


async def test_publishing_to_a_topic_nobody_hears_returns_zero_and_is_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        assert await system.router.publish("weather.belt", "storm") == 0
        assert system.router.stats().publishes_without_subscribers == 1


async def test_unsubscribe_and_stopping_both_remove_subscriptions(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        a, b = await system.spawn(Inbox), await system.spawn(Inbox)
        router = system.router
        for ref in (a, b):
            router.subscribe(ref, "hazards.belt")
            router.subscribe(ref, "hazards.*")
        assert router.unsubscribe(a, "hazards.belt")
        assert not router.unsubscribe(a, "hazards.belt")
        assert router.subscribers("hazards.belt") == [b, a]
        await b.stop()
        assert router.subscribers("hazards.belt") == [a]
        assert dict(router.stats().subscribers) == {"hazards.*": 1}
        with pytest.raises(sa.ActorUnavailable):
            router.subscribe(b, "hazards.belt")


@pytest.mark.parametrize(
    "topic", ["", " ", "market..sol", "market.*.sol", "*.sol", "market.s*", ".market", 7]
)
async def test_malformed_topics_are_refused_with_a_clear_error(
    topic: Any, autojump_clock: trio.testing.MockClock
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox)
        with pytest.raises(sa.InvalidTopic):
            system.router.subscribe(ref, topic)
        with pytest.raises(sa.InvalidTopic):
            await system.router.publish(topic, "x")
        with pytest.raises(sa.InvalidTopic, match="a wildcard may only end"):
            await system.router.publish("market.*", "x")  # patterns are for subscribing


async def test_actors_use_topics_through_their_context(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Trader(sa.Actor):
        def __init__(self) -> None:
            self.prices: list[Any] = []

        async def on_start(self) -> None:
            self.ctx.subscribe("market.*")

        async def handle(self, message: object) -> object:
            if message == "get":
                return self.prices
            if message == "shout":
                return await self.ctx.publish("market.sol", "from a trader")
            self.prices.append(message)
            return None

    async with sa.open_system() as system:
        a, b = await system.spawn(Trader), await system.spawn(Trader)
        assert await a.ask("shout") == 1  # not to itself
        assert await b.ask("get") == ["from a trader"]
        assert await a.ask("get") == []


async def test_the_fail_policy_delivers_to_the_others_then_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        stuck = await system.spawn(Inbox, 1000.0, name="stuck", mailbox_size=1)
        fine = await system.spawn(Inbox, name="fine")
        system.router.subscribe(stuck, "alerts", policy=sa.Delivery.FAIL)
        system.router.subscribe(fine, "alerts", policy=sa.Delivery.FAIL)
        await system.router.publish("alerts", 1)  # stuck starts its 1000 s handling
        await trio.sleep(1)
        await system.router.publish("alerts", 2)  # fills stuck's one slot
        with pytest.raises(sa.PublishFailed, match="'stuck'") as caught:
            await system.router.publish("alerts", 3)
        assert (caught.value.delivered, caught.value.failed) == (1, ["stuck"])
        assert await fine.ask("get") == [1, 2, 3]
        assert system.router.stats().failed_deliveries == 1


async def test_dead_letters_are_published_on_their_topic(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        watcher = await system.spawn(Inbox)
        system.router.subscribe(watcher, sa.DEAD_LETTERS_TOPIC)
        with pytest.raises(sa.ActorNotFound):
            await system.send("ghost", "boo")
        (letter,) = await watcher.ask("get")
        assert isinstance(letter, sa.DeadLetter)
        assert (letter.target, letter.message, letter.message_type) == ("ghost", "boo", "str")


async def test_stats_report_mailbox_high_water_marks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, 1.0, name="slow", mailbox_size=10)
        for i in range(7):
            ref.try_send(i)
        await trio.sleep(20)
        assert ref.mailbox_depth == 0
        assert system.router.stats().mailbox_high_water == {"slow": 7}


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    delays=st.lists(st.sampled_from([0.0, 0.01, 0.5, 3.0]), min_size=1, max_size=6),
    publishes=st.integers(min_value=1, max_value=40),
    mailbox=st.integers(min_value=1, max_value=4),
    policy=st.sampled_from([sa.Delivery.BLOCK, sa.Delivery.DROP_NEWEST]),
)
def test_block_loses_nothing_and_drop_newest_accounts_for_every_message(
    delays: list[float], publishes: int, mailbox: int, policy: sa.Delivery
) -> None:
    async def main() -> tuple[list[list[Any]], int, int]:
        async with sa.open_system() as system:
            refs = [await system.spawn(Inbox, delay, mailbox_size=mailbox) for delay in delays]
            for ref in refs:
                system.router.subscribe(ref, "feed", policy=policy)
            reached = 0
            for i in range(publishes):
                reached += await system.router.publish("feed", i)
            await trio.sleep(1000)  # let the slowest drain
            received = [await ref.ask("get") for ref in refs]
            dropped = system.dead_letters.by_reason[sa.DeadLetterReason.DROPPED_SLOW_RECEIVER]
            assert system.router.stats().dropped == dropped
            return received, reached, dropped

    received, reached, dropped = run_virtual(main)
    if policy is sa.Delivery.BLOCK:
        assert received == [list(range(publishes))] * len(delays)
        assert dropped == 0
    else:
        assert reached + dropped == publishes * len(delays)
        assert sum(map(len, received)) == reached
        assert all(got == sorted(got) for got in received)  # what arrives keeps its order


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("route"), st.integers(0, 3), st.sampled_from(["s", 1, 2.0])),
        st.tuples(st.just("route_unknown"), st.just(0), st.just("s")),
        st.tuples(st.just("subscribe"), st.integers(0, 3), st.sampled_from(["t.a", "t.*"])),
        st.tuples(st.just("unsubscribe"), st.integers(0, 3), st.sampled_from(["t.a", "t.*"])),
        st.tuples(st.just("publish"), st.sampled_from(["t.a", "t.b", "u"]), st.just(1)),
        st.tuples(st.just("broadcast"), st.integers(0, 3), st.just(2.0)),
        st.tuples(st.just("stop"), st.integers(0, 3), st.just(None)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(operations=OPERATIONS)
# Found by Hypothesis: a broadcast that reached nobody counted its type with 0 deliveries.
@example(operations=[*(("stop", i, None) for i in range(4)), ("broadcast", 0, 2.0)])
@example(operations=[("publish", "t.a", 1)])  # a publish nobody hears: no "int" entry either
def test_statistics_always_equal_a_simple_model(operations: list[tuple[str, Any, Any]]) -> None:
    async def main() -> None:
        async with sa.open_system() as system:
            router = system.router
            refs = [await system.spawn(Inbox, mailbox_size=1000) for _ in range(4)]
            alive = [True] * 4
            subscribed: set[tuple[int, str]] = set()
            by_type: collections.Counter[str] = collections.Counter()
            failed = unheard = 0
            for op, arg, value in operations:
                if op == "route":
                    if alive[arg]:
                        await router.route(refs[arg], value)
                        by_type[type(value).__name__] += 1
                    else:
                        with pytest.raises(sa.ActorUnavailable):
                            await router.route(refs[arg], value)
                        failed += 1
                elif op == "route_unknown":
                    with pytest.raises(sa.ActorNotFound):
                        await router.route("nobody", value)
                    failed += 1
                elif op == "subscribe" and alive[arg]:
                    router.subscribe(refs[arg], value)
                    subscribed.add((arg, value))
                elif op == "unsubscribe":
                    assert router.unsubscribe(refs[arg], value) == ((arg, value) in subscribed)
                    subscribed.discard((arg, value))
                elif op == "publish":
                    expected = {i for i, t in subscribed if t in (arg, "t.*") and arg != "u"}
                    assert await router.publish(arg, value) == len(expected)
                    by_type["int"] += len(expected)
                    unheard += not expected
                elif op == "broadcast":
                    sender = refs[arg] if alive[arg] else None
                    expected_count = sum(alive) - (sender is not None)
                    assert await router.broadcast(value, sender=sender) == expected_count
                    by_type["float"] += expected_count
                elif op == "stop" and alive[arg]:
                    await refs[arg].stop()
                    alive[arg] = False
                    subscribed = {(i, t) for i, t in subscribed if i != arg}
            stats = router.stats()
            assert dict(stats.by_type) == {k: v for k, v in by_type.items() if v}
            assert stats.total_messages == sum(by_type.values())
            assert stats.failed_deliveries == failed
            assert stats.publishes_without_subscribers == unheard
            assert stats.active_actors == sum(alive)
            counts: collections.Counter[str] = collections.Counter(t for _, t in subscribed)
            assert dict(stats.subscribers) == dict(counts)

    run_virtual(functools.partial(main))


# --- the router's service: delayed delivery -----------------------------------------------


async def test_send_later_delivers_on_time_and_same_instant_messages_in_schedule_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, name="clock-watcher")
        start = trio.current_time()
        for i in range(5):
            system.router.send_later(2.0, "clock-watcher", i)
        cancelled = system.router.send_later(1.0, ref, "never")
        cancelled.cancel()
        system.router.send_later(1.0, ref, "first")
        await trio.sleep(1.5)
        assert await ref.ask("get") == ["first"]
        await trio.sleep(1.0)
        assert await ref.ask("get") == ["first", 0, 1, 2, 3, 4]
        assert trio.current_time() - start == pytest.approx(2.5)
        with pytest.raises(ValueError, match="delay must be"):
            system.router.send_later(-1, ref, "x")
        with pytest.raises(sa.ActorNotFound):
            system.router.send_later(1, "nobody", "x")


async def test_a_crash_of_the_router_service_loses_no_registration_subscription_or_count(
    autojump_clock: trio.testing.MockClock,
) -> None:
    crashes = 0

    def crash_the_service(entry: Any) -> None:
        # An engine callback that fails (one failing *delivery* would only be a dead letter).
        nonlocal crashes
        crashes += 1
        raise RuntimeError("router service failure")

    class Ticking(Inbox):
        async def on_start(self) -> None:
            self.ctx.every(1.0, "tick")

    async with sa.open_system() as system:
        router = system.router
        ticking = await system.spawn(Ticking, name="ticking")
        listener = await system.spawn(Inbox, name="listener")
        router.subscribe(listener, "news.*")
        await router.publish("news.sol", "before")
        router.state.schedule.call_at(trio.current_time() + 2.4, crash_the_service)
        router.send_later(2.5, listener, "crash")  # due while the service restarts
        router.send_later(3.5, listener, "after")
        await trio.sleep(5.2)
        service = system.services.which_children()[0]
        assert (service.name, service.running, service.handle.restarts) == ("router", True, 1)
        assert crashes == 1
        assert system.lookup("listener") is listener  # registration kept
        assert router.subscribers("news.sol") == [listener]  # subscription kept
        assert await router.publish("news.sol", "again") == 1  # traffic resumed
        assert await listener.ask("get") == ["before", "crash", "after", "again"]
        assert await ticking.ask("get") == ["tick"] * 5  # timers re-armed
        stats = router.stats()
        assert stats.by_type == {"str": 4}  # two publishes, two send_later (timers are not routed)
        assert stats.subscribers == {"news.*": 1}


async def test_a_paused_actors_periodic_timer_skips_ticks_instead_of_piling_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Ticking(Inbox):
        async def on_start(self) -> None:
            self.ctx.every(1.0, "tick")

    async with sa.open_system() as system:
        ref = await system.spawn(Ticking, mailbox_size=2)
        await trio.sleep(0.5)
        ref.pause()
        await trio.sleep(100)
        assert ref.mailbox_depth == 2
        ref.resume()
        await trio.sleep(0.1)
        assert len(await ref.ask("get")) == 3  # two from the mailbox, one that waited for room
        assert system.router.state.schedule.skipped_ticks >= 95


# --- accounting regressions --------------------------------------------------------------


async def test_a_drop_is_counted_once_and_catch_all_subscribers_get_no_dead_letters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        catch_all = await system.spawn(Inbox, mailbox_size=1)
        system.router.subscribe(catch_all, "*", policy=sa.Delivery.DROP_NEWEST)
        catch_all.pause()
        await trio.sleep(1)
        await system.router.publish("market.sol", 1)
        await system.router.publish("market.sol", 2)  # full: dropped, one dead letter
        assert system.router.stats().dropped == 1
        catch_all.resume()
        assert await catch_all.ask("get") == [1]  # no DeadLetter objects via "*"


async def test_a_cancelled_broadcast_counts_what_it_did_deliver(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        fine = await system.spawn(Inbox, name="a")
        jammed = await system.spawn(Inbox, name="b", mailbox_size=1)
        jammed.pause()
        await trio.sleep(1)
        jammed.try_send("filler")
        with trio.move_on_after(1):
            await system.router.broadcast("X")
        assert await fine.ask("get") == ["X"]
        assert system.router.stats().total_messages >= 1


async def test_send_later_is_counted_when_delivered_or_as_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, name="a")
        system.router.send_later(5, "a", "cancelled").cancel()
        system.router.send_later(5, "a", "too late")
        await trio.sleep(1)
        await ref.stop()
        await trio.sleep(10)
        stats = system.router.stats()
        assert (stats.total_messages, stats.failed_deliveries) == (0, 1)


async def test_failures_of_ask_and_send_to_stopped_actors_are_counted_and_keep_the_sender(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Relay(sa.Actor):
        def __init__(self, target: sa.ActorRef) -> None:
            self.target = target

        async def handle(self, message: object) -> object:
            with pytest.raises(sa.ActorUnavailable):
                await self.ctx.send(self.target, message)
            return None

    async with sa.open_system() as system:
        gone = await system.spawn(Inbox, name="gone")
        await gone.stop()
        with pytest.raises(sa.ActorUnavailable):
            await system.ask(gone, "q")
        relay = await system.spawn(Relay, gone, name="relay")
        await relay.ask("m")
        assert system.router.stats().failed_deliveries == 2
        assert system.dead_letters.recent()[-1].sender == "relay"
        with pytest.raises(TypeError, match="got bool True"):
            system.lookup(True)  # a bool is not an actor id: a wrong type, refused as such


async def test_a_control_command_routed_to_a_stopped_actor_is_a_counted_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, name="gone")
        await system.router.route(ref, sa.Pause())
        await ref.stop()
        with pytest.raises(sa.ActorUnavailable):
            await system.router.route(ref, sa.Resume())
        stats = system.router.stats()
        assert (stats.by_type, stats.failed_deliveries) == ({"Pause": 1}, 1)


@pytest.mark.parametrize("tapped", [False, True])
@pytest.mark.parametrize("target", ["ref", "name", "id"])
async def test_a_sender_that_is_not_a_ref_is_refused_whatever_the_target(
    autojump_clock: trio.testing.MockClock, tapped: bool, target: str
) -> None:
    """The same refusal by ref, id or name, traced or not (``route``'s fast path checks it
    too), and nothing is delivered or counted."""
    async with sa.open_system(trace=sa.Trace() if tapped else None) as system:
        ref = await system.spawn(sa.Actor, name="quiet")
        where = {"ref": ref, "name": "quiet", "id": ref.id}[target]
        for sender in ("bogus", 5):
            with pytest.raises(TypeError, match="sender must be an ActorRef or None"):
                await system.router.route(where, "m", sender)  # type: ignore[arg-type]
        assert ref.mailbox_depth == 0
        assert system.router.stats().total_messages == 0
