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

import contextlib
import contextvars
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs
import trio

from spaceactors.checks import integer, short_repr
from spaceactors.control import ActorState
from spaceactors.delivery import Scheduled
from spaceactors.errors import (
    ActorUnavailable,
    EncodeError,
    MailboxFull,
)
from spaceactors.outcomes import KEEP_FAILURES, KEEP_RECEIPTS, Receipt, receipt
from spaceactors.receiver import MessageId, ReceiverState, Reliably, Stream
from spaceactors.ref import ActorRef
from spaceactors.registry import check_sender
from spaceactors.retries import ReliableState, Retries, RetryOptions, options_key
from spaceactors.service import ServiceLife
from spaceactors.topics import Delivery

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
_PUBLISHING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "spaceactors.reliable.publishing", default=None
)
"""The topic `Reliable.publish` is sending to in this task (Trio gives each task its own)."""


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


class Reliable:
    """Reliable delivery (exactly-once processing, retries, outcomes) to an actor or to the
    subscribers of a topic; available as ``system.reliable``."""

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self.state = ReliableState()
        self.life = ServiceLife("reliable")
        self._retries = retries = Retries(system, self.state)
        self._now = retries.now  # (its readings are only ever compared with each other)
        self._defaults = retries.defaults = retries.options(
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
            EncodeError: the target is on another node and the message cannot be encoded
                (nothing was sent; docs/nodes.md).
            TypeError: `target` is not an `ActorRef`, an int or a str, or `sender` is not an
                `ActorRef` or None.
            ValueError: an option is out of range.
        """
        if (
            self.life.serving
            and max_retries is DEFAULT_MAX_RETRIES
            and timeout is DEFAULT_TIMEOUT
            and max_delay is DEFAULT_MAX_DELAY
            and jitter is DEFAULT_JITTER
            and (sender is None or type(sender) is ActorRef)
            and ordered is False
        ):
            checks = self._defaults  # the common case, validated once
        else:
            checks = self._checks(max_retries, timeout, max_delay, jitter, sender, ordered)
        try:
            if type(target) is ActorRef and target._cell.state is not ActorState.STOPPED:
                ref = target
            else:
                ref = self._system.router.resolve(target, message, sender)
                if not ref.alive:
                    raise ref._cell.unavailable(message, sender)
            state = self.state
            receiver = ref._cell._receiver or ref._cell.receiver
            key = _ANONYMOUS[ordered] if sender is None else (sender.id, ordered)
            stream = receiver.streams.get(key) or self._open(receiver, ref, sender, ordered)
            seq = stream.next_seq  # its number in the stream
            stream.next_seq = seq + 1
            book = state.book
            book.issued = message_id = book.issued + 1
            envelope = Reliably(message_id, message, stream, seq, checks, self._now())
            stream.unacked[seq] = envelope
            state.pending[message_id] = envelope
            if self._system.tap is None:  # the fast path: no trace, no faults
                try:
                    ref._send.send_nowait(envelope)
                except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
                    await self._transmit_first(envelope)  # full, or stopped: the slow path
                except EncodeError:  # (to another node) as if never sent
                    self._retries.withdraw(envelope, [])
                    raise
                else:
                    checks.queue[message_id] = envelope  # `Retries.enqueue`, inlined
                    if checks.timer is None:
                        self._retries.arm_first_checks(checks)
            else:
                await self._transmit_first(envelope)
        finally:
            if checks is not self._defaults:
                self._retries.release(checks)  # forgotten once no message uses them
        return envelope.message_id

    async def publish(
        self,
        topic: str,
        message: object,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the acknowledgement deadline
        max_delay: float = DEFAULT_MAX_DELAY,
        jitter: float = DEFAULT_JITTER,
        ordered: bool = False,
        sender: ActorRef | None = None,
    ) -> dict[ActorRef, MessageId]:
        """Send `message` reliably to every subscriber of `topic`; returns their ids at once.

        Each actor subscribed when the call is made (wildcards included, `sender` left out, as
        `Router.publish` matches them) gets its own message, as if by `send` with these options
        (its own sender→subscriber stream). Every first transmission waits for room, whatever
        the subscription's `Delivery` policy. Fault rules scoped to the topic apply to every
        transmission, retries included. In a cluster, the subscribers of the other live nodes
        get theirs too (each node tells the others of its subscriptions: docs/nodes.md).

        Returns:
            The message id per subscriber, for `delivered`; empty if nobody listens (counted as
            `RouterStats.publishes_without_subscribers`). A subscriber that stopped for good
            before its turn came gets no id (its message is a dead letter); one that stops
            after gets an id that fails, as a `send`'s would.

        Raises:
            InvalidTopic: the topic is malformed (or a pattern).
            EncodeError: there are subscribers on other nodes and the message cannot be
                encoded (the ones this node had got theirs).
            ActorUnavailable: the reliable service has stopped (after leaving `open_system`, or
                while the services shut down): nothing would retry the messages.
            TypeError: `sender` is not an `ActorRef` or None.
            ValueError: an option is out of range.
        """
        what = f"publish reliably to {short_repr(topic)}"
        checks = self._checks(max_retries, timeout, max_delay, jitter, sender, ordered, what)
        router = self._system.router
        ids: dict[ActorRef, MessageId] = {}
        try:
            receivers = router.state.topics.match(topic)  # InvalidTopic for a malformed topic
            node = self._system.node
            if node is not None:  # the subscribers of the other nodes of a cluster
                receivers.update(dict.fromkeys(node.subscribers(topic), Delivery.BLOCK))
            if sender is not None:
                receivers.pop(sender, None)
            await trio.lowlevel.checkpoint_if_cancelled()  # a cancelled call sends nothing
            if not receivers:
                router.state.unheard += 1
            publishing = _PUBLISHING.set(topic)  # for the tap: see `_transmit_first`
            try:
                for ref in receivers:  # each subscriber's policy is for plain publishes
                    if not ref.alive:  # stopped while the call waited for room at another
                        ref._cell.unavailable(message, sender)  # a dead letter, as in `send`
                        continue
                    ids[ref] = await self.send(
                        ref,
                        message,
                        max_retries=max_retries,
                        timeout=timeout,
                        max_delay=max_delay,
                        jitter=jitter,
                        ordered=ordered,
                        sender=sender,
                    )
            finally:
                _PUBLISHING.reset(publishing)
        finally:
            self._retries.release(checks)  # forgotten once no message uses them
        await trio.lowlevel.cancel_shielded_checkpoint()  # every message is out: keep the ids
        return ids

    def _checks(
        self,
        max_retries: int,
        timeout: float,
        max_delay: float,
        jitter: float,
        sender: object,
        ordered: object,
        action: str = "send reliably",
    ) -> RetryOptions:
        """Refuse a call that cannot go on; the retry options (validated once)."""
        if ordered is not False and ordered is not True:
            raise ValueError(f"ordered must be True or False, got {short_repr(ordered)}")
        if not self.life.serving:
            refusal = self.life.refusal(self._system.services, action)
            if refusal is not None:
                raise refusal
        if type(max_retries) is not int or max_retries < 0:
            integer("max_retries", max_retries)  # raises, naming the problem
        if sender is not None and type(sender) is not ActorRef:
            check_sender(sender)
        try:
            key = options_key(max_retries, timeout, max_delay, jitter)
            checks = self.state.first_checks.get(key)
        except TypeError:  # unhashable: not a number; validation below says so
            checks = None
        checks = checks or self._retries.options(max_retries, timeout, max_delay, jitter)
        checks.holders += 1  # until the call ends: `Retries.release`
        return checks

    def _open(
        self, receiver: ReceiverState, ref: ActorRef, sender: ActorRef | None, ordered: bool
    ) -> Stream:
        """A new stream from `sender` (or from no actor) to `ref`."""
        state = self.state
        stream = Stream(state.streams, ref, sender, ordered)
        receiver.streams[_ANONYMOUS[ordered] if sender is None else (sender.id, ordered)] = stream
        state.streams += 1
        if sender is not None and sender._cell.alive:  # forgotten when either stops
            if sender._cell.outbound is None:
                sender._cell.outbound = set()
            sender._cell.outbound.add(stream)
        return stream

    async def _transmit_first(self, envelope: Reliably) -> None:
        """The first transmission, through the tap (trace, faults) if there is one: the first
        copy waits for room. If it is cancelled, the message is withdrawn (never sent)."""
        held: list[Scheduled] = []
        if self._system.tap is None:
            copies = 1
        else:
            topic = _PUBLISHING.get()  # the topic a `publish` in this task sends to
            if topic is not None:
                envelope.more().topic = topic  # topic-scoped faults apply to every attempt
            copies = self._retries.transmit(envelope, held)
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
            self._retries.withdraw(envelope, held)  # cancelled waiting for room: never sent
            raise
        if held:
            if envelope.settled_at is None:
                envelope.more().held = held
            else:  # settled meanwhile (a copy got through): the held copies are moot
                for entry in held:
                    entry.cancel()
        # Its retry clock starts now, not when `send` was called: a wait for room is no
        # lost attempt (and a message waiting for room is not retried).
        envelope.started = self._now()
        self._retries.enqueue(envelope)

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
        envelope = state.pending.get(message_id)
        if envelope is None:  # finished: the book has its outcome
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
        self._retries.rearm()
        with self.life.running():
            await self.state.schedule.serve(task_status)

    # --- acknowledgements, from the receiving actor's runtime ----------------------------

    def acknowledge(self, stream: Stream, low: int, sacked: list[int]) -> None:
        """The receiver settled every number of `stream` below `low`, and those in `sacked`."""
        if stream.remote_ack is not None:  # the receiver end of a stream from another node
            stream.remote_ack(stream, low, sacked)
            return
        unacked = stream.unacked
        pending = self.state.pending
        book = self.state.book
        ids, attempts, latencies, mask = book.ids, book.attempts, book.latencies, book.mask
        now = self._now()
        settled = 0
        seqs: Iterable[int] = range(stream.acked, low)
        if low > stream.acked:
            stream.acked = low
        if sacked:
            seqs = [*seqs, *sacked]
        for seq in seqs:
            envelope = unacked.pop(seq, None)
            if envelope is None or envelope.settled_at is not None:
                continue  # acknowledged already, or failed (and skipped)
            message_id = envelope.message_id
            del pending[message_id]
            envelope.checks.queue.pop(message_id, None)  # (if it still awaits its first check)
            envelope.settled_at = now
            slot = message_id & mask  # its receipt, in the book's ring
            ids[slot] = message_id
            attempts[slot] = envelope.attempts
            latencies[slot] = now - envelope.started
            settled += 1
            if envelope.extra is not None:
                self._retries.settled(envelope.extra)
        self.state.acknowledged += settled
        if not unacked and stream.sender is not None and not stream.sender._cell.alive:
            stream.forget_if_idle()

    # --- retries ----------------------------------------------------------------------
