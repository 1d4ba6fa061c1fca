"""Exactly-once processing at any load, and outcomes that are never lost or ambiguous.

The two inputs of issue 12 and more of the same kinds:
- a duplicate that arrives after thousands of other messages (a copy a fault delays, or a retry
  queued behind a long mailbox) is never handled a second time, whatever the sends' ordering,
  however many senders, and across restarts of the receiver;
- `delivered(id)` tells a receipt or `DeliveryFailed` for every id `send` returned, however
  many other messages finished meanwhile; an id never issued raises `UnknownMessage`.
"""

from __future__ import annotations

import collections
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import spaceactors as sa
import spaceactors.outcomes


@attrs.frozen
class First:
    """The message under test (fault rules pick it out by its type's name)."""

    tag: str = "first"


@attrs.frozen
class Nap:
    """Keeps the receiver busy for `seconds`, so that what is sent meanwhile queues up."""

    seconds: float


@attrs.frozen
class Boom:
    """Crashes the receiver once (it is restarted, its mailbox kept)."""

    tag: str


class Recorder(sa.Actor):
    """Counts each message it processes in a shared counter (which outlives its crashes)."""

    def __init__(self, processed: collections.Counter[Any], exploded: set[str]) -> None:
        self.processed = processed
        self.exploded = exploded

    async def handle(self, message: object) -> object:
        if isinstance(message, Nap):
            await trio.sleep(message.seconds)
            return None
        if isinstance(message, Boom) and message.tag not in self.exploded:
            self.exploded.add(message.tag)
            raise RuntimeError(f"boom {message.tag}")
        self.processed[message] += 1
        return None


class Source(sa.Actor):
    """A sender of reliable messages; handles nothing itself."""

    async def handle(self, message: object) -> object:
        return None


def once_each(processed: collections.Counter[Any], messages: list[Any]) -> dict[Any, int]:
    """The messages (of `messages`) not processed exactly once, with their counts."""
    return {message: processed[message] for message in messages if processed[message] != 1}


# --- the first input ------------------------------------------------------------------


def duplicate_first_late(seconds: float = 10.0) -> sa.FaultPlan:
    """Every transmission of `First` gets a second copy, held back `seconds`."""
    first = sa.Scope(message_types="First")
    return sa.FaultPlan(
        [
            sa.DuplicateMessages(probability=1.0, scope=first),
            sa.DelayMessages(minimum=seconds, maximum=seconds, scope=first),
        ]
    )


async def test_a_duplicate_delayed_10_s_past_5000_other_messages_is_handled_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    processed: collections.Counter[Any] = collections.Counter()
    async with sa.open_system(seed=1, faults=duplicate_first_late(10.0)) as system:
        ref = await system.spawn(Recorder, processed, set(), name="ledger", mailbox_size=8192)
        first = await system.reliable.send(ref, First())
        others = [await system.reliable.send(ref, n) for n in range(5_000)]
        for message_id in others:
            await system.reliable.delivered(message_id)
        await trio.sleep(30.0)  # the delayed copy lands at 10 s
        assert system.faults is not None
        assert system.faults.injected["duplicate"] >= 1
        assert processed[First()] == 1
        assert once_each(processed, list(range(5_000))) == {}
        receipt = await system.reliable.delivered(first)
        assert receipt.message_id == first


LATE_CASES = [  # others, ordered, senders, restart in between
    pytest.param(5_000, False, 3, True, id="5000-unordered-3-senders-restart"),
    pytest.param(5_000, True, 1, False, id="5000-ordered"),
    pytest.param(20_000, False, 1, False, id="20000-unordered"),
    pytest.param(20_000, True, 3, True, id="20000-ordered-3-senders-restart"),
]


@pytest.mark.parametrize(("others", "ordered", "senders", "restart"), LATE_CASES)
async def test_a_late_duplicate_past_many_others_is_handled_once(
    autojump_clock: trio.testing.MockClock, others: int, ordered: bool, senders: int, restart: bool
) -> None:
    """The copy a fault delays lands after `others` messages (from one or several senders,
    ordered or not, the receiver crashing and restarting in between): handled once."""
    processed: collections.Counter[Any] = collections.Counter()
    async with sa.open_system(seed=2, faults=duplicate_first_late(10.0)) as system:
        ref = await system.spawn(Recorder, processed, set(), name="ledger", mailbox_size=4096)
        sources = [await system.spawn(Source, name=f"source-{i}") for i in range(senders)]
        first = await system.reliable.send(ref, First(), sender=sources[0], ordered=ordered)
        ids = []
        for n in range(others):
            if restart and n == others // 2:
                await ref.send(Boom("middle"))
            source = sources[n % senders]
            ids.append(await system.reliable.send(ref, n, sender=source, ordered=ordered))
        await trio.sleep(30.0)
        assert processed[First()] == 1
        assert once_each(processed, list(range(others))) == {}
        assert ref.status().restarts == (1 if restart else 0)
        for message_id in [first, *ids]:
            assert (await system.reliable.delivered(message_id)).message_id == message_id


