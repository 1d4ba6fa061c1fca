"""Reliable delivery, the sending side: streams, retries with backoff, acknowledgements, outcomes.

At-least-once transport plus exact receiver-side de-duplication gives exactly-once *processing*:

- `Reliable.send` numbers the message in its sender→receiver stream (`spaceactors.receiver`),
  wraps it in a `Reliably` envelope with a fresh id and puts it in the target's mailbox.
- The receiver settles the number once ``handle`` returns (a crash settles nothing, so the retry
  reaches the restarted incarnation) and acknowledges cumulatively, in batches: the stream's
  high-water mark plus the numbers settled out of order since its last acknowledgement.
- Unacknowledged messages are sent again after `timeout`, then after exponentially longer
  waits (seeded jitter), up to `max_retries` retries; then the message is a dead letter,
  `Reliable.delivered` raises `DeliveryFailed`, and the receiver settles its number unhandled.
- With ``ordered=True`` the receiver handles a stream's messages in number order, holding early
  arrivals until the gap fills (a failed number is skipped).

The pending table, the outcome book (`spaceactors.outcomes`) and the retry schedule belong to
the system, and the streams to the receiving actors' runtimes: a crash of the ``reliable``
service or of a receiver loses nothing, and the service's restart re-arms the timers.
"""

from __future__ import annotations

import collections
import contextlib
import functools
from typing import TYPE_CHECKING

import attrs
import trio

from spaceactors.checks import fraction, integer, seconds, short_repr
from spaceactors.control import ActorState
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.delivery import DeliverySchedule, Scheduled
from spaceactors.errors import (
    ActorUnavailable,
    DeliveryFailed,
    MailboxFull,
    SpaceActorsError,
    UnknownMessage,
)
from spaceactors.outcomes import KEEP_FAILURES, KEEP_RECEIPTS, OutcomeBook, Receipt, receipt
from spaceactors.policy import Backoff
from spaceactors.receiver import Extra, MessageId, ReceiverState, Reliably, Stream
from spaceactors.ref import ActorRef
from spaceactors.registry import check_sender
from spaceactors.service import ServiceLife
from spaceactors.trace import EventKind

__all__ = [
    "DEFAULT_MAX_DELAY",
    "KEEP_FAILURES",
    "KEEP_RECEIPTS",
    "MessageId",
    "Receipt",
    "ReceiverState",
    "Reliable",
    "ReliableState",
    "ReliableStats",
    "Reliably",
]

if TYPE_CHECKING:
    from spaceactors.router import Target
    from spaceactors.system import ActorSystem

DEFAULT_MAX_RETRIES = 3
DEFAULT_TIMEOUT = 1.0
DEFAULT_MAX_DELAY = 30.0
DEFAULT_JITTER = 0.1
_ANONYMOUS = ((None, False), (None, True))  # stream keys of sends without a sender


@attrs.frozen
class ReliableStats:
    """Counts since the system started, and messages awaiting acknowledgement now."""

    sent: int
    acknowledged: int
    retried: int
    failed: int
    duplicates_suppressed: int
    pending: int
    failures_forgotten: int = 0


@attrs.define(eq=False)
class _FirstChecks:
    """Messages awaiting their first timeout check, in send order, with one timer for the lot.

    Most messages are acknowledged long before their timeout, so a send arms no timer of its
    own: it joins this queue, whose single schedule entry fires when the oldest one could be
    due. Only messages still unacknowledged then get a retry timer (with its jitter drawn).
    """

    key: tuple[object, ...]
    backoff: Backoff
    max_retries: int
    queue: collections.deque[Reliably] = attrs.field(factory=collections.deque)
    timer: Scheduled | None = None

    @property
    def earliest(self) -> float:
        """The shortest first delay the backoff can draw."""
        return self.backoff.initial * (1.0 - self.backoff.jitter)


