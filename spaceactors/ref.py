"""ActorRef: the handle through which everyone talks to an actor, and the mailbox it owns.

The mailbox is a bounded Trio memory channel that belongs to the ref, not to one incarnation of
the actor: messages queued while an actor restarts are handled by the next incarnation.
"""

from __future__ import annotations

import collections
import typing
from typing import TYPE_CHECKING, Any

import outcome
import trio

from spaceactors.checks import seconds
from spaceactors.control import ActorStatus, ControlCommand, GetStatus, Pause, Resume
from spaceactors.errors import AskTimeout, MailboxFull

if TYPE_CHECKING:
    from spaceactors.cell import ActorCell

CONTROL_TYPES: frozenset[type] = frozenset(typing.get_args(ControlCommand))
"""Control commands travel out of band: a paused actor with a full mailbox still gets `Resume`."""


class Ask:
    """A request in a mailbox: the message and the slot its reply goes to.

    The asker parks on the slot with ``trio.lowlevel.wait_task_rescheduled``; the actor resolves
    it with the handler's outcome. An asker that gave up (timeout, cancellation) abandons it, and
    a late reply then becomes a dead letter.
    """

    __slots__ = ("_abandoned", "_result", "_waiter", "message", "reply_to")

    def __init__(
        self,
        message: object,
        reply_to: typing.Callable[[outcome.Outcome[Any]], None] | None = None,
    ) -> None:
        self.message = message
        self._waiter: trio.lowlevel.Task | None = None
        self._result: outcome.Outcome[Any] | None = None
        self._abandoned = False
        self.reply_to = reply_to
        """Called with the reply instead of waking a waiter: a request from another node."""

    def resolve(self, result: outcome.Outcome[Any]) -> bool:
        """Deliver the reply (or error); False if the asker already gave up."""
        if self._abandoned or self._result is not None:
            return False
        waiter, self._waiter = self._waiter, None
        if waiter is None:
            self._result = result
            if self.reply_to is not None:
                self.reply_to(result)
        else:
            trio.lowlevel.reschedule(waiter, result)
        return True

    async def wait(self) -> Any:
        """Park until resolved; cancellation abandons the request."""
        if self._result is not None:
            await trio.lowlevel.checkpoint()
            return self._result.unwrap()
        self._waiter = trio.lowlevel.current_task()

        def abort(_: object) -> trio.lowlevel.Abort:
            self._waiter = None
            self._abandoned = True
            return trio.lowlevel.Abort.SUCCEEDED

        return await trio.lowlevel.wait_task_rescheduled(abort)


class ActorRef:
    """A handle on one actor: send it messages, ask it questions, stop it.

    Refs are cheap, safe to share and stay valid across restarts. Once the actor has stopped for
    good, every send raises `ActorUnavailable` and records a dead letter.
    """

    __slots__ = ("__weakref__", "_cell", "_queue", "_receive", "_send", "capacity", "id", "name")

    def __init__(self, actor_id: int, name: str, capacity: int, cell: ActorCell) -> None:
        self.id = actor_id
        self.name = name
        self.capacity = capacity
        self._cell = cell
        self._send: trio.MemorySendChannel[object]
        self._receive: trio.MemoryReceiveChannel[object]
        self._open_mailbox()

    def _open_mailbox(self) -> None:
        self._send, self._receive = trio.open_memory_channel(self.capacity)
        # The channel's buffer itself: its length is the mailbox's depth, read by an observer
        # in one step for each of thousands of actors (not through three private attributes).
        self._queue: collections.deque[object] = self._receive._state.data

    def __repr__(self) -> str:
        return f"<ActorRef #{self.id} {self.name!r}>"

    @property
    def alive(self) -> bool:
        """True until the actor stops for good (it stays alive while restarting)."""
        return self._cell.alive

    @property
    def mailbox_depth(self) -> int:
        """How many messages wait in the mailbox."""
        return len(self._queue)

    @property
    def mailbox_high_water(self) -> int:
        """The most messages the mailbox has held at once (since it was opened)."""
        return self._receive.statistics().peak_buffer_used

    def try_send(self, message: object) -> None:
        """Put `message` in the mailbox now, or raise.

        Raises:
            MailboxFull: the mailbox is at capacity; nothing was enqueued.
            ActorUnavailable: the actor has stopped for good (recorded as a dead letter).
        """
        if type(message) in CONTROL_TYPES:
            self._cell.control(message)
            return
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            raise MailboxFull(
                f"mailbox of {self.name!r} ({self.capacity} slots) is full; "
                "use `await send()` to wait for room"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._cell.unavailable(message) from None

    async def send(self, message: object) -> None:
        """Put `message` in the mailbox, waiting while it is full (backpressure).

        Takes the ``send_nowait`` fast path and only parks when the mailbox is full. A send that
        is cancelled while waiting enqueues nothing.

        Raises:
            ActorUnavailable: the actor has stopped for good (recorded as a dead letter).
        """
        if type(message) in CONTROL_TYPES:
            self._cell.control(message)
            return
        try:
            self._send.send_nowait(message)
            return
        except trio.WouldBlock:
            pass
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._cell.unavailable(message) from None
        try:
            await self._send.send(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise self._cell.unavailable(message) from None

    async def ask(self, message: object, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Send `message` and wait for the handler's return value.

        `timeout` (seconds) covers waiting for room in the mailbox, the handling and the reply.
        A `GetStatus` is answered by the runtime at once, even while the actor is busy or paused.

        Raises:
            AskTimeout: no reply within `timeout`.
            ActorCrashed: the handler raised; the exception is chained as ``__cause__``.
            ActorUnavailable: the actor has stopped for good, or stopped before answering.
            ValueError: `timeout` is not None or a number of seconds >= 0 (``math.inf``: no
                deadline); nothing was sent.
        """
        if timeout is not None and (type(timeout) is not float or not timeout >= 0.0):
            timeout = seconds("timeout", timeout, infinite=True)  # raises, or an int as float
        if type(message) is GetStatus:
            await trio.lowlevel.checkpoint()
            return self.status()
        request = Ask(message)
        if timeout is None:  # no deadline: skip the cancel scope (a third of an ask's cost)
            await self.send(request)
            return await request.wait()
        enqueued = False
        with trio.move_on_after(timeout):
            await self.send(request)
            enqueued = True
            return await request.wait()
        waiting = "for a reply" if enqueued else f"for room in its full mailbox ({self.capacity})"
        raise AskTimeout(
            f"ask {type(message).__name__} to {self.name!r} timed out after {timeout} s "
            f"waiting {waiting}"
        )

    def status(self) -> ActorStatus:
        """The actor's status now (what `GetStatus` answers)."""
        return self._cell.status()

    def pause(self) -> None:
        """Stop handling messages until `resume`; senders feel backpressure meanwhile."""
        self._cell.control(Pause())

    def resume(self) -> None:
        """Resume handling messages after `pause`."""
        self._cell.control(Resume())

    async def stop(self) -> None:
        """Stop the actor for good: `on_stop` runs (within its shutdown deadline), no restart."""
        await self._cell.stop()
