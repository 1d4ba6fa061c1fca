"""Child specs: what a supervisor starts, and how it treats each child. Data, validated here."""

from __future__ import annotations

import math
import types
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from spaceactors import checks
from spaceactors.checks import integer, short_repr
from spaceactors.errors import InvalidSpec
from spaceactors.policy import (
    Backoff,
    Restart,
    ShutdownPolicy,
    Strategy,
    validate_intensity,
    validate_shutdown,
)

if TYPE_CHECKING:
    from spaceactors.ref import ActorRef
    from spaceactors.service import ServiceCell
    from spaceactors.supervisor import Supervisor

DEFAULT_MAILBOX_SIZE = 64
MAX_MAILBOX_SIZE = 2**20
"""The largest mailbox: a bound past a million messages would never push back before memory
runs out, so it would mean nothing (see docs/backpressure.md)."""
DEFAULT_SHUTDOWN = 5.0


def _check_name(owner: str, name: object) -> None:
    checks.name(f"{owner}.name", name, InvalidSpec)


NO_KWARGS: Mapping[str, Any] = types.MappingProxyType({})
"""The keyword arguments of a spec that has none: one shared, read-only mapping."""

_VALID_LIMIT = 1024
_valid: dict[tuple[object, ...], None] = {}
"""(factory, restart, type(shutdown), shutdown, type(mailbox_size), mailbox_size) of the
`ChildSpec` options checked so far, for classes: a bounded cache (cleared when full)."""


def _seen(key: tuple[object, ...]) -> bool:
    """Whether `key` was checked before; an unhashable option never was (it is invalid)."""
    try:
        return key in _valid
    except TypeError:
        return False


@attrs.frozen
class ChildSpec:
    """How to start one actor under a supervisor, and how to treat it when it ends.

    Attributes:
        name: unique among the supervisor's children, and the actor's registered name.
        factory: the `Actor` subclass (or any callable returning an actor); called with
            ``*args, **kwargs`` for every incarnation.
        restart: when the actor is restarted (`Restart`).
        shutdown: seconds to stop gracefully before a hard cancel, ``math.inf``, or
            `BRUTAL_KILL`.
        mailbox_size: capacity of the bounded mailbox, an int in [1, `MAX_MAILBOX_SIZE`].

    Raises:
        InvalidSpec: an attribute is invalid; the message names the child and the attribute.
    """

    name: str
    factory: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    restart: Restart = Restart.PERMANENT
    shutdown: ShutdownPolicy = DEFAULT_SHUTDOWN
    mailbox_size: int = DEFAULT_MAILBOX_SIZE

    def __attrs_post_init__(self) -> None:
        _check_name("ChildSpec", self.name)
        # The options a class was spawned with are checked once (a fleet spawns one class
        # with the same options thousands of times). Keyed by type too: ``True == 1``.
        factory, shutdown, size = self.factory, self.shutdown, self.mailbox_size
        key = (factory, self.restart, type(shutdown), shutdown, type(size), size)
        if (
            type(factory) is type
            and _seen(key)
            and type(self.args) is tuple
            and (
                self.kwargs is NO_KWARGS
                or (type(self.kwargs) is dict and all(type(arg) is str for arg in self.kwargs))
            )
        ):
            return
        self._check_options()
        if type(factory) is type:  # (valid, so hashable: restart is a Restart, the rest numbers)
            if len(_valid) >= _VALID_LIMIT:
                _valid.clear()
            _valid[key] = None

    def _check_options(self) -> None:
        if not callable(self.factory):
            raise InvalidSpec(
                f"child {self.name!r}: factory must be callable, got {short_repr(self.factory)}"
            )
        if not isinstance(self.args, tuple):
            raise InvalidSpec(
                f"child {self.name!r}: args must be a tuple, got {short_repr(self.args)}"
            )
        if not isinstance(self.kwargs, Mapping) or not all(
            isinstance(key, str) for key in self.kwargs
        ):
            raise InvalidSpec(
                f"child {self.name!r}: kwargs must be a mapping of argument names, "
                f"got {short_repr(self.kwargs)}"
            )
        if not isinstance(self.restart, Restart):
            raise InvalidSpec(
                f"child {self.name!r}: restart must be a sa.Restart, got {short_repr(self.restart)}"
            )
        try:
            integer("mailbox_size", self.mailbox_size, InvalidSpec, low=1, high=MAX_MAILBOX_SIZE)
            validate_shutdown(self.shutdown)
        except InvalidSpec as exc:
            raise InvalidSpec(f"child {self.name!r}: {exc}") from None


