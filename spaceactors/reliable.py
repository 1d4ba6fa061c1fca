"""Reliable delivery: message ids, acknowledgements, retries with backoff, de-duplication.

At-least-once transport plus receiver-side de-duplication gives exactly-once *processing*:

- `Reliable.send` wraps the message in a `Reliably` envelope with a fresh id and puts it in the
  target's mailbox. The receiving actor's runtime acknowledges it once `handle` returns; if the
  actor crashes while handling, no acknowledgement goes out and the retry reaches the restarted
  incarnation.
- Unacknowledged messages are sent again after `timeout`, then after exponentially longer
  waits (seeded jitter), up to `max_retries` retries; then the message is a dead letter and
  `Reliable.delivered` raises `DeliveryFailed`.
- The receiver remembers the ids it processed in a bounded window (`DEDUP_WINDOW` per actor,
  kept across restarts); a duplicate inside that window is acknowledged again, not handled.
- With ``ordered=True``, messages from one sender to one target are handled in send order even
  when retries reorder their arrival: a message that arrives early waits for the gap to fill.

The pending table is owned by the system and the retry timers live on one schedule served by the
``reliable`` service: a crash of that service loses nothing, and its restart re-arms the timers.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
from typing import TYPE_CHECKING

import attrs
import trio

from spaceactors import reliabletopics
from spaceactors.checks import fraction, integer, seconds, short_repr
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.delivery import DeliverySchedule, Scheduled
from spaceactors.errors import ActorUnavailable, DeliveryFailed, MailboxFull
from spaceactors.policy import Backoff
from spaceactors.receiver import DEDUP_WINDOW, MessageId, ReceiverState, Reliably
from spaceactors.ref import ActorRef
from spaceactors.registry import check_sender
from spaceactors.service import ServiceLife

__all__ = [
    "DEDUP_WINDOW",
    "DEFAULT_MAX_DELAY",
    "KEEP_OUTCOMES",
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

KEEP_OUTCOMES = 10_000
"""How many finished sends `Reliable.delivered` can still report on."""
DEFAULT_MAX_DELAY = 30.0


@attrs.frozen
class Receipt:
    """Proof of delivery: the message was handled after `attempts` transmissions."""

    message_id: MessageId
    attempts: int
    latency: float


@attrs.frozen
class ReliableStats:
    """Counts since the system started, and messages awaiting acknowledgement now."""

    sent: int
    acknowledged: int
    retried: int
    failed: int
    duplicates_suppressed: int
    pending: int


@attrs.define(eq=False)
class _Pending:
    envelope: Reliably
    ref: ActorRef
    max_retries: int
    backoff: Backoff
    started: float
    sender: ActorRef | None = None
    topic: str | None = None  # published on (`publish`): fault rules scoped to topics see it
    attempts: int = 1
    timer: Scheduled | None = None  # None until its first timeout is checked (see _sweep)
    done: trio.Event | None = None  # made only when someone waits in delivered()
    acknowledged_at: float | None = None
    error: DeliveryFailed | None = None
    held: list[Scheduled] | None = None  # copies a fault holds back: called off once settled

    def receipt(self) -> Receipt:
        assert self.acknowledged_at is not None
        latency = self.acknowledged_at - self.started
        return Receipt(self.envelope.message_id, self.attempts, latency)


@attrs.define(eq=False)
class _FirstChecks:
    """Messages awaiting their first timeout check, in send order, with one timer for the lot.

    Most messages are acknowledged long before their timeout, so a send arms no timer of its
    own: it joins this queue, whose single schedule entry fires when the oldest one could be
    due. Only messages still unacknowledged then get a retry timer (with its jitter drawn).
    """

    backoff: Backoff
    queue: collections.deque[_Pending] = attrs.field(factory=collections.deque)
    timer: Scheduled | None = None

    @property
    def earliest(self) -> float:
        """The shortest first delay the backoff can draw."""
        return self.backoff.initial * (1.0 - self.backoff.jitter)


@attrs.define
class ReliableState:
    """The pending table and the counters; owned by the system, so they outlive the service."""

    pending: dict[MessageId, _Pending] = attrs.field(factory=dict)
    finished: collections.OrderedDict[MessageId, _Pending] = attrs.field(
        factory=collections.OrderedDict
    )
    schedule: DeliverySchedule = attrs.field(factory=DeliverySchedule)
    ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    streams: dict[tuple[int, int], list[int]] = attrs.field(factory=dict)  # [stream id, next seq]
    first_checks: dict[tuple[object, ...], _FirstChecks] = attrs.field(factory=dict)
    """One queue per (timeout, max_delay, jitter) in use, keyed with their types too: True
    equals 1 (and Decimal(1) equals 1.0), and a cached 1 must not let True skip validation."""
    sent: int = 0
    acknowledged: int = 0
    retried: int = 0
    failed: int = 0
    duplicates: int = 0


class Reliable:
    """Reliable point-to-point delivery; available as ``system.reliable``."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self.state = ReliableState()
        self._rng = system.rng("reliable")
        self._now = trio.lowlevel.current_clock().current_time
        self.life = ServiceLife("reliable")

    async def send(
        self,
        target: Target,
        message: object,
        *,
        max_retries: int = 3,
        timeout: float = 1.0,  # noqa: ASYNC109 - the acknowledgement deadline, not a call timeout
        max_delay: float = DEFAULT_MAX_DELAY,
        jitter: float = 0.1,
        ordered: bool = False,
        sender: ActorRef | None = None,
        _topic: str | None = None,
    ) -> MessageId:
        """Send `message` with acknowledgement and retries; returns its id at once.

        The first transmission waits for room in the mailbox (backpressure); retries go out
        after `timeout`, then twice as long each time up to `max_delay`, each scaled by a
        seeded factor in ``[1 - jitter, 1 + jitter]``. (`_topic` is for `publish` alone: the
        topic the message goes out on, for the trace and the fault plan's topic scopes.)

        Raises:
            ActorNotFound: nothing live has that id or name (recorded as a dead letter).
            ActorUnavailable: the target has stopped (recorded as a dead letter), or the
                reliable service has (after leaving `open_system`, or while the services shut
                down): nothing would retry it.
            TypeError: `target` is not an `ActorRef`, an int or a str, or `sender` is not an
                `ActorRef` or None.
            ValueError: an option is out of range.
        """
        if not self.life.serving:
            refusal = self.life.refusal(self._system.services, "send reliably")
            if refusal is not None:
                raise refusal
        if type(max_retries) is not int or max_retries < 0:
            integer("max_retries", max_retries)  # raises, naming the problem
        state = self.state
        try:
            checks = state.first_checks.get(
                (timeout, max_delay, jitter, type(timeout), type(max_delay), type(jitter))
            )
        except TypeError:  # unhashable: not a number; validation below says so
            checks = None
        if checks is None:
            checks = self._first_checks_for(timeout, max_delay, jitter)
        if sender is not None and type(sender) is not ActorRef:
            check_sender(sender)
        if type(target) is ActorRef and target._cell.alive:
            ref = target
        else:
            ref = self._system.router.resolve(target, message, sender)
            if not ref.alive:
                raise ref._cell.unavailable(message, sender)
        message_id = next(state.ids)
        if ordered:
            key = (0 if sender is None else sender.id, ref.id)
            stream_and_seq = state.streams.setdefault(key, [len(state.streams), 0])
            stream, seq = stream_and_seq
            stream_and_seq[1] += 1
            envelope = Reliably(message_id, message, stream, seq)
        else:
            envelope = Reliably(message_id, message)
        pending = _Pending(envelope, ref, max_retries, checks.backoff, self._now(), sender, _topic)
        state.pending[message_id] = pending
        state.sent += 1
        held: list[Scheduled] = []
        copies = 1 if self._system.tap is None else self._transmit(pending, held)
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
            # Cancelled while waiting for room: as if never sent (its stream slot is skipped,
            # and copies a fault held back are called off).
            for entry in held:
                entry.cancel()
            if state.pending.get(message_id) is pending:  # (a copy may have settled it)
                del state.pending[message_id]
                state.sent -= 1
                if envelope.stream is not None:
                    self._release(ref, ref._cell.receiver.skip(envelope.stream, envelope.seq))
            raise
        if held:
            pending.held = held
        checks.queue.append(pending)
        if checks.timer is None:
            self._arm_first_checks(checks)
        return message_id

    async def publish(
        self,
        topic: str,
        message: object,
        *,
        max_retries: int = 3,
        timeout: float = 1.0,  # noqa: ASYNC109 - the acknowledgement deadline, not a call timeout
        max_delay: float = DEFAULT_MAX_DELAY,
        jitter: float = 0.1,
        ordered: bool = False,
        sender: ActorRef | None = None,
    ) -> dict[ActorRef, MessageId]:
        """Send `message` reliably to every subscriber of `topic`; returns their ids at once.

        Each actor subscribed when the call is made (wildcards included, `sender` left out, as
        `Router.publish` matches them) gets its own message, as if by `send` with these options
        (its own sender→subscriber stream). Every first transmission waits for room, whatever
        the subscription's `Delivery` policy. Fault rules scoped to the topic apply to every
        transmission, retries included.

        Returns:
            The message id per subscriber, for `delivered`; empty if nobody listens (counted as
            `RouterStats.publishes_without_subscribers`). A subscriber that stopped for good
            before its turn came gets no id (its message is a dead letter); one that stops
            after gets an id that fails, as a `send`'s would.

        Raises:
            InvalidTopic: the topic is malformed (or a pattern).
            ActorUnavailable: the reliable service has stopped (after leaving `open_system`, or
                while the services shut down): nothing would retry the messages.
            TypeError: `sender` is not an `ActorRef` or None.
            ValueError: an option is out of range.
        """
        return await reliabletopics.publish(
            self._system, topic, message, max_retries=max_retries, timeout=timeout,
            max_delay=max_delay, jitter=jitter, ordered=ordered, sender=sender,
        )

    def _first_checks_for(self, timeout: float, max_delay: float, jitter: float) -> _FirstChecks:
        """Validate a new combination of retry options; one queue serves each."""
        key = (timeout, max_delay, jitter, type(timeout), type(max_delay), type(jitter))
        timeout = seconds("timeout", timeout, zero=False)
        max_delay = seconds("max_delay", max_delay, zero=False)
        if max_delay < timeout:
            raise ValueError(f"max_delay must be >= timeout ({timeout:g}), got {max_delay:g}")
        jitter = fraction("jitter", jitter, one=False)
        checks = _FirstChecks(Backoff(initial=timeout, maximum=max_delay, jitter=jitter))
        self.state.first_checks[key] = checks
        return checks

    async def delivered(self, message_id: MessageId) -> Receipt:
        """Wait until `message_id` is acknowledged.

        Raises:
            DeliveryFailed: every retry was spent (the message is in the dead letters).
            KeyError: no such message id (or its outcome was forgotten; see `KEEP_OUTCOMES`).
            ValueError: `message_id` is not an int (as `send` returns).
            ActorUnavailable: the message is still unsettled and the reliable service has
                stopped (after leaving `open_system`): its outcome will never be known.
        """
        if isinstance(message_id, bool) or not isinstance(message_id, int):
            raise ValueError(
                f"a reliable message id is the int `send` returned, got "
                f"{type(message_id).__name__} {short_repr(message_id)}"
            )
        pending = self.state.pending.get(message_id) or self.state.finished.get(message_id)
        if pending is None:
            raise KeyError(f"no reliable message has the id {message_id}")
        if pending.acknowledged_at is None and pending.error is None and not self.life.serving:
            refusal = self.life.refusal(
                self._system.services, f"wait for reliable message {message_id}"
            )
            if refusal is not None:
                raise refusal
        if pending.acknowledged_at is None and pending.error is None:
            if pending.done is None:
                pending.done = trio.Event()
            await pending.done.wait()
            if pending.acknowledged_at is None and pending.error is None:  # woken by close()
                raise ActorUnavailable(
                    f"the system closed before reliable message {message_id} was settled; "
                    "its outcome will never be known"
                )
        else:
            await trio.lowlevel.checkpoint()
        if pending.error is not None:
            raise pending.error
        return pending.receipt()

    def close(self) -> None:
        """The system has closed: wake every `delivered` still waiting (it raises
        `ActorUnavailable`: nothing will settle its message any more)."""
        for pending in self.state.pending.values():
            if pending.done is not None:
                pending.done.set()

    def pending_count(self) -> int:
        """Messages sent and not yet acknowledged or failed."""
        return len(self.state.pending)

    def stats(self) -> ReliableStats:
        """A snapshot of the counters."""
        state = self.state
        return ReliableStats(
            sent=state.sent,
            acknowledged=state.acknowledged,
            retried=state.retried,
            failed=state.failed,
            duplicates_suppressed=state.duplicates,
            pending=len(state.pending),
        )

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ``reliable`` service: re-arm every pending retry, then serve the timers."""
        for checks in self.state.first_checks.values():
            if checks.queue and (checks.timer is None or not checks.timer.active):
                self._arm_first_checks(checks)
        for pending in self.state.pending.values():
            if pending.timer is not None and not pending.timer.active:
                self._arm(pending, delay=0.0)
        with self.life.running():
            await self.state.schedule.serve(task_status)

    # --- called by the receiving actor's runtime ---------------------------------------

    def acknowledge(self, message_id: MessageId, *, duplicate: bool = False) -> None:
        """The receiver handled (or had already handled) `message_id`."""
        if duplicate:
            self.state.duplicates += 1
        pending = self.state.pending.pop(message_id, None)
        if pending is None:
            return  # a late or repeated acknowledgement
        if pending.timer is not None:
            pending.timer.cancel()
        self.state.acknowledged += 1
        pending.acknowledged_at = self._now()
        self._finish(pending)

    # --- retries ----------------------------------------------------------------------

    def _transmit(self, pending: _Pending, held: list[Scheduled] | None = None) -> int:
        """How many copies of a transmission go out now, as the system's tap (trace and fault
        plan) decides; copies it holds back wait on this service's schedule (and in `held`)."""
        tap = self._system.tap
        if tap is None:
            return 1
        return tap.transmit(
            pending.ref,
            pending.envelope,
            pending.sender,
            self.state.schedule,
            topic=pending.topic,
            retry=pending.attempts - 1,
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
        queue, pending_table = checks.queue, self.state.pending
        now, earliest = self._now(), checks.earliest
        while queue and queue[0].started + earliest <= now:
            pending = queue.popleft()
            if pending_table.get(pending.envelope.message_id) is pending:
                delay = pending.backoff.delay(0, self._rng)
                self._arm(pending, delay=pending.started + delay - now)
        if queue:
            self._arm_first_checks(checks)
        else:  # nothing waits with these options: forget them (a later send remakes them)
            key = (checks.backoff.initial, checks.backoff.maximum, checks.backoff.jitter)
            if self.state.first_checks.get(key) is checks:
                del self.state.first_checks[key]

    def _arm(self, pending: _Pending, delay: float | None = None) -> None:
        if delay is None:
            delay = pending.backoff.delay(pending.attempts - 1, self._rng)
        pending.timer = self.state.schedule.call_at(
            self._now() + delay, functools.partial(self._due, pending)
        )

    def _due(self, pending: _Pending, entry: Scheduled) -> None:
        current = self.state.pending.get(pending.envelope.message_id) is pending
        if not current or pending.timer is not entry:
            return
        receiver = pending.ref._cell.receiver
        if receiver.handling == pending.envelope.message_id or receiver.holds(pending.envelope):
            # Being handled right now, or received and waiting for an earlier message of its
            # stream (which is delivered or failed and skipped in time): not a lost attempt.
            self._arm(pending)
            return
        if pending.attempts > pending.max_retries:
            self._fail(pending)
            return
        pending.attempts += 1
        self.state.retried += 1
        if pending.held is None and self._system.tap is not None:
            pending.held = []
        for _ in range(self._transmit(pending, pending.held)):
            # No room, or a stopped receiver (a dead letter): the attempt still counts.
            with contextlib.suppress(MailboxFull, ActorUnavailable):
                pending.ref.try_send(pending.envelope)
        self._arm(pending)

    def _fail(self, pending: _Pending) -> None:
        envelope = pending.envelope
        del self.state.pending[envelope.message_id]
        self.state.failed += 1
        retries = pending.attempts - 1
        error = DeliveryFailed(
            f"reliable message {envelope.message_id} ({type(envelope.message).__name__}) to "
            f"{pending.ref.name!r} was not acknowledged after {retries} retries"
        )
        pending.error = error
        self._system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                pending.ref.name,
                envelope.message,
                DeadLetterReason.DELIVERY_FAILED,
                str(error),
            )
        )
        receiver = pending.ref._cell.receiver
        receiver.remember(envelope.message_id)  # settled: a copy still in flight is not handled
        if envelope.stream is not None:
            self._release(pending.ref, receiver.skip(envelope.stream, envelope.seq))
        self._finish(pending)

    @staticmethod
    def _release(ref: ActorRef, ready: list[Reliably]) -> None:
        """Hand held envelopes that a skipped slot set free back to their actor, in order."""
        for envelope in ready:
            # A full or closed mailbox: the envelope's own retries bring it back.
            with contextlib.suppress(MailboxFull, ActorUnavailable):
                ref.try_send(envelope)

    def _finish(self, pending: _Pending) -> None:
        if pending.held:  # settled: a copy still waiting (for its delay, or for room) is moot
            for entry in pending.held:
                entry.cancel()
            pending.held = None
        finished = self.state.finished
        finished[pending.envelope.message_id] = pending
        while len(finished) > KEEP_OUTCOMES:
            finished.popitem(last=False)
        if pending.done is not None:
            pending.done.set()
