"""Reliable delivery's part of a checkpoint: streams, pending messages, retry timers, outcomes.

`save` reads ``system.reliable`` synchronously at a quiescent point where `engine.busy` is None;
`restore` rebuilds it in a freshly opened system whose actor cells exist, before any actor or
the ``reliable`` service goes on. Messages go through the `Values` converter; everything else
is plain data (ints, floats, str, lists, dicts).

What the future of reliable delivery depends on, and what of it a quiescent point can hold
(every actor idle at an empty mailbox, every task blocked, the clock about to jump):

- **messages in flight**: every envelope not yet settled is in the pending table, waiting for
  its first check (in its `RetryOptions` queue) or for its own retry timer, and in its
  stream's ``unacked`` table; an ordered stream may hold early arrivals (``held``) until the
  gap fills. No envelope is in a mailbox (mailboxes are empty), none is being handled
  (``handling`` and ``_crashed_on`` are None), and none is in its first transmission (a send
  waiting for room is a task mid-await: `busy` says so and the next quiescent point is tried).
  Each envelope is saved once, by message id; streams, queues and held tables name it, so the
  rebuilt objects are shared exactly as before.
- **streams**: one object shared by the receiver's `ReceiverState` (by sender id and ordered),
  the sender's ``outbound`` set and its envelopes; saved once by stream id with both ends'
  numbers (next number, cumulative acknowledgement, high-water mark, runs settled out of
  order, held arrivals, numbers not yet acknowledged, ``touched``). A stream's sender or
  receiver may be an actor that has left the tree (stopped for good): it comes back as a
  stopped stand-in cell with its id, name and mailbox size, so that its sends are refused and
  its streams keyed as before.
- **timers**: the ``reliable`` service's own `DeliverySchedule` holds only ``call_at`` entries
  (a first check of a `RetryOptions`, or one message's retry); they are saved by what they
  mean, with their (deadline, sequence) order, and rebuilt with the service's callbacks. The
  heap is saved whole: an entry called off (a settled message's retry) or whose owner no
  longer points at it does nothing when due, but its time still wakes the service, and that
  wake-up is part of the run's schedule (Trio shuffles each batch of woken tasks), so it is
  kept as such, and so is the size at which the heap is next swept. Copies a fault plan holds
  back are refused: a fault plan is checkpointed (`checkpoint.faults`), but not a reliable
  copy it delays or reorders, which waits here beside its message's retry state.
- **retry options** in use (values, queue, timer), including options a pending message still
  uses after they left the cache; the default options stay the system's own object.
- **outcomes**: the `OutcomeBook` (the receipts ring, sparse; failures and withdrawn ids with
  their messages; counts), the service's counters and its jitter generator.

Pending outcomes and asks: a `delivered` call waiting for a message is a task mid-await, which
a checkpoint does not hold (an actor waiting in a handler makes the point busy; a waiting task
of the user's own is not rebuilt by a resume). What is kept is the message itself, pending,
and the fact that somebody waited (which makes its receiver acknowledge at once): after a
resume, calling ``delivered`` with its id answers as it would have. Receipts and failures of
finished messages are in the book, so ``delivered`` answers for them too.

Times are saved on the run's clock (``trio.current_time()``), whatever clock reader the
service uses, so that a wall-clock run resumed in another process keeps its deadlines.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from spaceactors.cell import ActorCell
from spaceactors.checkpoint.context import damaged, walk
from spaceactors.checkpoint.reliable_restore import Restorer
from spaceactors.errors import CheckpointError
from spaceactors.receiver import Reliably, Stream
from spaceactors.retries import RetryOptions

if TYPE_CHECKING:
    from spaceactors.checkpoint.context import Restoring, Saving
    from spaceactors.system import ActorSystem

FORMAT = 1
"""The version of reliable delivery's part of a checkpoint."""


