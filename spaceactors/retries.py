"""Reliable delivery's retries: first checks, retry timers with backoff, failures.

A send arms no timer of its own: it joins the first-check queue of its retry options
(`RetryOptions`), whose single schedule entry fires when the oldest message could be due. Only
messages still unacknowledged then get a retry timer, with their jitter drawn. A retry that
falls due for a message its receiver has handled (the acknowledgement still in the receiver's
batch) acknowledges it instead; one for a message being handled, or held by its ordered stream,
is put off. After `max_retries` retries the message fails: a dead letter, `DeliveryFailed`,
and its number settled unhandled at the receiver.

`ReliableState` (the pending table, the outcome book, the schedule and the counters) belongs to
the system, so that the ``reliable`` service can crash and restart around it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs
import trio

from spaceactors import outcomes
from spaceactors.checks import fraction, seconds
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.delivery import DeliverySchedule, Scheduled
from spaceactors.errors import (
    ActorUnavailable,
    DeliveryFailed,
    MailboxFull,
    SpaceActorsError,
    UnknownMessage,
)
from spaceactors.outcomes import OutcomeBook
from spaceactors.policy import Backoff
from spaceactors.receiver import Extra, MessageId, Reliably
from spaceactors.trace import EventKind

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem


@attrs.define(eq=False)
class RetryOptions:
    """One combination of retry options, validated once, and the messages sent with it that
    await their first timeout check, in send order, with one timer for the lot."""

    key: tuple[object, ...]
    backoff: Backoff
    max_retries: int
    queue: dict[MessageId, Reliably] = attrs.field(factory=dict)
    """Its messages that await their first check, by id, in the order they went out; an
    acknowledgement takes a message out at once, so only what is in flight stays."""
    timer: Scheduled | None = None
    holders: int = 0  # calls using them that have not queued their message yet

    @property
    def earliest(self) -> float:
        """The shortest first delay the backoff can draw."""
        return self.backoff.initial * (1.0 - self.backoff.jitter)


def clock_reader() -> tuple[Callable[[], float], float]:
    """A fast reader of the current Trio clock, and the offset that turns its readings into
    `trio.current_time` values. Trio's default `SystemClock` reads ``offset + perf_counter()``
    (trio/_core/_run.py), so the reader is `time.perf_counter` itself, a C call; any other
    clock (`MockClock`, a user's) is read through its own `current_time`."""
    clock = trio.lowlevel.current_clock()
    kind = type(clock)
    offset = getattr(clock, "offset", None)
    if kind.__name__ == "SystemClock" and kind.__module__.startswith("trio.") and (
        type(offset) is float
    ):
        return time.perf_counter, offset
    return clock.current_time, 0.0


def options_key(
    max_retries: object, timeout: object, max_delay: object, jitter: object
) -> tuple[object, ...]:
    """The cache key of a combination of options, with their types: True equals 1 (and
    Decimal(1) equals 1.0), and a cached 1 must not let True skip validation."""
    options = (max_retries, timeout, max_delay, jitter)
    return options + tuple(type(option) for option in options)


@attrs.define
class ReliableState:
    """The pending table, the outcomes and the counters; owned by the system, so they outlive
    the service."""

    pending: dict[MessageId, Reliably] = attrs.field(factory=dict)
    book: OutcomeBook = attrs.field(factory=OutcomeBook)
    schedule: DeliverySchedule = attrs.field(factory=DeliverySchedule)
    first_checks: dict[tuple[object, ...], RetryOptions] = attrs.field(factory=dict)
    """The options in use, by `options_key`."""
    streams: int = 0  # streams opened so far (their ids)
    withdrawn: int = 0  # sends cancelled before their first transmission
    acknowledged: int = 0
    retried: int = 0
    failed: int = 0
    duplicates: int = 0


class Retries:
    """The retry machinery of `spaceactors.reliable.Reliable`, on the system's state."""

    def __init__(self, system: ActorSystem, state: ReliableState) -> None:
        self._system = system
        self.state = state
        self._rng = system.rng("reliable")
        self.now, self.offset = clock_reader()  # readings + offset = trio time
        self.defaults: RetryOptions | None = None  # the options of a send that passes none

    def rearm(self) -> None:
        """Re-arm every first check and retry timer (the service restarted)."""
        for checks in self.state.first_checks.values():
            if checks.queue and (checks.timer is None or not checks.timer.active):
                self.arm_first_checks(checks)
        for envelope in self.state.pending.values():
            timer = None if envelope.extra is None else envelope.extra.timer
            if timer is not None and not timer.active:
                self._arm(envelope, delay=0.0)

    def options(
        self, max_retries: int, timeout: float, max_delay: float, jitter: float
    ) -> RetryOptions:
        """Validate a new combination of retry options; one queue serves each."""
        key = options_key(max_retries, timeout, max_delay, jitter)
        timeout = seconds("timeout", timeout, zero=False)
        max_delay = seconds("max_delay", max_delay, zero=False)
        if max_delay < timeout:
            raise ValueError(f"max_delay must be >= timeout ({timeout:g}), got {max_delay:g}")
        jitter = fraction("jitter", jitter, one=False)
        backoff = Backoff(initial=timeout, maximum=max_delay, jitter=jitter)
        checks = RetryOptions(key, backoff, max_retries)
        self.state.first_checks[key] = checks
        return checks

    def release(self, checks: RetryOptions) -> None:
        """A call that held `checks` has ended; forget options no message uses any more."""
        checks.holders -= 1
        self._forget_if_unused(checks)

    def _forget_if_unused(self, checks: RetryOptions) -> None:
        if checks.holders > 0 or checks.queue or checks.timer is not None:
            return
        if checks is not self.defaults and self.state.first_checks.get(checks.key) is checks:
            del self.state.first_checks[checks.key]  # a later call remakes them

    def enqueue(self, envelope: Reliably) -> None:
        """`envelope` went out: it awaits its first timeout check."""
        checks: RetryOptions = envelope.checks
        checks.queue[envelope.message_id] = envelope
        if checks.timer is None:
            self.arm_first_checks(checks)

    def transmit(self, envelope: Reliably, held: list[Scheduled] | None = None) -> int:
        """How many copies of a transmission go out now, as the system's tap (trace and fault
        plan) decides; copies it holds back wait on this service's schedule (and in `held`)."""
        tap = self._system.tap
        if tap is None:
            return 1
        stream = envelope.stream
        return tap.transmit(
            stream.ref,
            envelope,
            stream.sender,
            self.state.schedule,
            topic=None if envelope.extra is None else envelope.extra.topic,
            retry=envelope.attempts - 1,
            held=held,
        )

    def arm_first_checks(self, checks: RetryOptions) -> None:
        deadline = next(iter(checks.queue.values())).started + self.offset + checks.earliest
        checks.timer = self.state.schedule.call_at(
            deadline, functools.partial(self._first_check, checks)
        )

    def _first_check(self, checks: RetryOptions, entry: Scheduled) -> None:
        """Give each message old enough to be due its own retry timer, if still unacknowledged."""
        if checks.timer is not entry:
            return
        checks.timer = None
        queue = checks.queue
        now, earliest = self.now(), checks.earliest
        due = []
        for envelope in queue.values():  # in the order they went out
            if envelope.started + earliest > now:
                break
            due.append(envelope)
        for envelope in due:
            if envelope.settled_at is None:
                delay = checks.backoff.delay(0, self._rng)
                self._arm(envelope, delay=envelope.started + delay - now)
            del queue[envelope.message_id]  # (only once it has its timer: a crash loses none)
        if queue:
            self.arm_first_checks(checks)
        else:
            self._forget_if_unused(checks)

    def _arm(self, envelope: Reliably, delay: float | None = None) -> None:
        if delay is None:
            checks: RetryOptions = envelope.checks
            delay = checks.backoff.delay(envelope.attempts - 1, self._rng)
        envelope.more().timer = self.state.schedule.call_at(
            self.now() + self.offset + delay, functools.partial(self._due, envelope)
        )

    def _due(self, envelope: Reliably, entry: Scheduled) -> None:
        if envelope.settled_at is not None or envelope.more().timer is not entry:
            return
        stream = envelope.stream
        receiver = stream.ref._cell.receiver
        if stream.settled(envelope.seq):  # handled: its acknowledgement is in the next batch
            receiver.flush()
            if envelope.settled_at is not None:
                return
        if receiver.in_hand(envelope):
            # Being handled right now, or received and waiting for an earlier message of its
            # stream (which is delivered or failed and skipped in time): not a lost attempt.
            self._arm(envelope)
            return
        if envelope.attempts > envelope.checks.max_retries:
            self.fail(envelope)
            return
        envelope.attempts += 1
        self.state.retried += 1
        extra = envelope.more()
        if extra.held is None and self._system.tap is not None:
            extra.held = []
        ref = stream.ref
        for _ in range(self.transmit(envelope, extra.held)):
            # No room, or a stopped receiver (a dead letter): the attempt still counts.
            with contextlib.suppress(MailboxFull, ActorUnavailable):
                ref.try_send(envelope)
        self._arm(envelope)

    def fail(self, envelope: Reliably) -> None:
        state = self.state
        del state.pending[envelope.message_id]
        state.failed += 1
        ref = envelope.stream.ref
        error = DeliveryFailed(
            f"reliable message {envelope.message_id} ({type(envelope.message).__name__}) to "
            f"{ref.name!r} was not acknowledged after {envelope.attempts - 1} retries"
        )
        envelope.more().error = error
        envelope.settled_at = self.now()
        self._system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                ref.name,
                envelope.message,
                DeadLetterReason.DELIVERY_FAILED,
                str(error),
            )
        )
        self._keep_failure(envelope, error)
        self.skip(envelope)  # settled: a copy still in flight is not handled
        self.settled(envelope.more())

    @staticmethod
    def settled(extra: Extra) -> None:
        """A message with extras settled: stop its timer, call off the copies a fault holds
        back (waiting for their delay, or for room), wake whoever waits for it."""
        if extra.timer is not None:
            extra.timer.cancel()
        if extra.held:
            for entry in extra.held:
                entry.cancel()
            extra.held = None
        if extra.done is not None:
            extra.done.set()

    def _keep_failure(self, envelope: Reliably, error: SpaceActorsError) -> None:
        """Put a failed (or withdrawn) message in the outcome book; trace a failure that the
        book forgets to make room."""
        forgotten = self.state.book.failed(envelope.message_id, error)
        if forgotten is not None and self._system.tap is not None:
            self._system.tap.record(
                EventKind.FORGET,
                envelope.stream.ref.name,
                message_id=forgotten,
                detail=f"outcome forgotten past KEEP_FAILURES ({outcomes.KEEP_FAILURES})",
            )

    def skip(self, envelope: Reliably) -> None:
        """Settle the receiver's number of a message given up unhandled; hand a held envelope
        that this sets free back to its actor."""
        stream = envelope.stream
        receiver = stream.ref._cell.receiver
        ready = receiver.skip(stream, envelope.seq)
        receiver.flush()  # the stream's acknowledgement moves past it
        if ready is not None:
            # A full or closed mailbox: the envelope's own retries bring it back.
            with contextlib.suppress(MailboxFull, ActorUnavailable):
                stream.ref.try_send(ready)

    def withdraw(self, envelope: Reliably, held: list[Scheduled]) -> None:
        """The first transmission was cancelled: as if never sent (its stream number is
        skipped, copies a fault held back are called off, its id was never returned)."""
        for entry in held:
            entry.cancel()
        envelope.stream.ref._cell.receiver.flush()  # a copy a fault let through, handled?
        state = self.state
        if envelope.settled_at is not None:  # a copy got through and was acknowledged
            return
        del state.pending[envelope.message_id]
        state.withdrawn += 1
        envelope.settled_at = self.now()
        envelope.more().error = error = UnknownMessage(
            f"reliable message {envelope.message_id} was never sent: its send was cancelled"
        )
        state.book.withdraw(envelope.message_id, error)
        self.skip(envelope)
