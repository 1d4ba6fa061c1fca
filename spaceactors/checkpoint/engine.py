"""The engine's part of a checkpoint: what the actor system holds, as plain data, and back.

`busy` says why this instant cannot be checkpointed (an actor is inside a handler, a restart
waits out its backoff: the next quiescent point is tried); `capture` reads the system
synchronously, at a quiescent point; `restore` rebuilds it inside a freshly opened system of a
new run, before that run goes on. Values (actor state, messages, specs) go through a `Values`
converter (`spaceactors.checkpoint.values`).

What a checkpoint holds, by part of the system:

- the ``user`` tree: each supervisor's restart history and jitter generator, each child's
  record (incarnation, crashes, last crash, start time) and spec, each actor's id, counts,
  last error and state (`Values.save_actor`);
- the delivery schedule: actor timers (``ctx.after``/``ctx.every``, of the running incarnation)
  and ``Router.send_later`` messages, with their (deadline, sequence) order, and the keys of
  entries that will deliver nothing (called off) but still wake the schedule when due;
- topic subscriptions in subscription order, the router's and dead letters' counts, the counts
  of actors that left the tree, the registry's next id, the system's next automatic name.
- the fault injector's state and what it put on the router's schedule (timed faults, held-back
  copies), saved and restored by `spaceactors.checkpoint.faults`.

What a checkpoint cannot hold yet raises `CheckpointError` naming it (`unsupported`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from spaceactors.cell import ActorCell
from spaceactors.checkpoint import faults, reliable
from spaceactors.children import Child
from spaceactors.deadletters import DeadLetterReason
from spaceactors.delivery import DeliverySchedule, Scheduled, Tick
from spaceactors.errors import CheckpointError
from spaceactors.lifecycle import Tally
from spaceactors.ref import ActorRef
from spaceactors.service import ServiceCell
from spaceactors.specs import ChildSpec, ServiceSpec, SupervisorSpec
from spaceactors.supervisor import Supervisor
from spaceactors.topics import WILDCARD, Delivery

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
    shared: Mapping[str, object]

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


# --- whether now is a moment to take one ----------------------------------------------------


def unsupported(system: ActorSystem) -> str | None:
    """What in `system` a checkpoint cannot hold yet, whatever the moment (None: nothing)."""
    if system.router.limiter._senders:
        return "rate-limited senders exist (their queues are not checkpointed yet)"
    return None


def busy(system: ActorSystem) -> str | None:
    """Why this quiescent point is no moment for a checkpoint (None: it is one).

    A checkpoint needs every actor idle at its mailbox, every supervisor serving (not starting,
    stopping or waiting to restart a child) and no scheduled message waiting for room.
    """
    for supervisor, child in _walk(system.user):
        if supervisor._starting is not None or supervisor._stopping:
            return f"supervisor {supervisor.path!r} is starting or stopping a child"
        if child.restart_pending or child.terminating or child.retire_when_stopped:
            return f"child {child.spec.name!r} of {supervisor.path!r} is between incarnations"
        runtime = child.runtime
        if isinstance(runtime, ActorCell) and child.running:
            receive = runtime.ref._receive
            if runtime._control or runtime._paused or runtime._resumed is not None:
                return f"actor {runtime.name!r} has control commands or is paused"
            stats = receive.statistics()
            if stats.tasks_waiting_receive != 1 or stats.current_buffer_used:
                return f"actor {runtime.name!r} is inside a handler"
    for _, _, entry in system.router.state.schedule.entries():
        if entry.waiting_for_room:
            return f"a scheduled message to {_target(entry)} waits for room"
    return reliable.busy(system)


def _target(entry: Scheduled) -> str:
    return "?" if entry.ref is None else repr(entry.ref.name)


def _walk(top: Supervisor) -> list[tuple[Supervisor, Child]]:
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


# --- capture ---------------------------------------------------------------------------------


def capture(system: ActorSystem, saving: Saving) -> dict[str, Any]:
    """The system's state as plain data (at a quiescent point where `busy` is None).

    Raises:
        CheckpointError: something cannot be saved (the message names the actor and field),
            or the system uses what checkpoints do not hold yet (`unsupported`).
    """
    reason = unsupported(system)
    if reason is not None:
        raise CheckpointError(f"cannot checkpoint this system: {reason}")
    router = system.router.state
    schedule = router.schedule
    dead = system.dead_letters
    values, shared = saving.values, saving.shared
    return {
        "format": FORMAT,
        "time": trio.current_time(),
        "opened_at": system.opened_at,
        "seed": system.seed,
        "next_id": system.registry.next_id,
        "auto_names": _peek(system),
        "user": _save_supervisor(system.user, saving),
        "schedule": {
            "next": schedule.next_sequence,
            "entries": [
                _save_entry(item, saving)
                for item in schedule.entries()
                if not faults.owns(system, item[2])  # (saved with the injector)
            ],
            "off": _called_off(schedule),
            "compact_at": schedule._compact_at,
            "delivered": schedule.delivered,
            "skipped_ticks": schedule.skipped_ticks,
        },
        "topics": _save_topics(system),
        "router": {
            "delivered": [
                [values.save_value(cls, where="router statistics", shared=shared), n]
                for cls, n in router.delivered.items()
            ],
            "failed": router.failed,
            "dropped": router.dropped,
            "unheard": router.unheard,
        },
        "dead_letters": {
            "total": dead.total,
            "by_reason": [[reason.value, n] for reason, n in dead.by_reason.items()],
            "recent": values.save_value(dead.recent(), where="dead letters", shared=shared),
        },
        "retired": [
            [kind, t.actors, t.handled, t.restarts, t.crashes]
            for kind, t in system.lifecycle.retired.items()
        ],
        "reliable": reliable.save(system, saving),
        "faults": faults.save(system, saving),
    }


def _peek(system: ActorSystem) -> int:
    value = next(system._auto_names)
    system._auto_names = itertools.count(value)
    return value


def _save_supervisor(supervisor: Supervisor, saving: Saving) -> dict[str, Any]:
    loop = supervisor._restarts
    return {
        "restarts": supervisor.restarts,
        "history": list(loop.history),
        "rng": saving.value(loop.rng, f"supervisor {supervisor.path!r}"),
        "children": [
            _save_child(supervisor, child, saving) for child in supervisor._children.values()
        ],
    }


def _save_child(supervisor: Supervisor, child: Child, saving: Saving) -> dict[str, Any]:
    where = f"{supervisor.path}/{child.spec.name}"
    values, shared = saving.values, saving.shared
    service = isinstance(child.spec, ServiceSpec)
    data: dict[str, Any] = {
        "name": child.spec.name,
        "static": child.static,
        # A spec's arguments (and a supervisor's child specs) may name shared objects that
        # a resume restores after the tree is rebuilt: they are saved apart, restored last.
        "spec": None if service else saving.value(_bare(child.spec), f"{where} (its spec)"),
        "spec_parts": None if service else saving.value(_parts(child.spec), f"{where} (args)"),
        "incarnation": child.incarnation,
        "running": child.running,
        "wanted": child.wanted,
        "attempt": child.attempt,
        "started_at": child.started_at,
        "crashes": child.crashes,
        "last_crash": None if child.last_crash is None else list(child.last_crash),
    }
    runtime = child.runtime
    if isinstance(runtime, Supervisor):
        data["supervisor"] = _save_supervisor(runtime, saving)
        return data
    if isinstance(runtime, ServiceCell):
        data["service"] = {"restarts": runtime.restarts, "last_error": runtime.last_error}
        return data
    assert isinstance(runtime, ActorCell)
    actor = runtime.actor
    data["actor"] = {
        "id": runtime.ref.id,
        "alive": runtime.alive,
        "restarts": runtime.restarts,
        "handled": runtime.handled,
        "last_error": runtime.last_error,
        "class": values.save_value(type(actor), where=where, shared=shared) if actor else None,
        "state": None if actor is None else values.save_actor(actor, path=where, shared=shared),
    }
    return data


def _bare(spec: Any) -> Any:
    if isinstance(spec, ChildSpec):
        return attrs.evolve(spec, args=(), kwargs={})
    return attrs.evolve(spec, children=())


def _parts(spec: Any) -> list[Any]:
    if isinstance(spec, ChildSpec):
        return [list(spec.args), dict(spec.kwargs)]
    return list(spec.children)


def _whole(bare: Any, parts: Any) -> Any:
    if isinstance(bare, ChildSpec):
        args, kwargs = parts
        return attrs.evolve(bare, args=tuple(args), kwargs=kwargs)
    return attrs.evolve(bare, children=tuple(parts))


def _called_off(schedule: DeliverySchedule) -> list[list[float | int]]:
    """The (deadline, sequence) keys of the heap's entries that will deliver nothing (called
    off, or left at an old deadline): each still wakes the schedule's task when due, and that
    wake-up is part of the run (Trio shuffles the tasks woken together)."""
    live = {(deadline, sequence) for deadline, sequence, _ in schedule.entries()}
    return [
        [deadline, sequence]
        for deadline, sequence, _ in sorted(schedule._heap, key=lambda item: item[:2])
        if (deadline, sequence) not in live
    ]


def _save_entry(item: tuple[float, int, Scheduled], saving: Saving) -> dict[str, Any]:
    deadline, sequence, entry = item
    if entry.ref is None or entry.report is not None or entry.on_due is not None:
        raise CheckpointError(
            "cannot checkpoint a scheduled call of the engine's own (a reliable retry or a "
            "fault window): not supported yet"
        )
    where = f"a scheduled message to {entry.ref.name!r}"
    message = entry.message
    timer = isinstance(message, Tick)
    if isinstance(message, Tick):
        cell = entry.ref._cell
        if message.owner is not (cell._live if isinstance(cell, ActorCell) else None):
            raise CheckpointError(f"{where}: a timer of an ended incarnation is still active")
        message = message.message
    return {
        "deadline": deadline,
        "sequence": sequence,
        "actor": entry.ref.id,
        "interval": entry.interval,
        "timer": timer,
        "fired": entry.fired,
        "message": saving.value(message, where),
    }


def _save_topics(system: ActorSystem) -> list[list[Any]]:
    topics = system.router.state.topics
    saved: list[list[Any]] = []
    for table, suffix in ((topics._exact, ""), (topics._prefixes, WILDCARD)):
        for topic, subscribers in table.items():
            for ref, policy in subscribers.items():
                saved.append([topic + suffix, ref.id, policy.value])
    return saved


# --- restore -------------------------------------------------------------------------------


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
    with _damaged():
        system.opened_at = float(doc["opened_at"])
        _build(system.user, doc["user"], restoring, restoring.plans)


async def start(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    """Put back the actors' state and every count, and start what was running (after
    `rebuild`, once `restoring.shared` holds every shared object).

    Raises:
        CheckpointError: as `restore`.
    """
    with _damaged():
        await _start(system, doc, restoring)


@contextlib.contextmanager
def _damaged(part: str = "engine state") -> Iterator[None]:
    """Turn what a damaged document makes restoring code raise into a `CheckpointError`
    naming `part` of the checkpoint."""
    try:
        yield
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"the checkpoint's {part} is damaged: {exc!r}") from None


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
                cls = values.restore_value(data["actor"]["class"], shared=shared, refs=refs)
                cell.restored = values.restore_actor(
                    cls, data["actor"]["state"], shared=shared, refs=refs
                )
    system.registry.next_id = int(doc["next_id"])
    system._auto_names = itertools.count(int(doc["auto_names"]))
    _restore_counts(system, doc, restoring)
    reliable.restore(system, doc["reliable"], restoring)
    fault_schedule = faults.restore(system, doc.get("faults"), restoring)
    by_supervisor = {id(supervisor): children for supervisor, children in plans}

    async def resume(supervisor: Supervisor) -> None:
        for child, _ in by_supervisor.get(id(supervisor), []):
            if child.running:
                if isinstance(child.runtime, Supervisor):
                    child.runtime.resume = resume
                await supervisor._start(child, resumed=True)

    await resume(system.user)
    _restore_schedule(system, doc["schedule"], restoring)
    fault_schedule()


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
    router.delivered = {
        values.restore_value(cls, shared=shared, refs=refs): int(n)
        for cls, n in doc["router"]["delivered"]
    }
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
        entry = Scheduled(float(data["deadline"]), ref, message, interval)
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