QUEUED_CASES = [  # others, ordered, senders, restart in between
    pytest.param(5_000, False, 1, False, id="5000-unordered"),
    pytest.param(5_000, False, 3, True, id="5000-unordered-3-senders-restart"),
    pytest.param(5_000, True, 1, True, id="5000-ordered-restart"),
    pytest.param(12_000, True, 3, False, id="12000-ordered-3-senders"),
]


@pytest.mark.parametrize(("others", "ordered", "senders", "restart"), QUEUED_CASES)
async def test_retries_queued_behind_a_long_mailbox_are_handled_once(
    autojump_clock: trio.testing.MockClock, others: int, ordered: bool, senders: int, restart: bool
) -> None:
    """No fault at all: the receiver is busy for 5 s while `First` and `others` messages queue
    up, so every one of them is retried (after 1 s) and its copy waits behind all the others.
    Each is still handled once, and each gets a receipt."""
    processed: collections.Counter[Any] = collections.Counter()
    async with sa.open_system(seed=3) as system:
        size = 2 * others + 64
        ref = await system.spawn(Recorder, processed, set(), name="ledger", mailbox_size=size)
        sources = [await system.spawn(Source, name=f"source-{i}") for i in range(senders)]
        await ref.send(Nap(5.0))
        if restart:
            await ref.send(Boom("before"))
        options: dict[str, Any] = {"max_retries": 10, "ordered": ordered}
        first = await system.reliable.send(ref, First(), sender=sources[0], **options)
        ids = []
        for n in range(others):
            if restart and n == others // 2:
                await ref.send(Boom("middle"))
            source = sources[n % senders]
            ids.append(await system.reliable.send(ref, n, sender=source, **options))
        for message_id in [first, *ids]:
            assert (await system.reliable.delivered(message_id)).message_id == message_id
        await trio.sleep(60.0)  # every copy still queued or on a timer has had its turn
        assert system.reliable.stats().retried >= others  # the copies did go out
        assert processed[First()] == 1
        assert once_each(processed, list(range(others))) == {}
        assert ref.status().restarts == (2 if restart else 0)


# --- the second input -----------------------------------------------------------------


def drop_every_first() -> sa.FaultPlan:
    return sa.FaultPlan([sa.DropMessages(probability=1.0, scope=sa.Scope(message_types="First"))])


async def test_a_message_lost_then_10000_successes_still_reports_delivery_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    processed: collections.Counter[Any] = collections.Counter()
    async with sa.open_system(seed=4, faults=drop_every_first()) as system:
        ref = await system.spawn(Recorder, processed, set(), name="ledger")
        first = await system.reliable.send(ref, First(), max_retries=3, timeout=0.5)
        await trio.sleep(60.0)  # its retries are spent: it failed
        assert system.reliable.stats().failed == 1
        for n in range(10_000):
            await system.reliable.delivered(await system.reliable.send(ref, n))
        with pytest.raises(sa.DeliveryFailed, match=r"reliable message 1 .*'ledger'"):
            await system.reliable.delivered(first)
        with pytest.raises(sa.DeliveryFailed):  # asked again: the same answer
            await system.reliable.delivered(first)
        assert processed[First()] == 0
        assert first == 1


@pytest.mark.parametrize("bad_id", [0, -1, 2, 10**12], ids=["zero", "negative", "next", "huge"])
async def test_an_id_never_issued_is_an_unknown_message(
    autojump_clock: trio.testing.MockClock, bad_id: int
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, collections.Counter(), set(), name="ledger")
        issued = await system.reliable.send(ref, "hello")
        assert issued == 1
        await system.reliable.delivered(issued)
        with pytest.raises(sa.UnknownMessage, match=str(bad_id)) as caught:
            await system.reliable.delivered(bad_id)
        assert isinstance(caught.value, KeyError)  # as documented: a KeyError subclass
        assert not isinstance(caught.value, sa.DeliveryFailed | sa.OutcomeForgotten)


