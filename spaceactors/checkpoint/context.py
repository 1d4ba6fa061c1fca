"""What every part of the engine's checkpoint works with: the converter (`Values`), what a save
function gets (`Saving`) and what a restore function gets (`Restoring`), the walk over the
supervision tree, and the guard that turns a damaged document into a `CheckpointError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from spaceactors.cell import ActorCell
from spaceactors.checkpoint.saving import SharedNames
from spaceactors.children import Child
from spaceactors.errors import CheckpointError
from spaceactors.ref import ActorRef
from spaceactors.specs import ServiceSpec
from spaceactors.supervisor import Supervisor

if TYPE_CHECKING:
    from spaceactors.actor import Actor
    from spaceactors.system import ActorSystem

FORMAT = 1
"""The version of the engine's part of a checkpoint."""

Refs = Callable[[int], ActorRef]


class Values(Protocol):
    """Converts live values to plain data and back (`spaceactors.checkpoint.values`)."""

    def save_actor(self, actor: Actor, *, path: str, shared: Mapping[str, object]) -> object: ...

    def restore_actor(
        self, cls: type, data: object, *, shared: Mapping[str, object], refs: Refs
    ) -> Actor: ...

    def save_value(self, value: object, *, where: str, shared: Mapping[str, object]) -> object: ...

    def restore_value(self, data: object, *, shared: Mapping[str, object], refs: Refs) -> Any: ...


@attrs.frozen
class Saving:
    """What every part's save function gets: the converter and the shared objects (saved by
    name: ``{"world": world}``)."""

    values: Values
    shared: Mapping[str, object] = attrs.field(converter=SharedNames)
    """(kept as `SharedNames`: fixed, with each object's name by id worked out once)"""

    def value(self, value: object, where: str) -> object:
        return self.values.save_value(value, where=where, shared=self.shared)


@attrs.frozen
class Restoring:
    """What every part's restore function gets: the converter, the shared objects, and the
    rebuilt actors by id (`ref` resolves an id, raising `CheckpointError` if it is unknown)."""

    values: Values
    shared: dict[str, object]
    services: Mapping[str, ServiceSpec] = attrs.field(factory=dict)
    """The specs of service children (a simulation's ``world``), by name: a service's serve
    function is code, which a checkpoint does not hold."""
    cells: dict[int, ActorCell] = attrs.field(factory=dict)
    plans: list[tuple[Supervisor, list[tuple[Child, Mapping[str, Any]]]]] = attrs.field(
        factory=list
    )

    def ref(self, actor_id: int) -> ActorRef:
        cell = self.cells.get(actor_id)
        if cell is None:
            raise CheckpointError(f"the checkpoint names actor #{actor_id}, which it lacks")
        return cell.ref

    def value(self, data: object) -> Any:
        return self.values.restore_value(data, shared=self.shared, refs=self.ref)


def walk(top: Supervisor) -> list[tuple[Supervisor, Child]]:
    """Every (supervisor, child) below `top`, parents first, children in start order."""
    found: list[tuple[Supervisor, Child]] = []
    todo = [top]
    while todo:  # a loop, not recursion: any depth of nesting
        supervisor = todo.pop(0)
        for child in supervisor._children.values():
            found.append((supervisor, child))
            if isinstance(child.runtime, Supervisor):
                todo.append(child.runtime)
    return found


@contextlib.contextmanager
def damaged(part: str = "engine state") -> Iterator[None]:
    """Turn what a damaged document makes restoring code raise into a `CheckpointError`
    naming `part` of the checkpoint."""
    try:
        yield
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"the checkpoint's {part} is damaged: {exc!r}") from None


def restore_trace(system: ActorSystem, saved: Any, *, where: str, as_before: str) -> None:
    """Put the trace's position and hash state back from a checkpoint's ``trace`` part.

    `where` starts each message (the file, or nothing); `as_before` says how to open the
    system or run again, as it was.

    Raises:
        CheckpointError: one side has a trace and the other none, or the saved state is
            damaged.
    """
    trace = system.trace
    if (trace is None) != (saved is None):
        raise CheckpointError(
            f"{where}the checkpoint was taken with a trace and this run has none, or the "
            f"other way round: {as_before}"
        )
    if trace is not None:
        try:
            trace.restore(saved)
        except ValueError as exc:
            raise CheckpointError(f"{where}the checkpoint's trace: {exc}") from None
