"""Flow control: a token bucket for rates and a flow controller for concurrency.

Both are plain state objects driven by ``trio.current_time()``, so they behave the same in real
and virtual time. The seed's versions refilled only per whole second, could lose tokens in a
compare-and-swap race and let the permit queue grow without bound; these do none of that.
"""

from __future__ import annotations

import collections
from types import TracebackType

import attrs
import trio

from spaceactors.checks import integer, positive, short_repr
from spaceactors.errors import QueueFull

_NUMBERS = frozenset({int, float})  # a type check cheap enough for try_take's hot path


@attrs.frozen
class BucketStats:
    """A token bucket's state: tokens available now, capacity, refill rate, queued takers."""

    available: float
    capacity: float
    rate: float
    waiting: int


class _Taker:
    __slots__ = ("n", "turn")

    def __init__(self, n: float) -> None:
        self.n = n
        self.turn = trio.Event()


class TokenBucket:
    """Admits work at `rate` tokens per second with bursts up to `capacity`.

    Refill is continuous and lazy: tokens are computed from ``trio.current_time()`` when asked
    for (half a second at rate 2 gives exactly one token). Takers are served in arrival order.
    The bucket starts full.

    Raises:
        ValueError: `capacity` or `rate` is not a finite number > 0.
    """

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity = positive("capacity", capacity)
        self.rate = positive("rate", rate)
        self._tokens = self.capacity
        # Both set on first use, since a bucket may be built outside Trio.
        self._clock: trio.abc.Clock | None = None  # the clock of the run it was last used in
        self._stamp = 0.0  # when _tokens was last brought up to date
        # Floating-point refill can land a hair short of a whole token at its deadline.
        self._slack = 1e-9 * self.capacity
        self._queue: collections.deque[_Taker] = collections.deque()

    @property
    def available(self) -> float:
        """Tokens available now."""
        self._take_now(0.0)  # refills
        return self._tokens

    def stats(self) -> BucketStats:
        """A snapshot of the bucket."""
        return BucketStats(self.available, self.capacity, self.rate, len(self._queue))

    def try_take(self, n: float = 1) -> bool:
        """Take `n` tokens now if they are there and nobody is queued before us.

        Raises:
            ValueError: `n` is not in (0, capacity].
        """
        if type(n) not in _NUMBERS or not 0 < n <= self.capacity:
            self._check(n)  # raises, naming the problem
        return not self._queue and self._take_now(n)

    async def take(self, n: float = 1) -> None:
        """Take `n` tokens, sleeping exactly until they exist; takers are served FIFO.

        Cancel-safe: a taker cancelled while waiting takes nothing and keeps nobody waiting.

        Raises:
            ValueError: `n` is not in (0, capacity].
        """
        self._check(n)
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._queue and self._take_now(n):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        me = _Taker(n)
        self._queue.append(me)
        try:
            while True:
                if self._queue[0] is not me:
                    await me.turn.wait()
                elif self._take_now(n):
                    return
                else:
                    await trio.sleep_until(self._stamp + (n - self._tokens) / self.rate)
        finally:
            head = self._queue[0] is me
            self._queue.remove(me)
            if head and self._queue:
                self._queue[0].turn.set()

    def _check(self, n: float) -> None:
        if isinstance(n, bool) or not isinstance(n, int | float) or not 0 < n <= self.capacity:
            raise ValueError(
                f"can only take between 0 and the capacity ({self.capacity:g}) tokens, "
                f"got {short_repr(n)}"
            )

    def _take_now(self, n: float) -> bool:
        """Refill from the clock, then take `n` if there; the one place tokens change."""
        clock = trio.lowlevel.current_clock()  # cheaper than trio.current_time()
        if clock is not self._clock:  # first use, or a bucket carried into another trio.run
            self._clock = clock
            self._stamp = clock.current_time()
        now = clock.current_time()
        tokens = self._tokens + (now - self._stamp) * self.rate
        if tokens > self.capacity:
            tokens = self.capacity
        self._stamp = now
        if tokens + self._slack >= n:
            tokens -= n
            self._tokens = tokens if tokens > 0.0 else 0.0
            return True
        self._tokens = tokens
        return False


@attrs.frozen
class FlowStats:
    """A flow controller's state (the seed's fields, plus who is waiting)."""

    current: int
    limit: int
    queue_limit: int
    waiting: int
    dropped: int
    available: int


class Permit:
    """One unit of concurrency from a `FlowController`; release it (or use it as a context
    manager, sync or async) and it goes back exactly once."""

    __slots__ = ("_flow", "_released")

    def __init__(self, flow: FlowController) -> None:
        self._flow = flow
        self._released = False

    def release(self) -> None:
        """Give the permit back (idempotent)."""
        if not self._released:
            self._released = True
            self._flow._semaphore.release()

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> Permit:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class FlowController:
    """At most `max_concurrent` permits out at once, and at most `queue_limit` tasks waiting.

    `try_acquire` never waits; `acquire` waits in FIFO order (cancel-safe) unless the queue of
    waiters is already full. Every refusal is counted in `dropped`, so the queue of would-be
    senders can never grow without bound.

    Raises:
        ValueError: `max_concurrent` is not an int >= 1, or `queue_limit` an int >= 0.
    """

    def __init__(self, max_concurrent: int, queue_limit: int) -> None:
        integer("max_concurrent", max_concurrent, low=1)
        integer("queue_limit", queue_limit)
        self.limit = max_concurrent
        self.queue_limit = queue_limit
        self.dropped = 0
        self._waiting = 0
        self._semaphore = trio.Semaphore(max_concurrent)

    def try_acquire(self) -> Permit:
        """A permit now, or `QueueFull` (counted as dropped)."""
        try:
            self._semaphore.acquire_nowait()
        except trio.WouldBlock:
            self.dropped += 1
            raise QueueFull(
                f"all {self.limit} permits are in use; try again later or use `await acquire()`"
            ) from None
        return Permit(self)

    async def acquire(self) -> Permit:
        """Wait for a permit (FIFO, cancel-safe).

        Raises:
            QueueFull: `queue_limit` tasks already wait (counted as dropped).
        """
        if self._semaphore.value == 0 and self._waiting >= self.queue_limit:
            self.dropped += 1
            await trio.lowlevel.checkpoint()
            raise QueueFull(
                f"all {self.limit} permits are in use and {self._waiting} tasks already wait "
                f"(queue limit {self.queue_limit})"
            )
        self._waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
        return Permit(self)

    def stats(self) -> FlowStats:
        """A snapshot: permits in use, limits, waiters, refusals, permits available."""
        available = self._semaphore.value
        return FlowStats(
            current=self.limit - available,
            limit=self.limit,
            queue_limit=self.queue_limit,
            waiting=self._waiting,
            dropped=self.dropped,
            available=available,
        )