def busy(system: ActorSystem) -> str | None:
    """Why reliable delivery cannot be checkpointed at this quiescent point (None: it can).

    Reasons: the ``reliable`` service is not serving (restarting); a send or publish is under
    way (waiting for room in a mailbox for its first transmission); an actor is handling a
    reliable message.
    """
    reliable = system.reliable
    if not reliable.life.serving:
        return "the reliable service is not serving (it is restarting)"
    state = reliable.state
    defaults = reliable._retries.defaults
    for checks in state.first_checks.values():
        # (The defaults' count of holders means nothing: they are never forgotten, and a
        # send that passes them explicitly counts itself in without counting itself out.)
        if checks.holders and checks is not defaults:
            return "a reliable send or publish is under way"
    for envelope in state.pending.values():
        if envelope.settled_at is not None:  # pragma: no cover - settled ones leave the table
            continue
        extra = envelope.extra
        if envelope.message_id in envelope.checks.queue:
            continue
        if extra is not None and extra.timer is not None and extra.timer.active:
            continue
        return (
            f"reliable message {envelope.message_id} to {envelope.stream.ref.name!r} is in its "
            "first transmission (its send waits for room)"
        )
    for cell in _cells(system):
        receiver = cell._receiver
        if cell._crashed_on is not None or (receiver is not None and receiver.handling):
            return f"actor {cell.name!r} is handling a reliable message"
    return None


def _cells(system: ActorSystem) -> list[ActorCell]:
    """Every actor cell that may hold reliable state: the tree's, and those streams name."""
    found: dict[int, ActorCell] = {}
    for _, child in walk(system.user):
        if isinstance(child.runtime, ActorCell):
            found[child.runtime.ref.id] = child.runtime
    for envelope in system.reliable.state.pending.values():
        for ref in (envelope.stream.ref, envelope.stream.sender):
            if ref is not None:
                found.setdefault(ref.id, ref._cell)
    return list(found.values())


# --- save ------------------------------------------------------------------------------------


class _Saver:
    """One save: the tables of streams, envelopes and options found, by their doc ids."""

    def __init__(self, system: ActorSystem, saving: Saving) -> None:
        self.system = system
        self.saving = saving
        self.offset = system.reliable._retries.offset
        self.options: dict[int, int] = {}  # id(RetryOptions) -> index
        self.options_doc: list[dict[str, Any]] = []
        self.streams: dict[int, Stream] = {}  # stream id -> stream
        self.envelopes: dict[int, Reliably] = {}  # message id -> envelope
        self.actors: dict[int, ActorCell] = {}
        self._done: set[int] = set()  # envelopes whose stream and options are in

    def option(self, checks: RetryOptions, listed: bool) -> int:
        index = self.options.get(id(checks))
        if index is None:
            index = self.options[id(checks)] = len(self.options_doc)
            where = f"reliable retry options {checks.key[:4]!r}"
            self.options_doc.append(
                {
                    "values": self.saving.value(list(checks.key[:4]), where),
                    "listed": listed,
                    "queue": [],
                    "timer": checks.timer is not None,
                    "_checks": checks,
                }
            )
        return index

    def stream(self, stream: Stream) -> int:
        seen = self.streams.setdefault(stream.id, stream)
        if seen is not stream:
            raise CheckpointError(f"two reliable streams have the id {stream.id}")
        for ref in (stream.ref, stream.sender):
            if ref is not None:
                self.actors.setdefault(ref.id, ref._cell)
        for envelope in (*stream.unacked.values(), *stream.held.values()):
            self.envelope(envelope)
        return stream.id

    def envelope(self, envelope: Reliably) -> int:
        seen = self.envelopes.setdefault(envelope.message_id, envelope)
        if seen is not envelope:
            raise CheckpointError(f"two reliable envelopes have the id {envelope.message_id}")
        if envelope.message_id not in self._done:
            self._done.add(envelope.message_id)
            self.stream(envelope.stream)
            self.option(envelope.checks, listed=False)
        return envelope.message_id

    def time(self, reading: float | None) -> float | None:
        return None if reading is None else reading + self.offset


