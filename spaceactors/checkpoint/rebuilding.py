"""Rebuilding the actor system from plain data: the restore half of the engine's checkpoint.

`rebuild` makes the supervisors, child records and actor cells (nothing runs yet), `start`
puts back actors' state and every count and starts what was running; `restore` is both.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs
import trio

from spaceactors.cell import ActorCell
from spaceactors.checkpoint import faults, reliable
from spaceactors.checkpoint.context import FORMAT, Restoring, damaged
from spaceactors.children import Child
from spaceactors.deadletters import DeadLetterReason
from spaceactors.delivery import Scheduled, Tick
from spaceactors.errors import CheckpointError
from spaceactors.lifecycle import Tally
from spaceactors.ref import ActorRef
from spaceactors.service import ServiceCell
from spaceactors.specs import ChildSpec, ServiceSpec, SupervisorSpec
from spaceactors.supervisor import Supervisor
from spaceactors.topics import Delivery

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem


async def restore(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    """Rebuild what `doc` (from `capture`) holds in `system`, a system just opened in a run
    whose clock stands at the checkpoint's time, with nothing spawned yet: `rebuild`, then
    `start`.

    Raises:
        CheckpointError: `doc` is not a capture of this format, or names what cannot be
            rebuilt (the message says where).
    """
    rebuild(system, doc, restoring)
    await start(system, doc, restoring)


def rebuild(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    """Make the supervisors, child records and actor cells `doc` holds (their refs resolve
    through `restoring` from now on); nothing runs yet.

    Raises:
        CheckpointError: as `restore`.
    """
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, Mapping) else None
        raise CheckpointError(
            f"the checkpoint's engine state is format {found!r}, this spaceactors reads "
            f"format {FORMAT}"
        )
    with damaged():
        system.opened_at = float(doc["opened_at"])
        _build(system.user, doc["user"], restoring, restoring.plans)
        lifecycle = system.lifecycle
        if lifecycle.tallying:  # an observer watches: the restored counts join its sums
            lifecycle.note_troubled(
                child for _, children in restoring.plans for child, _ in children
            )


async def start(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    """Put back the actors' state and every count, and start what was running (after
    `rebuild`, once `restoring.shared` holds every shared object).

    Raises:
        CheckpointError: as `restore`.
    """
    with damaged():
        await _start(system, doc, restoring)


async def _start(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    plans = restoring.plans
    values, shared, refs = restoring.values, restoring.shared, restoring.ref

    # The instances, once every ref exists (one actor's state may name any other).
    for _, children in plans:
        for child, data in children:
            if data["spec_parts"] is not None:
                spec = _whole(child.spec, restoring.value(data["spec_parts"]))
                child.spec = child.runtime.spec = spec
            if "actor" in data and data["actor"]["state"] is not None:
                cell = child.runtime
                assert isinstance(cell, ActorCell)
                with _naming(f"actor {child.spec.name!r}"):
                    cls = values.restore_value(data["actor"]["class"], shared=shared, refs=refs)
                cell.restored = values.restore_actor(
                    cls, data["actor"]["state"], shared=shared, refs=refs
                )
    system.registry.next_id = int(doc["next_id"])
    system._auto_names = itertools.count(int(doc["auto_names"]))
    _restore_counts(system, doc, restoring)
    reliable.restore(system, doc["reliable"], restoring)
    fault_schedule = faults.restore(system, doc.get("faults"), restoring)
    await respawn(system, plans)
    _restore_schedule(system, doc["schedule"], restoring)
    fault_schedule()


async def respawn(
    system: ActorSystem, plans: list[tuple[Supervisor, list[tuple[Child, Mapping[str, Any]]]]]
) -> None:
    """Start again every child the checkpoint holds as running, down the whole tree; returns
    once each has started (an actor at its mailbox, a supervisor with its own children).

    A resumed incarnation has started before (its ``on_start`` is not run again), so each
    supervisor's children are started together, without a start handshake each (Trio's
    ``nursery.start`` costs three times what the task does), and waited for once (`_Started`).
    """
    by_supervisor = {id(supervisor): children for supervisor, children in plans}

    async def resume(supervisor: Supervisor) -> None:
        running = [child for child, _ in by_supervisor.get(id(supervisor), []) if child.running]
        started = _Started(len(running))
        for child in running:
            if isinstance(child.runtime, Supervisor):
                child.runtime.resume = resume  # (its run resumes its own children)
            await supervisor._start(child, resumed=True, started=started)
        await started.all.wait()

    await resume(system.user)


def _build(
    top: Supervisor,
    top_doc: Mapping[str, Any],
    restoring: Restoring,
    plans: list[tuple[Supervisor, list[tuple[Child, Mapping[str, Any]]]]],
) -> None:
    """Make every supervisor, child record and actor cell `top_doc` names (nothing starts)."""
    todo: list[tuple[Supervisor, Mapping[str, Any]]] = [(top, top_doc)]
    registry = top.system.registry
    values, shared, cells = restoring.values, restoring.shared, restoring.cells
    while todo:  # a loop, not recursion: any depth of nesting
        supervisor, doc = todo.pop(0)
        supervisor.restarts = int(doc["restarts"])
        loop = supervisor._restarts
        loop.history = tuple(float(t) for t in doc["history"])
        rng = values.restore_value(doc["rng"], shared=shared, refs=_no_refs)
        loop.rng.setstate(rng.getstate())
        children: list[tuple[Child, Mapping[str, Any]]] = []
        for data in doc["children"]:
            if "service" in data:
                spec = restoring.services.get(data["name"])
                if spec is None:
                    raise CheckpointError(
                        f"the checkpoint holds a service {data['name']!r} under "
                        f"{supervisor.path!r}, and the resumed run offers none by that name"
                    )
            else:
                with _naming(f"child {str(data.get('name'))[:80]!r} of {supervisor.path!r}"):
                    spec = values.restore_value(data["spec"], shared=shared, refs=_no_refs)
            if not isinstance(spec, ChildSpec | SupervisorSpec | ServiceSpec):
                raise CheckpointError(f"child {data['name']!r}: its spec is not a child spec")
            child = supervisor._children.get(spec.name) if data["static"] else None
            if child is None:
                if "actor" in data:
                    registry.next_id = int(data["actor"]["id"])
                child = supervisor._add(spec, static=bool(data["static"]))
            _child_counts(child, data)
            if isinstance(child.runtime, ActorCell):
                cell = child.runtime
                actor = data["actor"]
                if cell.ref.id != actor["id"]:
                    raise CheckpointError(
                        f"actor {spec.name!r} would be #{cell.ref.id}, the checkpoint has "
                        f"#{actor['id']}"
                    )
                cell.restarts = int(actor["restarts"])
                cell.handled = int(actor["handled"])
                cell.last_error = actor["last_error"]
                if not actor["alive"]:
                    cell.close()
                cells[cell.ref.id] = cell
            elif isinstance(child.runtime, ServiceCell):
                child.runtime.restarts = int(data["service"]["restarts"])
                child.runtime.last_error = data["service"]["last_error"]
            else:
                assert isinstance(child.runtime, Supervisor)
                if not data["static"]:
                    child.runtime._build_tree()
                todo.append((child.runtime, data["supervisor"]))
            children.append((child, data))
        plans.append((supervisor, children))


def _no_refs(actor_id: int) -> ActorRef:
    raise CheckpointError(f"a supervisor's state names actor #{actor_id}")


def _child_counts(child: Child, data: Mapping[str, Any]) -> None:
    child.incarnation = int(data["incarnation"])
    child.running = bool(data["running"])
    child.wanted = bool(data["wanted"])
    child.attempt = int(data["attempt"])
    child.started_at = float(data["started_at"])
    child.crashes = int(data["crashes"])
    crash = data["last_crash"]
    child.last_crash = None if crash is None else (float(crash[0]), str(crash[1]))


def _restore_counts(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    values, shared, refs = restoring.values, restoring.shared, restoring.ref
    router = system.router.state
    router.delivered.clear()  # (the same table: the router's hot path holds it)
    router.delivered.update(
        (values.restore_value(cls, shared=shared, refs=refs), int(n))
        for cls, n in doc["router"]["delivered"]
    )
    router.failed = int(doc["router"]["failed"])
    router.dropped = int(doc["router"]["dropped"])
    router.unheard = int(doc["router"]["unheard"])
    letters = doc["dead_letters"]
    system.dead_letters.restore(
        int(letters["total"]),
        {DeadLetterReason(reason): int(n) for reason, n in letters["by_reason"]},
        values.restore_value(letters["recent"], shared=shared, refs=refs),
    )
    retired = system.lifecycle.retired
    retired.clear()
    for kind, actors, handled, restarts, crashes in doc["retired"]:
        retired[str(kind)] = Tally(int(actors), int(handled), int(restarts), int(crashes))
    topics = system.router.state.topics
    for topic, actor_id, policy in doc["topics"]:  # in order: publishes reach them in order
        topics.subscribe(refs(int(actor_id)), str(topic), Delivery(policy))


def _restore_schedule(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    values, shared, refs, cells = (
        restoring.values,
        restoring.shared,
        restoring.ref,
        restoring.cells,
    )
    schedule = system.router.state.schedule
    items: list[tuple[float, int, Scheduled]] = []
    for data in doc["entries"]:
        ref = refs(int(data["actor"]))
        message = values.restore_value(data["message"], shared=shared, refs=refs)
        interval = None if data["interval"] is None else float(data["interval"])
        report = system.router._count_scheduled if data.get("counted") else None
        entry = Scheduled(float(data["deadline"]), ref, message, interval, report)
        entry.fired = bool(data["fired"])
        if data["timer"]:
            cell = cells[ref.id]
            if cell._live is None:
                raise CheckpointError(f"a timer of actor {ref.name!r}, which is not running")
            entry.message = Tick(entry, message, cell._live)
            if cell._timers is None:
                cell._timers = []
            cell._timers.append(entry)
        items.append((entry.deadline, int(data["sequence"]), entry))
    for deadline, sequence in doc["off"]:  # they deliver nothing, but wake the schedule
        items.append((float(deadline), int(sequence), Scheduled(0.0, None, None, cancelled=True)))
    schedule.restore(items, int(doc["next"]))
    schedule._compact_at = int(doc["compact_at"])
    schedule.delivered = int(doc["delivered"])
    schedule.skipped_ticks = int(doc["skipped_ticks"])


def _whole(bare: Any, parts: Any) -> Any:
    if isinstance(bare, ChildSpec):
        args, kwargs = parts
        return attrs.evolve(bare, args=tuple(args), kwargs=kwargs)
    return attrs.evolve(bare, children=tuple(parts))


class _Started:
    """The start handshake of `count` children started together: each child's runner calls
    `started` once (when its child has started, or, stopped before that, when it ends);
    `all` is set with the last."""

    def __init__(self, count: int) -> None:
        self._left = count
        self.all = trio.Event()
        if count == 0:
            self.all.set()

    def started(self, value: object = None) -> None:
        self._left -= 1
        if self._left == 0:
            self.all.set()


@contextlib.contextmanager
def _naming(what: str) -> Iterator[None]:
    """A `CheckpointError` raised inside names `what` (the child or actor being restored)."""
    try:
        yield
    except CheckpointError as exc:
        raise CheckpointError(f"{what}: {exc}") from None
