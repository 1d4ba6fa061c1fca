"""The actor runtime: the `ActorCell` that runs one supervised actor.

An `ActorCell` is the runtime side of one supervised actor. It outlives incarnations: each
(re)start builds a fresh `Actor` instance from the child spec and runs its loop as one Trio task
in the supervisor's nursery. The loop drains the mailbox with ``receive_nowait`` and yields to
Trio every `CHECKPOINT_EVERY` messages (`spaceactors.actor`), so a busy actor stays
cancellable and fair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import outcome
import trio

from spaceactors.checks import describe
from spaceactors.control import ActorState, ActorStatus, GetStatus, Pause, Resume, Shutdown
from spaceactors.deadletters import DeadLetter, DeadLetterReason
from spaceactors.delivery import Scheduled, Tick
from spaceactors.errors import ActorUnavailable, StartFailed
from spaceactors.handling import crashed, handle_in_order, logger, payload
from spaceactors.handshake import Handshake, StartWaiter
from spaceactors.policy import NORMAL_EXIT, SHUTDOWN_EXIT, Exit, failed
from spaceactors.receiver import ReceiverState, Reliably, Stream
from spaceactors.ref import ActorRef, Ask

if TYPE_CHECKING:
    from spaceactors.children import Child
    from spaceactors.specs import ChildSpec
    from spaceactors.supervisor import Supervisor
    from spaceactors.system import ActorSystem

from spaceactors.actor import _STOP_NORMALLY, CHECKPOINT_EVERY, Actor, ActorContext, Timer

# Mailbox sentinel that wakes an idle loop to read its control lane: a tick of a timer that is
# always cancelled, so that the loop tells both apart from user messages with one type check.
_WAKE = Tick(Scheduled(0.0, None, None, cancelled=True), None, None)


def _has_on_start(actor: Actor) -> bool:
    """Whether `actor`'s class defines an ``on_start`` (the default does nothing)."""
    return type(actor).on_start is not Actor.on_start