def save(system: ActorSystem, saving: Saving) -> dict[str, Any]:
    """Reliable delivery's state as plain data (at a quiescent point where `engine.busy` and
    `busy` are None).

    Raises:
        CheckpointError: a message cannot be saved (the converter names it), or the state
            holds what checkpoints do not (a copy a fault plan holds back; a reason of `busy`).
    """
    reason = busy(system)
    if reason is not None:
        raise CheckpointError(f"cannot checkpoint reliable delivery now: {reason}")
    reliable = system.reliable
    state = reliable.state
    saver = _Saver(system, saving)
    for checks in state.first_checks.values():
        saver.option(checks, listed=True)
    for envelope in state.pending.values():
        saver.envelope(envelope)
    for checks in state.first_checks.values():
        for envelope in checks.queue.values():
            saver.envelope(envelope)
    for cell in _cells(system):
        if cell._receiver is not None or cell.outbound:
            saver.actors.setdefault(cell.ref.id, cell)
    done: set[int] = set()
    while len(done) < len(saver.actors):  # a loop, not recursion: streams name more actors
        for cell in list(saver.actors.values()):
            if cell.ref.id not in done:
                done.add(cell.ref.id)
                for stream in _streams_of(cell):
                    saver.stream(stream)
    for doc in saver.options_doc:
        doc["queue"] = [saver.envelope(e) for e in doc["_checks"].queue.values()]
    book = state.book
    ring = [
        [message_id, book.attempts[message_id & book.mask], book.latencies[message_id & book.mask]]
        for message_id in book.ids
        if message_id
    ]
    return {
        "format": FORMAT,
        "rng": saving.value(reliable._retries._rng, "the reliable service's jitter generator"),
        "counters": {
            "streams": state.streams,
            "withdrawn": state.withdrawn,
            "acknowledged": state.acknowledged,
            "retried": state.retried,
            "failed": state.failed,
            "duplicates": state.duplicates,
        },
        "book": {
            "issued": book.issued,
            "forgotten": book.forgotten,
            "forgotten_through": book.forgotten_through,
            "ring": ring,
            "failures": [[i, str(e)] for i, e in book.failures.items()],
            "withdrawn": [[i, str(e)] for i, e in book.withdrawn.items()],
        },
        "options": [{k: v for k, v in doc.items() if k != "_checks"} for doc in saver.options_doc],
        "actors": [_save_actor(cell) for cell in saver.actors.values()],
        "streams": [_save_stream(stream) for stream in saver.streams.values()],
        "envelopes": [_save_envelope(e, saver) for e in saver.envelopes.values()],
        "pending": list(state.pending),
        "schedule": _save_schedule(system, saver),
    }


def _streams_of(cell: ActorCell) -> list[Stream]:
    streams = [] if cell._receiver is None else list(cell._receiver.streams.values())
    streams += sorted(cell.outbound or (), key=lambda stream: stream.id)  # (a set)
    if cell._receiver is not None:
        streams += cell._receiver.touched
    return streams


def _save_actor(cell: ActorCell) -> dict[str, Any]:
    receiver = cell._receiver
    return {
        "id": cell.ref.id,
        "name": cell.ref.name,
        "capacity": cell.ref.capacity,
        "receiver": None
        if receiver is None
        else {
            "streams": [[key[0], key[1], s.id] for key, s in receiver.streams.items()],
            "touched": [s.id for s in receiver.touched],
        },
        "outbound": None if cell.outbound is None else sorted(s.id for s in cell.outbound),
    }


def _save_stream(stream: Stream) -> dict[str, Any]:
    return {
        "id": stream.id,
        "ref": stream.ref.id,
        "sender": None if stream.sender is None else stream.sender.id,
        "ordered": stream.ordered,
        "next_seq": stream.next_seq,
        "acked": stream.acked,
        "low": stream.low,
        "starts": list(stream.starts),
        "ends": list(stream.ends),
        "sacked": list(stream.sacked),
        "touched": stream.touched,
        "unacked": [[seq, e.message_id] for seq, e in stream.unacked.items()],
        "held": [[seq, e.message_id] for seq, e in stream.held.items()],
    }


