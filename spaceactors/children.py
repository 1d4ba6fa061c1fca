"""A supervisor's record of each child, the events its task serves, and how children stop.

Split from `spaceactors.supervisor`, which decides; this module holds the data it decides on
and the one way children are stopped (graceful request, deadline, hard cancel).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import trio

from spaceactors.cell import ActorCell
from spaceactors.policy import BRUTAL_KILL, Exit

if TYPE_CHECKING:
    from spaceactors.ref import ActorRef
    from spaceactors.service import ServiceCell
    from spaceactors.specs import ChildSpec, ServiceSpec, SupervisorSpec
    from spaceactors.supervisor import Supervisor


@attrs.define(eq=False)
class Child:
    """One child of a supervisor, across its incarnations."""

    spec: ChildSpec | ServiceSpec | SupervisorSpec
    runtime: ActorCell | ServiceCell | Supervisor
    static: bool
    # Made fresh by each start; a child never started has none.
    scope: trio.CancelScope | None = None
    # Who waits for the end of the incarnation of `scope`: made by the first (`Latch.expect`).
    ended: tuple[trio.CancelScope, list[Latch]] | None = None
    incarnation: int = 0
    running: bool = False
    terminating: bool = False  # the supervisor is stopping it: its exit is not a failure
    wanted: bool = True  # False once terminate_child stopped it
    restart_pending: bool = False
    attempt: int = 0  # consecutive restarts, for the backoff
    started_at: float = 0.0  # when the current incarnation finished starting
    crashes: int = 0  # incarnations that ended with an error (a failed start included)
    last_crash: tuple[float, str] | None = None  # (when, why) of the latest
    # Set by terminate_child / stop_child: what to do once it has stopped, done by whichever
    # comes first, the caller or the child's own exit (a caller may be cancelled meanwhile).
    retire_when_stopped: bool = False
    forget_when_stopped: bool = False

    @property
    def handle(self) -> ActorRef | ServiceCell | Supervisor:
        runtime = self.runtime
        return runtime.ref if isinstance(runtime, ActorCell) else runtime


@attrs.frozen
class Exited:
    """A child's incarnation ended on its own (not stopped by its supervisor)."""

    child: Child
    incarnation: int
    exit: Exit


@attrs.frozen
class StartFailedEvent:
    """A restart of `child` failed to start: served like a failure, one event per attempt.

    Queueing each failed attempt (rather than retrying at once) keeps the restart loop a loop
    and lets a stop request queued meanwhile be served between two attempts.
    """

    child: Child
    incarnation: int
    exit: Exit


@attrs.frozen
class RestartDue:
    """A backoff delay has passed: start these children again."""

    children: tuple[Child, ...]


@attrs.frozen
class Stop:
    """Stop the supervisor; `final` when it will not be restarted (its children are closed)."""

    final: bool


class StoppedWhileStarting(Exception):
    """A child was stopped before it finished starting (internal: callers translate it)."""


async def terminate_together(children: list[Child], *, final: bool) -> None:
    """Stop running children in parallel, each within its own shutdown policy.

    All get the graceful request at once (`final`: they will not be started again, so they
    refuse new messages from now on), and each is hard-cancelled at its own deadline if it has
    not stopped by then (its cancel scope's deadline: it holds even if this wait is
    cancelled). No task per child, and one wait for them all (a `Latch`).
    """
    now = trio.current_time()
    latch = Latch()
    for child in children:
        scope = child.scope
        if not child.running or scope is None:
            continue
        child.terminating = True
        policy = child.spec.shutdown
        if policy is BRUTAL_KILL:
            scope.cancel()
        else:
            child.runtime.request_shutdown(final=final)
            # Trio hard-cancels it at its deadline by itself, whether or not anyone still
            # waits here (a caller of stop() may be cancelled meanwhile).
            scope.deadline = min(scope.deadline, now + policy)
        latch.expect(child, scope)
    await latch.wait()


class Latch:
    """Counts the ends of the incarnations it `expect`s; `wait` returns once all have ended.
    One wait for a whole supervisor's children, made only when someone waits: a fleet of idle
    actors carries no event each."""

    __slots__ = ("_event", "_left")

    def __init__(self) -> None:
        self._left = 0
        self._event = trio.Event()

    def expect(self, child: Child, scope: trio.CancelScope) -> None:
        """Count the end of the incarnation of `child` that runs in `scope` (running now)."""
        if child.ended is None or child.ended[0] is not scope:
            child.ended = (scope, [self])
        else:
            child.ended[1].append(self)  # (someone else waits for it too)
        self._left += 1

    def arrive(self) -> None:
        """One of the incarnations ended (`Supervisor._ended`)."""
        self._left -= 1
        if not self._left:
            self._event.set()

    async def wait(self) -> None:
        if self._left:
            await self._event.wait()
