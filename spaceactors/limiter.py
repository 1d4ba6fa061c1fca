"""Rate-limited sending: a token bucket and a flow controller in front of the router.

`RateLimitedSender.send` fails fast exactly as the seed's ``send_with_backpressure`` (no token:
`RateLimited`; no permit: `QueueFull`; otherwise whatever the router raises), `send_waiting`
waits for a token and a permit instead, and `submit` puts a message on a bounded outbound queue
that the ``limiter`` service drains at the sender's rate. The queues live in the senders, so a
restart of the service loses nothing.

`submit` checks its target at the call; a queued message that still cannot be sent (its actor
stopped meanwhile, or an unexpected error) becomes a dead letter, and the queue goes on: one bad
request never stops the service.
"""

from __future__ import annotations

import collections
import logging
from typing import TYPE_CHECKING

import attrs
import trio

from spaceactors.checks import describe, positive, short_repr
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.errors import ActorNotFound, ActorUnavailable, QueueFull, RateLimited
from spaceactors.flow import BucketStats, FlowController, FlowStats, TokenBucket
from spaceactors.ref import ActorRef
from spaceactors.router import Router, check_schedulable
from spaceactors.service import ServiceLife

if TYPE_CHECKING:
    from spaceactors.router import Target

logger = logging.getLogger("spaceactors.limiter")

BURST_SECONDS = 10.0
"""Default burst: as many tokens as `BURST_SECONDS` of refill (the seed's 10-second burst)."""


class RateLimitedSender:
    """Sends through `router` at most `rate` messages per second and `max_concurrent` at once.

    Args:
        router: the system's router (``system.router``).
        max_concurrent: sends in flight at once (a send in flight may wait for mailbox room).
        queue_limit: senders allowed to wait for a permit, and the outbound queue's length.
        rate: messages per second.
        burst: bucket capacity (default: `BURST_SECONDS` of `rate`).

    Raises:
        ValueError: an argument is out of range or of the wrong type (the message names it
            as passed here), or `router` is not a `Router`.
    """

    def __init__(
        self,
        router: Router,
        max_concurrent: int,
        queue_limit: int,
        rate: float,
        *,
        burst: float | None = None,
    ) -> None:
        if not isinstance(router, Router):
            raise ValueError(
                f"router must be the system's router (system.router), got {short_repr(router)}"
            )
        rate = positive("rate", rate)
        if burst is None:  # the default burst must be a finite number of tokens too
            default = rate * BURST_SECONDS
            burst = positive(f"rate x {BURST_SECONDS:g} s (the default burst)", default)
        else:
            burst = positive("burst", burst)
        self.router = router
        self.flow = FlowController(max_concurrent, queue_limit)
        self.bucket = TokenBucket(burst, rate)
        self._outbound: collections.deque[tuple[ActorRef, object]] = collections.deque()
        self._queued = trio.Event()
        router.limiter.register(self)

    async def send(self, target: Target, message: object) -> None:
        """Send now or fail at once.

        Raises:
            RateLimited: no token is available.
            QueueFull: every permit is in use.
            ActorNotFound, ActorUnavailable: as `Router.route`.
        """
        if not self.bucket.try_take():
            raise RateLimited(
                f"over the rate of {self.bucket.rate:g} messages/s "
                f"(burst {self.bucket.capacity:g}); use send_waiting() to wait for a token"
            )
        with self.flow.try_acquire():
            await self.router.route(target, message)

    async def send_waiting(self, target: Target, message: object) -> None:
        """Wait for a permit and a token (FIFO, cancel-safe), then send.

        Raises:
            QueueFull: `queue_limit` senders already wait for a permit.
            ActorNotFound, ActorUnavailable: as `Router.route`.
        """
        with await self.flow.acquire():
            await self.bucket.take()
            await self.router.route(target, message)

    def submit(self, target: Target, message: object) -> None:
        """Queue `message` for the ``limiter`` service to send at this sender's rate.

        The target is looked up now (as `Router.route` does); if its actor stops before the
        message goes out, the message becomes a dead letter and the queue goes on.

        Raises:
            QueueFull: the outbound queue holds `queue_limit` messages (counted as dropped).
            ActorNotFound: no live actor has that id or name (recorded as a dead letter).
            ActorUnavailable: the actor has stopped (recorded as a dead letter), or the
                ``limiter`` service has (after leaving `open_system`, or while the services
                shut down): nothing would send it.
            TypeError: `target` is not an `ActorRef`, an int or a str.
            ValueError: `message` is a `GetStatus` (ask for it instead).
        """
        check_schedulable(message)
        life = self.router.limiter.life
        if self.router.stopping(life):  # (the words are made only for a refusal)
            self.router.refuse_if_stopped(f"submit {type(message).__name__}", life)
        ref = self.router.resolve(target, message)
        if not ref.alive:
            raise ref._cell.unavailable(message)
        if len(self._outbound) >= self.flow.queue_limit:
            self.flow.dropped += 1
            raise QueueFull(
                f"the outbound queue is full ({self.flow.queue_limit} messages); "
                "send_waiting() applies backpressure instead"
            )
        self._outbound.append((ref, message))
        self._queued.set()

    @property
    def queued(self) -> int:
        """Messages waiting in the outbound queue."""
        return len(self._outbound)

    def flow_stats(self) -> FlowStats:
        """The flow controller's statistics."""
        return self.flow.stats()

    def rate_stats(self) -> BucketStats:
        """The token bucket's statistics."""
        return self.bucket.stats()

    async def drain(self) -> None:
        """Send the outbound queue forever, in order (run by the ``limiter`` service)."""
        while True:
            if not self._outbound:
                self._queued = trio.Event()
                await self._queued.wait()
                continue
            target, message = self._outbound[0]
            try:
                await self.send_waiting(target, message)
            except QueueFull:
                # Callers of send_waiting fill the permit queue: wait a token's time, retry.
                await trio.sleep(1.0 / self.bucket.rate)
                continue
            except (ActorNotFound, ActorUnavailable):
                pass  # a dead letter already; the queue goes on
            except Exception as exc:  # one bad request never takes the service down
                self._failed(target, message, exc)
            self._outbound.popleft()  # only once sent: a restart resends what was cut short

    def _failed(self, target: ActorRef, message: object, exc: Exception) -> None:
        logger.warning("the limiter could not send %r to %r", message, target, exc_info=exc)
        self.router.state.failed += 1
        target._cell.system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                target.name,
                message,
                DeadLetterReason.SERVICE_FAILED,
                f"the limiter could not send it: {describe(exc)}",
            )
        )


