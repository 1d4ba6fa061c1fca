"""The registry: which live actor answers to which id and name.

A plain state object owned by the system, so it survives anything that happens to the tasks that
use it. An actor is registered from the moment `spawn` returns until it stops for good.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

from spaceactors.checks import short_repr
from spaceactors.errors import ActorNotFound, NameTaken
from spaceactors.ref import ActorRef

if TYPE_CHECKING:
    from typing import NoReturn


class Directory(Protocol):
    """The cluster-wide names of a system that is a node of a cluster (``system.node``)."""

    def lookup(self, name: str) -> ActorRef | None:
        """A ref to the actor called `name` on another node, or None."""

    def released(self, name: str) -> None:
        """The actor called `name` here stopped for good: release the name cluster-wide."""


def not_a_target(target: object) -> NoReturn:
    """Raise the `TypeError` for a target that is not an `ActorRef`, an id or a name."""
    raise TypeError(
        "a target is an ActorRef, an actor id (int) or a registered name (str); "
        f"got {type(target).__name__} {short_repr(target)}"
    )


def check_sender(sender: object) -> None:
    """Raise `TypeError` unless `sender` is an `ActorRef` or None."""
    if sender is not None and not isinstance(sender, ActorRef):
        raise TypeError(
            f"sender must be an ActorRef or None, got {type(sender).__name__} {short_repr(sender)}"
        )


@attrs.define
class Registry:
    """Live actors by id and by name."""

    _by_id: dict[int, ActorRef] = attrs.field(factory=dict)
    _by_name: dict[str, ActorRef] = attrs.field(factory=dict)
    _next_id: int = 1
    directory: Directory | None = None
    """Names on the other nodes of the cluster, when the system is a node of one."""

    def allocate_id(self) -> int:
        """A fresh actor id, never reused within a system."""
        actor_id = self._next_id
        self._next_id += 1
        return actor_id

    @property
    def next_id(self) -> int:
        """The id the next actor will get."""
        return self._next_id

    @next_id.setter
    def next_id(self, value: int) -> None:
        self._next_id = value

    def check_name_free(self, name: str) -> None:
        """Raise `NameTaken` if a live actor already has `name`."""
        holder = self._by_name.get(name)
        if holder is not None:
            raise NameTaken(
                f"the name {name!r} is taken by live actor #{holder.id}; "
                "stop it first or choose another name"
            )

    def add(self, ref: ActorRef) -> None:
        """Register a live actor under its id and name. Its caller has checked that the name
        is free (`check_name_free`, before building the actor): a spawn checks it once."""
        self._by_id[ref.id] = ref
        self._by_name[ref.name] = ref

    def remove(self, ref: ActorRef) -> None:
        """Forget a stopped actor (idempotent)."""
        if self._by_id.get(ref.id) is ref:
            del self._by_id[ref.id]
        if self._by_name.get(ref.name) is ref:
            del self._by_name[ref.name]
            if self.directory is not None:
                self.directory.released(ref.name)

    def local(self, name: str) -> ActorRef | None:
        """The live actor called `name` in this system (never one on another node)."""
        return self._by_name.get(name)

    def get(self, target: ActorRef | int | str) -> ActorRef | None:
        """The live actor `target` names, or None.

        Raises:
            TypeError: `target` is not an `ActorRef`, an int or a str (a bool is no actor id).
        """
        if isinstance(target, str):
            ref = self._by_name.get(target)
            if ref is None and self.directory is not None:
                return self.directory.lookup(target)
            return ref
        if isinstance(target, int) and not isinstance(target, bool):
            return self._by_id.get(target)
        if not isinstance(target, ActorRef):
            not_a_target(target)
        return target if self._by_id.get(target.id) is target else None

    def resolve(self, target: ActorRef | int | str) -> ActorRef:
        """The live actor `target` names.

        Raises:
            ActorNotFound: nothing live answers to that id or name.
            TypeError: `target` is not an `ActorRef`, an int or a str.
        """
        ref = self.get(target)
        if ref is None:
            if not isinstance(target, str | int):
                return target  # a ref to a stopped actor: sending to it raises ActorUnavailable
            kind = "name" if isinstance(target, str) else "id"
            raise ActorNotFound(f"no live actor has the {kind} {short_repr(target)}")
        return ref

    def refs(self) -> list[ActorRef]:
        """Every live actor, in spawn order."""
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
