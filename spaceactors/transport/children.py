"""Actors that one node starts on another, and starts again on a live node when theirs dies.

`Node.spawn` starts an actor on another node (a ``SPAWN`` entry: the actor's class by its
import path, its arguments encoded as replies are, its name, mailbox size and restart type).
That node supervises it (its crashes restart it there, by its restart type, under its ``user``
supervisor). The node that asked for it remembers it: when the node it runs on is declared
down, a permanent or transient actor is started again on a live node (the other nodes first,
by fewest of this node's actors, then this node itself), and a temporary one is forgotten, as
OTP restart types say. The entries the dead node never acknowledged are then delivered to the
new incarnation where they can be (at least once: `spaceactors.transport.inbox`).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

import attrs
import msgpack
import outcome
import trio

from spaceactors.actor import Actor
from spaceactors.checks import short_repr
from spaceactors.errors import ActorUnavailable, DecodeError, InvalidSpec, NameTaken
from spaceactors.policy import Restart
from spaceactors.ref import Ask
from spaceactors.transport.base import BrokerUnavailable
from spaceactors.transport.remote import RemoteRef
from spaceactors.transport.wire import Envelope, Kind, pack_reply, packb, unpack_reply

if TYPE_CHECKING:
    from spaceactors.transport.node import Node

logger = logging.getLogger("spaceactors.transport")

RESPAWN_TRIES = 20
"""How many times a node tries to start again an actor whose node died (a name still held
by the dead node is freed by the node that takes its inbox over)."""


@attrs.define
class Placed:
    """An actor this node started on another: what it takes to start it again, and where."""

    factory: str
    payload: bytes
    mailbox_size: int
    restart: Restart
    where: str
    supervised: bool = False
    """Started by `Node.child`: its supervisor restarts it (`spaceactors.transport.supervised`)."""
    starts: int = 0
    """How many times it was started."""


def import_path(factory: object) -> str:
    """``module:qualname`` of an actor class another node can import.

    Raises:
        InvalidSpec: `factory` is no `Actor` subclass, or one defined in a function.
    """
    if not (isinstance(factory, type) and issubclass(factory, Actor)):
        raise InvalidSpec(
            f"an actor started on another node must be a spaceactors.Actor subclass, "
            f"got {short_repr(factory)}"
        )
    if "<locals>" in factory.__qualname__:
        raise InvalidSpec(
            f"{factory.__qualname__} must be importable on the other node: define it at the "
            "top of a module that both nodes can import (not in a function)"
        )
    return f"{factory.__module__}:{factory.__qualname__}"


def placement(
    node: Node,
    factory: type[Actor],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    mailbox_size: int,
    restart: Restart,
    on: str,
    linked: bool = False,
) -> Placed:
    """What it takes to start `factory` on another node (its arguments encoded). A `linked`
    actor is stopped by the node it runs on when this node goes (a supervisor's child: OTP's
    link between a supervisor and its children, across nodes).

    Raises:
        InvalidSpec: `factory` is no importable `Actor` subclass.
        EncodeError: an argument cannot be encoded.
    """
    path = import_path(factory)
    payload = packb(
        {
            "factory": path,
            "args": [pack_reply(node.codec, value) for value in args],
            "kwargs": {key: pack_reply(node.codec, value) for key, value in kwargs.items()},
            "mailbox_size": mailbox_size,
            "restart": restart.value,
            "linked": linked,
        }
    )
    return Placed(path, payload, mailbox_size, restart, on)


async def spawn(node: Node, name: str, placed: Placed) -> RemoteRef:
    """`Node.spawn` on another node: start `name` where `placed` says, and remember it."""
    await _start_on(node, name, placed, placed.where)
    node._placed[name] = placed
    return node.remote(name, placed.where, placed.mailbox_size)


def live(node: Node, peer: str) -> bool:
    """Whether `peer` (this node included) is a live node of the cluster."""
    return peer == node.name or (bool(node.members.get(peer)) and peer not in node.down)


async def start(node: Node, name: str, placed: Placed, where: str) -> None:
    """Start `name` as `placed` says, on `where` (this node or another).

    Raises:
        ActorUnavailable: `where` is not a live node.
        NameTaken, StartFailed, InvalidSpec, DecodeError: as `Node.spawn`.
    """
    if where == node.name:
        factory, args, kwargs, mailbox_size, restart = _decode(node, placed.payload)
        await node.system.spawn(
            factory, *args, name=name, mailbox_size=mailbox_size, restart=restart, **kwargs
        )
    else:
        await _start_on(node, name, placed, where)
    placed.starts += 1


async def _start_on(node: Node, name: str, placed: Placed, on: str) -> None:
    """Ask `on` to start `name` and wait for its answer (an error is raised here)."""
    if not live(node, on):
        raise ActorUnavailable(f"node {on!r} is not a live node of the cluster")
    request = Ask(None)
    corr = next(node._corr)
    node._asks[corr] = (request, node.remote(name, on, placed.mailbox_size))
    spawn = Envelope(Kind.SPAWN, node.name, corr, target_name=name, payload=placed.payload)
    node.post(on, spawn.encode())
    await request.wait()


async def start_here(node: Node, envelope: Envelope) -> None:
    """Another node's ``SPAWN``: start the actor here, and answer (None, or the error)."""
    try:
        factory, args, kwargs, mailbox_size, restart = _decode(node, envelope.payload)
        await node.system.spawn(
            factory,
            *args,
            name=envelope.target_name,
            mailbox_size=mailbox_size,
            restart=restart,
            **kwargs,
        )
    except Exception as exc:
        node._reply(envelope.source, envelope.corr, outcome.Error(exc))
    else:
        if _linked(envelope.payload):
            node.linked[envelope.target_name] = envelope.source
        node._reply(envelope.source, envelope.corr, outcome.Value(None))


