"""A supervisor's children's incarnations: starting one, and learning how it ended.

Split from `spaceactors.supervisor` (the mixin `Incarnations`, whose methods take the
`Supervisor` they are part of as ``self``): how an incarnation is built and its task started
(`_launch`), how its starter waits for its ``on_start`` (`_handshake`, `spaceactors.handshake`),
the task of a service's or a supervisor's incarnation (`_run_child`; an actor's is
`ActorCell.run`), and what its end tells the supervisor (`_ended`, `_exited`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

from spaceactors.cell import ActorCell
from spaceactors.checks import describe
from spaceactors.children import Child, Exited, Latch, StoppedWhileStarting
from spaceactors.errors import NameTaken, StartFailed
from spaceactors.handshake import Handshake, StartWaiter
from spaceactors.lifecycle import crash_reason
from spaceactors.logfields import actor_path
from spaceactors.policy import SHUTDOWN_EXIT, Exit
from spaceactors.trace import EventKind

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem


class Incarnations:
    """The part of `Supervisor` that starts its children's incarnations and hears their end."""

    if TYPE_CHECKING:  # what it uses of the `Supervisor` it is part of
        system: ActorSystem
        path: str
        _children: dict[str, Child]
        _events: trio.MemorySendChannel[object] | None
        _stopping: bool
        _starting: Child | None
        _start_scope: trio.CancelScope | None

        @property
        def nursery(self) -> trio.Nursery: ...

        def _retire_stopped(self, child: Child) -> None: ...

        async def _terminate(self, child: Child, *, final: bool = False) -> None: ...

    async def _start(
        self,
        child: Child,
        *,
        resumed: bool = False,
        started: trio.TaskStatus[None] | None = None,
    ) -> None:
        """Start one incarnation of `child`; waits for its start handshake when it has one.

        `resumed`: the incarnation a checkpoint holds (`child` and its runtime carry its
        counts already): it is not a new one, and records nothing. `started`: do not wait;
        the child's runner calls ``started.started()`` once it has started, or when it ends
        if it never did (`spaceactors.checkpoint.rebuilding.respawn` waits for a whole
        supervisor's children at once).

        Raises:
            StartFailed: it cannot be built, or its start raised.
            StoppedWhileStarting: it was stopped before it finished starting.
        """
        if self._launch(child, resumed=resumed, started=started):
            await self._handshake(child, resumed=resumed)

    async def _handshake(self, child: Child, *, resumed: bool = False) -> None:
        """Start the task of an incarnation `_launch` built, and wait for its ``on_start``.

        Not ``nursery.start`` (it costs more than the rest of a spawn): the task starts with
        ``start_soon`` and settles a `StartWaiter`. As ``nursery.start`` would, a starter
        cancelled meanwhile calls the start off: the child is cancelled, and the starter
        raises once it has ended (`spaceactors.handshake`).

        Raises:
            StartFailed: its start raised.
            StoppedWhileStarting: it was stopped before it finished starting.
        """
        waiter, scope = self._begin_start(child), child.scope
        try:
            await waiter.wait()
        except BaseException:
            if not waiter.settled:  # the starter left first: call the start off
                await self._call_off(child, scope)
            raise
        if not resumed:
            child.started_at = trio.current_time()

    def _begin_start(self, child: Child) -> StartWaiter:
        """Start the task of an incarnation `_launch` built; its `StartWaiter` tells when its
        ``on_start`` is done."""
        waiter = StartWaiter()
        self.nursery.start_soon(self._task_of(child), child, waiter, name=child.spec.name)
        return waiter

    def _task_of(self, child: Child) -> Callable[..., Awaitable[None]]:
        """The task function of `child`'s incarnations: an actor's cell runs its own."""
        runtime = child.runtime
        return runtime.run if isinstance(runtime, ActorCell) else self._run_child

    async def _call_off(self, child: Child, scope: trio.CancelScope | None) -> None:
        """Cancel the incarnation of `child` running in `scope` and wait (shielded) for it to
        end: what ``nursery.start`` does to a task whose starter is cancelled."""
        if scope is None:
            return
        scope.cancel()
        with trio.CancelScope(shield=True):
            if child.running and child.scope is scope:
                latch = Latch()
                latch.expect(child, scope)
                await latch.wait()

    def _launch(
        self,
        child: Child,
        *,
        resumed: bool = False,
        started: trio.TaskStatus[None] | None = None,
    ) -> bool:
        """What `_start` does without waiting: build the next incarnation and start its task;
        True instead of starting it when it has a start handshake to wait for (the caller
        then starts it with ``nursery.start``). Raises as `_start` does."""
        runtime = child.runtime
        try:
            runtime.reopen()
            runtime.prepare()
        except (StartFailed, NameTaken) as exc:
            if isinstance(exc, StartFailed):
                raise
            raise StartFailed(f"child {child.spec.name!r} cannot restart: {exc}") from exc
        child.scope, child.ended = trio.CancelScope(), None
        if not resumed:
            child.incarnation += 1
            if child.incarnation > 1:
                self._record(EventKind.RESTART, child, f"incarnation {child.incarnation}")
                if self.system.lifecycle.listeners:
                    self._restarted(child)
        child.running, child.terminating, child.wanted = True, False, True
        # Each child's task is named after it: a checkpoint finds it again by that name.
        name = child.spec.name
        task = self._task_of(child)
        if started is not None:
            self.nursery.start_soon(task, child, started, name=name)
        elif runtime.needs_start_handshake:
            return True
        else:
            self.nursery.start_soon(task, child, name=name)
        if not resumed:
            child.started_at = trio.current_time()
        return False

    async def _run_child(
        self,
        child: Child,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The task of one incarnation of a service or a supervisor (an actor's is its cell's
        own `ActorCell.run`, which does the same in one frame with its loop)."""
        scope, incarnation = child.scope, child.incarnation
        if scope is None:  # pragma: no cover - _launch sets it first
            raise RuntimeError(f"child {child.spec.name!r} was run without being started")
        status: Handshake | None = None
        if task_status is not trio.TASK_STATUS_IGNORED:
            status = task_status if isinstance(task_status, Handshake) else Handshake(task_status)
        exit = SHUTDOWN_EXIT  # what a hard cancel by this supervisor amounts to
        runtime = child.runtime
        assert not isinstance(runtime, ActorCell)
        try:
            with scope:
                exit = await runtime.run(task_status if status is None else status)
        except Exception as exc:  # (before it started: StartFailed, NameTaken...)
            if not isinstance(status, StartWaiter) or status.done:
                raise
            status.fail(exc)  # the starter raises it; no exit to report
            return
        finally:
            self._ended(child, incarnation, scope, status, exit)
        self._exited(child, incarnation, status, exit)

    def _ended(
        self,
        child: Child,
        incarnation: int,
        scope: trio.CancelScope,
        status: Handshake | None,
        exit: Exit,
    ) -> None:
        """An incarnation's task is ending, however (in its ``finally``): count it, mark the
        child stopped, and wake whoever waits for this incarnation's end."""
        if status is not None and not status.done:
            if isinstance(status, StartWaiter):  # its starter waits: tell it (unless told)
                status.fail(
                    StoppedWhileStarting(f"child {child.spec.name!r} was stopped while starting")
                )
            else:  # a `started` count
                status.started()
        if exit.abnormal:  # counted before a stop in progress retires the child's counts
            self._crashed(child, exit.error)
        if child.incarnation == incarnation:
            child.running = False
            self._retire_stopped(child)  # a terminate_child whose caller left meanwhile
        ended = child.ended
        if ended is not None and ended[0] is scope:  # someone waits for this incarnation
            for latch in ended[1]:
                latch.arrive()

    def _exited(
        self,
        child: Child,
        incarnation: int,
        status: Handshake | None,
        exit: Exit,
    ) -> None:
        """An incarnation's task ended without raising: report its exit to this supervisor's
        task (unless the supervisor is the one stopping it).

        A child that ended before it started reports nothing: its starter was told (`_ended`).
        """
        if isinstance(status, StartWaiter) and not status.done:
            return
        if exit.abnormal:
            self._record(EventKind.CRASH, child, describe(exit.error))
        if not child.terminating:
            self._post(Exited(child, incarnation, exit))

    def _crashed(self, child: Child, error: BaseException | None) -> None:
        """Count an incarnation of `child` that ended with `error` (or failed to start), and
        note it for an observer while it is in the tree."""
        child.crashes += 1
        child.last_crash = (trio.current_time(), crash_reason(error))
        if self.system.lifecycle.tallying and self._children.get(child.spec.name) is child:
            self.system.lifecycle.note(child)

    def _restarted(self, child: Child) -> None:
        """Tell the lifecycle listeners about a restart, with the cause of the crash before."""
        cause = None if child.last_crash is None else child.last_crash[1]
        restarts = child.runtime.restarts
        self.system.lifecycle.emit(
            "restart",
            trio.current_time(),
            actor_path(self.path, child.spec.name),
            f"restart {restarts} of {child.spec.name!r} under {self.path!r}"
            + ("" if cause is None else f" after {cause}"),
            restarts=restarts,
            cause=cause,
        )

    def _post(self, event: object) -> None:
        if self._events is not None:
            self._events.send_nowait(event)

    def _record(self, kind: EventKind, child: Child, detail: str = "") -> None:
        tap = self.system.tap
        if tap is not None:
            tap.record(kind, child.spec.name, peer=self.path, detail=detail)

    async def _start_static_children(self) -> Exit | StartFailed:
        """Start the static children in order; a stop request cancels what is left."""
        started: list[Child] = []
        for child in list(self._children.values()):
            if self._stopping:
                break
            try:
                await self._start_watched(child)
            except StoppedWhileStarting:
                break
            except StartFailed as exc:
                for earlier in reversed(started):
                    await self._terminate(earlier)
                error = StartFailed(f"supervisor {self.path!r} could not start: {exc}")
                error.__cause__ = exc
                return error
            started.append(child)
        return SHUTDOWN_EXIT

    async def _start_watched(self, child: Child) -> None:
        """`_start`, by this supervisor's own task: a stop request meanwhile gives the start
        the child's shutdown deadline (see `request_shutdown`); past it, the start is
        cancelled and the child is simply not running."""
        self._starting = child
        try:
            with trio.CancelScope() as self._start_scope:
                await self._start(child)
            if self._start_scope is not None and self._start_scope.cancelled_caught:
                raise StoppedWhileStarting(f"child {child.spec.name!r} was stopped while starting")
        finally:
            self._starting = self._start_scope = None