@pytest.mark.parametrize("bad_id", ["1", 1.0, True, None])
async def test_an_id_that_is_not_an_int_is_a_value_error(
    autojump_clock: trio.testing.MockClock, bad_id: Any
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, collections.Counter(), set(), name="ledger")
        await system.reliable.send(ref, "hello")
        with pytest.raises(ValueError, match="reliable message id"):
            await system.reliable.delivered(bad_id)


async def test_every_success_gives_a_receipt_long_after_detail_is_dropped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """More successes than `KEEP_RECEIPTS`, all asked at the end: every one gives its receipt;
    the newest `KEEP_RECEIPTS` with attempts and latency, the older ones without."""
    keep = sa.KEEP_RECEIPTS
    count = keep + 3_000
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, collections.Counter(), set(), name="ledger")
        ids = [await system.reliable.send(ref, n) for n in range(count)]
        await trio.sleep(10.0)
        assert system.reliable.stats().acknowledged == count
        receipts = [await system.reliable.delivered(message_id) for message_id in ids]
    assert [receipt.message_id for receipt in receipts] == ids
    assert all(r.attempts == 1 and r.latency is not None for r in receipts[-keep:])
    assert all(r.attempts is None and r.latency is None for r in receipts[: count - keep])


async def test_failures_among_many_successes_are_each_reported_long_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """200 failures scattered through 20,000 successes, from three senders to two actors, the
    receivers restarting in between; asked only at the end (and again): every failure raises
    `DeliveryFailed` and was never processed, every success gives its receipt."""
    processed: collections.Counter[Any] = collections.Counter()
    exploded: set[str] = set()
    async with sa.open_system(seed=5, faults=drop_every_first(), max_restarts=100) as system:
        refs = [
            await system.spawn(Recorder, processed, exploded, name=f"ledger-{i}") for i in (0, 1)
        ]
        sources = [await system.spawn(Source, name=f"source-{i}") for i in range(3)]
        failing, succeeding = [], []
        for n in range(20_200):
            ref, source = refs[n % 2], sources[n % 3]
            if n % 101 == 50:
                first = First(f"lost-{n}")
                failing.append(await system.reliable.send(ref, first, sender=source, timeout=0.5))
            else:
                succeeding.append(await system.reliable.send(ref, n, sender=source))
            if n % 5_000 == 4_999:
                await ref.send(Boom(f"at-{n}"))
                await trio.sleep(3.0)
        await trio.sleep(60.0)
        assert len(failing) == 200
        for _ in range(2):
            for message_id in failing:
                with pytest.raises(sa.DeliveryFailed):
                    await system.reliable.delivered(message_id)
            for message_id in succeeding:
                assert (await system.reliable.delivered(message_id)).message_id == message_id
        stats = system.reliable.stats()
        assert (stats.failed, stats.acknowledged, stats.pending) == (200, 20_000, 0)
        assert stats.failures_forgotten == 0
        assert not any(isinstance(message, First) for message in processed)
        assert sum(ref.status().restarts for ref in refs) == 4


async def test_failures_past_the_cap_are_forgotten_counted_and_said_so(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`KEEP_FAILURES` + 5 failures: the oldest 5 are forgotten, counted, and `delivered`
    says so with `OutcomeForgotten` (never a success, never 'unknown'); the rest still fail."""
    keep = 2_000  # caps smaller than `sa.KEEP_FAILURES` and `sa.KEEP_RECEIPTS`, for time
    monkeypatch.setattr(spaceactors.outcomes, "KEEP_FAILURES", keep)
    monkeypatch.setattr(spaceactors.outcomes, "KEEP_RECEIPTS", 1024)  # (ids 1-5 leave it)
    async with sa.open_system(faults=drop_every_first()) as system:
        ref = await system.spawn(Recorder, collections.Counter(), set(), name="ledger")
        ids = [
            await system.reliable.send(
                ref, First(f"lost-{n}"), max_retries=0, timeout=0.5, jitter=0.0
            )
            for n in range(keep + 5)
        ]
        await trio.sleep(10.0)
        assert system.reliable.stats().failures_forgotten == 5
        for message_id in ids[:5]:
            with pytest.raises(sa.OutcomeForgotten, match=str(message_id)):
                await system.reliable.delivered(message_id)
        for message_id in ids[5:]:
            with pytest.raises(sa.DeliveryFailed):
                await system.reliable.delivered(message_id)