@attrs.define
class ReliableState:
    """The pending table, the outcomes and the counters; owned by the system, so they outlive
    the service."""

    pending: dict[MessageId, Reliably] = attrs.field(factory=dict)
    book: OutcomeBook = attrs.field(factory=OutcomeBook)
    schedule: DeliverySchedule = attrs.field(factory=DeliverySchedule)
    first_checks: dict[tuple[object, ...], _FirstChecks] = attrs.field(factory=dict)
    """One queue per (timeout, max_delay, jitter) in use, keyed with their types too: True
    equals 1 (and Decimal(1) equals 1.0), and a cached 1 must not let True skip validation."""
    streams: int = 0  # streams opened so far (their ids)
    withdrawn: int = 0  # sends cancelled before their first transmission
    acknowledged: int = 0
    retried: int = 0
    failed: int = 0
    duplicates: int = 0


def _options_key(
    max_retries: object, timeout: object, max_delay: object, jitter: object
) -> tuple[object, ...]:
    options = (max_retries, timeout, max_delay, jitter)
    return options + tuple(type(option) for option in options)


class Reliable:
    """Reliable point-to-point delivery; available as ``system.reliable``."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self.state = ReliableState()
        self._rng = system.rng("reliable")
        self._now = trio.lowlevel.current_clock().current_time
        self.life = ServiceLife("reliable")
        self._defaults = self._first_checks_for(
            DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, DEFAULT_MAX_DELAY, DEFAULT_JITTER
        )

    async def send(
        self,
        target: Target,
        message: object,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the acknowledgement deadline
        max_delay: float = DEFAULT_MAX_DELAY,
        jitter: float = DEFAULT_JITTER,
        ordered: bool = False,
        sender: ActorRef | None = None,
    ) -> MessageId:
        """Send `message` with acknowledgement and retries; returns its id at once.

        The first transmission waits for room in the mailbox (backpressure); retries go out
        after `timeout` seconds, then twice as long each time up to `max_delay`, each scaled by
        a seeded factor in ``[1 - jitter, 1 + jitter]``. With `ordered`, messages from
        `sender` to this target are handled in send order.

        Raises:
            ActorNotFound: nothing live has that id or name (recorded as a dead letter).
            ActorUnavailable: the target has stopped (recorded as a dead letter), or the
                reliable service has (after leaving `open_system`, or while the services shut
                down): nothing would retry it.
            TypeError: `target` is not an `ActorRef`, an int or a str, or `sender` is not an
                `ActorRef` or None.
            ValueError: an option is out of range.
        """
        if (
            self.life.serving
            and max_retries is DEFAULT_MAX_RETRIES
            and sender is None
            and timeout is DEFAULT_TIMEOUT
            and max_delay is DEFAULT_MAX_DELAY
            and jitter is DEFAULT_JITTER
        ):
            checks = self._defaults  # the common case, validated once
        else:
            checks = self._checks(max_retries, timeout, max_delay, jitter, sender)
        if type(target) is ActorRef and target._cell.state is not ActorState.STOPPED:
            ref = target
        else:
            ref = self._system.router.resolve(target, message, sender)
            if not ref.alive:
                raise ref._cell.unavailable(message, sender)
        envelope = self._number(ref, message, checks, ordered, sender)
        if self._system.tap is None:  # the fast path: no trace, no faults
            try:
                ref._send.send_nowait(envelope)
                return envelope.message_id
            except trio.WouldBlock:
                pass
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                ref._cell.unavailable(envelope)  # stopped meanwhile: a dead letter (and the
                return envelope.message_id  # retries find it stopped, then fail)
        await self._transmit_first(envelope)
        return envelope.message_id

    def _checks(
        self, max_retries: int, timeout: float, max_delay: float, jitter: float, sender: object
    ) -> _FirstChecks:
        """Refuse a send that cannot go on; the retry options' queue (validated once)."""
        if not self.life.serving:
            refusal = self.life.refusal(self._system.services, "send reliably")
            if refusal is not None:
                raise refusal
        if type(max_retries) is not int or max_retries < 0:
            integer("max_retries", max_retries)  # raises, naming the problem
        if sender is not None and type(sender) is not ActorRef:
            check_sender(sender)
        try:
            key = _options_key(max_retries, timeout, max_delay, jitter)
            checks = self.state.first_checks.get(key)
        except TypeError:  # unhashable: not a number; validation below says so
            checks = None
        return checks or self._first_checks_for(max_retries, timeout, max_delay, jitter)

    def _number(
        self,
        ref: ActorRef,
        message: object,
        checks: _FirstChecks,
        ordered: bool,
        sender: ActorRef | None,
    ) -> Reliably:
        """A new pending message to the live `ref`, numbered in its stream, awaiting its first
        timeout check; the caller transmits it."""
        state = self.state
        receiver = ref._cell._receiver or ref._cell.receiver
        key = _ANONYMOUS[ordered] if sender is None else (sender.id, ordered)
        stream = receiver.streams.get(key)
        if stream is None:
            stream = receiver.streams[key] = Stream(state.streams, ref, sender, bool(ordered))
            state.streams += 1
            if sender is not None:  # forgotten when the sender stops (`ActorCell.close`)
                if sender._cell.outbound is None:
                    sender._cell.outbound = []
                sender._cell.outbound.append(stream)
        seq = stream.next_seq
        stream.next_seq = seq + 1
        book = state.book
        book.issued = message_id = book.issued + 1
        envelope = Reliably(message_id, message, stream, seq, checks, self._now())
        stream.unacked.append(envelope)
        state.pending[message_id] = envelope
        checks.queue.append(envelope)
        if checks.timer is None:
            self._arm_first_checks(checks)
        return envelope

    async def _transmit_first(self, envelope: Reliably) -> None:
        """The first transmission, through the tap (trace, faults) if there is one: the first
        copy waits for room. If it is cancelled, the message is withdrawn (never sent)."""
        held: list[Scheduled] = []
        copies = 1 if self._system.tap is None else self._transmit(envelope, held)
        ref = envelope.stream.ref
        try:
            if copies:
                await ref.send(envelope)
                for _ in range(copies - 1):  # duplicated by a fault: extra copies never wait
                    with contextlib.suppress(MailboxFull, ActorUnavailable):
                        ref.try_send(envelope)
            else:
                await trio.lowlevel.checkpoint()  # lost on the way: the retries will tell
        except ActorUnavailable:
            pass  # stopped meanwhile (a dead letter): the retries find it stopped, then fail
        except BaseException:
            self._withdraw(envelope, held)  # cancelled while waiting for room: never sent
            raise
        if held:
            if envelope.settled_at is None:
                envelope.more().held = held
            else:  # settled meanwhile (a copy got through): the held copies are moot
                for entry in held:
                    entry.cancel()

    def _withdraw(self, envelope: Reliably, held: list[Scheduled]) -> None:
        """The first transmission was cancelled: as if never sent (its stream number is
        skipped, copies a fault held back are called off, its id was never returned)."""
        for entry in held:
            entry.cancel()
        state = self.state
        if envelope.settled_at is not None:  # a copy got through and was acknowledged
            return
        del state.pending[envelope.message_id]
        state.withdrawn += 1
        envelope.settled_at = self._now()
        envelope.more().error = error = UnknownMessage(
            f"reliable message {envelope.message_id} was never sent: its send was cancelled"
        )
        self._keep_failure(envelope, error)
        self._skip(envelope)

    def _first_checks_for(
        self, max_retries: int, timeout: float, max_delay: float, jitter: float
    ) -> _FirstChecks:
        """Validate a new combination of retry options; one queue serves each."""
        key = _options_key(max_retries, timeout, max_delay, jitter)
        timeout = seconds("timeout", timeout, zero=False)
        max_delay = seconds("max_delay", max_delay, zero=False)
        if max_delay < timeout:
            raise ValueError(f"max_delay must be >= timeout ({timeout:g}), got {max_delay:g}")
        jitter = fraction("jitter", jitter, one=False)
        backoff = Backoff(initial=timeout, maximum=max_delay, jitter=jitter)
        checks = _FirstChecks(key, backoff, max_retries)
        self.state.first_checks[key] = checks
        return checks

    async def delivered(self, message_id: MessageId) -> Receipt:
        """Wait until `message_id` is acknowledged; answers for every id `send` returned.

        Raises:
            DeliveryFailed: every retry was spent (the message is in the dead letters).
            UnknownMessage: `send` never returned this id.
            OutcomeForgotten: more than `KEEP_FAILURES` messages failed since this one
                finished, and the oldest failures were forgotten: its outcome is not known.
            ValueError: `message_id` is not an int (as `send` returns).
            ActorUnavailable: the message is still unsettled and the reliable service has
                stopped (after leaving `open_system`): its outcome will never be known.
        """
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            raise ValueError(
                f"a reliable message id is the int `send` returned, got "
                f"{type(message_id).__name__} {short_repr(message_id)}"
            )
        state = self.state
        envelope = state.pending.get(message_id) or state.book.recent(message_id)
        if envelope is None:
            await trio.lowlevel.checkpoint()
            return state.book.outcome(message_id)
        if envelope.settled_at is None:
            envelope.stream.ref._cell.receiver.flush()  # handled already? then it settles now
        if envelope.settled_at is None:
            if not self.life.serving:
                refusal = self.life.refusal(
                    self._system.services, f"wait for reliable message {message_id}"
                )
                if refusal is not None:
                    raise refusal
            extra = envelope.more()
            if extra.done is None:
                extra.done = trio.Event()
            await extra.done.wait()
            if envelope.settled_at is None:  # woken by close()
                raise ActorUnavailable(
                    f"the system closed before reliable message {message_id} was settled; "
                    "its outcome will never be known"
                )
        else:
            await trio.lowlevel.checkpoint()
        if envelope.extra is not None and envelope.extra.error is not None:
            raise envelope.extra.error
        return receipt(envelope)

    def close(self) -> None:
        """The system has closed: wake every `delivered` still waiting (it raises
        `ActorUnavailable`: nothing will settle its message any more)."""
        for envelope in self.state.pending.values():
            if envelope.extra is not None and envelope.extra.done is not None:
                envelope.extra.done.set()

    def pending_count(self) -> int:
        """Messages sent and not yet acknowledged or failed."""
        return len(self.state.pending)

    def stats(self) -> ReliableStats:
        """A snapshot of the counters."""
        state = self.state
        return ReliableStats(
            sent=state.book.issued - state.withdrawn,
            acknowledged=state.acknowledged,
            retried=state.retried,
            failed=state.failed,
            duplicates_suppressed=state.duplicates,
            pending=len(state.pending),
            failures_forgotten=state.book.forgotten,
        )

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ``reliable`` service: re-arm every pending retry, then serve the timers."""
        for checks in self.state.first_checks.values():
            if checks.queue and (checks.timer is None or not checks.timer.active):
                self._arm_first_checks(checks)
        for envelope in self.state.pending.values():
            timer = None if envelope.extra is None else envelope.extra.timer
            if timer is not None and not timer.active:
                self._arm(envelope, delay=0.0)
        with self.life.running():
            await self.state.schedule.serve(task_status)

    # --- acknowledgements, from the receiving actor's runtime ----------------------------

    def acknowledge(self, stream: Stream, low: int, sacked: list[int]) -> None:
        """The receiver settled every number of `stream` below `low`, and those in `sacked`."""
        unacked = stream.unacked
        pending = self.state.pending
        ring, mask = self.state.book.ring, self.state.book.mask
        now = self._now()
        settled = 0
        # Contiguous numbers: the first `low - first` are covered by the cumulative part.
        first = unacked[0].seq if unacked else low
        batch = [unacked.popleft() for _ in range(min(low - first, len(unacked)))]
        if sacked and unacked:
            first, size = unacked[0].seq, len(unacked)
            batch.extend(unacked[seq - first] for seq in sacked if 0 <= seq - first < size)
        for envelope in batch:
            if envelope.settled_at is not None:
                continue  # failed (and skipped) or acknowledged already
            del pending[envelope.message_id]
            envelope.settled_at = now
            ring[envelope.message_id & mask] = envelope
            settled += 1
            if envelope.extra is not None:
                self._settled(envelope.extra)
        self.state.acknowledged += settled
        if not unacked and stream.sender is not None and not stream.sender._cell.alive:
            stream.forget_if_idle()

    # --- retries ----------------------------------------------------------------------

    def _transmit(self, envelope: Reliably, held: list[Scheduled] | None = None) -> int:
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

    def _arm_first_checks(self, checks: _FirstChecks) -> None:
        deadline = checks.queue[0].started + checks.earliest
        checks.timer = self.state.schedule.call_at(
            deadline, functools.partial(self._first_check, checks)
        )

    def _first_check(self, checks: _FirstChecks, entry: Scheduled) -> None:
        """Give each message old enough to be due its own retry timer, if still unacknowledged."""
        if checks.timer is not entry:
            return
        checks.timer = None
        queue = checks.queue
        now, earliest = self._now(), checks.earliest
        while queue and queue[0].started + earliest <= now:
            envelope = queue.popleft()
            if envelope.settled_at is None:
                delay = checks.backoff.delay(0, self._rng)
                self._arm(envelope, delay=envelope.started + delay - now)
        if queue:
            self._arm_first_checks(checks)
        elif checks is not self._defaults and self.state.first_checks.get(checks.key) is checks:
            del self.state.first_checks[checks.key]  # unused: a later send remakes it

    def _arm(self, envelope: Reliably, delay: float | None = None) -> None:
        if delay is None:
            checks: _FirstChecks = envelope.checks
            delay = checks.backoff.delay(envelope.attempts - 1, self._rng)
        envelope.more().timer = self.state.schedule.call_at(
            self._now() + delay, functools.partial(self._due, envelope)
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
        if receiver.handling is envelope or stream.held.get(envelope.seq) is envelope:
            # Being handled right now, or received and waiting for an earlier message of its
            # stream (which is delivered or failed and skipped in time): not a lost attempt.
            self._arm(envelope)
            return
        if envelope.attempts > envelope.checks.max_retries:
            self._fail(envelope)
            return
        envelope.attempts += 1
        self.state.retried += 1
        extra = envelope.more()
        if extra.held is None and self._system.tap is not None:
            extra.held = []
        ref = stream.ref
        for _ in range(self._transmit(envelope, extra.held)):
            # No room, or a stopped receiver (a dead letter): the attempt still counts.
            with contextlib.suppress(MailboxFull, ActorUnavailable):
                ref.try_send(envelope)
        self._arm(envelope)

    def _fail(self, envelope: Reliably) -> None:
        state = self.state
        del state.pending[envelope.message_id]
        state.failed += 1
        ref = envelope.stream.ref
        error = DeliveryFailed(
            f"reliable message {envelope.message_id} ({type(envelope.message).__name__}) to "
            f"{ref.name!r} was not acknowledged after {envelope.attempts - 1} retries"
        )
        envelope.more().error = error
        envelope.settled_at = self._now()
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
        self._skip(envelope)  # settled: a copy still in flight is not handled
        self._settled(envelope.more())

    @staticmethod
    def _settled(extra: Extra) -> None:
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
        book = self.state.book
        book.finished(envelope)
        forgotten = book.failed(envelope.message_id, error)
        if forgotten is not None and self._system.tap is not None:
            self._system.tap.record(
                EventKind.FORGET,
                envelope.stream.ref.name,
                message_id=forgotten,
                detail=f"outcome forgotten past KEEP_FAILURES ({KEEP_FAILURES})",
            )

    def _skip(self, envelope: Reliably) -> None:
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
