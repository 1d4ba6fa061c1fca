"""Supervisor: starts children as Trio tasks in its nursery and applies OTP's restart rules.

A `Supervisor` handle, like an `ActorRef`, outlives the incarnations of the supervisor task. Each
incarnation opens a nursery, starts the static children in order and then serves exit reports
one at a time; the decisions come from the pure functions of `spaceactors.policy`. Child runners
never raise into the nursery: they report how the child ended and the supervisor decides.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import attrs
import trio

from spaceactors.actor import ActorCell
from spaceactors.errors import (
    ActorNotFound,
    ActorUnavailable,
    NameTaken,
    StartFailed,
    SupervisorGaveUp,
)
from spaceactors.policy import (
    BRUTAL_KILL,
    SHUTDOWN_EXIT,
    Exit,
    Restart,
    add_restart,
    failed,
    restart_group,
    should_restart,
)
from spaceactors.service import ServiceCell
from spaceactors.specs import ChildCounts, ChildInfo, ChildSpec, ServiceSpec, SupervisorSpec
from spaceactors.trace import EventKind

if TYPE_CHECKING:
    from spaceactors.ref import ActorRef
    from spaceactors.system import ActorSystem

logger = logging.getLogger("spaceactors.supervisor")


@attrs.define(eq=False)
class _Child:
    spec: ChildSpec | ServiceSpec | SupervisorSpec
    runtime: ActorCell | ServiceCell | Supervisor
    static: bool
    # Both made fresh by each start; a child never started has neither.
    scope: trio.CancelScope | None = None
    done: trio.Event | None = None
    incarnation: int = 0
    running: bool = False
    terminating: bool = False  # the supervisor is stopping it: its exit is not a failure
    wanted: bool = True  # False once terminate_child stopped it
    restart_pending: bool = False
    attempt: int = 0  # consecutive restarts, for the backoff
    started_at: float = 0.0

    @property
    def handle(self) -> ActorRef | ServiceCell | Supervisor:
        runtime = self.runtime
        return runtime.ref if isinstance(runtime, ActorCell) else runtime


@attrs.frozen
class _Exited:
    child: _Child
    incarnation: int
    exit: Exit


@attrs.frozen
class _RestartDue:
    children: tuple[_Child, ...]


_STOP = object()


class Supervisor:
    """A supervisor in the tree: start, stop and inspect its children.

    Obtain one from `ActorSystem.spawn_supervisor` or `Supervisor.start_child` with a
    `SupervisorSpec`.
    """

    def __init__(self, spec: SupervisorSpec, system: ActorSystem, parent: Supervisor | None):
        self.spec = spec
        self.system = system
        self.parent = parent
        self.path: str = spec.name if parent is None else f"{parent.path}/{spec.name}"
        self.restarts = 0
        self.alive = True
        self._rng = system.rng(f"supervisor:{self.path}")
        self._children: dict[str, _Child] = {}
        self._history: tuple[float, ...] = ()
        self._nursery: trio.Nursery | None = None
        self._events: trio.MemorySendChannel[object] | None = None
        self._accepting = False
        for child_spec in spec.children:
            self._add(child_spec, static=True)

    def __repr__(self) -> str:
        return f"<Supervisor {self.path!r} {self.spec.strategy.value}>"

    @property
    def name(self) -> str:
        """The supervisor's name among its parent's children."""
        return self.spec.name

    @property
    def running(self) -> bool:
        """True while an incarnation is serving its children."""
        return self._accepting

    @property
    def nursery(self) -> trio.Nursery:
        """The nursery its children (and their timers) run in."""
        if self._nursery is None:
            raise ActorUnavailable(f"supervisor {self.path!r} is not running")
        return self._nursery

    # --- the public face --------------------------------------------------------------

    async def start_child(self, spec: ChildSpec | ServiceSpec | SupervisorSpec) -> Any:
        """Add a dynamic child and start it; returns its `ActorRef` (or `Supervisor`).

        Waits for the child's `on_start` when it has one.

        Raises:
            NameTaken: a child (or a live actor) already has that name.
            StartFailed: the child's constructor or `on_start` raised; nothing is kept.
            ActorUnavailable: this supervisor is not running.
        """
        if not isinstance(spec, ChildSpec | ServiceSpec | SupervisorSpec):
            raise TypeError(
                f"start_child takes a ChildSpec, ServiceSpec or SupervisorSpec, got {spec!r}"
            )
        if not self._accepting:
            raise ActorUnavailable(
                f"supervisor {self.path!r} is not running; cannot start {spec.name!r}"
            )
        child = self._add(spec, static=False)
        try:
            await self._start(child)
        except StartFailed:
            self._discard(child)
            raise
        return child.handle

    async def terminate_child(self, name: str) -> None:
        """Stop a child (within its shutdown policy) without restarting it.

        A static child keeps its spec (see `restart_child`); a dynamic or temporary one is
        deleted.
        """
        child = self._get(name)
        child.wanted = False
        child.restart_pending = False
        await self._terminate(child)
        self._retire(child)

    async def restart_child(self, name: str) -> Any:
        """Start again a static child stopped by `terminate_child` (or a transient exit).

        Raises:
            ActorUnavailable: the child is running (or this supervisor is not).
        """
        child = self._get(name)
        if child.running:
            raise ActorUnavailable(
                f"child {name!r} of {self.path!r} is running; terminate it first"
            )
        if not self._accepting:
            raise ActorUnavailable(f"supervisor {self.path!r} is not running")
        child.wanted = True
        await self._start(child)
        return child.handle

    def delete_child(self, name: str) -> None:
        """Forget a stopped child's spec.

        Raises:
            ActorUnavailable: the child is still running.
        """
        child = self._get(name)
        if child.running:
            raise ActorUnavailable(
                f"child {name!r} of {self.path!r} is running; terminate it first"
            )
        self._discard(child)

    async def stop_child(self, name: str) -> None:
        """Stop a child for good: terminate it and delete its spec."""
        if name in self._children:
            await self.terminate_child(name)
            self._children.pop(name, None)

    async def stop(self) -> None:
        """Stop this supervisor and its children for good (through its parent)."""
        if self.parent is None:
            self.request_shutdown()
            return
        await self.parent.stop_child(self.name)

    def child(self, name: str) -> Any:
        """The `ActorRef` or `Supervisor` of the child called `name`."""
        return self._get(name).handle

    def which_children(self) -> list[ChildInfo]:
        """Every child in start order."""
        return [
            ChildInfo(
                name,
                _KINDS[type(c.runtime)],
                c.running,
                c.spec.restart,
                c.handle,
            )
            for name, c in self._children.items()
        ]

    def count_children(self) -> ChildCounts:
        """How many specs, running children, supervisors and workers this supervisor has."""
        supervisors = sum(isinstance(c.runtime, Supervisor) for c in self._children.values())
        return ChildCounts(
            specs=len(self._children),
            active=sum(c.running for c in self._children.values()),
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    # --- the child protocol (how a parent drives this supervisor) ---------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> Exit:
        """Run one incarnation: start the static children, then supervise until stopped.

        Raises:
            StartFailed: a static child failed to start (before ``task_status.started()``).
        """
        send, receive = trio.open_memory_channel[object](math.inf)
        self._events = send
        self._history = ()  # a new incarnation starts with a clean restart history, as in OTP
        for child in self._children.values():
            child.attempt = 0
        result: Exit | StartFailed
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                result = await self._start_static_children()
                if isinstance(result, Exit):
                    self._accepting = True
                    task_status.started()
                    result = await self._supervise(receive)
                self._accepting = False
                nursery.cancel_scope.cancel()  # backoff sleepers and timers of stopped actors
        finally:
            # Also when the parent hard-cancels this incarnation (deadline or BRUTAL_KILL).
            self._accepting = False
            self._nursery = None
            for child in list(self._children.values()):
                if not child.static:
                    self._discard(child)
        if isinstance(result, StartFailed):
            raise result
        return result

    def prepare(self) -> None:
        """Nothing to build before a supervisor starts."""

    needs_start_handshake = True

    def request_shutdown(self) -> None:
        # Also while the static children are still starting: the request waits in the queue
        # and is the first event this incarnation serves.
        if self._events is not None and self._nursery is not None:
            self._events.send_nowait(_STOP)

    def restarting(self) -> None:
        self.restarts += 1

    def close(self) -> None:
        """Stop for good: every child's mailbox closes (their spec stays, as ours does)."""
        self.alive = False
        for child in self._children.values():
            child.runtime.close()

    def reopen(self) -> None:
        self.alive = True

    # --- starting and stopping children ---------------------------------------------------

    def _get(self, name: str) -> _Child:
        child = self._children.get(name)
        if child is None:
            raise ActorNotFound(f"supervisor {self.path!r} has no child named {name!r}")
        return child

    def _add(self, spec: ChildSpec | ServiceSpec | SupervisorSpec, *, static: bool) -> _Child:
        if isinstance(spec, ChildSpec):
            self.system.registry.check_name_free(spec.name)
        if spec.name in self._children:
            raise NameTaken(f"supervisor {self.path!r} already has a child named {spec.name!r}")
        runtime: ActorCell | ServiceCell | Supervisor
        if isinstance(spec, ChildSpec):
            runtime = ActorCell(spec, self.system, self)
            self.system.registry.add(runtime.ref)
        elif isinstance(spec, ServiceSpec):
            runtime = ServiceCell(spec)
        else:
            runtime = Supervisor(spec, self.system, self)
        child = _Child(spec, runtime, static)
        self._children[spec.name] = child
        return child

    def _discard(self, child: _Child) -> None:
        child.runtime.close()
        if self._children.get(child.spec.name) is child:
            del self._children[child.spec.name]

    def _retire(self, child: _Child) -> None:
        """A child that will not be restarted: dynamic or temporary ones are deleted."""
        self._record(EventKind.STOP, child)
        if child.static and child.spec.restart is not Restart.TEMPORARY:
            child.runtime.close()
        else:
            self._discard(child)

    async def _start(self, child: _Child) -> None:
        runtime = child.runtime
        try:
            runtime.reopen()
            runtime.prepare()
        except (StartFailed, NameTaken) as exc:
            if isinstance(exc, StartFailed):
                raise
            raise StartFailed(f"child {child.spec.name!r} cannot restart: {exc}") from exc
        child.scope, child.done = trio.CancelScope(), trio.Event()
        child.incarnation += 1
        if child.incarnation > 1:
            self._record(EventKind.RESTART, child, f"incarnation {child.incarnation}")
        child.running, child.terminating, child.wanted = True, False, True
        child.started_at = trio.current_time()
        if runtime.needs_start_handshake:
            await self.nursery.start(self._run_child, child)
        else:
            self.nursery.start_soon(self._run_child, child)

    async def _run_child(
        self, child: _Child, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        scope, done, incarnation = child.scope, child.done, child.incarnation
        if scope is None or done is None:  # pragma: no cover - _start sets both first
            raise RuntimeError(f"child {child.spec.name!r} was run without being started")
        exit = SHUTDOWN_EXIT  # what a hard cancel by this supervisor amounts to
        try:
            with scope:
                exit = await child.runtime.run(task_status)
        finally:
            if child.incarnation == incarnation:
                child.running = False
            done.set()
        if exit.abnormal:
            self._record(EventKind.CRASH, child, repr(exit.error))
        if not child.terminating and self._events is not None:
            self._events.send_nowait(_Exited(child, incarnation, exit))

    def _record(self, kind: EventKind, child: _Child, detail: str = "") -> None:
        tap = self.system.tap
        if tap is not None:
            tap.record(kind, child.spec.name, peer=self.path, detail=detail)

    async def _start_static_children(self) -> Exit | StartFailed:
        started: list[_Child] = []
        for child in list(self._children.values()):
            try:
                await self._start(child)
            except StartFailed as exc:
                for earlier in reversed(started):
                    await self._terminate(earlier)
                error = StartFailed(f"supervisor {self.path!r} could not start: {exc}")
                error.__cause__ = exc
                return error
            started.append(child)
        return SHUTDOWN_EXIT

    async def _terminate(self, child: _Child) -> None:
        """Stop a running child: graceful request, deadline, then hard cancel."""
        await self._terminate_together([child])

    async def _terminate_together(self, children: list[_Child]) -> None:
        """Stop running children in parallel, each within its own shutdown policy.

        All get the graceful request at once; then each is waited for until its own deadline
        and hard-cancelled if it has not stopped by then. No task per child.
        """
        now = trio.current_time()
        waiting: list[tuple[float, trio.CancelScope, trio.Event]] = []
        for child in children:
            scope, done = child.scope, child.done
            if not child.running or scope is None or done is None:
                continue
            child.terminating = True
            policy = child.spec.shutdown
            if policy is BRUTAL_KILL:
                scope.cancel()
            else:
                child.runtime.request_shutdown()
            waiting.append((now if policy is BRUTAL_KILL else now + policy, scope, done))
        waiting.sort(key=lambda entry: entry[0])
        for deadline, scope, done in waiting:
            if not done.is_set():
                with trio.move_on_at(deadline):
                    await done.wait()
                scope.cancel()
        for _, _, done in waiting:
            if not done.is_set():  # waiting on a set Event still yields: once per child
                await done.wait()

    async def _terminate_all(self) -> None:
        """Dynamic children in parallel, then static ones in reverse start order."""
        children = list(self._children.values())
        for child in children:
            child.restart_pending = False
        await self._terminate_together([child for child in children if not child.static])
        for child in reversed(children):
            if child.static:
                await self._terminate(child)

    # --- supervising ------------------------------------------------------------------------

    async def _supervise(self, events: trio.MemoryReceiveChannel[object]) -> Exit:
        async for event in events:
            gave_up: SupervisorGaveUp | None = None
            if event is _STOP:
                await self._terminate_all()
                return SHUTDOWN_EXIT
            if isinstance(event, _Exited):
                gave_up = await self._child_exited(event)
            elif isinstance(event, _RestartDue):
                gave_up = await self._restart(event.children)
            if gave_up is not None:
                return failed(gave_up)
        raise AssertionError("the event channel never closes")  # pragma: no cover

    async def _child_exited(self, event: _Exited) -> SupervisorGaveUp | None:
        child = event.child
        current = self._children.get(child.spec.name) is child
        if not current or event.incarnation != child.incarnation or not child.wanted:
            return None
        if not should_restart(child.spec.restart, event.exit):
            self._retire(child)
            return None
        return await self._restart_after(child, event.exit)

    async def _restart_after(self, child: _Child, exit: Exit) -> SupervisorGaveUp | None:
        """Apply the strategy to a child that must be restarted (after a failure or a start
        that failed)."""
        now = trio.current_time()
        self._history, allowed = add_restart(
            self._history, now, self.spec.max_restarts, self.spec.within
        )
        if not allowed:
            return await self._give_up(child, exit.error)
        order = list(self._children)
        group = [
            self._children[name]
            for name in restart_group(self.spec.strategy, order, child.spec.name)
        ]
        for sibling in reversed(group):
            if sibling is not child:
                await self._terminate(sibling)
        to_start = []
        for member in group:
            if member.spec.restart is Restart.TEMPORARY or not member.wanted:
                self._retire(member)
                continue
            member.restart_pending = True
            member.runtime.restarting()
            to_start.append(member)
        delay = self._backoff_delay(child, now)
        if delay > 0:
            self.nursery.start_soon(self._restart_later, delay, _RestartDue(tuple(to_start)))
            return None
        return await self._restart(tuple(to_start))

    def _backoff_delay(self, child: _Child, now: float) -> float:
        backoff = self.spec.backoff
        if backoff is None:
            return 0.0
        if now - child.started_at >= backoff.quiet_period:
            child.attempt = 0
        delay = backoff.delay(child.attempt, self._rng)
        child.attempt += 1
        return delay

    async def _restart_later(self, delay: float, due: _RestartDue) -> None:
        await trio.sleep(delay)
        if self._events is not None:
            self._events.send_nowait(due)

    async def _restart(self, children: tuple[_Child, ...]) -> SupervisorGaveUp | None:
        for child in children:
            if not child.restart_pending or self._children.get(child.spec.name) is not child:
                continue
            child.restart_pending = False
            if child.running:
                continue
            try:
                await self._start(child)
            except StartFailed as exc:
                logger.warning("restart of %r under %r failed: %s", child.spec.name, self.path, exc)
                return await self._restart_after(child, failed(exc))  # a failed start counts
        return None

    async def _give_up(self, child: _Child, cause: BaseException | None) -> SupervisorGaveUp:
        logger.error(
            "supervisor %r gave up: more than %d restarts within %s s (last by %r)",
            self.path,
            self.spec.max_restarts,
            self.spec.within,
            child.spec.name,
        )
        self._record(
            EventKind.GIVE_UP,
            child,
            f"more than {self.spec.max_restarts} restarts within {self.spec.within} s",
        )
        await self._terminate_all()
        error = SupervisorGaveUp(self.path, child.spec.name, cause)
        error.__cause__ = cause
        return error


_KINDS: dict[type, str] = {ActorCell: "worker", ServiceCell: "service", Supervisor: "supervisor"}
