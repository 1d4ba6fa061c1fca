"""Supervisor: starts children as Trio tasks in its nursery and applies OTP's restart rules.

A `Supervisor` handle, like an `ActorRef`, outlives the incarnations of the supervisor task. Each
incarnation opens a nursery, starts the static children in order and then serves exit reports
one at a time (`spaceactors.restarts`); the decisions come from the pure functions of
`spaceactors.policy`. Child runners never raise into the nursery: they report how the child
ended and the supervisor decides.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from spaceactors.cell import ActorCell
from spaceactors.children import (
    Child,
    Stop,
    StoppedWhileStarting,
    terminate_together,
)
from spaceactors.errors import (
    ActorNotFound,
    ActorUnavailable,
    NameTaken,
    StartFailed,
)
from spaceactors.incarnation import Incarnations
from spaceactors.lifecycle import Lifecycle
from spaceactors.policy import (
    BRUTAL_KILL,
    SHUTDOWN_EXIT,
    Exit,
    Restart,
)
from spaceactors.restarts import RestartLoop
from spaceactors.service import ServiceCell
from spaceactors.specs import ChildCounts, ChildInfo, ChildSpec, ServiceSpec, SupervisorSpec
from spaceactors.trace import EventKind

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem


class Supervisor(Incarnations):
    """A supervisor in the tree: start, stop and inspect its children.

    Obtain one from `ActorSystem.spawn_supervisor` or `Supervisor.start_child` with a
    `SupervisorSpec`.
    """

    def __init__(
        self,
        spec: SupervisorSpec,
        system: ActorSystem,
        parent: Supervisor | None,
        *,
        build: bool = True,
    ) -> None:
        self.spec = spec
        self.system = system
        self.parent = parent
        self.path: str = spec.name if parent is None else f"{parent.path}/{spec.name}"
        self.restarts = 0
        self.alive = True
        self._children: dict[str, Child] = {}
        self._restarts = RestartLoop(self)
        self._nursery: trio.Nursery | None = None
        self._events: trio.MemorySendChannel[object] | None = None
        self._accepting = False
        self._stopping = False  # a stop (or giving up) is under way: refuse new work
        # The child this task is starting (static or restart), and the scope a stop request
        # puts that child's shutdown deadline on.
        self._starting: Child | None = None
        self._start_scope: trio.CancelScope | None = None
        self.resume: Callable[[Supervisor], Awaitable[None]] | None = None
        """Set by a resume (`spaceactors.checkpoint`): the next incarnation puts back the
        children a checkpoint holds, with this, instead of starting its static children."""
        if build:
            self._build_tree()

    def __repr__(self) -> str:
        return f"<Supervisor {self.path!r} {self.spec.strategy.value}>"

    def _build_tree(self) -> None:
        """Add the static children of this supervisor and of every one below it, in the
        order of a depth-first walk, with a loop (any depth of nesting)."""
        stack = [(self, iter(self.spec.children))]
        while stack:
            supervisor, specs = stack[-1]
            spec = next(specs, None)
            if spec is None:
                stack.pop()
                continue
            child = supervisor._add(spec, static=True)
            if isinstance(child.runtime, Supervisor):
                stack.append((child.runtime, iter(child.runtime.spec.children)))

    @property
    def name(self) -> str:
        """The supervisor's name among its parent's children."""
        return self.spec.name

    @property
    def running(self) -> bool:
        """True while an incarnation is serving its children (False once it is stopping)."""
        return self._accepting

    def _refusal(self, action: str) -> ActorUnavailable | None:
        """Why this supervisor cannot `action` now (it or an ancestor is stopping), or None."""
        supervisor: Supervisor | None = self
        while supervisor is not None:
            if supervisor._stopping:
                return ActorUnavailable(
                    f"supervisor {supervisor.path!r} is stopping; cannot {action}"
                )
            supervisor = supervisor.parent
        if not self._accepting:
            return ActorUnavailable(f"supervisor {self.path!r} is not running; cannot {action}")
        return None

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
            ActorUnavailable: this supervisor (or one above it) is stopping or not running,
                also when a stop began while the child was starting (the stop then ends the
                child within its shutdown policy).
        """
        if not isinstance(spec, ChildSpec | ServiceSpec | SupervisorSpec):
            raise TypeError(
                f"start_child takes a ChildSpec, ServiceSpec or SupervisorSpec, got {spec!r}"
            )
        action = f"start {spec.name!r}"
        refusal = self._refusal(action)
        if refusal is not None:
            raise refusal
        node = self.system.node
        if node is not None and isinstance(spec, ChildSpec):  # a name is cluster-wide
            self.system.registry.check_name_free(spec.name)
            await node.reserve(spec.name, spec.mailbox_size)
        child = self._add(spec, static=False)
        try:
            if isinstance(child.runtime, Supervisor):
                child.runtime._build_tree()
            await self._start(child)
        except BaseException as exc:  # it failed, was stopped, or its starter was cancelled
            if not child.running:  # (the start is over, or called off: nothing is kept)
                self._discard(child)
                if node is not None:
                    node.released(spec.name)
            if isinstance(exc, StoppedWhileStarting):
                raise self._refusal(action) or ActorUnavailable(
                    f"child {spec.name!r} of {self.path!r} was stopped while starting"
                ) from None
            raise
        refusal = self._refusal(action)
        if refusal is not None:  # the stop that began meanwhile is stopping the child
            raise refusal
        if child.terminating or self._children.get(spec.name) is not child:
            raise ActorUnavailable(f"child {spec.name!r} of {self.path!r} was stopped meanwhile")
        return child.handle

    async def terminate_child(self, name: str) -> None:
        """Stop a child (within its shutdown policy) without restarting it.

        A static child keeps its spec (see `restart_child`); a dynamic or temporary one is
        deleted. While this supervisor is stopping, this waits for the child to be stopped.
        """
        child = self._get(name)
        child.wanted = False
        child.restart_pending = False
        child.retire_when_stopped = True
        await self._terminate(child, final=True)
        self._retire_stopped(child)

    async def restart_child(self, name: str) -> Any:
        """Start again a static child stopped by `terminate_child` (or a transient exit).

        Raises:
            ActorUnavailable: the child is running, or this supervisor (or one above it) is
                stopping or not running.
        """
        child = self._get(name)
        if child.running:
            raise ActorUnavailable(
                f"child {name!r} of {self.path!r} is running; terminate it first"
            )
        action = f"restart {name!r}"
        refusal = self._refusal(action)
        if refusal is not None:
            raise refusal
        child.wanted = True
        try:
            await self._start(child)
        except StoppedWhileStarting:
            raise self._refusal(action) or ActorUnavailable(
                f"child {name!r} of {self.path!r} was stopped while starting"
            ) from None
        refusal = self._refusal(action)
        if refusal is not None:
            raise refusal
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
        child = self._children.get(name)
        if child is not None:
            child.forget_when_stopped = True
            await self.terminate_child(name)
            node = self.system.node
            if node is not None and isinstance(child.spec, ChildSpec):
                await node.release(name)  # the name is free cluster-wide once this returns

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
        resume, self.resume = self.resume, None
        if resume is None:  # (a resumed incarnation keeps the history its checkpoint holds)
            self._restarts.reset()  # a new incarnation starts with a clean restart history (OTP)
        self._stopping = False
        result: Exit | StartFailed
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if resume is None:
                    result = await self._start_static_children()
                else:
                    await resume(self)
                    result = SHUTDOWN_EXIT
                if isinstance(result, Exit):
                    if not self._stopping:  # else it never counts as started
                        self._accepting = True
                        task_status.started()
                    result = await self._restarts.serve(receive)
                self._accepting = False
                nursery.cancel_scope.cancel()  # backoff sleepers and timers of stopped actors
        finally:
            # Also when the parent hard-cancels this incarnation (deadline or BRUTAL_KILL).
            self._accepting = self._stopping = False  # stopped: no longer "stopping"
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

    def request_shutdown(self, *, final: bool = True) -> None:
        """Ask the running incarnation to stop its children and end (`final`: for good).

        From now on it refuses new children. A child it is starting (a static child, or a
        restart) is asked to stop like a running one, within its shutdown policy, so the stop
        is served whatever a start costs.
        """
        supervisor: Supervisor | None = self
        while supervisor is not None:  # down a chain of supervisors still starting: a loop
            supervisor = supervisor._stop_requested(final)

    def _stop_requested(self, final: bool) -> Supervisor | None:
        """`request_shutdown` for this supervisor alone; returns the supervisor it is starting
        (asked to stop in turn), if any."""
        if self._events is None or self._nursery is None:
            return None
        self._stopping, self._accepting = True, False
        self._events.send_nowait(Stop(final))
        starting, scope = self._starting, self._start_scope
        if starting is None or scope is None or starting.terminating:
            return None
        policy = starting.spec.shutdown
        grace = 0.0 if policy is BRUTAL_KILL else policy
        scope.deadline = min(scope.deadline, trio.current_time() + grace)
        starting.terminating = True
        if isinstance(starting.runtime, Supervisor):
            return starting.runtime
        starting.runtime.request_shutdown(final=final)
        return None

    def restarting(self) -> None:
        self.restarts += 1

    def close(self) -> None:
        """Stop for good: every child's mailbox closes (their spec stays, as ours does)."""
        todo = [self]
        while todo:  # a loop, not recursion: any depth of nesting
            supervisor = todo.pop()
            supervisor.alive = False
            for child in supervisor._children.values():
                if isinstance(child.runtime, Supervisor):
                    todo.append(child.runtime)
                else:
                    child.runtime.close()

    def reopen(self) -> None:
        self.alive = True

    # --- starting and stopping children ---------------------------------------------------

    def _get(self, name: str) -> Child:
        child = self._children.get(name)
        if child is None:
            raise ActorNotFound(f"supervisor {self.path!r} has no child named {name!r}")
        return child

    def _add(self, spec: ChildSpec | ServiceSpec | SupervisorSpec, *, static: bool) -> Child:
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
            runtime = Supervisor(spec, self.system, self, build=False)  # see _build_tree
        child = Child(spec, runtime, static)
        self._children[spec.name] = child
        if self.system.lifecycle.tallying:
            self.system.lifecycle.enter(child)
        return child

    def _discard(self, child: Child) -> None:
        child.runtime.close()
        if self._children.get(child.spec.name) is child:
            del self._children[child.spec.name]
        if self.system.lifecycle.tallying:
            # After it left the tree: an observer's walk taken before the count changes is
            # walked again (`Lifecycle.changes`), never kept with the child still in it.
            _retire_counts(self.system.lifecycle, child)

    def _retire_stopped(self, child: Child) -> None:
        """Finish `terminate_child` / `stop_child` once `child` has stopped (once only)."""
        if not child.retire_when_stopped or child.running:
            return
        child.retire_when_stopped = False
        self._retire(child)
        if child.forget_when_stopped and self._children.get(child.spec.name) is child:
            self._discard(child)  # a static one: its counts retire with it

    def _retire(self, child: Child) -> None:
        """A child that will not be restarted: dynamic or temporary ones are deleted."""
        self._record(EventKind.STOP, child)
        if child.static and child.spec.restart is not Restart.TEMPORARY:
            child.runtime.close()
        else:
            self._discard(child)

    async def _terminate(self, child: Child, *, final: bool = False) -> None:
        """Stop a running child: graceful request, deadline, then hard cancel."""
        await terminate_together([child], final=final)

    async def _terminate_all(self, *, final: bool) -> None:
        """Dynamic children in parallel, then static ones in reverse start order."""
        children = list(self._children.values())
        for child in children:
            child.restart_pending = False
        # Dynamic children never outlive this incarnation: their stop is always final.
        await terminate_together([child for child in children if not child.static], final=True)
        for child in reversed(children):
            if child.static:
                await self._terminate(child, final=final)


def _retire_counts(lifecycle: Lifecycle, child: Child) -> None:
    """`child` and everything below it leave the tree: keep their counts."""
    todo = [child]
    while todo:  # a loop, not recursion: any depth of nesting
        one = todo.pop()
        lifecycle.retire(one)
        if isinstance(one.runtime, Supervisor):
            todo.extend(one.runtime._children.values())


_KINDS: dict[type, str] = {ActorCell: "worker", ServiceCell: "service", Supervisor: "supervisor"}
