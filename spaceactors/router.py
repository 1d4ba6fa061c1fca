"""The router: point-to-point, broadcast and publish/subscribe over the registry, with statistics.

The data path is direct: the sender's own task resolves the target and puts the message in its
mailbox; no router task sits in between. What the router keeps (topic tables, counters) lives in
a `RouterState` owned by the system, so nothing is lost when a task that uses it fails.

Counters are keyed by message *class*, not by a name built per message; names appear only when
`Router.stats` is read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from spaceactors.checks import seconds, short_repr
from spaceactors.control import GetStatus
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.delivery import DeliverySchedule, Scheduled
from spaceactors.errors import ActorNotFound, ActorUnavailable, MailboxFull, PublishFailed
from spaceactors.ref import CONTROL_TYPES, ActorRef
from spaceactors.registry import check_sender
from spaceactors.service import ServiceLife
from spaceactors.topics import Delivery, TopicTable
from spaceactors.trace import EventKind

if TYPE_CHECKING:
    from spaceactors.limiter import Limiter
    from spaceactors.system import ActorSystem

DEAD_LETTERS_TOPIC = "dead_letters"
"""Subscribe to this topic to receive every `DeadLetter` as it is recorded."""

Target = ActorRef | int | str


def check_policy(policy: object) -> None:
    """Raise `ValueError` unless `policy` is a `Delivery`."""
    if not isinstance(policy, Delivery):
        raise ValueError(f"policy must be a sa.Delivery, got {short_repr(policy)}")


def check_schedulable(message: object) -> None:
    """Raise `ValueError` for a message that cannot be sent later (it needs a reply now)."""
    if type(message) is GetStatus:
        raise ValueError(
            "GetStatus has a reply: use `await ref.ask(GetStatus())` or `ref.status()`"
        )


@attrs.frozen
class RouterStats:
    """A snapshot of what went through the router.

    Attributes:
        total_messages: deliveries made through the router (route, broadcast, publish).
        by_type: deliveries per message class name.
        failed_deliveries: sends that raised (unknown or stopped target, full mailbox under
            the ``fail`` policy).
        dropped: deliveries dropped under the ``drop_newest`` policy.
        publishes_without_subscribers: publishes that reached nobody.
        dead_letters: dead letters recorded since the system started, by reason.
        active_actors: live actors in the registry.
        subscribers: subscribers per topic or pattern.
        mailbox_high_water: for each live actor, the most messages its mailbox ever held.
    """

    total_messages: int
    by_type: Mapping[str, int]
    failed_deliveries: int
    dropped: int
    publishes_without_subscribers: int
    dead_letters: Mapping[str, int]
    active_actors: int
    subscribers: Mapping[str, int]
    mailbox_high_water: Mapping[str, int]


@attrs.define
class RouterState:
    """Everything the router remembers; owned by the system, so it outlives any task."""

    delivered: dict[type, int] = attrs.field(factory=dict)
    failed: int = 0
    dropped: int = 0
    unheard: int = 0
    topics: TopicTable = attrs.field(factory=TopicTable)
    schedule: DeliverySchedule = attrs.field(factory=DeliverySchedule)

    def count(self, cls: type, n: int = 1) -> None:
        """Count `n` deliveries of messages of class `cls` (none: no entry for the class)."""
        if n:
            self.delivered[cls] = self.delivered.get(cls, 0) + n


class Router:
    """Routes messages to actors by ref, id or name; broadcasts; publishes to topics.

    Available as ``system.router``. An actor is routable from the moment `spawn` returns until
    it stops; a stopped actor leaves all its topics.
    """

    def __init__(self, system: ActorSystem) -> None:
        self._system = system
        self.state = RouterState()
        self._delivered = self.state.delivered  # (the hot path's; never replaced, only updated)
        if system.tap is not None:  # (set once, before the router is made)
            self.route = self._route_through_tap  # type: ignore[method-assign]
        self.life = ServiceLife("router")
        system.dead_letters.listeners.append(self._announce_dead_letter)

    def stopping(self, life: ServiceLife | None = None) -> bool:
        """Whether `refuse_if_stopped` would refuse now: the router (or the service `life`
        tells of) has stopped, or the services are stopping. Cheap: callers test it before
        putting the words of a refusal together."""
        return (life or self.life).stopped or not self._system.services.running

    def refuse_if_stopped(self, action: str, life: ServiceLife | None = None) -> None:
        """Raise `ActorUnavailable` if the router (or the service `life` tells of) has stopped
        for good: after leaving `open_system`, or once the services are shut down."""
        refusal = (life or self.life).refusal(self._system.services, action)
        if refusal is not None:
            raise refusal

    @property
    def limiter(self) -> Limiter:
        """The ``limiter`` service that drains rate-limited senders' outbound queues."""
        return self._system.limiter

    # --- point to point ---------------------------------------------------------------

    def resolve(self, target: Target, message: object, sender: ActorRef | None = None) -> ActorRef:
        """The live actor `target` names; an unknown target is a dead letter.

        Raises:
            ActorNotFound: nothing live has that id or name (recorded as a dead letter).
            TypeError: `target` is not an `ActorRef`, an int or a str, or `sender` is not an
                `ActorRef` or None (nothing is recorded: the call is refused).
        """
        if sender is not None and type(sender) is not ActorRef:
            check_sender(sender)
        try:
            return self._system.registry.resolve(target)
        except ActorNotFound as exc:
            self.state.failed += 1
            self._system.dead_letters.record(
                DeadLetter(
                    trio.current_time(),
                    target if isinstance(target, str) else short_repr(target),
                    message,
                    DeadLetterReason.UNKNOWN_ACTOR,
                    str(exc),
                    sender=None if sender is None else sender.name,
                )
            )
            raise

    async def route(self, target: Target, message: object, sender: ActorRef | None = None) -> None:
        """Send `message` to the actor `target` names, waiting while its mailbox is full.

        Raises:
            ActorNotFound: nothing live has that id or name (recorded as a dead letter).
            ActorUnavailable: the actor has stopped (recorded as a dead letter).
            TypeError: `target` is not an `ActorRef`, an int or a str (nothing is sent).
        """
        # The hot path of every tell (benchmarked: `benchmarks.routing`). A system with a tap
        # (a trace, a fault plan) routes through `_route_through_tap` instead (bound in
        # `__init__`); `sender` is positional-or-keyword, as a keyword-only default costs a
        # lookup on every call.
        cls = type(message)
        if cls in CONTROL_TYPES:
            await self._route_control(target, message, sender)
            return
        if sender is not None and type(sender) is not ActorRef:
            check_sender(sender)  # (refused whatever the target, as `resolve` does)
        ref = target if type(target) is ActorRef else self.resolve(target, message, sender)
        try:
            try:
                ref._send.send_nowait(message)  # ActorRef.send's fast path, inlined
            except trio.WouldBlock:
                await ref._send.send(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            self.state.failed += 1
            raise ref._cell.unavailable(message, sender) from None
        try:  # (a raise is free when none comes: cheaper than ``get`` on every message)
            self._delivered[cls] += 1
        except KeyError:
            self._delivered[cls] = 1

    async def _route_through_tap(
        self, target: Target, message: object, sender: ActorRef | None = None
    ) -> None:
        """`route` in a system with a tap: traced, and the fault plan applied."""
        if type(message) in CONTROL_TYPES:
            await self._route_control(target, message, sender)
            return
        if sender is not None and type(sender) is not ActorRef:
            check_sender(sender)
        ref = target if type(target) is ActorRef else self.resolve(target, message, sender)
        await self._route_tapped(ref, message, sender)

    async def _route_control(
        self, target: Target, message: object, sender: ActorRef | None
    ) -> None:
        """A control command never waits for room (it takes the out-of-band lane)."""
        self.try_route(target, message, sender=sender)
        await trio.lowlevel.checkpoint()

    def try_route(self, target: Target, message: object, *, sender: ActorRef | None = None) -> None:
        """Like `route`, but raises `MailboxFull` instead of waiting."""
        ref = self.resolve(target, message, sender)
        copies = 1 if self._system.tap is None else self._transmit(ref, message, sender)
        if not copies:
            return  # lost on the way (a fault): the sender cannot tell
        try:
            ref.try_send(message)
        except (ActorUnavailable, MailboxFull):
            self.state.failed += 1
            raise
        self.state.count(type(message), 1 + self._extra_copies(ref, message, copies - 1))

    async def _route_tapped(self, ref: ActorRef, message: object, sender: ActorRef | None) -> None:
        """`route` through the tap: traced, and the fault plan applied. If it is cancelled
        (or the actor stops) while waiting for room, the copies a fault held back are called
        off too: a failed send leaves nothing behind (`sender` is checked by the caller)."""
        held: list[Scheduled] = []
        copies = self._transmit(ref, message, sender, held=held)
        try:
            if not copies:
                await trio.lowlevel.checkpoint()  # lost on the way; still a checkpoint
                return
            try:
                await ref.send(message)
            except ActorUnavailable:
                self.state.failed += 1
                raise
        except BaseException:
            for entry in held:
                entry.cancel()
            raise
        self.state.count(type(message), 1 + self._extra_copies(ref, message, copies - 1))

    def _extra_copies(self, ref: ActorRef, message: object, extra: int) -> int:
        """Deliver the copies a duplicating fault added: never waiting, never failing the send
        (the first copy went out already). Returns how many got in."""
        delivered = 0
        for _ in range(extra):
            with contextlib.suppress(MailboxFull, ActorUnavailable):
                ref.try_send(message)
                delivered += 1
        return delivered

    def _transmit(
        self,
        ref: ActorRef,
        message: object,
        sender: ActorRef | None,
        topic: str | None = None,
        held: list[Scheduled] | None = None,
    ) -> int:
        """How many copies to deliver now; the tap schedules any it holds back (into `held`)."""
        assert self._system.tap is not None
        if type(message) in CONTROL_TYPES:
            return 1  # commands to the runtime are not network traffic
        return self._system.tap.transmit(
            ref,
            message,
            sender,
            self.state.schedule,
            topic=topic,
            report=self._count_scheduled,
            held=held,
        )

    async def ask(
        self,
        target: Target,
        message: object,
        timeout: float | None = None,  # noqa: ASYNC109 - the public ask contract
        *,
        sender: ActorRef | None = None,
    ) -> Any:
        """`ActorRef.ask` the actor `target` names; counted once answered, or as a failure.

        Raises:
            ValueError: `timeout` is not None or seconds >= 0; nothing was sent.
            ActorNotFound, AskTimeout, ActorCrashed, ActorUnavailable: as `ActorRef.ask`.
        """
        if timeout is not None:
            timeout = seconds("timeout", timeout, infinite=True)
        ref = self.resolve(target, message, sender)
        if self._system.tap is not None:  # traced; asks are not fault-injected
            peer = None if sender is None else sender.name
            self._system.tap.record(EventKind.SEND, ref.name, peer=peer, message=message)
        try:
            result = await ref.ask(message, timeout)
        except ActorUnavailable:
            self.state.failed += 1
            raise
        self.state.count(type(message))
        return result

    def send_later(
        self, delay: float, target: Target, message: object, *, sender: ActorRef | None = None
    ) -> Scheduled:
        """Deliver `message` to the actor `target` names after `delay` seconds.

        The target is resolved now; the router's delivery service sends it when due (messages
        due at the same instant go out in the order they were scheduled). `cancel()` the
        returned entry to call it off.

        Raises:
            ActorNotFound: nothing live has that id or name (recorded as a dead letter).
            ActorUnavailable: the target has stopped, or the router has (after leaving
                `open_system`, or while the services shut down); nothing is scheduled.
            TypeError: `target` is not an `ActorRef`, an int or a str.
            ValueError: `delay` is not a finite number >= 0, or `message` is a `GetStatus`.
        """
        delay = seconds("delay", delay)
        check_schedulable(message)
        if self.stopping():  # (the words of the action are made only for a refusal)
            self.refuse_if_stopped(f"send {type(message).__name__} later")
        ref = self.resolve(target, message, sender)
        if not ref.alive:
            raise ref._cell.unavailable(message, sender)
        return self.state.schedule.add(ref, delay, message, report=self._count_scheduled)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The router's service task: delayed delivery (supervised under ``services``)."""
        with self.life.running():
            await self.state.schedule.serve(task_status)

    # --- one to many ----------------------------------------------------------------------

    async def broadcast(
        self, message: object, *, sender: ActorRef | None = None, policy: Delivery = Delivery.BLOCK
    ) -> int:
        """Send `message` to every live actor except `sender`, each once.

        On a node of a cluster (``open_system(cluster=...)``) it goes to every other live
        node too, whose actors get it (`broadcast_here`); the count is this node's.

        Returns:
            How many actors (of this node) got it.

        Raises:
            PublishFailed: with ``policy=Delivery.FAIL``, some mailboxes were full.
            ActorUnavailable: the router has stopped (after leaving `open_system`, or while
                the services shut down).
            TypeError: `sender` is not an `ActorRef` or None.
            ValueError: `policy` is not a `Delivery`.
        """
        check_sender(sender)
        check_policy(policy)
        if self.stopping():  # (the words of the action are made only for a refusal)
            self.refuse_if_stopped(f"broadcast {type(message).__name__}")
        node = self._system.node
        relay = None if node is None else node.relaying(message)  # EncodeError: nothing sent
        delivered = await self.broadcast_here(message, sender=sender, policy=policy)
        if relay is not None:
            await relay()
        return delivered

    async def broadcast_here(
        self, message: object, *, sender: ActorRef | None = None, policy: Delivery = Delivery.BLOCK
    ) -> int:
        """`broadcast` to the actors of this system only (what another node's broadcast does
        here): returns how many got it."""
        receivers = {ref: policy for ref in self._system.registry.refs() if ref is not sender}
        return await self._fan_out("broadcast", receivers, message, sender)

    def subscribe(self, ref: Target, topic: str, *, policy: Delivery = Delivery.BLOCK) -> None:
        """Subscribe the actor `ref` names (a ref, an id or a name) to a topic, or to a
        pattern ending in ``.*`` (or ``*`` for all).

        Raises:
            InvalidTopic: the topic is malformed.
            ActorNotFound: no live actor has that id or name.
            ActorUnavailable: the actor has stopped, or the router has (after leaving
                `open_system`, or while the services shut down).
            TypeError: `ref` is not an `ActorRef`, an int or a str.
            ValueError: `policy` is not a `Delivery`.
        """
        check_policy(policy)
        actor = self._system.registry.resolve(ref)
        if self.stopping():  # (the words of the action are made only for a refusal)
            self.refuse_if_stopped(f"subscribe {actor.name!r} to {short_repr(topic)}")
        if not actor.alive:
            raise ActorUnavailable(f"actor {actor.name!r} has stopped; it cannot subscribe")
        self.state.topics.subscribe(actor, topic, policy)
        if self._system.node is not None:  # (a reliable publish from another node reaches it)
            self._system.node.subscription(actor, topic, True)

    def unsubscribe(self, ref: Target, topic: str) -> bool:
        """Remove the subscription of the actor `ref` names to `topic`; False if it had none
        (an actor that has stopped has none left).

        Raises:
            InvalidTopic: the topic is malformed.
            ActorNotFound: no live actor has that id or name.
            TypeError: `ref` is not an `ActorRef`, an int or a str.
        """
        actor = self._system.registry.resolve(ref)
        removed = self.state.topics.unsubscribe(actor, topic)
        if removed and self._system.node is not None:
            self._system.node.subscription(actor, topic, False)
        return removed

    def subscribers(self, topic: str) -> list[ActorRef]:
        """Who a publish to `topic` would reach now."""
        return list(self.state.topics.match(topic))

    async def publish(self, topic: str, message: object, *, sender: ActorRef | None = None) -> int:
        """Send `message` to every subscriber of `topic` (wildcards included), each once.

        Each subscriber's policy decides what happens if its mailbox is full. A topic nobody
        listens to is not an error: it returns 0 and is counted. On a node of a cluster it
        goes to every other live node too, whose subscribers get it (`publish_here`); the
        count is this node's.

        Returns:
            How many subscribers (of this node) got it.

        Raises:
            InvalidTopic: the topic is malformed.
            PublishFailed: subscribers with the ``fail`` policy had a full mailbox.
            ActorUnavailable: the router has stopped (after leaving `open_system`, or while
                the services shut down).
            TypeError: `sender` is not an `ActorRef` or None.
            EncodeError: on a node of a cluster, `message` cannot be encoded (nothing is
                sent, here or there).
        """
        if not self.life.serving:
            self.refuse_if_stopped(f"publish to {short_repr(topic)}")
        node = self._system.node
        if node is None:
            return await self.publish_here(topic, message, sender=sender)
        relay = node.relaying(message, topic=topic)  # EncodeError: nothing sent
        delivered = await self.publish_here(topic, message, sender=sender)
        await relay()
        return delivered

    async def publish_here(
        self, topic: str, message: object, *, sender: ActorRef | None = None
    ) -> int:
        """`publish` to the subscribers of this system only (what another node's publish does
        here): returns how many got it."""
        receivers = self.state.topics.match(topic)
        if sender is not None:
            check_sender(sender)
            receivers.pop(sender, None)
        if not receivers:
            self.state.unheard += 1
            await trio.lowlevel.checkpoint()
            return 0
        return await self._fan_out(f"publish to {topic!r}", receivers, message, sender, topic)

    async def _fan_out(
        self,
        what: str,
        receivers: Mapping[ActorRef, Delivery],
        message: object,
        sender: ActorRef | None,
        topic: str | None = None,
    ) -> int:
        if type(message) in CONTROL_TYPES:
            for ref in receivers:
                ref.try_send(message)
            self.state.count(type(message), len(receivers))
            await trio.lowlevel.checkpoint()
            return len(receivers)
        delivered = 0
        too_slow: list[str] = []
        tapped = self._system.tap is not None
        copies = 1
        try:
            for ref, policy in receivers.items():
                if tapped:
                    copies = self._transmit(ref, message, sender, topic)
                    if not copies:
                        continue  # lost (or held back) on the way: the sender cannot tell
                try:
                    ref._send.send_nowait(message)  # the mailbox fast path, without a coroutine
                except trio.WouldBlock:
                    if not await self._full(ref, message, policy, too_slow):
                        continue
                except (trio.ClosedResourceError, trio.BrokenResourceError):
                    self.state.failed += 1  # it stopped since the lookup: a dead letter
                    ref._cell.unavailable(message)
                    continue
                delivered += 1 + self._extra_copies(ref, message, copies - 1)
        finally:  # also when a blocked delivery is cancelled: count what did go out
            self.state.count(type(message), delivered)
        await trio.lowlevel.checkpoint()
        if too_slow:
            raise PublishFailed(what, delivered, too_slow)
        return delivered

    async def _full(
        self, ref: ActorRef, message: object, policy: Delivery, too_slow: list[str]
    ) -> bool:
        """Apply `policy` to a full mailbox; True if the message was delivered after all."""
        if policy is Delivery.BLOCK:
            try:
                await ref.send(message)
            except ActorUnavailable:
                self.state.failed += 1
                return False
            return True
        if policy is Delivery.DROP_NEWEST:
            self.state.dropped += 1
            ref._cell.dead_letter(
                message, DeadLetterReason.DROPPED_SLOW_RECEIVER, "mailbox full (drop_newest)"
            )
            return False
        self.state.failed += 1
        too_slow.append(ref.name)
        return False

    # --- dead letters and statistics --------------------------------------------------

    def _announce_dead_letter(self, letter: DeadLetter) -> None:
        # Only explicit subscribers (a "*" catch-all would feed on its own crashes); never
        # blocks and never makes dead letters of its own: a full subscriber misses the notice,
        # and the letter stays in system.dead_letters.
        for ref in self.state.topics.exact(DEAD_LETTERS_TOPIC):
            with contextlib.suppress(
                trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError
            ):
                ref._send.send_nowait(letter)

    def _count_scheduled(self, entry: Scheduled, delivered: bool) -> None:
        if delivered:
            self.state.count(type(entry.message))
        else:
            self.state.failed += 1

    def forget(self, ref: ActorRef) -> None:
        """Drop everything the router holds about a stopped actor."""
        node = self._system.node
        if node is not None and ref in self.state.topics.by_actor():
            node.subscription(ref, "", False)
        self.state.topics.forget(ref)

    def close(self) -> None:
        """The system has closed: each message its schedule still held for an actor
        (`send_later`, a copy a fault plan held back) becomes a dead letter, reason
        ``unsent_at_close``, so that nothing scheduled vanishes silently."""
        for entry in self.state.schedule.abandon():
            assert entry.ref is not None  # abandon() keeps only messages for an actor
            entry.ref._cell.dead_letter(
                entry.message,
                DeadLetterReason.UNSENT_AT_CLOSE,
                f"the system closed {entry.deadline - trio.current_time():g} s before it was due",
            )

    def stats(self) -> RouterStats:
        """A snapshot of the router's statistics."""
        state = self.state
        letters = self._system.dead_letters
        refs = self._system.registry.refs()
        return RouterStats(
            total_messages=sum(state.delivered.values()),
            by_type={cls.__name__: n for cls, n in state.delivered.items()},
            failed_deliveries=state.failed,
            dropped=state.dropped,
            publishes_without_subscribers=state.unheard,
            dead_letters={reason.value: n for reason, n in letters.by_reason.items()},
            active_actors=len(refs),
            subscribers=state.topics.counts(),
            mailbox_high_water={ref.name: ref.mailbox_high_water for ref in refs},
        )
