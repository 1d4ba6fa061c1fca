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

from typing import TYPE_CHECKING, Any

from spaceactors.cell import ActorCell
from spaceactors.checkpoint import capturing, reliable
from spaceactors.checkpoint.context import FORMAT, Restoring, Saving, Values, walk
from spaceactors.checkpoint.rebuilding import rebuild, restore, start
from spaceactors.delivery import Scheduled
from spaceactors.errors import CheckpointError

if TYPE_CHECKING:
    from spaceactors.system import ActorSystem

__all__ = [
    "FORMAT",
    "Restoring",
    "Saving",
    "Values",
    "busy",
    "capture",
    "rebuild",
    "restore",
    "start",
    "unsupported",
    "walk",
]


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
    for supervisor, child in walk(system.user):
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
    return capturing.capture(system, saving)
