"""Scheduled delivery: messages due at a later time, served by one task for the whole system.

Actor timers (`ActorContext.after`, `ActorContext.every`) and `Router.send_later` all land in
one `DeliverySchedule`: a heap ordered by (deadline, sequence), so messages due at the same
instant are delivered in the order they were scheduled, run after run. The schedule is a plain
state object; the task that serves it (`serve`) can crash and restart around it without losing
an entry.

A periodic entry whose receiver cannot keep up (its mailbox is full when the next tick is due
and the previous tick is still waiting for room) skips that tick instead of queueing it, so a
paused actor's timers never pile up.

A delivery that finds the mailbox full waits for room in a task of its own, and `cancel()`
reaches it there: a cancelled entry is never delivered after its `cancel()` returns (what is
already in the mailbox stays, except an actor timer's `Tick`, which is dropped unhandled). The
fast path (room at once) does no extra work.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
from collections.abc import Callable

import attrs
import trio

from spaceactors.checks import describe
from spaceactors.counters import peek
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.errors import ActorUnavailable, MailboxFull
from spaceactors.ref import ActorRef

logger = logging.getLogger("spaceactors.delivery")
_COMPACT_FROM = 1024  # a heap smaller than this is never swept


@attrs.define(eq=False)
class Scheduled:
    """One scheduled message; `cancel` it to stop it (a message already sent stays sent)."""

    deadline: float
    ref: ActorRef | None  # None only for an `on_due` entry
    message: object
    interval: float | None = None
    report: Callable[[Scheduled, bool], None] | None = None  # told (entry, delivered) once
    on_due: Callable[[Scheduled], None] | None = None  # called instead of a delivery
    cancelled: bool = False
    fired: bool = False
    waiting_for_room: bool = False
    _waiting: trio.CancelScope | None = None  # the wait for room, while there is one

    def cancel(self) -> None:
        """Stop this entry: no further delivery, not even one already waiting for room.

        A message already in the mailbox stays there (an actor timer's `Tick` is then dropped
        when it comes up: see `Tick`).
        """
        self.cancelled = True
        if self._waiting is not None:
            self._waiting.cancel()

    @property
    def active(self) -> bool:
        """True while a delivery is still to come."""
        return not self.cancelled and not (self.fired and self.interval is None)


class Tick:
    """An actor timer's message in its mailbox: handled only while its timer is active.

    The actor loop hands `message` to `handle` unless `entry` was cancelled meanwhile (by
    `Timer.cancel`, or because the incarnation that set the timer ended) or `owner` (the
    incarnation that set it) is not the one running: a timer belongs to one incarnation, and a
    restarted actor never handles its predecessor's ticks.
    """

    __slots__ = ("entry", "message", "owner")

    def __init__(self, entry: Scheduled, message: object, owner: object) -> None:
        self.entry = entry
        self.message = message
        self.owner = owner


@attrs.define
class DeliverySchedule:
    """The heap of scheduled deliveries, with counts of what happened to them."""

    _heap: list[tuple[float, int, Scheduled]] = attrs.field(factory=list)
    _sequence: itertools.count[int] = attrs.field(factory=itertools.count)
    _compact_at: int = _COMPACT_FROM  # heap size at which called-off entries are swept out
    _wakeup: trio.Event | None = None
    delivered: int = 0
    skipped_ticks: int = 0

    def add(
        self,
        ref: ActorRef,
        delay: float,
        message: object,
        interval: float | None = None,
        *,
        report: Callable[[Scheduled, bool], None] | None = None,
    ) -> Scheduled:
        """Deliver `message` to `ref` after `delay` seconds (then every `interval`, if given).

        `report(entry, delivered)` is told how a one-shot entry ended: in the mailbox, or not
        (the actor stopped; a dead letter was recorded).
        """
        entry = Scheduled(trio.current_time() + delay, ref, message, interval, report)
        self._push(entry)
        return entry

    def add_timer(
        self,
        ref: ActorRef,
        delay: float,
        message: object,
        interval: float | None,
        owner: object,
    ) -> Scheduled:
        """Like `add`, for a timer that incarnation `owner` of `ref` sets for itself: each
        delivery is a `Tick` of the entry."""
        entry = Scheduled(trio.current_time() + delay, ref, None, interval)
        entry.message = Tick(entry, message, owner)
        self._push(entry)
        return entry

    def abandon(self) -> list[Scheduled]:
        """Empty the schedule for good (its system has closed): the messages it still held for
        an actor, in the order they were due. Timer ticks and `call_at` entries are dropped:
        they die with their actor or their service."""
        left = sorted(self._heap, key=lambda item: item[:2])
        self._heap.clear()
        return [
            entry
            for _, _, entry in left
            if entry.active and entry.ref is not None and type(entry.message) is not Tick
        ]

    def call_at(self, deadline: float, on_due: Callable[[Scheduled], None]) -> Scheduled:
        """Call `on_due(entry)` at `deadline` instead of delivering (retry timers use this)."""
        entry = Scheduled(deadline, None, None, on_due=on_due)
        self._push(entry)
        return entry

    def bring_forward(self, entry: Scheduled, deadline: float) -> None:
        """Make `entry` due at `deadline` instead (earlier): the same entry, so whoever holds
        it can still `cancel()` it."""
        entry.deadline = deadline
        self._push(entry)  # its old place in the heap is skipped once it has gone out

    @property
    def next_sequence(self) -> int:
        """The sequence number the next entry gets (reading it takes none)."""
        value, self._sequence = peek(self._sequence)
        return value

    def restore(self, items: list[tuple[float, int, Scheduled]], next_sequence: int) -> None:
        """Put back entries a checkpoint holds, with their (deadline, sequence) keys."""
        self._heap = list(items)
        heapq.heapify(self._heap)
        self._sequence = itertools.count(next_sequence)
        self._compact_at = max(_COMPACT_FROM, 2 * len(self._heap))
        if self._wakeup is not None:
            self._wakeup.set()

    def entries(self) -> list[tuple[float, int, Scheduled]]:
        """The entries still to come, in the order they fall due (each once: an entry brought
        forward keeps only its place at its current deadline)."""
        seen: set[int] = set()
        kept = []
        for item in sorted(self._heap, key=lambda i: i[:2]):
            entry = item[2]
            if entry.active and item[0] == entry.deadline and id(entry) not in seen:
                seen.add(id(entry))
                kept.append(item)
        return kept

    def pending(self) -> int:
        """Entries not yet due (called-off ones included until their time comes or a sweep)."""
        return len(self._heap)

    def _push(self, entry: Scheduled) -> None:
        heapq.heappush(self._heap, (entry.deadline, next(self._sequence), entry))
        if len(self._heap) >= self._compact_at:
            self._compact()
        if self._wakeup is not None and entry.deadline <= self._heap[0][0]:
            self._wakeup.set()

    def _compact(self) -> None:
        """Sweep out entries that will never go out (called off, or already sent), so that the
        heap holds what is to come, not everything ever scheduled within the longest delay
        (a reliable message's delayed copies are called off once it is acknowledged). The
        sweep costs one pass, and comes once the heap has doubled since the last one: O(1) per
        entry. Order is kept: the same (deadline, sequence) keys, heapified."""
        self._heap = [item for item in self._heap if item[2].active]
        heapq.heapify(self._heap)
        self._compact_at = max(_COMPACT_FROM, 2 * len(self._heap))

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Deliver entries as they fall due, forever (run as a supervised service)."""
        async with trio.open_nursery() as waiting_for_room:
            task_status.started()
            while True:
                now = trio.current_time()
                while self._heap and self._heap[0][0] <= now:
                    _, _, entry = heapq.heappop(self._heap)
                    if not entry.active:  # cancelled, or a one-shot brought forward and sent
                        continue
                    if entry.on_due is not None:
                        entry.fired = True
                        entry.on_due(entry)
                        continue
                    try:
                        self._deliver(entry, waiting_for_room)
                    except Exception as exc:  # one bad entry never takes the service down
                        self._failed(entry, exc)
                        continue
                    if entry.interval is not None and not entry.cancelled:
                        entry.deadline += entry.interval
                        self._push(entry)
                self._wakeup = trio.Event()
                with trio.move_on_at(self._heap[0][0] if self._heap else math.inf):
                    await self._wakeup.wait()
                self._wakeup = None

    def _deliver(self, entry: Scheduled, waiting_for_room: trio.Nursery) -> None:
        if entry.waiting_for_room:  # a tick due while the last one still waits (or a
            if entry.interval is not None:  # one-shot brought forward, due at its old time)
                self.skipped_ticks += 1
            return
        assert entry.ref is not None
        try:
            entry.ref.try_send(entry.message)
        except MailboxFull:
            entry.waiting_for_room = True
            waiting_for_room.start_soon(self._deliver_when_room, entry)
            return
        except ActorUnavailable:
            entry.cancelled = True  # a dead letter was recorded by the ref
            self._report(entry, delivered=False)
            return
        entry.fired = True
        self.delivered += 1
        self._report(entry, delivered=True)

    async def _deliver_when_room(self, entry: Scheduled) -> None:
        sent = False
        assert entry.ref is not None
        try:
            with trio.CancelScope() as entry._waiting:
                if entry.cancelled:  # cancelled since it was found full: nothing to wait for
                    return
                await entry.ref.send(entry.message)
                sent = entry.fired = True
            if sent:  # (a cancel that came too late to stop the send leaves it sent)
                self.delivered += 1
                self._report(entry, delivered=True)
        except ActorUnavailable:
            entry.cancelled = True
            self._report(entry, delivered=False)
        except Exception as exc:  # one bad entry never takes the service down
            self._failed(entry, exc)
        finally:
            entry._waiting = None
            entry.waiting_for_room = False
            if not sent and not entry.cancelled and entry.interval is None:
                # The service is stopping (or crashed) before there was room: keep the
                # one-shot entry for the next incarnation instead of losing it.
                entry.deadline = trio.current_time()
                self._push(entry)

    def _failed(self, entry: Scheduled, exc: Exception) -> None:
        """An entry whose delivery raised unexpectedly: called off, and a dead letter."""
        entry.cancelled = True
        logger.warning("scheduled delivery of %r failed", entry, exc_info=exc)
        if entry.ref is None:
            return
        message = entry.message.message if isinstance(entry.message, Tick) else entry.message
        entry.ref._cell.system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                entry.ref.name,
                message,
                DeadLetterReason.SERVICE_FAILED,
                f"scheduled delivery failed: {describe(exc)}",
            )
        )
        self._report(entry, delivered=False)

    @staticmethod
    def _report(entry: Scheduled, *, delivered: bool) -> None:
        if entry.report is not None:
            entry.report(entry, delivered)
