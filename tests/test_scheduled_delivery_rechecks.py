"""Every scheduled delivery re-checks after each wait: one called off while it waits for room in a
full mailbox never arrives, and an actor timer never outlives the incarnation that set it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import spaceactors as sa


@attrs.frozen
class Late:
    """The scheduled message under test (its own class, so fault rules can aim at it)."""


LATE = Late()


class Recorder(sa.Actor):
    """Logs what it handles in a list shared across incarnations; "block" waits for `gate`.

    "arm-after" / "arm-every" set a timer for `LATE` and leave it in `timers`; "crash" raises.
    """

    def __init__(self, gate: trio.Event, log: list[Any], timers: dict[str, sa.Timer]) -> None:
        self.gate, self.log, self.timers = gate, log, timers

    async def handle(self, message: object) -> object:
        self.log.append(message)
        if message == "block":
            await self.gate.wait()
        elif message == "arm-after":
            self.timers["timer"] = self.ctx.after(1.0, LATE)
        elif message == "arm-every":
            self.timers["timer"] = self.ctx.every(1.0, LATE)
        elif message == "crash":
            raise RuntimeError("crash on request")
        return None


async def full_mailbox(system: sa.ActorSystem, *first: str) -> tuple[sa.ActorRef, Any]:
    """Spawn "a" (mailbox of 1), hand it `first` then "block", and fill its mailbox."""
    gate, log, timers = trio.Event(), [], {}
    ref = await system.spawn(Recorder, gate, log, timers, name="a", mailbox_size=1)
    for message in (*first, "block"):
        await ref.send(message)
        await trio.sleep(0.01)  # handled (or being handled)
    await ref.send("filler")
    assert ref.mailbox_depth == 1
    return ref, (gate, log, timers)


Scheduler = Callable[[sa.ActorSystem, Any, trio.Nursery], Awaitable[Callable[[], None]]]


async def by_send_later(system: sa.ActorSystem, _: Any, __: trio.Nursery) -> Callable[[], None]:
    return system.router.send_later(1.0, "a", LATE).cancel


async def by_timer(system: sa.ActorSystem, shared: Any, __: trio.Nursery) -> Callable[[], None]:
    return shared[2]["timer"].cancel  # type: ignore[no-any-return]


async def by_cancelled_send(
    system: sa.ActorSystem, _: Any, nursery: trio.Nursery
) -> Callable[[], None]:
    """A send whose fault-delayed copy waits for room; then the send itself is cancelled."""
    scope = trio.CancelScope()

    async def send() -> None:
        with scope:
            await system.router.route("a", LATE)

    nursery.start_soon(send)
    return scope.cancel


async def by_cancelled_reliable_send(
    system: sa.ActorSystem, _: Any, nursery: trio.Nursery
) -> Callable[[], None]:
    scope = trio.CancelScope()

    async def send() -> None:
        with scope:
            await system.reliable.send("a", LATE, timeout=20.0)

    nursery.start_soon(send)
    return scope.cancel


DELAYED_COPY = sa.FaultPlan(
    [
        sa.DuplicateMessages(scope=sa.Scope(message_types=["Late"])),
        sa.DelayMessages(minimum=1.0, maximum=1.0, scope=sa.Scope(message_types=["Late"])),
    ]
)

REORDERED_COPY = sa.FaultPlan(
    [
        sa.DuplicateMessages(scope=sa.Scope(message_types=["Late"])),
        sa.ReorderMessages(max_hold=5.0, scope=sa.Scope(message_types=["Late"])),
    ]
)  # the held copy is released at once to follow its twin, and waits for room with it

KINDS: dict[str, tuple[Scheduler, tuple[str, ...], sa.FaultPlan | None]] = {
    "send_later": (by_send_later, (), None),
    "after": (by_timer, ("arm-after",), None),
    "every": (by_timer, ("arm-every",), None),
    "fault-delayed copy of a send": (by_cancelled_send, (), DELAYED_COPY),
    "fault-delayed copy of a reliable send": (by_cancelled_reliable_send, (), DELAYED_COPY),
    "fault-reordered copy of a send": (by_cancelled_send, (), REORDERED_COPY),
}


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_delivery_cancelled_while_waiting_for_room_never_arrives(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    schedule, first, faults = KINDS[kind]
    async with sa.open_system(faults=faults) as system, trio.open_nursery() as nursery:
        ref, shared = await full_mailbox(system, *first)
        gate, log, _ = shared
        cancel = await schedule(system, shared, nursery)
        await trio.sleep(2.0)  # due at 1 s: waiting for room since then
        cancel()
        await trio.sleep(0.01)  # a cancelled send ends (and calls off its copies) at its turn
        gate.set()
        await trio.sleep(3.0)
        assert log == [*first, "block", "filler"]
        assert ref.mailbox_depth == 0


async def test_the_issue_input_send_later_cancelled_while_waiting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        _, (gate, log, _) = await full_mailbox(system)
        entry = system.router.send_later(1.0, "a", "late")
        await trio.sleep(2.0)
        entry.cancel()
        gate.set()
        await trio.sleep(1.0)
        assert log == ["block", "filler"]
        assert not entry.active
        assert system.router.stats().by_type.get("str", 0) == 0  # nothing was delivered


async def test_a_cancel_that_comes_after_the_delivery_leaves_it_delivered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        _, (gate, log, _) = await full_mailbox(system)
        entry = system.router.send_later(1.0, "a", "late")
        await trio.sleep(2.0)
        gate.set()  # room: the waiting delivery goes in
        await trio.sleep(1.0)
        entry.cancel()
        assert log == ["block", "filler", "late"]
        assert system.router.stats().by_type["str"] == 1


@pytest.mark.parametrize("kind", ["send_later", "after", "every", "fault-delayed copy"])
async def test_a_delivery_waiting_for_room_when_its_target_stops_is_a_dead_letter(
    autojump_clock: trio.testing.MockClock, kind: str
) -> None:
    first = {"after": ("arm-after",), "every": ("arm-every",)}.get(kind, ())
    faults = (
        sa.FaultPlan([sa.DelayMessages(minimum=1, maximum=1, scope=sa.Scope(["Late"]))])
        if kind == "fault-delayed copy"
        else None
    )
    async with sa.open_system(faults=faults) as system, trio.open_nursery() as nursery:
        ref, (gate, log, _) = await full_mailbox(system, *first)
        if kind == "send_later":
            system.router.send_later(1.0, "a", LATE)
        elif kind == "fault-delayed copy":
            await system.router.route("a", LATE)  # held back, so the send returns at once
        await trio.sleep(2.0)
        nursery.start_soon(ref.stop)
        await trio.sleep(0.01)
        gate.set()
        await trio.sleep(3.0)
        assert not ref.alive
        assert log == [*first, "block"]
        letters = [letter for letter in system.dead_letters.recent() if letter.message == LATE]
        if kind in ("after", "every"):
            assert letters == []  # a timer dies with its actor: no send was lost
        else:
            assert [letter.reason for letter in letters] == [sa.DeadLetterReason.ACTOR_STOPPED]
        with pytest.raises(sa.ActorUnavailable):
            await ref.send("more")


class Ticker(sa.Actor):
    """Ticks every second, each tick naming the incarnation that set the timer."""

    def __init__(self, gate: trio.Event, log: list[Any]) -> None:
        self.gate, self.log = gate, log

    async def on_start(self) -> None:
        self.ctx.every(1.0, ("tick", self.ctx.restarts))

    async def handle(self, message: object) -> object:
        self.log.append((self.ctx.restarts, message))
        if message == "block-then-crash":
            await self.gate.wait()
            raise RuntimeError("crash with old ticks queued")
        return None


async def test_a_restarted_actor_never_handles_its_predecessors_timer_ticks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        gate, log = trio.Event(), []
        ref = await system.spawn(Ticker, gate, log, mailbox_size=1)
        await ref.send("block-then-crash")
        # t=1: a tick of incarnation 0 takes the only slot; t=2: the next one waits for room.
        await trio.sleep(2.5)
        assert ref.mailbox_depth == 1
        gate.set()  # crash: the restart sets a new timer at t=2.5 (ticks at 3.5, 4.5)
        await trio.sleep(2.4)
        assert ref.status().restarts == 1
        assert log == [(0, "block-then-crash"), (1, ("tick", 1)), (1, ("tick", 1))]


async def test_a_timer_set_by_a_crashed_incarnation_stops_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        gate, log, timers = trio.Event(), [], {}
        ref = await system.spawn(Recorder, gate, log, timers, mailbox_size=4)
        await ref.send("arm-every")
        await trio.sleep(1.5)
        await ref.send("crash")
        await trio.sleep(5.0)
        assert log == ["arm-every", LATE, "crash"]
        assert timers["timer"].cancelled


async def test_a_cancelled_timer_tick_already_in_the_mailbox_is_not_handled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        gate, log, timers = trio.Event(), [], {}
        ref = await system.spawn(Recorder, gate, log, timers, mailbox_size=2)
        await ref.send("arm-after")
        await ref.send("block")
        await trio.sleep(1.5)  # the tick went into the mailbox at 1 s
        assert ref.mailbox_depth == 1
        timers["timer"].cancel()
        gate.set()
        await trio.sleep(1.0)
        assert log == ["arm-after", "block"]


class SlowReliable(sa.Actor):
    """Handles `Late` until `gate` opens; logs everything."""

    def __init__(self, gate: trio.Event, log: list[Any]) -> None:
        self.gate, self.log = gate, log

    async def handle(self, message: object) -> object:
        self.log.append(message)
        if message == LATE:
            await self.gate.wait()
        return None


async def test_a_reliable_copy_waiting_for_room_is_called_off_once_the_message_is_acknowledged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(faults=DELAYED_COPY) as system:
        gate, log = trio.Event(), []
        ref = await system.spawn(SlowReliable, gate, log, name="a", mailbox_size=1)
        message_id = await system.reliable.send(ref, LATE, timeout=20.0)
        await trio.sleep(0.5)  # being handled
        await ref.send("filler")
        await trio.sleep(1.0)  # the delayed copy is due, and waits for room
        gate.set()  # acknowledged: the waiting copy is moot
        receipt = await system.reliable.delivered(message_id)
        await trio.sleep(1.0)
        assert receipt.attempts == 1
        assert log == [LATE, "filler"]
        assert ref.mailbox_depth == 0
        assert system.reliable.stats().duplicates_suppressed == 0


class SetsTimersWhenStopping(sa.Actor):
    def __init__(self, refused: list[str], kept: list[sa.ActorContext]) -> None:
        self.refused = refused
        self.kept = kept

    async def on_start(self) -> None:
        self.kept.append(self.ctx)

    async def handle(self, message: object) -> object:
        if message == "crash":
            raise RuntimeError("boom")
        if message == "old":  # a context kept from the first incarnation
            try:
                self.kept[0].every(1.0, "tick")
            except sa.ActorUnavailable as error:
                self.refused.append(f"old: {error}")
        return None

    async def on_stop(self) -> None:
        try:
            self.ctx.after(1.0, "tick")
        except sa.ActorUnavailable as error:
            self.refused.append(f"on_stop: {error}")


async def test_a_timer_from_an_incarnation_whose_loop_is_over_is_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    refused: list[str] = []
    kept: list[sa.ActorContext] = []
    async with sa.open_system() as system:
        ref = await system.spawn(SetsTimersWhenStopping, refused, kept, name="a")
        await ref.send("crash")
        await trio.sleep(1.0)
        await ref.ask("old")
        assert len(kept) == 2  # restarted once
        assert [line.split(":")[0] for line in refused] == ["on_stop", "old"]
        assert "they would never fire" in refused[0]
        await trio.sleep(5.0)
        assert system.router.state.schedule.delivered == 0  # no timer was ever scheduled