@attrs.define
class Limiter:
    """The ``limiter`` service: drains every rate-limited sender's outbound queue."""

    _senders: list[RateLimitedSender] = attrs.field(factory=list)
    _nursery: trio.Nursery | None = None
    life: ServiceLife = attrs.field(factory=lambda: ServiceLife("limiter"))
    closed: bool = False

    def close(self) -> None:
        """The system has closed: each message still queued in a sender becomes a dead letter
        (``unsent_at_close``), so that nothing accepted vanishes silently."""
        self.closed = True
        for sender in self._senders:
            while sender._outbound:
                target, message = sender._outbound.popleft()
                target._cell.dead_letter(
                    message,
                    DeadLetterReason.UNSENT_AT_CLOSE,
                    "still queued in a RateLimitedSender when the system closed",
                )

    def register(self, sender: RateLimitedSender) -> None:
        """Serve `sender`'s outbound queue (from now on, and after every restart).

        Raises:
            ActorUnavailable: the system has closed: nothing would ever drain the queue.
        """
        if self.closed:
            raise ActorUnavailable(
                "the limiter service has stopped (the system is closed); "
                "cannot make a RateLimitedSender"
            )
        self._senders.append(sender)
        if self._nursery is not None:
            self._nursery.start_soon(sender.drain)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drain the outbound queues (run as a supervised service)."""
        try:
            with self.life.running():
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    for sender in self._senders:
                        nursery.start_soon(sender.drain)
                    task_status.started()
                    await trio.sleep_forever()
        finally:
            self._nursery = None