def _linked(payload: bytes) -> bool:
    try:
        return msgpack.unpackb(payload, raw=False, strict_map_key=True).get("linked") is True
    except Exception:  # (decoded once already: it is a spawn request)
        return False


def unlink(node: Node, peer: str) -> None:
    """`peer` went down or left: stop the actors here it started as a supervisor's
    children (their supervisor is gone: OTP's link takes them down with it)."""
    for name, owner in list(node.linked.items()):
        if owner != peer:
            continue
        del node.linked[name]
        ref = node.system.registry.local(name)
        if ref is not None and node._nursery is not None:
            logger.warning(
                "node %r: %r stops, its supervisor's node %r is gone", node.name, name, peer
            )
            node._nursery.start_soon(ref.stop)


def _decode(
    node: Node, payload: bytes
) -> tuple[type[Actor], list[object], dict[str, Any], int, Restart]:
    """Raises `DecodeError` for a bad request, `InvalidSpec` for a class not to start."""
    try:
        spec = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        path, args, kwargs = spec["factory"], spec["args"], spec["kwargs"]
        mailbox_size, restart = spec["mailbox_size"], Restart(spec["restart"])
        module_name, _, qualname = path.partition(":")
    except Exception as exc:
        raise DecodeError(f"a spawn request is not one: {exc!r}") from None
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        hint = (
            " (a class of a script is importable only by the nodes that script runs: put it "
            "in a module every node can import)"
            if module_name == "__main__"
            else ""
        )
        raise InvalidSpec(f"cannot import {path!r} on node {node.name!r}: {exc}{hint}") from None
    factory = target
    import_path(factory)  # an Actor subclass, and the one asked for
    return (
        factory,
        [unpack_reply(node.codec, value) for value in args],
        {key: unpack_reply(node.codec, value) for key, value in kwargs.items()},
        mailbox_size,
        restart,
    )


def node_down(node: Node, peer: str) -> None:
    """`peer` went down: start its actors of this node again elsewhere, by restart type."""
    for name, placed in list(node._placed.items()):
        if placed.where != peer or placed.supervised:
            continue  # (a supervised one: its supervisor hears it, `supervised`)
        if placed.restart is Restart.TEMPORARY:
            del node._placed[name]  # (OTP: a temporary child is never restarted)
            logger.warning(
                "node %r: %r was on node %r: temporary, not restarted", node.name, name, peer
            )
        elif node._nursery is not None:
            node._nursery.start_soon(_respawn, node, name, placed, peer)


async def _respawn(node: Node, name: str, placed: Placed, dead: str) -> None:
    try:
        where = await start_again(node, name, placed)
    except (NameTaken, ActorUnavailable, BrokerUnavailable) as exc:
        logger.warning("node %r cannot start %r again: %s", node.name, name, exc)
        return
    node.respawned.append((trio.current_time(), name, dead, where))
    logger.warning(
        "node %r started %r again on node %r (node %r went down)", node.name, name, where, dead
    )


async def start_again(node: Node, name: str, placed: Placed, where: str | None = None) -> str:
    """Start `name` again, its node gone: once the names that node held are freed, on
    `where` (default: `pick`), then, while a name is still held or a node not there yet, on
    `pick`'s choice, up to `RESPAWN_TRIES` times with a backoff. Returns where it runs.

    Raises:
        NameTaken, ActorUnavailable, BrokerUnavailable: the last try's error.
    """
    if placed.where in node.down:  # (the node that takes its inbox over frees them too)
        await node._retrying("forget a node", node.transport.forget, placed.where)
    for attempt in range(RESPAWN_TRIES):
        target = where if attempt == 0 and where is not None else pick(node)
        try:
            await start(node, name, placed, target)
        except (NameTaken, ActorUnavailable, BrokerUnavailable):
            if attempt + 1 == RESPAWN_TRIES:
                raise
            await trio.sleep(min(0.05 * 2**attempt, node.heartbeat))
            continue
        placed.where = target
        return target
    raise AssertionError("unreachable: the last try raises")  # pragma: no cover


def pick(node: Node) -> str:
    """Where to start an actor again: the live node with the fewest of ours (others first)."""
    others = [peer for peer in sorted(node.members) if peer != node.name and live(node, peer)]
    if not others:
        return node.name
    counts = dict.fromkeys(others, 0)
    for placed in node._placed.values():
        if placed.where in counts:
            counts[placed.where] += 1
    return min(others, key=lambda peer: (counts[peer], peer))
