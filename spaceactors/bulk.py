"""Starting many actors at once (`ActorSystem.spawn_many`): a fleet in one call.

One call checks every name before anything starts, then builds and starts the whole batch
without yielding to other tasks, lets the new tasks take their first step (to their
mailboxes, or into their ``on_start``: those of the batch run side by side), and only then
waits for the ``on_start`` of the actors that define one: all of them, or the first to fail
(then the others still starting are called off).

Python's cyclic garbage collector makes a burst of new objects expensive: as the heap grows
it runs a full collection each time the objects that survived young collections reach a
quarter of the heap, so a heap that grows tenfold is scanned whole a dozen times (about five
times its final size), plus the young scans. That was over half of a fleet's build time. So the
burst and its tasks' first steps run with automatic collection paused: the collector then
finds the batch once, scans it young once, and once in a full collection. It is resumed as it
was (a collector the user disabled stays disabled) as soon as the first steps are done: two
scheduling rounds, in which other tasks that are ready run too (one of them that disables the
collector meanwhile finds it enabled again). The collector's thresholds and frozen objects are
never touched: the process's settings stay the user's.

The batch starts whole or not at all: a name taken (by a live actor, a child of the
supervisor, or twice in the batch) refuses it before anything starts, and a constructor or an
``on_start`` that raises stops the actors of the batch already started and discards them all.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import trio

from spaceactors.children import Child, StoppedWhileStarting, terminate_together
from spaceactors.errors import ActorUnavailable, NameTaken
from spaceactors.handshake import StartWaiter
from spaceactors.specs import ChildSpec

if TYPE_CHECKING:
    from spaceactors.ref import ActorRef
    from spaceactors.supervisor import Supervisor


FIRST_STEPS = 2
"""Scheduling rounds the pause lasts after the burst: Trio runs a round's tasks in either
order, so in two rounds every task started in this one has run its first step."""


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause automatic garbage collection for a burst that does not yield to other tasks;
    resume it on leaving if it was enabled on entering (a disabled collector stays so)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def start_many(supervisor: Supervisor, specs: Iterable[ChildSpec]) -> list[ActorRef]:
    """Start an actor for each of `specs` under `supervisor`, in order; return their refs.

    Raises:
        TypeError: an item of `specs` is not a `ChildSpec`.
        NameTaken: a name is taken, or appears twice in `specs` (nothing started).
        StartFailed: a constructor or an ``on_start`` raised (the batch is stopped and
            discarded; the error names the actor).
        ActorUnavailable: the supervisor is stopping or not running.
    """
    batch = list(specs)
    action = f"start {len(batch)} actors"
    refusal = supervisor._refusal(action)
    if refusal is not None:
        raise refusal
    _check_names(supervisor, batch)
    if supervisor.system.node is not None:  # a name is cluster-wide: reserved one by one
        return await _one_by_one(supervisor, batch)
    children: list[Child] = []
    starting: list[tuple[Child, StartWaiter]] = []
    try:
        with collection_paused():
            for spec in batch:
                child = supervisor._add(spec, static=False)
                children.append(child)
                if supervisor._launch(child):  # it has an on_start: all of them run at once
                    starting.append((child, supervisor._begin_start(child)))
            # The batch's tasks take their first step (to their mailboxes, or into on_start)
            # in the scheduling round after this one, at the latest: their frames are made in
            # the pause too.
            for _ in range(FIRST_STEPS):
                await trio.lowlevel.checkpoint()
        await _all_started(supervisor, starting)
    except BaseException as exc:
        with trio.CancelScope(shield=True):
            for child, waiter in starting:  # still in on_start: called off, as a starter's
                if not waiter.settled:
                    await supervisor._call_off(child, child.scope)
            await terminate_together([child for child in children if child.running], final=True)
        for child in children:
            supervisor._discard(child)
        if isinstance(exc, StoppedWhileStarting):
            raise supervisor._refusal(action) or ActorUnavailable(
                f"a child of {supervisor.path!r} was stopped while its batch started: {exc}"
            ) from None
        raise
    refusal = supervisor._refusal(action)
    if refusal is not None:  # the stop that began meanwhile is stopping the batch
        raise refusal
    return [child.runtime.ref for child in children]  # type: ignore[union-attr]


async def _all_started(supervisor: Supervisor, starting: list[tuple[Child, StartWaiter]]) -> None:
    """Wait until every start of the batch is done, or one failed: then raise the first
    failure (in time; the caller calls the others off)."""
    if not starting:
        return
    left = len(starting)
    settled = trio.Event()
    failure: list[BaseException] = []

    def count(waiter: StartWaiter) -> None:
        nonlocal left
        left -= 1
        if waiter.error is not None and not failure:
            failure.append(waiter.error)
        if failure or not left:
            settled.set()

    for _, waiter in starting:
        if waiter.settled:  # (settled already: counted now)
            count(waiter)
        else:
            waiter.settled_hook = count
    await settled.wait()
    if failure:
        raise failure[0]
    now = trio.current_time()
    for child, _ in starting:
        child.started_at = now


def _check_names(supervisor: Supervisor, batch: list[ChildSpec]) -> None:
    seen: set[str] = set()
    registry = supervisor.system.registry
    for spec in batch:
        if not isinstance(spec, ChildSpec):
            raise TypeError(f"spawn_many takes ChildSpecs, got {spec!r}")
        name = spec.name
        if name in seen:
            raise NameTaken(f"the name {name!r} appears twice in the batch; nothing was started")
        seen.add(name)
        registry.check_name_free(name)
        if name in supervisor._children:
            raise NameTaken(f"supervisor {supervisor.path!r} already has a child named {name!r}")


async def _one_by_one(supervisor: Supervisor, batch: list[ChildSpec]) -> list[ActorRef]:
    """On a node of a cluster: each name reserved and started in turn; the batch stopped if
    one fails."""
    refs: list[ActorRef] = []
    try:
        for spec in batch:
            refs.append(await supervisor.start_child(spec))
    except BaseException:
        with trio.CancelScope(shield=True):
            for ref in refs:
                with contextlib.suppress(ActorUnavailable):
                    await supervisor.stop_child(ref.name)
        raise
    return refs
