"""Reliable delivery: acknowledgements, retries with backoff, de-duplication, ordering."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger import Ledger

import spaceactors as sa
from spaceactors.faults import Fate
from spaceactors.retries import Retries


def run_virtual(main: Any) -> Any:
    return trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def transmissions(system: sa.ActorSystem, message_id: int) -> list[sa.TraceEvent]:
    """The traced transmissions (first send and retries) of one reliable message."""
    assert system.trace is not None
    sends = system.trace.of_kind(sa.EventKind.SEND)
    return [event for event in sends if event.message_id == message_id]


def lose_first_transmission(
    system: sa.ActorSystem, monkeypatch: pytest.MonkeyPatch, lose: Any
) -> None:
    """Make the network lose the first transmission of the message `lose` picks, only."""
    assert system.faults is not None
    decide = system.faults.fate
    lost: list[object] = []

    def fate(target: str, sender: str | None, message: object, *rest: Any) -> Fate:
        if lose(message) and not lost:
            lost.append(message)
            return Fate(now=0, dropped="drop")
        return decide(target, sender, message, *rest)

    monkeypatch.setattr(system.faults, "fate", fate)


async def test_a_reliable_message_is_handled_once_and_acknowledged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system() as system:
        await system.spawn(Ledger, handled, name="ledger")
        mid = await system.reliable.send("ledger", "cargo manifest")
        receipt = await system.reliable.delivered(mid)
        assert (receipt.message_id, receipt.attempts) == (mid, 1)
        assert handled == ["cargo manifest"]
        assert system.reliable.pending_count() == 0
        assert system.reliable.stats() == sa.ReliableStats(
            sent=1, acknowledged=1, retried=0, failed=0, duplicates_suppressed=0, pending=0
        )


async def test_a_crash_while_handling_sends_no_ack_and_the_retry_reaches_the_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system() as system:
        await system.spawn(Ledger, handled, {"fragile"}, name="ledger")
        start = trio.current_time()
        mid = await system.reliable.send("ledger", "fragile", timeout=2.0, jitter=0.0)
        receipt = await system.reliable.delivered(mid)
        assert receipt.attempts == 2
        assert receipt.latency == pytest.approx(2.0)
        assert trio.current_time() - start == pytest.approx(2.0)
        assert handled == ["fragile"]


async def test_retries_back_off_and_delivered_raises_after_exactly_max_retries(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(trace=True) as system:
        deaf = await system.spawn(Ledger, [], name="deaf", mailbox_size=16)
        deaf.pause()  # it never handles, so it never acknowledges
        await trio.sleep(0.1)
        start = trio.current_time()
        mid = await system.reliable.send(
            "deaf", "hello", max_retries=4, timeout=1.0, max_delay=5.0, jitter=0.0
        )
        with pytest.raises(sa.DeliveryFailed, match="not acknowledged after 4 retries"):
            await system.reliable.delivered(mid)
        sent_at = [event.time for event in transmissions(system, mid)]
        # The first send, then retries after 1, 2, 4 and (capped) 5 more seconds; the
        # failure once the last retry's 5 s have passed too.
        assert [round(t - start, 6) for t in sent_at] == [0.0, 1.0, 3.0, 7.0, 12.0]
        assert trio.current_time() - start == pytest.approx(17.0)
        (letter,) = [d for d in system.dead_letters.recent() if d.reason.value == "delivery_failed"]
        assert (letter.target, letter.message) == ("deaf", "hello")
        assert system.reliable.stats().failed == 1
        assert system.reliable.stats().retried == 4


async def test_first_retries_keep_their_jitter_bounds_across_mixed_timeouts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=7, trace=True) as system:
        deaf = await system.spawn(Ledger, [], name="deaf", mailbox_size=64)
        deaf.pause()
        await trio.sleep(0.1)
        start = trio.current_time()
        options = [(5.0, 0.2), (1.0, 0.5), (3.0, 0.0), (1.0, 0.5), (0.5, 0.1)]
        ids = []
        for timeout, jitter in options:
            ids.append(
                await system.reliable.send(
                    deaf, "x", max_retries=1, timeout=timeout, jitter=jitter, max_delay=60.0
                )
            )
            await trio.sleep(0.25)
        await trio.sleep(30)
        for i, (timeout, jitter) in enumerate(options):
            first, retry = [event.time for event in transmissions(system, ids[i])]
            assert first - start == pytest.approx(0.25 * i)
            assert timeout * (1 - jitter) <= retry - first <= timeout * (1 + jitter)
        assert system.reliable.stats().failed == len(options)


async def test_a_message_acknowledged_in_time_never_gets_a_retry_timer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Ledger, [], name="ledger")
        schedule = system.reliable.state.schedule
        for i in range(100):
            await system.reliable.send(ref, i, timeout=1.0)
        await system.reliable.delivered(100)
        assert schedule.pending() == 1  # one first-check timer for the whole batch
        await trio.sleep(2)
        assert schedule.pending() == 0
        assert system.reliable.stats().retried == 0


async def test_duplicates_are_acknowledged_but_handled_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Ledger, handled, name="ledger")
        ref.pause()
        await trio.sleep(0.1)
        mid = await system.reliable.send(ref, "once")
        ref.try_send(system.reliable.state.pending[mid])  # a copy the network duplicated
        ref.resume()
        await system.reliable.delivered(mid)
        await trio.sleep(1)
        assert handled == ["once"]
        assert system.reliable.stats().duplicates_suppressed == 1


async def test_ordered_messages_are_handled_in_send_order_despite_a_lost_first_copy(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    handled: list[Any] = []
    async with sa.open_system(faults=sa.FaultPlan([])) as system:
        lose_first_transmission(system, monkeypatch, lambda message: message == 0)
        await system.spawn(Ledger, handled, name="ledger")
        ids = [await system.reliable.send("ledger", n, ordered=True) for n in range(3)]
        for mid in ids:
            await system.reliable.delivered(mid)
        assert handled == [0, 1, 2]


async def test_a_crash_of_the_reliable_service_loses_no_pending_message(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    due = Retries._due
    crashed: list[bool] = []

    def crash_once(self: Retries, pending: Any, entry: Any) -> None:
        if not crashed:
            crashed.append(True)
            raise RuntimeError("reliable service failure")
        due(self, pending, entry)

    monkeypatch.setattr(Retries, "_due", crash_once)
    handled: list[Any] = []
    async with sa.open_system() as system:
        await system.spawn(Ledger, handled, {"a", "b"}, name="ledger")
        first = await system.reliable.send("ledger", "a", timeout=1.0)
        second = await system.reliable.send("ledger", "b", timeout=1.0)
        assert (await system.reliable.delivered(first)).attempts >= 2
        assert (await system.reliable.delivered(second)).attempts >= 2
        service = system.services.child("reliable")
        assert service.restarts == 1
        assert sorted(handled) == ["a", "b"]


async def test_options_are_validated(autojump_clock: trio.testing.MockClock) -> None:
    async with sa.open_system() as system:
        await system.spawn(Ledger, [], name="ledger")
        with pytest.raises(ValueError, match="max_retries"):
            await system.reliable.send("ledger", "x", max_retries=-1)
        with pytest.raises(ValueError, match="timeout"):
            await system.reliable.send("ledger", "x", timeout=0)
        with pytest.raises(sa.ActorNotFound):
            await system.reliable.send("nobody", "x")
        with pytest.raises(KeyError, match="no reliable message has the id 999"):
            await system.reliable.delivered(999)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, 15),
    drop=st.sampled_from([0.0, 0.2, 0.5, 0.9]),
    duplicate=st.sampled_from([0.0, 0.3]),
    crashes=st.sets(st.integers(0, 14), max_size=4),
    ordered=st.booleans(),
    seconds=st.sampled_from([0.0, 0.3, 2.0]),
)
def test_every_message_is_handled_exactly_once_or_reported_failed_never_both(
    seed: int,
    count: int,
    drop: float,
    duplicate: float,
    crashes: set[int],
    ordered: bool,
    seconds: float,
) -> None:
    network = sa.FaultPlan(
        [sa.DropMessages(probability=drop), sa.DuplicateMessages(probability=duplicate)]
    )

    async def main() -> tuple[list[Any], dict[int, bool]]:
        handled: list[Any] = []
        outcome: dict[int, bool] = {}
        with trio.fail_after(100_000):  # virtual seconds: a stuck retry loop fails, not hangs
            await _run_traffic(handled, outcome)
        return handled, outcome

    async def _run_traffic(handled: list[Any], outcome: dict[int, bool]) -> None:
        if True:
            async with sa.open_system(seed=seed, max_restarts=100, faults=network) as system:
                await system.spawn(Ledger, handled, set(crashes), seconds, name="ledger")
                ids = [
                    await system.reliable.send(
                        "ledger", n, max_retries=4, timeout=0.5, ordered=ordered
                    )
                    for n in range(count)
                ]
                for n, mid in enumerate(ids):
                    try:
                        await system.reliable.delivered(mid)
                        outcome[n] = True
                    except sa.DeliveryFailed:
                        outcome[n] = False
                await trio.sleep(500)  # stale copies still in flight must not be handled

    handled, outcome = run_virtual(main)
    for n in range(count):
        times = handled.count(n)
        assert times == (1 if outcome[n] else 0), f"message {n}: handled {times}x, {outcome[n]=}"
    if ordered:
        assert handled == sorted(handled)


# --- ordered streams never stall ----------------------------------------------------------


class Picky(sa.Actor):
    """Sleeps on "slow", always crashes on "poison", crashes once on names in `once`."""

    def __init__(self, handled: list[Any], once: set[str] | None = None) -> None:
        self.handled = handled
        self.once = once if once is not None else set()

    async def handle(self, message: object) -> object:
        if message == "slow":
            await trio.sleep(5)
        if message == "poison":
            raise RuntimeError("poison")
        if message in self.once:
            self.once.discard(message)  # type: ignore[arg-type]
            raise RuntimeError(f"crash on {message!r}")
        self.handled.append(message)
        return None


async def outcome_of(system: sa.ActorSystem, mid: int) -> str:
    try:
        await system.reliable.delivered(mid)
    except sa.DeliveryFailed:
        return "failed"
    return "delivered"


async def test_a_message_failing_behind_a_slow_one_does_not_stall_its_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system(max_restarts=100) as system:
        await system.spawn(Picky, handled, name="s")
        send = system.reliable.send
        a = await send("s", "slow", ordered=True, timeout=10)
        b = await send("s", "b", ordered=True, max_retries=0)
        c = await send("s", "c", ordered=True)
        assert [await outcome_of(system, m) for m in (a, b, c)] == [
            "delivered",
            "failed",
            "delivered",
        ]
        d = await send("s", "d", ordered=True)
        assert await outcome_of(system, d) == "delivered"
        assert handled == ["slow", "c", "d"]


async def test_messages_held_behind_a_failed_first_one_are_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system(max_restarts=100) as system:
        await system.spawn(Picky, handled, name="s")
        ids = [
            await system.reliable.send("s", m, ordered=True, max_retries=1, jitter=0.0)
            for m in ("poison", "b", "c")
        ]
        assert [await outcome_of(system, m) for m in ids] == ["failed", "delivered", "delivered"]
        assert handled == ["b", "c"]


async def test_a_send_cancelled_before_it_went_out_leaves_nothing_pending(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Picky, handled, name="s", mailbox_size=1)
        ref.pause()
        await trio.sleep(0.1)
        first = await system.reliable.send("s", "first", ordered=True)  # fills the mailbox
        with trio.move_on_after(1):
            await system.reliable.send("s", "cancelled", ordered=True)
        assert system.reliable.pending_count() == 1
        ref.resume()
        later = await system.reliable.send("s", "later", ordered=True)
        assert await outcome_of(system, first) == "delivered"
        assert await outcome_of(system, later) == "delivered"
        assert handled == ["first", "later"]


async def test_the_crash_dead_letter_names_the_message_that_crashed(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with sa.open_system(faults=sa.FaultPlan([])) as system:
        lose_first_transmission(system, monkeypatch, lambda message: message == "a")
        await system.spawn(Picky, [], {"a", "b"}, name="s")
        ids = [await system.reliable.send("s", m, ordered=True, jitter=0.0) for m in "ab"]
        for mid in ids:
            await system.reliable.delivered(mid)
        crashes = [
            d for d in system.dead_letters.recent() if d.reason.value == "crashed_while_handling"
        ]
        assert [(d.message, d.detail) for d in crashes] == [
            ("a", repr(RuntimeError("crash on 'a'"))),
            ("b", repr(RuntimeError("crash on 'b'"))),
        ]


async def test_a_reliable_send_by_ref_to_a_stopped_actor_raises_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Picky, [], name="s")
        await ref.stop()
        with pytest.raises(sa.ActorUnavailable):
            await system.reliable.send(ref, "x")
        assert system.reliable.pending_count() == 0
        await system.spawn(Picky, [], name="t")
        with pytest.raises(ValueError, match="max_delay"):
            await system.reliable.send("t", "x", timeout=2, max_delay=1)
