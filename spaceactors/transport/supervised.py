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
from typing import TYPE_CHECKING

import trio

from spaceactors.errors import (
    ActorUnavailable,
    DecodeError,
    InvalidSpec,
    StartFailed,
)
from spaceactors.specs import ServiceSpec
from spaceactors.transport import children

if TYPE_CHECKING:
    from spaceactors.transport.node import Node

logger = logging.getLogger("spaceactors.transport")


def child_spec(node: Node, name: str, placed: children.Placed) -> ServiceSpec:
    """The `ServiceSpec` of `Node.child`: the actor `name`, to start as `placed` says."""
    placed.supervised = True  # (its supervisor restarts it, not `children.node_down`)
    on = placed.where
    return ServiceSpec(
        name, functools.partial(_serve, node, name, placed, on), restart=placed.restart
    )


async def _serve(
    node: Node, name: str, placed: children.Placed, on: str, task_status: trio.TaskStatus[None]
) -> None:
    where = on
    try:
        if placed.starts == 0:  # (a first start insists on `on`)
            await children.start(node, name, placed, on)
        else:
            preferred = on if children.live(node, on) else None
            where = await children.start_again(node, name, placed, preferred)
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
