"""The restart loop: how a supervisor serves its events, one at a time, and applies OTP's rules.

No decision calls itself: a restart that fails to start is queued as a `StartFailedEvent` behind
whatever arrived meanwhile (a stop request first of all), so any number of failed attempts is a
loop over events, never a deeper stack, and a stop is served between two attempts. The rules
themselves are the pure functions of `spaceactors.policy`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from spaceactors.children import (
    Child,
    Exited,
    RestartDue,
    StartFailedEvent,
    Stop,
    StoppedWhileStarting,
)
from spaceactors.errors import StartFailed, SupervisorGaveUp
from spaceactors.lifecycle import crash_reason
from spaceactors.logfields import actor_path, cause_text
from spaceactors.policy import (
    SHUTDOWN_EXIT,
    Exit,
    ExitKind,
    Restart,
    add_restart,
    failed,
    restart_group,
    should_restart,
)
from spaceactors.trace import EventKind

if TYPE_CHECKING:
    from spaceactors.supervisor import Supervisor

logger = logging.getLogger("spaceactors.supervisor")


def restart_cause(exit: Exit) -> str:
    """What ended the incarnation being restarted, for its restart line."""
    if exit.error is not None:
        return cause_text(exit.error)
    return "exited normally" if exit.kind is ExitKind.NORMAL else "shut down"


class RestartLoop:
    """The deciding half of a `Supervisor`: its restart history and its event loop."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.sup = supervisor
        self.rng = supervisor.system.rng(f"supervisor:{supervisor.path}")
        self.history: tuple[float, ...] = ()
        # Why each child waiting for its restart is restarted: logged when the restart is made.
        self.causes: dict[Child, str] = {}

    def reset(self) -> None:
        """A new incarnation: clean restart history and backoff attempts."""
        self.history = ()
        for child in self.sup._children.values():
            child.attempt = 0

    async def serve(self, events: trio.MemoryReceiveChannel[object]) -> Exit:
        """Serve events until a stop request (a shutdown exit) or giving up (a failure)."""
        async for event in events:
            gave_up: SupervisorGaveUp | None = None
            if isinstance(event, Stop):
                await self.sup._terminate_all(final=event.final)
                return SHUTDOWN_EXIT
            if isinstance(event, Exited):
                gave_up = await self._child_exited(event)
            elif isinstance(event, StartFailedEvent):
                gave_up = await self._start_failed(event)
            elif isinstance(event, RestartDue):
                await self._restart(event.children)
            if gave_up is not None:
                return failed(gave_up)
        raise AssertionError("the event channel never closes")  # pragma: no cover

    def _is_current(self, child: Child, incarnation: int) -> bool:
        return (
            self.sup._children.get(child.spec.name) is child
            and incarnation == child.incarnation
            and child.wanted
        )

    async def _child_exited(self, event: Exited) -> SupervisorGaveUp | None:
        child = event.child
        if not self._is_current(child, event.incarnation):
            return None
        if not should_restart(child.spec.restart, event.exit):
            self.sup._retire(child)
            return None
        return await self._restart_after(child, event.exit)

    async def _start_failed(self, event: StartFailedEvent) -> SupervisorGaveUp | None:
        child = event.child
        if not self._is_current(child, event.incarnation) or child.running:
            # Stopped or started by a call meanwhile; the rest of its group still waits.
            pending = [c for c in self.sup._children.values() if c.restart_pending]
            await self._restart(tuple(pending))
            return None
        return await self._restart_after(child, event.exit)  # a failed start counts

    async def _restart_after(self, child: Child, exit: Exit) -> SupervisorGaveUp | None:
        """Apply the strategy to a child that must be restarted (after a failure or a start
        that failed)."""
        now = trio.current_time()
        self.history, allowed = add_restart(
            self.history, now, self.sup.spec.max_restarts, self.sup.spec.within
        )
        if not allowed:
            return await self._give_up(child, exit.error)
        order = list(self.sup._children)
        group = [
            self.sup._children[name]
            for name in restart_group(self.sup.spec.strategy, order, child.spec.name)
        ]
        for sibling in reversed(group):
            if sibling is not child:
                await self.sup._terminate(sibling)
        to_start = []
        cause = restart_cause(exit)
        for member in group:
            if member.spec.restart is Restart.TEMPORARY or not member.wanted:
                self.sup._retire(member)
                continue
            member.restart_pending = True
            self.causes[member] = (
                cause if member is child else f"restarted with {child.spec.name!r}: {cause}"
            )
            to_start.append(member)
        delay = self._backoff_delay(child, now)
        if delay > 0:
            self.sup.nursery.start_soon(self._restart_later, delay, RestartDue(tuple(to_start)))
        else:
            await self._restart(tuple(to_start))
        return None

    def _backoff_delay(self, child: Child, now: float) -> float:
        backoff = self.sup.spec.backoff
        if backoff is None:
            return 0.0
        if now - child.started_at >= backoff.quiet_period:
            child.attempt = 0
        delay = backoff.delay(child.attempt, self.rng)
        child.attempt += 1
        return delay

    async def _restart_later(self, delay: float, due: RestartDue) -> None:
        await trio.sleep(delay)
        self.sup._post(due)

    async def _restart(self, children: tuple[Child, ...]) -> None:
        """Start each child still waiting for its restart, in order. A stop request gives the
        start in progress its shutdown deadline and ends the loop; a failed start is queued as
        an event (see the module docstring) and the rest of the group waits for it."""
        for child in children:
            if self.sup._stopping:
                return
            if not child.restart_pending or self.sup._children.get(child.spec.name) is not child:
                continue
            child.restart_pending = False
            if child.running:
                continue
            child.runtime.restarting()  # counted when made, not when decided (backoff)
            if self.sup.system.lifecycle.tallying:
                self.sup.system.lifecycle.note(child)
            self._log_restart(child)
            try:
                await self.sup._start_watched(child)
            except StartFailed as exc:
                path, now = actor_path(self.sup.path, child.spec.name), trio.current_time()
                logger.warning(
                    "restart of %s failed at t=%.6g s: %s",
                    path,
                    now,
                    exc,
                    extra={
                        "event": "start_failed",
                        "actor": path,
                        "sim_time": now,
                        "cause": cause_text(exc),
                    },
                )
                child.started_at = now  # it never ran: no quiet period
                self.sup._crashed(child, exc.__cause__ or exc)  # ended before it ran
                self.sup._post(StartFailedEvent(child, child.incarnation, failed(exc)))
                return
            except StoppedWhileStarting:
                continue  # stopped meanwhile (terminate_child, or this supervisor's stop)

    def _log_restart(self, child: Child) -> None:
        """One line per restart: sim time, the actor's path, its restart count and the cause."""
        path = actor_path(self.sup.path, child.spec.name)
        count = child.runtime.restarts
        cause = self.causes.pop(child, "unknown")
        now = trio.current_time()
        logger.warning(
            "%s restarted at t=%.6g s (restart %d): %s",
            path,
            now,
            count,
            cause,
            extra={
                "event": "restart",
                "actor": path,
                "sim_time": now,
                "restarts": count,
                "cause": cause,
            },
        )

    async def _give_up(self, child: Child, cause: BaseException | None) -> SupervisorGaveUp:
        path = actor_path(self.sup.path, child.spec.name)
        now = trio.current_time()
        logger.error(
            "supervisor %r gave up at t=%.6g s: more than %d restarts within %s s "
            "(last by %r: %s)",
            self.sup.path,
            now,
            self.sup.spec.max_restarts,
            self.sup.spec.within,
            child.spec.name,
            cause_text(cause),
            extra={"event": "give_up", "actor": path, "sim_time": now, "cause": cause_text(cause)},
        )
        self.sup._record(
            EventKind.GIVE_UP,
            child,
            f"more than {self.sup.spec.max_restarts} restarts within {self.sup.spec.within} s",
        )
        lifecycle = self.sup.system.lifecycle
        if lifecycle.listeners:
            lifecycle.emit(
                "give_up",
                trio.current_time(),
                self.sup.path.split("/", 1)[-1],
                f"supervisor {self.sup.path!r} gave up: more than {self.sup.spec.max_restarts} "
                f"restarts within {self.sup.spec.within} s (last by {child.spec.name!r}"
                + ("" if cause is None else f": {crash_reason(cause)}")
                + ")",
            )
        self.sup._stopping, self.sup._accepting = True, False
        await self.sup._terminate_all(final=False)
        error = SupervisorGaveUp(self.sup.path, child.spec.name, cause)
        error.__cause__ = cause
        return error