def _save_envelope(envelope: Reliably, saver: _Saver) -> dict[str, Any]:
    where = f"reliable message {envelope.message_id} to {envelope.stream.ref.name!r}"
    extra = envelope.extra
    saved_extra: dict[str, Any] | None = None
    if extra is not None:
        if extra.held:
            raise CheckpointError(
                f"cannot checkpoint {where}: a fault plan holds copies of it back (a reliable "
                "message's held-back copies are not checkpointed yet): checkpoint when none is "
                "delayed, or scope the delay away from reliable traffic"
            )
        error = extra.error
        saved_extra = {
            "waited": extra.done is not None,
            "held": extra.held is not None,
            "timer": None if extra.timer is None else extra.timer.active,
            "error": None if error is None else [type(error).__name__, str(error)],
            "topic": extra.topic,
        }
    return {
        "id": envelope.message_id,
        "message": saver.saving.value(envelope.message, where),
        "stream": envelope.stream.id,
        "seq": envelope.seq,
        "options": saver.options[id(envelope.checks)],
        "started": saver.time(envelope.started),
        "attempts": envelope.attempts,
        "settled_at": saver.time(envelope.settled_at),
        "extra": saved_extra,
    }


def _save_schedule(system: ActorSystem, saver: _Saver) -> dict[str, Any]:
    """The service's heap as it is, entry by entry with its (deadline, sequence) key: what each
    live entry means, and the entries that will do nothing (called off, or whose owner moved
    on), which still wake the service when their time comes."""
    retries = system.reliable._retries
    meaning: dict[int, list[Any]] = {}
    for index, doc in enumerate(saver.options_doc):
        timer = doc["_checks"].timer
        if timer is not None:
            meaning[id(timer)] = ["first", index]
    for envelope in saver.envelopes.values():
        if envelope.extra is not None and envelope.extra.timer is not None:
            meaning[id(envelope.extra.timer)] = ["retry", envelope.message_id]
    schedule = system.reliable.state.schedule
    entries = []
    for deadline, sequence, entry in sorted(schedule._heap, key=lambda item: item[:2]):
        what = meaning.get(id(entry))
        if not entry.active or deadline != entry.deadline:
            what = ["off", None]  # it goes by when due
        elif what is None:
            on_due = entry.on_due
            if (
                entry.ref is not None
                or not isinstance(on_due, functools.partial)
                or (on_due.func != retries._first_check and on_due.func != retries._due)
            ):
                raise CheckpointError(
                    "cannot checkpoint the reliable service's schedule: it holds a copy a "
                    "fault plan delays (a reliable message's held-back copies are not "
                    "checkpointed yet)"
                )
            what = ["idle", None]  # its owner moved on: it does nothing when due
        entries.append([deadline, sequence, *what])
    return {"next": schedule.next_sequence, "compact_at": schedule._compact_at, "entries": entries}


# --- restore ---------------------------------------------------------------------------------


def restore(system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring) -> None:
    """Rebuild what `doc` (from `save`) holds in `system`: a system just opened in a run whose
    clock stands at the checkpoint's time, whose actor cells exist (`engine.rebuild`), before
    any actor or the ``reliable`` service goes on.

    Raises:
        CheckpointError: `doc` is not a save of this format, or is damaged (the message says
            what is wrong: an unknown stream, message, actor or option, a missing field).
    """
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, Mapping) else type(doc).__name__
        raise CheckpointError(
            f"the checkpoint's reliable-delivery state is format {found!r}, this spaceactors "
            f"reads format {FORMAT}"
        )
    with damaged("reliable-delivery state"):
        Restorer(system, doc, restoring).run()
