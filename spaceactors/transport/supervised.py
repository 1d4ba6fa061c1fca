"""A supervisor's child that runs on another node (`Node.child`).

OTP lets a supervisor's child live on another node: the supervisor is linked to it, and when
that node goes down the child's exit (``noconnection``) reaches the supervisor like any other,
which restarts it by its restart type, its strategy and its intensity. Here that link is a
`ServiceSpec` whose task stands for the remote actor in its supervisor's tree:

- starting it starts the actor on its node (``SPAWN``, as `Node.spawn` does) and reports the
  service started once the actor runs;
- the task then waits while the actor's name is held on that node; when the node is declared
  down or leaves, the task fails with `ActorUnavailable` (an abnormal exit: permanent and
  transient children are restarted, temporary ones not); when the actor stops for good there
  (its name is released, and its node stays two heartbeats more), the task returns (a normal
  exit: only a permanent child is restarted);
- a restart starts the actor again: on the node asked for if it is live, else on the live node
  with the fewest of this node's actors (another first, else this one);
- stopping the task (the supervisor terminating or restarting the child, a shutdown) stops the
  actor on its node.

The actor's crashes are its own node's to restart (under that node's ``user`` supervisor, by
the same restart type), as for `Node.spawn`; what reaches the supervisor is the loss of the
node or the actor's end.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import trio

from spaceactors.errors import (
    ActorUnavailable,
    DecodeError,
    InvalidSpec,
    NameTaken,
    StartFailed,
)
from spaceactors.policy import Restart
from spaceactors.specs import ServiceSpec
from spaceactors.transport import children
from spaceactors.transport.base import BrokerUnavailable

if TYPE_CHECKING:
    from spaceactors.actor import Actor
    from spaceactors.transport.node import Node

logger = logging.getLogger("spaceactors.transport")


def child_spec(
    node: Node,
    factory: type[Actor],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    on: str,
    mailbox_size: int,
    restart: Restart,
) -> ServiceSpec:
    """The `ServiceSpec` of `Node.child` (its arguments are encoded once, here).

    Raises:
        InvalidSpec: `factory` is no importable `Actor` subclass, or an option is invalid.
        EncodeError: an argument cannot be encoded.
    """
    placed = children.placement(node, factory, args, kwargs, mailbox_size, restart, on, True)
    placed.supervised = True  # (its supervisor restarts it, not `children.node_down`)
    return ServiceSpec(name, functools.partial(_serve, node, name, placed, on), restart=restart)


async def _serve(
    node: Node, name: str, placed: children.Placed, on: str, task_status: trio.TaskStatus[None]
) -> None:
    restarted = placed.starts > 0  # (a first start insists on `on`)
    where = on if not restarted or _live(node, on) else children.pick(node)
    try:
        await _start(node, name, placed, where, restarted)
    except (ActorUnavailable, StartFailed, InvalidSpec, DecodeError) as exc:
        raise StartFailed(f"child {name!r} could not start on node {where!r}: {exc}") from exc
    node._placed[name] = placed
    task_status.started()
    try:
        while _held(node, name, where):
            await node.changed()
    except BaseException:
        with trio.CancelScope(shield=True), trio.move_on_after(node.ttl):
            await _stop(node, name, where)  # (a stop that cannot finish: its node is going)
        raise
    finally:
        node._placed.pop(name, None)
    if where != node.name:  # its name was released: it stopped, or its node is leaving
        with trio.move_on_after(2 * node.heartbeat):  # (a node that leaves is gone by then)
            while where not in node.down:
                await node.changed()
    if where in node.down:
        raise ActorUnavailable(f"actor {name!r}: its node {where!r} went down or left")
    # Otherwise it stopped for good there: a normal exit.


async def _start(node: Node, name: str, placed: children.Placed, where: str, patient: bool) -> None:
    """Start `name` on `where`; if `patient` (a restart), wait for a dead node's hold on the
    name to go, and for a live node, as `children` does for `Node.spawn`'s actors."""
    for attempt in range(children.RESPAWN_TRIES):
        if placed.where in node.down:  # (frees the names it held)
            await node._retrying("forget a node", node.transport.forget, placed.where)
        try:
            await children.start(node, name, placed, where)
        except (NameTaken, ActorUnavailable, BrokerUnavailable):
            if not patient or attempt + 1 == children.RESPAWN_TRIES:
                raise
            await trio.sleep(min(0.05 * 2**attempt, node.heartbeat))
            where = children.pick(node)
            continue
        placed.where = where
        return


def _live(node: Node, peer: str) -> bool:
    return peer == node.name or (bool(node.members.get(peer)) and peer not in node.down)


def _held(node: Node, name: str, where: str) -> bool:
    if where == node.name:
        return node.system.registry.local(name) is not None
    return node.holds(name, where)


async def _stop(node: Node, name: str, where: str) -> None:
    if where == node.name:
        ref = node.system.registry.local(name)
        if ref is not None:
            await ref.stop()
    elif where not in node.down:
        try:
            await node.remote(name, where).stop()
        except ActorUnavailable as exc:
            logger.warning("node %r could not stop %r on node %r: %s", node.name, name, where, exc)
