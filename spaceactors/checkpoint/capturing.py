"""Reading the actor system into plain data, synchronously, at a quiescent point: the capture
half of the engine's checkpoint (`spaceactors.checkpoint.engine.capture` is its entry point).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import trio

from spaceactors.cell import ActorCell
from spaceactors.checkpoint import faults, reliable
from spaceactors.checkpoint.context import FORMAT, Saving
from spaceactors.children import Child
from spaceactors.counters import peek
from spaceactors.delivery import DeliverySchedule, Scheduled, Tick
from spaceactors.errors import CheckpointError
from spaceactors.router import Router
from spaceactors.service import ServiceCell
from spaceactors.specs import ChildSpec, ServiceSpec
from spaceactors.supervisor import Supervisor
from spaceactors.topics import WILDCARD

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem


def capture(system: ActorSystem, saving: Saving) -> dict[str, Any]:
    """The system's state as plain data (at a quiescent point where `engine.busy` is None, and
    `engine.unsupported` too: `engine.capture` checks it first).

    Raises:
        CheckpointError: something cannot be saved (the message names the actor and field).
    """
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
    value, system._auto_names = peek(system._auto_names)
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
    """`spec` without its arguments (a supervisor's: without its children's specs): a copy
    made field by field, as `attrs.evolve` would but without validating again what was valid
    (half the cost, 10,000 times a checkpoint in a large fleet)."""
    cls = type(spec)
    bare = object.__new__(cls)
    for field in attrs.fields(cls):
        object.__setattr__(bare, field.name, getattr(spec, field.name))
    if isinstance(spec, ChildSpec):
        object.__setattr__(bare, "args", ())
        object.__setattr__(bare, "kwargs", {})
    else:
        object.__setattr__(bare, "children", ())
    return bare


def _parts(spec: Any) -> list[Any]:
    if isinstance(spec, ChildSpec):
        return [list(spec.args), dict(spec.kwargs)]
    return list(spec.children)


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
    counted = getattr(entry.report, "__func__", None) is Router._count_scheduled  # send_later
    if entry.ref is None or (entry.report is not None and not counted) or entry.on_due is not None:
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
        "counted": counted,
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