@attrs.frozen
class ServiceSpec:
    """A supervised service: a plain task with no mailbox, running `serve` until stopped.

    The engine's own services (the router's delivery service, ...) are children of this kind,
    and so is a child on another node (`spaceactors.transport.Node.child`). `serve` must call
    ``task_status.started()`` once ready; if it raises before, starting it raises
    `StartFailed` (as an actor's `on_start`); after, a raise is a crash (restarted by
    `restart`), a return a normal exit. Cancelling it is how it is stopped. A service keeps
    what must survive its restarts in a state object outside the task.
    `Supervisor.start_child` returns its runtime (``restarts``, ``last_error``).
    """

    name: str
    serve: Callable[[trio.TaskStatus[None]], Awaitable[None]]
    restart: Restart = Restart.PERMANENT
    shutdown: ShutdownPolicy = DEFAULT_SHUTDOWN

    def __attrs_post_init__(self) -> None:
        _check_name("ServiceSpec", self.name)
        if not callable(self.serve):
            raise InvalidSpec(f"service {self.name!r}: serve must be callable")
        if not isinstance(self.restart, Restart):
            raise InvalidSpec(
                f"service {self.name!r}: restart must be a sa.Restart, "
                f"got {short_repr(self.restart)}"
            )
        try:
            validate_shutdown(self.shutdown)
        except InvalidSpec as exc:
            raise InvalidSpec(f"service {self.name!r}: {exc}") from None


def _as_children(
    children: Iterable[ChildSpec | ServiceSpec | SupervisorSpec],
) -> tuple[ChildSpec | ServiceSpec | SupervisorSpec, ...]:
    if not isinstance(children, Iterable) or isinstance(children, str | bytes | Mapping):
        raise InvalidSpec(f"children must be a sequence of specs, got {short_repr(children)}")
    return tuple(children)


@attrs.frozen
class SupervisorSpec:
    """How to start a supervisor under another one.

    Attributes:
        name: unique among its parent's children.
        strategy: which children a failure restarts (`Strategy`).
        max_restarts, within: the restart intensity: more than `max_restarts` restarts within
            `within` seconds and the supervisor gives up.
        backoff: optional delay before restarts (`Backoff`).
        children: started in order when the supervisor starts (and again when it restarts).
        restart: how the parent treats this supervisor when it gives up.
        shutdown: how long the parent waits for it to stop its children (default: no limit).
    """

    name: str
    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    within: float = 5.0
    backoff: Backoff | None = None
    children: tuple[ChildSpec | ServiceSpec | SupervisorSpec, ...] = attrs.field(
        default=(), converter=_as_children
    )
    restart: Restart = Restart.PERMANENT
    shutdown: ShutdownPolicy = math.inf

    def __attrs_post_init__(self) -> None:
        _check_name("SupervisorSpec", self.name)
        where = f"supervisor {self.name!r}"
        if not isinstance(self.strategy, Strategy):
            raise InvalidSpec(
                f"{where}: strategy must be a sa.Strategy, got {short_repr(self.strategy)}"
            )
        if not isinstance(self.restart, Restart):
            raise InvalidSpec(
                f"{where}: restart must be a sa.Restart, got {short_repr(self.restart)}"
            )
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise InvalidSpec(
                f"{where}: backoff must be a sa.Backoff, got {short_repr(self.backoff)}"
            )
        try:
            validate_intensity(self.max_restarts, self.within)
            validate_shutdown(self.shutdown)
        except InvalidSpec as exc:
            raise InvalidSpec(f"{where}: {exc}") from None
        seen: set[str] = set()
        for child in self.children:
            if not isinstance(child, ChildSpec | ServiceSpec | SupervisorSpec):
                raise InvalidSpec(f"{where}: children must be specs, got {short_repr(child)}")
            if child.name in seen:
                raise InvalidSpec(f"{where}: two children are named {child.name!r}")
            seen.add(child.name)


@attrs.frozen
class ChildInfo:
    """One row of `Supervisor.which_children`."""

    name: str
    kind: str  # "worker", "service" or "supervisor"
    running: bool
    restart: Restart
    handle: ActorRef | ServiceCell | Supervisor


@attrs.frozen
class ChildCounts:
    """What `Supervisor.count_children` reports (as OTP's ``count_children``)."""

    specs: int
    active: int
    supervisors: int
    workers: int