class ActorCell:
    """The runtime of one supervised actor across all its incarnations."""

    __slots__ = (
        "_closing",
        "_control",
        "_crashed_on",
        "_live",
        "_next",
        "_paused",
        "_receiver",
        "_resumed",
        "_timers",
        "actor",
        "handled",
        "last_error",
        "outbound",
        "ref",
        "restarts",
        "restored",
        "spec",
        "state",
        "supervisor",
        "system",
    )

    def __init__(self, spec: ChildSpec, system: ActorSystem, supervisor: Supervisor) -> None:
        self.spec = spec
        self.system = system
        self.supervisor = supervisor
        self.ref = ActorRef(system.registry.allocate_id(), spec.name, spec.mailbox_size, self)
        self.state = ActorState.STARTING
        self.restarts = 0
        self.handled = 0
        self.last_error: str | None = None
        self._control: list[object] | None = None  # rarely used: made by the first command
        self._paused = False
        self._closing = False  # stopped for good once this incarnation ends: refuses messages
        self._resumed: trio.Event | None = None
        self._timers: list[Scheduled] | None = None  # made by the first timer
        self._live: ActorContext | None = None  # the running incarnation's context
        self._next: Actor | None = None  # built by prepare(), run by run()
        self._receiver: ReceiverState | None = None  # made by the first reliable message
        self._crashed_on: Reliably | None = None  # a held envelope whose handling raised
        self.outbound: set[Stream] | None = None  # reliable streams it sends on (made once)
        self.actor: Actor | None = None  # the running incarnation's instance
        self.restored: Actor | None = None  # set by a resume: run this, without on_start

    @property
    def receiver(self) -> ReceiverState:
        """What this actor remembers of reliable messages (kept across restarts)."""
        if self._receiver is None:
            self._receiver = ReceiverState(self.system.reliable.acknowledge)
        return self._receiver

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def alive(self) -> bool:
        return self.state is not ActorState.STOPPED

    @property
    def needs_start_handshake(self) -> bool:
        """Whether starting must wait for `on_start`: not when the actor keeps the default."""
        return self._next is None or _has_on_start(self._next)

    @property
    def stopping(self) -> bool:
        """True once asked to stop for good, until stopped."""
        return self._closing and self.state is not ActorState.STOPPED

    def status(self) -> ActorStatus:
        return ActorStatus(
            actor_id=self.ref.id,
            name=self.name,
            state=ActorState.STOPPING if self.stopping else self.state,
            mailbox_depth=self.ref.mailbox_depth,
            mailbox_size=self.ref.capacity,
            restarts=self.restarts,
            handled=self.handled,
            last_error=self.last_error,
        )

    # --- messages from outside ----------------------------------------------------------

    def control(self, command: object) -> None:
        """Queue a control command on the out-of-band lane and wake the loop if it sleeps."""
        if type(command) is GetStatus:
            raise ValueError(
                "GetStatus has a reply: use `await ref.ask(GetStatus())` or `ref.status()`"
            )
        if not self.alive or self._closing:
            raise self.unavailable(command)
        if self._control is None:
            self._control = []
        self._control.append(command)
        if self.ref._receive._state.receive_tasks:  # (not statistics(): no object made)
            # The loop is parked on an empty mailbox: the sentinel goes straight to it and
            # takes no slot. A loop that already has a message sees the lane before the next.
            self.ref._send.send_nowait(_WAKE)
        elif self._resumed is not None:
            self._resumed.set()

    def unavailable(self, message: object, sender: ActorRef | None = None) -> ActorUnavailable:
        """Record `message` as a dead letter to this stopped actor; return the error to raise."""
        gone = "is stopping" if self.stopping else "has stopped"
        self.dead_letter(message, DeadLetterReason.ACTOR_STOPPED, f"actor {gone}", sender)
        what = type(payload(message)).__name__
        return ActorUnavailable(
            f"actor {self.name!r} (#{self.ref.id}) {gone}; {what} recorded as a dead letter"
        )

    def dead_letter(
        self,
        message: object,
        reason: DeadLetterReason,
        detail: str,
        sender: ActorRef | None = None,
    ) -> None:
        self.system.dead_letters.record(
            DeadLetter(
                trio.current_time(),
                self.name,
                payload(message),
                reason,
                detail,
                sender=None if sender is None else sender.name,
            )
        )

    async def stop(self) -> None:
        await self.supervisor.stop_child(self.name)

    # --- lifecycle, driven by the supervisor ---------------------------------------------

    def prepare(self) -> None:
        """Build a fresh actor instance from the spec, in the caller's task.

        Raises:
            StartFailed: the constructor raised, or returned something that is not an `Actor`.
        """
        if self.restored is not None:  # resuming from a checkpoint: built from its state
            self._next = self.restored
            return
        try:
            actor = self.spec.factory(*self.spec.args, **self.spec.kwargs)
        except Exception as exc:
            raise self._start_failed(exc) from exc
        if not isinstance(actor, Actor):
            raise StartFailed(
                f"the factory of {self.name!r} returned {type(actor).__name__}, not a sa.Actor"
            )
        self._next = actor

    async def run(
        self,
        child: Child,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The task of one incarnation, started by the supervisor (`Supervisor._launch`): its
        cancel scope, ``on_start``, the loop, ``on_stop``, and what the supervisor is told of
        the end (`Supervisor._ended`, `Supervisor._exited`).

        A starter that waits for ``on_start`` passes a `StartWaiter` as `task_status`: it is
        started once ``on_start`` returns, or failed with the error the starter raises. The
        supervisor's part and the actor's, and the loop, are written out in one frame rather
        than called: thousands of idle actors each keep one coroutine frame, not three.

        Raises:
            StartFailed: `on_start` raised, and no starter waits to be told.
        """
        scope, incarnation = child.scope, child.incarnation
        assert scope is not None, "Supervisor._launch sets the scope first"
        # Most actors start with no one waiting: they run without a handshake to watch.
        if task_status is not trio.TASK_STATUS_IGNORED and not isinstance(task_status, Handshake):
            task_status = Handshake(task_status)
        exit: Exit = SHUTDOWN_EXIT  # what a hard cancel by the supervisor amounts to
        ending: Exit | None = None  # how the loop ended (set by every way out of it)
        try:
            with scope:
                actor, self._next = self._next, None
                assert actor is not None, "prepare() must come before run()"
                actor.ctx = self._live = ActorContext(self)
                self.actor = actor
                self.state = ActorState.STARTING
                tap = self.system.tap
                if self.restored is actor:  # resumed: it started before its checkpoint
                    self.restored = None
                else:
                    if tap is not None:
                        tap.actor_started(self)
                    if _has_on_start(actor):  # (the default does nothing: not awaited)
                        try:
                            await actor.on_start()
                        except Exception as exc:
                            raise self._start_failed(exc) from exc
                self.state = ActorState.RUNNING  # a Pause sent since is obeyed before any message
                task_status.started()
                receive = self.ref._receive  # (no bound methods kept: they cost an idle actor)
                # The channel's buffer: a mailbox holds at least one slot, so an empty buffer
                # means no sender waits either: the loop parks without raising WouldBlock.
                queue = self.ref._queue
                message: Any  # (one name for a message in any wrapper: a frame slot each)
                budget = CHECKPOINT_EVERY
                while True:
                    if self._control:
                        ending = await self._obey(self._control)
                        if ending is not None:
                            break
                    budget -= 1
                    if not budget:
                        budget = CHECKPOINT_EVERY
                        if self._receiver is not None:
                            self._receiver.flush()  # acknowledge in batches of at most this many
                        await trio.lowlevel.checkpoint()
                    if queue:
                        message = receive.receive_nowait()
                    else:
                        if self._receiver is not None:
                            self._receiver.flush()  # drained: acknowledge what it handled
                        try:
                            message = await receive.receive()
                        except trio.EndOfChannel:  # closed for good and drained: stop as asked
                            ending = SHUTDOWN_EXIT
                            break
                        budget = CHECKPOINT_EVERY
                    kind = type(message)
                    try:
                        if tap is not None and kind is not Tick:
                            await tap.before_handle(self, message)
                        if kind is Ask:
                            result = await actor.handle(message.message)
                            if not message.resolve(outcome.Value(result)):
                                self.dead_letter(
                                    result,
                                    DeadLetterReason.REPLY_AFTER_TIMEOUT,
                                    "the asker gave up",
                                )
                        elif kind is Reliably:
                            stream = message.stream
                            if message.seq < stream.low or (
                                stream.starts and stream.settled(message.seq)
                            ):
                                # a copy of one it handled
                                self.system.reliable.state.duplicates += 1
                            elif stream.ordered:
                                await handle_in_order(self, actor.handle, message)
                            else:  # the fast path of `handling._handle_reliably`
                                receiver: ReceiverState = self._receiver  # type: ignore[assignment]
                                receiver.handling = message
                                await actor.handle(message.message)
                                receiver.handling = None
                                if (
                                    message.seq == stream.low
                                    and not stream.starts
                                    and stream.touched
                                ):
                                    stream.low += 1  # `receiver.settle`'s commonest case
                                    if message.extra is not None:  # somebody may wait for it
                                        receiver.flush()
                                else:
                                    receiver.settle(message)
                        elif kind is Tick:  # a timer's message, or the wake-up sentinel
                            if message.entry.cancelled or message.owner is not actor.ctx:
                                continue  # cancelled, or set by an earlier incarnation
                            if tap is not None:
                                await tap.before_handle(self, message)
                            await actor.handle(message.message)
                        else:
                            await actor.handle(message)
                    except Exception as exc:
                        ending = crashed(self, message, exc)
                        break
                    except trio.Cancelled:
                        if self._receiver is not None:
                            self._receiver.handling = None  # not handled: its retry may go out
                        if isinstance(message, Ask):
                            message.resolve(outcome.Error(self._gone(message)))
                        self.dead_letter(
                            message, DeadLetterReason.ACTOR_STOPPED, "hard-cancelled while handling"
                        )
                        raise
                    self.handled += 1
                self._end_loop()
                assert ending is not None
                exit = await self._stop(actor, ending)
        except Exception as exc:  # (before it started: on_start raised)
            if not isinstance(task_status, StartWaiter) or task_status.done:
                raise
            task_status.fail(exc)  # the starter raises it; no exit to report
            return
        finally:
            if self._live is not None:  # (the loop did not end by itself: a raise, a cancel)
                self._end_loop()
            status = task_status if isinstance(task_status, Handshake) else None
            self.supervisor._ended(child, incarnation, scope, status, exit)
        self.supervisor._exited(child, incarnation, status, exit)

    def _end_loop(self) -> None:
        """The incarnation's loop is over: what it handled is acknowledged, its timers are
        cancelled, its control commands dropped; from here on (on_stop included) no timers."""
        if self._receiver is not None:
            self._receiver.flush()
        self._live = self.actor = None
        self._cancel_timers()
        self._end_incarnation()
        self.state = ActorState.RESTARTING  # between incarnations until the supervisor decides

    def _start_failed(self, exc: Exception) -> StartFailed:
        self.last_error = describe(exc)
        return StartFailed(f"actor {self.name!r} failed to start: {describe(exc)}")

    def _end_incarnation(self) -> None:
        """Control commands sent to the incarnation that ends (a pause, a Shutdown, ctx.stop())
        end with it: a restart starts fresh and RUNNING, as in OTP. Commands sent between two
        incarnations (while RESTARTING) are for the next one."""
        self._control = None
        self._paused = False

    async def _stop(self, actor: Actor, exit: Exit) -> Exit:
        try:
            await actor.on_stop()
        except Exception as exc:
            logger.exception("on_stop of actor %r raised", self.name)
            self.last_error = describe(exc)
            return exit if exit.abnormal else failed(exc)
        finally:
            self._end_incarnation()  # what was sent to it while on_stop ran
        return exit

    def request_shutdown(self, *, final: bool = True) -> None:
        """Ask the running incarnation to stop after its current message.

        `final`: it will not be started again, so from now on its mailbox refuses messages
        (`ActorUnavailable`, and a dead letter) instead of queueing them to be thrown away.
        """
        if not self.alive or self._closing:
            return
        self.control(Shutdown())
        if final:
            self._closing = True
            self._cancel_timers()  # its ticks, even one waiting for room, die with it
            self.ref._send.close()  # senders waiting for room are refused too

    def restarting(self) -> None:
        self.state = ActorState.RESTARTING
        self.restarts += 1

    def close(self) -> None:
        """Stop for good: unregister, close the mailbox, and turn what is left into dead letters."""
        if not self.alive:
            return
        self.state = ActorState.STOPPED
        self._closing = False
        self.system.registry.remove(self.ref)
        self.system.router.forget(self.ref)
        self._control = None
        self.ref._send.close()
        if self.outbound:
            for stream in self.outbound:
                stream.forget_if_idle()  # (one with messages in flight: once they settle)
            self.outbound = None
        if self._receiver is not None:
            self._receiver.close()  # (its streams stay: a restart_child carries on with them)
        receive, queue = self.ref._receive, self.ref._queue
        while queue:  # (its senders are all refused now: only the buffer holds messages)
            message = receive.receive_nowait()
            if type(message) is Tick:
                continue  # the wake-up sentinel, or a timer's message: it died with its actor
            if isinstance(message, Ask):
                message.resolve(outcome.Error(self._gone(message)))
            self.dead_letter(message, DeadLetterReason.LEFT_IN_MAILBOX, "actor stopped for good")

    def reopen(self) -> None:
        """Make a stopped actor startable again (``restart_child``): fresh mailbox, registered."""
        if self._closing:  # stopped for good but never closed: nothing left behind silently
            self.close()
        if self.alive:
            return
        self.system.registry.check_name_free(self.name)
        self.ref._open_mailbox()
        self.system.registry.add(self.ref)
        self.state = ActorState.STARTING

    def _cancel_timers(self) -> None:
        """Cancel every timer of the running incarnation (they belong to it)."""
        if self._timers:
            for entry in self._timers:
                entry.cancel()
        self._timers = None

    def start_timer(
        self, owner: ActorContext, first: float, interval: float | None, message: object
    ) -> Timer:
        """Schedule `message` to this actor for the incarnation whose context is `owner`."""
        if self._closing or not self.alive:  # it will not see the tick: refuse, as sends are
            raise self.unavailable(message)
        if owner is not self._live:  # on_stop, or a context kept from an earlier incarnation
            raise ActorUnavailable(
                f"this incarnation of actor {self.name!r} has ended (its loop is over, so "
                "on_stop and older contexts cannot set timers: they would never fire)"
            )
        schedule = self.system.router.state.schedule
        entry = schedule.add_timer(self.ref, first, message, interval, owner)
        if self._timers is None:
            self._timers = []
        else:
            self._timers = [timer for timer in self._timers if timer.active]
        self._timers.append(entry)
        return Timer(entry)

    # --- the loop -------------------------------------------------------------------------

    async def _obey(self, control: list[object]) -> Exit | None:
        """Apply queued control commands; while paused, wait here for the next one."""
        while True:
            while control:
                command = control.pop(0)
                kind = type(command)
                if kind is Shutdown:
                    return SHUTDOWN_EXIT
                if command is _STOP_NORMALLY:
                    return NORMAL_EXIT
                if kind is Pause or kind is Resume:
                    self._paused = kind is Pause
                    self.state = ActorState.PAUSED if self._paused else ActorState.RUNNING
            if not self._paused:
                return None
            if self._receiver is not None:
                self._receiver.flush()  # paused: acknowledge what it handled before
            self._resumed = trio.Event()
            try:
                await self._resumed.wait()
            finally:
                self._resumed = None

    def _gone(self, request: Ask) -> ActorUnavailable:
        return ActorUnavailable(
            f"actor {self.name!r} stopped before answering {type(request.message).__name__}"
        )
