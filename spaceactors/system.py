"""open_system(): the root of the supervision tree, and the `ActorSystem` handle users work with.

```
root (one_for_one)
├── services (rest_for_one)   the engine's own services
└── user (one_for_one)        everything spawned by the user
```
Leaving ``async with open_system()`` stops everything in reverse start order; nothing outlives it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import trio

from spaceactors.bulk import start_many
from spaceactors.deadletters import DEFAULT_KEEP, DeadLetters
from spaceactors.errors import CheckpointError
from spaceactors.faultplan import FaultPlan
from spaceactors.faults import FaultInjector
from spaceactors.lifecycle import Lifecycle
from spaceactors.limiter import Limiter
from spaceactors.policy import Backoff, Restart, ShutdownPolicy, Strategy
from spaceactors.recording import current_recorder
from spaceactors.ref import ActorRef
from spaceactors.registry import Registry
from spaceactors.reliable import Reliable
from spaceactors.router import Router
from spaceactors.specs import (
    DEFAULT_MAILBOX_SIZE,
    DEFAULT_SHUTDOWN,
    NO_KWARGS,
    ChildSpec,
    ServiceSpec,
    SupervisorSpec,
)
from spaceactors.supervisor import Supervisor
from spaceactors.system_options import (
    _check_options,
    _cluster,
    _observe_address,
    _observer,
    _resume,
    _trace_level,
)
from spaceactors.tap import Tap
from spaceactors.trace import Trace, TraceLevel, sink_for
from spaceactors.virtual import current_seed

if TYPE_CHECKING:
    from spaceactors.checkpoint.records import Checkpoint
    from spaceactors.transport.node import Node

Target = ActorRef | int | str
"""Anything that names an actor: its ref, its numeric id or its registered name."""


class ActorSystem:
    """A running actor system: spawn actors and supervisors, find them, send to them.

    Create one with `open_system`; do not instantiate it directly.
    """

    def __init__(
        self,
        *,
        seed: int,
        dead_letter_keep: int,
        max_restarts: int,
        within: float,
        trace: Trace | None = None,
        faults: FaultPlan | None = None,
        observe: ServiceSpec | None = None,
        cluster: Callable[[ActorSystem], Node] | None = None,
    ) -> None:
        self.seed = seed
        self.registry = Registry()
        self.node: Node | None = None
        """This system's membership of a cluster (``open_system(cluster=...)``), else None."""
        self.dead_letters = DeadLetters(keep=dead_letter_keep)
        self.lifecycle = Lifecycle(self.dead_letters)
        """Lifecycle events (restarts with their cause, give-ups, dead letters, faults) for
        whoever listens (`Lifecycle.listen`), and the counts of actors that left the tree."""
        self.counters: dict[str, Callable[[], Mapping[str, float]]] = {}
        """Named sources of counters an observer exports beside the engine's own (a running
        simulation adds ``"sim"``): each returns its counts, by name, when called."""
        self.observe_url: str | None = None
        """The observation server's address (``http://127.0.0.1:PORT``) when the system was
        opened with ``observe=``, else None."""
        self.opened_at = trio.current_time()
        """When the system opened, on the run's clock."""
        self.opened_wall = time.time()
        """When the system opened, in Unix seconds."""
        self.trace = trace
        """The event trace, if the system was opened with one."""
        self.faults = (
            None
            if faults is None
            else FaultInjector(faults, self.rng("faults"), origin=trio.current_time())
        )
        """The fault plan at work, if the system was opened with one."""
        traced = trace is not None and bool(trace.kinds)  # level "off": no tap to pay for
        self.tap = None if not traced and faults is None else Tap(self, trace, self.faults)
        self.router = Router(self)
        self.reliable = Reliable(self)
        self.limiter = Limiter()
        services: tuple[ServiceSpec, ...] = (
            ServiceSpec("router", self.router.serve),
            ServiceSpec("reliable", self.reliable.serve),
            ServiceSpec("limiter", self.limiter.serve),
        )
        if cluster is not None:
            self.node = cluster(self)
            self.registry.directory = self.node
            services += (ServiceSpec("node", self.node.serve),)
        if observe is not None:
            services += (observe,)
        self.root = Supervisor(
            SupervisorSpec(
                "root",
                Strategy.ONE_FOR_ONE,
                children=(
                    SupervisorSpec("services", Strategy.REST_FOR_ONE, children=services),
                    SupervisorSpec(
                        "user", Strategy.ONE_FOR_ONE, max_restarts=max_restarts, within=within
                    ),
                ),
            ),
            self,
            None,
        )
        self.services: Supervisor = self.root.child("services")
        self.user: Supervisor = self.root.child("user")
        self.gave_up: BaseException | None = None
        self._auto_names = itertools.count(1)
        self.resumed = False
        """True when the system was opened from a checkpoint (``open_system(resume_from=)``):
        it holds the checkpoint's actors already, so the block must not spawn them again."""
        if self.tap is not None:
            self.tap.install(self, self.router.state.schedule)

    def rng(self, label: str) -> random.Random:
        """A random generator seeded from the system seed and `label` (stable across runs)."""
        return random.Random(f"{self.seed}/{label}")

    async def spawn(
        self,
        factory: Callable[..., Any],
        *args: Any,
        name: str | None = None,
        mailbox_size: int = DEFAULT_MAILBOX_SIZE,
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownPolicy = DEFAULT_SHUTDOWN,
        **kwargs: Any,
    ) -> ActorRef:
        """Start an actor under the ``user`` supervisor and return its ref.

        The actor is routable (by ref, id and name) from the moment this returns. If it defines
        `on_start`, this waits for it. Extra positional and keyword arguments go to `factory`.

        Raises:
            InvalidSpec: an option is invalid.
            NameTaken: a live actor already has `name`.
            StartFailed: the constructor or `on_start` raised.
        """
        if name is None:
            name = f"{getattr(factory, '__name__', 'actor').lower()}-{next(self._auto_names)}"
        spec = ChildSpec(name, factory, args, kwargs or NO_KWARGS, restart, shutdown, mailbox_size)
        ref: ActorRef = await self.user.start_child(spec)
        return ref

    async def spawn_many(self, specs: Iterable[ChildSpec]) -> list[ActorRef]:
        """Start an actor for each of `specs` under the ``user`` supervisor, in order, and
        return their refs: a fleet in one call, for less than `spawn` costs each.

        ``await system.spawn_many(sa.ChildSpec(f"ship-{i}", Ship, (world,)) for i in
        range(10_000))``. Every name is checked before anything starts; the batch is built and
        started without yielding to other tasks, and its tasks take their first step (two
        scheduling rounds, in which other ready tasks run too), with Python's automatic
        garbage collection paused meanwhile and then resumed as it was found (no collector
        setting changes; a task that disables the collector during those two rounds finds it
        enabled again: see `spaceactors.bulk`); then this waits for the ``on_start`` of the
        actors that have one, side by side. The batch starts whole or not at all.

        Raises:
            TypeError: an item is not a `ChildSpec`.
            NameTaken: a name is taken, or appears twice in `specs` (nothing started).
            StartFailed: a constructor or an ``on_start`` raised (the first to fail, as soon
                as it does: the actors of the batch already started are stopped, those still
                starting are cancelled, and none is kept).
            ActorUnavailable: the system is stopping.
        """
        return await start_many(self.user, specs)

    async def spawn_supervisor(
        self,
        name: str,
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = None,
        children: Iterable[ChildSpec | ServiceSpec | SupervisorSpec] = (),
        restart: Restart = Restart.PERMANENT,
        shutdown: ShutdownPolicy = math.inf,
    ) -> Supervisor:
        """Start a supervisor under ``user``; add children with `Supervisor.start_child`.

        Raises:
            InvalidSpec: an option is invalid.
            StartFailed: one of `children` failed to start.
        """
        spec = SupervisorSpec(
            name, strategy, max_restarts, within, backoff, tuple(children), restart, shutdown
        )
        supervisor: Supervisor = await self.user.start_child(spec)
        return supervisor

    async def checkpoint(self, path: str | os.PathLike[str]) -> Checkpoint:
        """Save the system to the state file `path` at the next moment for a checkpoint, and
        return what was written (its ``number`` and ``sim_time``, virtual seconds).

        The checkpoint is taken at the first quiescent point of the run (every task blocked,
        the clock about to jump) where every actor is idle at its mailbox; taking it runs no
        task and draws no random number. It holds the supervision tree, each actor's state and
        mailbox, timers, scheduled deliveries, topics, reliable delivery, the trace's position
        and hash, and the scheduler's state; `open_system` (``resume_from=path``) carries on
        from it. `path` is created if missing (the `spaceactors.checkpoint.StateFile` format
        of ``spaceactors run --state``); it keeps the last 3 checkpoints. Call it from your own
        code, not from an actor's handler (that actor would never be idle). Virtual time only.

        Raises:
            CheckpointError: the run is on a wall clock, the system uses what checkpoints do
                not hold yet (a fault plan, rate-limited senders), or an actor's state cannot
                be saved (the message names the actor and field).
            StateFileError: `path` cannot be written, or is another run's state file.
        """
        from spaceactors.checkpoint import program

        return await program.checkpoint(self, path)

    def lookup(self, target: Target) -> ActorRef:
        """The live actor with this ref, id or name.

        Raises:
            ActorNotFound: none is live.
        """
        return self.registry.resolve(target)

    async def send(self, target: Target, message: object) -> None:
        """Send to the actor `target` names, waiting while its mailbox is full (`Router.route`).

        Raises:
            ActorNotFound: nothing live has that id or name (recorded as a dead letter).
            ActorUnavailable: the actor has stopped (recorded as a dead letter).
        """
        await self.router.route(target, message)

    def try_send(self, target: Target, message: object) -> None:
        """Like `send`, but raises `MailboxFull` instead of waiting."""
        self.router.try_route(target, message)

    async def ask(self, target: Target, message: object, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """`ActorRef.ask` the actor `target` names (`Router.ask`)."""
        return await self.router.ask(target, message, timeout)


@asynccontextmanager
async def open_system(
    *,
    seed: int | None = None,
    dead_letter_keep: int = DEFAULT_KEEP,
    max_restarts: int = 3,
    within: float = 5.0,
    trace: Trace | str | os.PathLike[str] | bool | None = None,
    trace_level: TraceLevel | str | None = None,
    faults: FaultPlan | None = None,
    observe: str | bool | None = None,
    observe_token: str | None = None,
    resume_from: str | os.PathLike[str] | None = None,
    cluster: object = None,
    node: str | None = None,
) -> AsyncIterator[ActorSystem]:
    """Run an actor system for the duration of the ``async with`` block.

    Args:
        seed: seeds every random choice the system makes (backoff and retry jitter, fault
            decisions), an int in [-2**63, 2**64); default: the seed of the enclosing
            `spaceactors.run`, else 0.
        dead_letter_keep: how many recent dead letters `ActorSystem.dead_letters` keeps (>= 0).
        max_restarts: the restart intensity of the ``user`` supervisor: more than this many
            restarts within `within` seconds and it gives up.
        within: the intensity's sliding window, in seconds.
        trace: record the event trace (``system.trace``): a `Trace`, a file to write
            (``.jsonl``/``.ndjson``, or ``.sqlite``/``.sqlite3``/``.db``; closed when the
            block ends), or True for memory only.
        trace_level: which events the trace records, for a trace this call opens (a path
            or True): a `TraceLevel` or its value, ``"off"``, ``"lifecycle"``,
            ``"messages"`` or ``"everything"`` (the default). A `Trace` has its own
            (``sa.Trace(level=...)``).
        faults: a `FaultPlan` to inject (``system.faults``); the rules that did nothing in
            the run (`FaultInjector.unmatched`) are recorded on the trace as it closes.
        observe: serve the observation server (``/metrics``, ``/status``, ``/events``,
            ``/control``, a dashboard at ``/``: docs/observing.md) on this ``HOST:PORT``
            (port 0: any free port; True: ``127.0.0.1:0``) for as long as the block runs; its
            address is ``system.observe_url``. It runs on the real clock, in a thread of its
            own, whatever clock the system runs on. Needs ``pip install
            'spaceactors[observe]'``.
        observe_token: the token ``/control`` and ``/events`` require (``Authorization:
            Bearer TOKEN``); default: the environment variable ``SPACEACTORS_OBSERVE_TOKEN``.
            A server bound to an address other than loopback refuses to start without one.
        resume_from: a state file `ActorSystem.checkpoint` wrote: the system opens with what
            its last checkpoint holds (the tree, actors' state and mailboxes, timers,
            scheduled deliveries, topics, reliable delivery, the trace's position and hash)
            and ``system.resumed`` is True. The block runs from its top: spawn only
            ``if not system.resumed``. Virtual time: a clock behind the checkpoint's time
            jumps to it. `seed` defaults to the checkpoint's (another one is refused). Inside
            ``spaceactors.run(main, resume_from=path)`` the first system opened resumes too.
        cluster: make this system a node of a cluster (docs/nodes.md): a Redis or Valkey URL
            (``redis://[user:password@]host:port[/db]``, ``rediss://`` for TLS; needs
            ``pip install 'spaceactors[redis]'``), or a `spaceactors.transport.LocalBroker`
            for nodes in one process. Names become cluster-wide; `ActorSystem.lookup` finds
            actors on every node (``system.node``).
        node: this node's name in the cluster (default: ``HOSTNAME-PID``).

    On leaving the block, every actor and supervisor is stopped in reverse start order, each
    within its shutdown policy. An exception from the block propagates unchanged after that.

    Raises:
        InvalidSpec: an option is invalid (the message names it), or `observe` binds beyond
            loopback without a token; nothing was started.
        ImportError: `observe` is given but the ``observe`` extra is not installed, or
            `cluster` is a Redis URL and the ``redis`` extra is not.
        spaceactors.transport.BrokerUnavailable: `cluster` cannot be reached (or refused
            the credentials); the block did not run.
        spaceactors.transport.NodeNameTaken: a live node of the cluster has the name `node`.
        OSError: the observation server cannot bind its address.
        SupervisorGaveUp: the root supervisor itself gave up (the block is cancelled first).
        ValueError: `trace` is a path whose suffix is not a trace format.
        StateFileError: `resume_from` is missing, damaged, without a checkpoint, or written
            by another program, another version of its code, or ``spaceactors run``.
        CheckpointError: `resume_from` cannot be rebuilt here: a wall clock, a clock past the
            checkpoint, another seed, a trace where it had none (or none where it had one),
            or tasks of the block that differ from the checkpointed run's (raised on leaving).
        OSError: the trace file cannot be created, or could not be written during the run
            (a full disk: raised on leaving the block; the file keeps the events before).
    """
    _check_options(seed, dead_letter_keep, max_restarts, within, trace, faults)
    level = _trace_level(trace, trace_level)
    address = _observe_address(observe, observe_token)  # checked before anything starts
    join = _cluster(cluster, node)
    resume = _resume(resume_from)
    if resume is not None:
        seed = resume.system_seed(seed)
    if seed is None:
        seed = current_seed() or 0
    owned_trace = trace is True or isinstance(trace, str | os.PathLike)
    if trace is True:
        trace = Trace(level=level)
    elif isinstance(trace, str | os.PathLike):
        trace = Trace(sink_for(trace), level=level)
    elif trace is False:
        trace = None
    recorder = current_recorder()
    if recorder is not None:  # a test recording its example (spaceactors.testing)
        trace = recorder.opened(seed, trace)
    if trace is not None:
        trace.bind(trio.lowlevel.current_clock().current_time)
    observer = None
    if address is not None:
        try:
            observer = _observer(address, observe_token)  # binds its socket now
        except BaseException:
            if owned_trace and trace is not None:
                trace.close()
            raise
    system = ActorSystem(
        seed=seed,
        dead_letter_keep=dead_letter_keep,
        max_restarts=max_restarts,
        within=within,
        trace=trace,
        faults=faults,
        observe=None if observer is None else observer.service(),
        cluster=join,
    )
    if observer is not None:
        observer.attach(system)
    check: Callable[[], None] | None = None
    try:
        async with _running(system) as running:
            if running.node is not None:
                await running.node.joined()  # (a broker out of reach: raised here)
            if resume is not None:
                from spaceactors.checkpoint import program

                check = await program.restore(running, resume)
                running.resumed = True
            yield running
    except BaseException:
        if check is not None:
            with contextlib.suppress(CheckpointError):  # (disarmed: the block's error wins)
                check()
        raise
    else:
        if check is not None:
            check()  # the resumed run rebuilt the checkpoint's tasks: it continued exactly
    finally:
        system.reliable.close()  # a delivered() waiting elsewhere must not wait forever
        system.router.close()  # what was still scheduled is a dead letter, not silently lost
        system.router.limiter.close()  # and so is what a RateLimitedSender still queued
        if system.tap is not None:
            system.tap.closing()  # the fault rules that did nothing, on the trace
        if owned_trace and trace is not None:
            trace.close()
        if recorder is not None and trace is not None:
            recorder.closed(trace)
        if observer is not None:
            observer.close()  # its socket (the service, restarted or not, has stopped)


@asynccontextmanager
async def _running(system: ActorSystem) -> AsyncIterator[ActorSystem]:
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(_run_root, system, nursery.cancel_scope)
        try:
            yield system
        except trio.Cancelled:
            raise
        except BaseException as exc:  # re-raised below, outside the nursery, unwrapped
            body_error = exc
        system.root.request_shutdown()
    if body_error is not None:
        raise body_error
    if system.gave_up is not None:
        raise system.gave_up


async def _run_root(
    system: ActorSystem,
    cancel_body: trio.CancelScope,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    exit = await system.root.run(task_status)
    system.root.close()
    if exit.abnormal:
        system.gave_up = exit.error
        cancel_body.cancel()
