"""A node's connection to the broker (the bodies of `Node`'s methods): joining and leaving,
calls that stand still in virtual time and wait out an outage, and the writer that sends the
outbox in batches."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import trio
import trio.testing

from spaceactors.errors import DecodeError
from spaceactors.transport import inbox, lockstep, membership, names
from spaceactors.transport.base import BrokerUnavailable
from spaceactors.transport.wire import Holder

if TYPE_CHECKING:
    from spaceactors.transport.node import Node

logger = logging.getLogger("spaceactors.transport")

_T = TypeVar("_T")


async def serve(node: Node, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """The node's service (supervised under ``services``): join, run, leave."""
    clock = trio.lowlevel.current_clock()
    if node.transport.real_time and isinstance(clock, trio.testing.MockClock):
        node._virtual = clock
    async with contextlib.AsyncExitStack() as stack:
        threaded = node._threaded = node.lockstep and node._virtual is not None
        nursery = await stack.enter_async_context(trio.open_nursery())
        if threaded:  # the broker is talked to from a thread of its own (`_broker`)
            ready = threading.Event()
            nursery.start_soon(lockstep._broker, node, ready)
            await trio.to_thread.run_sync(ready.wait, abandon_on_cancel=True)
        else:
            await stack.enter_async_context(node.transport)
        try:
            await node._call(node.transport.join, node.ttl)
            held = await node._call(node.transport.names)
            node.members = await node._call(node.transport.members)
        except Exception as exc:
            if node._joined.is_set():
                raise  # (a restart that cannot join: the supervisor's to handle)
            node._join_error = exc  # `open_system` raises it, saying why, and closes
            node._joined.set()
            task_status.started()
            await trio.sleep_forever()
        node._joined.set()
        node.directory = {}
        for name, data in held.items():
            try:
                node.directory[name] = Holder.decode(data)
            except DecodeError:
                continue
        try:
            async with trio.open_nursery() as tasks:
                node._nursery = tasks
                if not threaded:
                    tasks.start_soon(membership._beat, node)
                    tasks.start_soon(membership._monitor, node)
                if not node.lockstep:
                    tasks.start_soon(node._write)
                    tasks.start_soon(inbox._read, node)
                    tasks.start_soon(names._release_names, node)
                task_status.started()
                await trio.sleep_forever()  # (until the system stops: it leaves then)
        finally:
            node._nursery = None
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                try:
                    if threaded:
                        await node._flush()
                        await node._call(node.transport.leave)
                    else:
                        async with node.transport.closing():
                            await node._flush()
                            await node.transport.leave()
                except BrokerUnavailable as exc:  # the others will declare it down
                    logger.warning("node %r cannot leave cleanly: %s", node.name, exc)
            lockstep._stop_broker(node)


async def _call(node: Node, call: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """`await call(*args)` on the broker (virtual time stands still meanwhile), in the
    broker's thread when the node has one (`_broker`)."""
    with node._frozen():
        if not node._threaded:
            return await call(*args)
        if node._io is None:
            raise BrokerUnavailable(f"node {node.name!r}: the broker's thread has ended")
        request = functools.partial(trio.from_thread.run, call, *args, trio_token=node._io)
        return await trio.to_thread.run_sync(request, abandon_on_cancel=True)


async def _flush(node: Node) -> None:
    """Write what is still queued (at the end: replies, credits, name releases)."""
    for name in node._releases:
        node._announce(name, None)
    node._releases.clear()
    while node._outbox:
        batch = node.next_batch()
        try:
            await node._call(node.transport.append, batch)
        except BrokerUnavailable:
            return


async def _write(node: Node) -> None:
    outbox = node._outbox
    while True:
        if not outbox:
            node._posted = trio.Event()
            await node._posted.wait()
        batch = node.next_batch()
        node._writing = True
        try:
            await node._retrying("write", node.transport.append, batch)
        finally:
            node._writing = False
            node._written.unpark_all()


async def _retrying(node: Node, what: str, call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)` until the broker answers: backing off up to 2 s, logging once."""
    delay = 0.05
    failing = False
    while True:
        try:
            result = await node._call(call, *args)
        except BrokerUnavailable as exc:
            if not failing:
                logger.warning("node %r cannot %s: %s; retrying", node.name, what, exc)
                failing = True
            await node.transport.pause(delay)
            delay = min(delay * 2, 2.0)
            continue
        if failing:
            logger.warning("node %r: the broker answers again", node.name)
        return result


@contextlib.contextmanager
def _frozen(node: Node) -> Iterator[None]:
    """Virtual time stands still while the broker answers (a run on a `MockClock` with
    a broker in real time): otherwise the clock would jump while a reply is on its way,
    and time out what waits for it."""
    clock = node._virtual
    if clock is None:
        yield
        return
    node._holds += 1
    clock.autojump_threshold = math.inf
    try:
        yield
    finally:
        node._holds -= 1
        if not node._holds:
            clock.autojump_threshold = 0
