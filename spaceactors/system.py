"""open_system(): the root of the supervision tree, and the `ActorSystem` handle users work with.

```
root (one_for_one)
├── services (rest_for_one)   the engine's own services
└── user (one_for_one)        everything spawned by the user
```
Leaving ``async with open_system()`` stops everything in reverse start order; nothing outlives it.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio

from spaceactors.deadletters import DEFAULT_KEEP, DeadLetters
from spaceactors.limiter import Limiter
from spaceactors.policy import Backoff, Restart, ShutdownPolicy, Strategy
from spaceactors.ref import ActorRef
from spaceactors.registry import Registry
from spaceactors.reliable import Reliable
from spaceactors.router import Router
from spaceactors.specs import (
    DEFAULT_MAILBOX_SIZE,
    DEFAULT_SHUTDOWN,
    ChildSpec,
    ServiceSpec,
    SupervisorSpec,
)
from spaceactors.supervisor import Supervisor

Target = ActorRef | int | str
"""Anything that names an actor: its ref, its numeric id or its registered name."""


class ActorSystem:
    """A running actor system: spawn actors and supervisors, find them, send to them.

    Create one with `open_system`; do not instantiate it directly.
    """

    def __init__(
        self, *, seed: int, dead_letter_keep: int, max_restarts: int, within: float
    ) -> None:
        self.seed = seed
        self.registry = Registry()
        self.dead_letters = DeadLetters(keep=dead_letter_keep)
        self.router = Router(self)
        self.reliable = Reliable(self)
        self.limiter = Limiter()
        services = (
            ServiceSpec("router", self.router.serve),
            ServiceSpec("reliable", self.reliable.serve),
            ServiceSpec("limiter", self.limiter.serve),
        )
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
        spec = ChildSpec(name, factory, args, kwargs, restart, shutdown, mailbox_size)
        ref: ActorRef = await self.user.start_child(spec)
        return ref

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
    seed: int = 0,
    dead_letter_keep: int = DEFAULT_KEEP,
    max_restarts: int = 3,
    within: float = 5.0,
) -> AsyncIterator[ActorSystem]:
    """Run an actor system for the duration of the ``async with`` block.

    Args:
        seed: seeds every random choice the system makes (backoff jitter, ...).
        dead_letter_keep: how many recent dead letters `ActorSystem.dead_letters` keeps.
        max_restarts, within: the restart intensity of the ``user`` supervisor.

    On leaving the block, every actor and supervisor is stopped in reverse start order, each
    within its shutdown policy. An exception from the block propagates unchanged after that.

    Raises:
        SupervisorGaveUp: the root supervisor itself gave up (the block is cancelled first).
    """
    system = ActorSystem(
        seed=seed, dead_letter_keep=dead_letter_keep, max_restarts=max_restarts, within=within
    )
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
