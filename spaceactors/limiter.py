"""Rate-limited sending: a token bucket and a flow controller in front of the router.

`RateLimitedSender.send` fails fast exactly as the seed's ``send_with_backpressure`` (no token:
`RateLimited`; no permit: `QueueFull`; otherwise whatever the router raises), `send_waiting`
waits for a token and a permit instead, and `submit` puts a message on a bounded outbound queue
that the ``limiter`` service drains at the sender's rate. The queues live in the senders, so a
restart of the service loses nothing.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

import attrs
import trio

from spaceactors.checks import positive
from spaceactors.errors import ActorNotFound, ActorUnavailable, QueueFull, RateLimited
from spaceactors.flow import BucketStats, FlowController, FlowStats, TokenBucket

if TYPE_CHECKING:
    from spaceactors.router import Router, Target

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
        ValueError: an argument is out of range (the message names it as passed here).
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
        rate = positive("rate", rate)
        if burst is None:  # the default burst must be a finite number of tokens too
            default = rate * BURST_SECONDS
            burst = positive(f"rate x {BURST_SECONDS:g} s (the default burst)", default)
        else:
            burst = positive("burst", burst)
        self.router = router
        self.flow = FlowController(max_concurrent, queue_limit)
        self.bucket = TokenBucket(burst, rate)
        self._outbound: collections.deque[tuple[Target, object]] = collections.deque()
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

        Raises:
            QueueFull: the outbound queue holds `queue_limit` messages (counted as dropped).
        """
        if len(self._outbound) >= self.flow.queue_limit:
            self.flow.dropped += 1
            raise QueueFull(
                f"the outbound queue is full ({self.flow.queue_limit} messages); "
                "send_waiting() applies backpressure instead"
            )
        self._outbound.append((target, message))
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
            self._outbound.popleft()  # only once sent: a restart resends what was cut short


@attrs.define
class Limiter:
    """The ``limiter`` service: drains every rate-limited sender's outbound queue."""

    _senders: list[RateLimitedSender] = attrs.field(factory=list)
    _nursery: trio.Nursery | None = None

    def register(self, sender: RateLimitedSender) -> None:
        """Serve `sender`'s outbound queue (from now on, and after every restart)."""
        self._senders.append(sender)
        if self._nursery is not None:
            self._nursery.start_soon(sender.drain)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Drain the outbound queues (run as a supervised service)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for sender in self._senders:
                    nursery.start_soon(sender.drain)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
