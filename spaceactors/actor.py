"""Actors: the `Actor` base class users subclass, its `ActorContext`, and its `Timer`.

These are the user's side of an actor; `spaceactors.cell` holds the runtime that runs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spaceactors import checks
from spaceactors.delivery import Scheduled
from spaceactors.ref import ActorRef
from spaceactors.topics import Delivery

if TYPE_CHECKING:
    from spaceactors.cell import ActorCell
    from spaceactors.system import ActorSystem


CHECKPOINT_EVERY = 64
"""Messages an actor handles back to back before it yields to other tasks."""


class Actor:
    """Base class of user actors.

    Override `handle` (and optionally `on_start`, `on_stop`). ``self.ctx`` is set before
    `on_start` runs. An exception from `handle` crashes this incarnation: the supervisor then
    applies the child's restart policy to a fresh instance built with the same arguments.

    A checkpoint saves the actor's attributes (``__dict__`` and ``__slots__``, without
    ``ctx``) when they hold only values it can save (see "State a checkpoint saves" in the
    actors guide). A class may instead define both of these optional methods (the base class
    has neither):

    - ``snapshot_state(self) -> object``: the value to save in place of the attributes;
    - ``restore_state(self, state: object) -> None``: called with that value on an instance
      built with ``cls.__new__`` (``__init__`` does not run) when a run resumes.

    A value that cannot be saved raises `CheckpointError` at the first checkpoint, naming the
    actor, the attribute path and the type.
    """

    ctx: ActorContext

    async def on_start(self) -> None:
        """Runs before the first message; an exception here is a failed start."""

    async def handle(self, message: object) -> object:
        """Handle one message; the return value answers `ActorRef.ask` (ignored for sends)."""
        raise TypeError(f"{type(self).__name__} does not handle {type(message).__name__}")

    async def on_stop(self) -> None:
        """Runs when the incarnation ends by a normal exit, a shutdown or a crash.

        It does not run when the actor is hard-cancelled (shutdown deadline passed, or
        `BRUTAL_KILL`).
        """


class Timer:
    """A message scheduled to the actor itself by `ActorContext.after` or `ActorContext.every`.

    Timers are entries in the router's delivery schedule: timers due at the same instant fire
    in the order they were set, and a periodic timer whose actor cannot keep up skips ticks.
    A timer belongs to the incarnation that set it: when that incarnation ends (normally, by a
    crash or a shutdown) the timer is cancelled, and the next incarnation handles none of its
    messages, neither one waiting for room nor one already in the mailbox.
    """

    __slots__ = ("_entry",)

    def __init__(self, entry: Scheduled) -> None:
        self._entry = entry

    def cancel(self) -> None:
        """Stop the timer: from now on `handle` never gets its message, not even one that
        is already in the mailbox (it is dropped unhandled when it comes up)."""
        self._entry.cancel()

    @property
    def cancelled(self) -> bool:
        """True once cancelled (by `cancel` or because the incarnation ended)."""
        return self._entry.cancelled


class _StopNormally:
    """Control entry pushed by `ActorContext.stop`."""


_STOP_NORMALLY = _StopNormally()


class ActorContext:
    """What an actor can do besides handling messages: available as ``self.ctx``."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    @property
    def self_ref(self) -> ActorRef:
        """This actor's own ref."""
        return self._cell.ref

    @property
    def name(self) -> str:
        """This actor's registered name."""
        return self._cell.ref.name

    @property
    def system(self) -> ActorSystem:
        """The system this actor runs in."""
        return self._cell.system

    @property
    def restarts(self) -> int:
        """How many times this actor has been restarted so far."""
        return self._cell.restarts

    async def send(self, target: ActorRef | int | str, message: object) -> None:
        """Send `message` to the actor `target` names (ref, id or name), with backpressure.

        Goes through the router (counted in its statistics); see `Router.route`.
        """
        await self._cell.system.router.route(target, message, sender=self._cell.ref)

    async def broadcast(self, message: object, *, policy: Delivery = Delivery.BLOCK) -> int:
        """Send `message` to every other live actor; returns how many got it."""
        return await self._cell.system.router.broadcast(
            message, sender=self._cell.ref, policy=policy
        )

    async def publish(self, topic: str, message: object) -> int:
        """Publish `message` on `topic` (not to this actor itself); returns the receivers."""
        return await self._cell.system.router.publish(topic, message, sender=self._cell.ref)

    def subscribe(self, topic: str, *, policy: Delivery = Delivery.BLOCK) -> None:
        """Subscribe this actor to a topic or pattern (``market.*``); it leaves when it stops."""
        self._cell.system.router.subscribe(self._cell.ref, topic, policy=policy)

    def unsubscribe(self, topic: str) -> bool:
        """Leave a topic or pattern; False if not subscribed."""
        return self._cell.system.router.unsubscribe(self._cell.ref, topic)

    def after(self, delay: float, message: object) -> Timer:
        """Send `message` to this actor once, `delay` seconds from now.

        Raises:
            ValueError: `delay` is not a finite number of seconds >= 0.
            ActorUnavailable: this incarnation's loop is over (called from `on_stop`, or
                through a context kept from an earlier incarnation): the timer would never
                fire; or the actor is stopping for good.
        """
        return self._cell.start_timer(self, _seconds("delay", delay, zero_ok=True), None, message)

    def every(self, interval: float, message: object, *, first: float | None = None) -> Timer:
        """Send `message` to this actor every `interval` seconds (first after `first`, default
        `interval`), without drift. The timer stops when this incarnation ends.

        Raises:
            ValueError: `interval` is not a finite number of seconds > 0 (or `first` < 0).
            ActorUnavailable: as for `after`.
        """
        interval = _seconds("interval", interval, zero_ok=False)
        start = interval if first is None else _seconds("first", first, zero_ok=True)
        return self._cell.start_timer(self, start, interval, message)

    def stop(self) -> None:
        """End this actor normally once the current message is handled (`on_stop` runs).

        Does nothing if it is already stopping for good."""
        if not self._cell.stopping:
            self._cell.control(_STOP_NORMALLY)


def _seconds(name: str, value: float, *, zero_ok: bool) -> float:
    return checks.seconds(name, value, zero=zero_ok)
