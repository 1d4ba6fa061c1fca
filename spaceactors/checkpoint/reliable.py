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
  back are refused (fault plans are not checkpointed yet).
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

import contextlib
import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import trio

from spaceactors.cell import ActorCell
from spaceactors.delivery import Scheduled
from spaceactors.errors import CheckpointError, DeliveryFailed, SpaceActorsError, UnknownMessage
from spaceactors.receiver import ReceiverState, Reliably, Stream
from spaceactors.retries import RetryOptions
from spaceactors.specs import ChildSpec

if TYPE_CHECKING:
    from spaceactors.checkpoint.engine import Restoring, Saving
    from spaceactors.ref import ActorRef
    from spaceactors.system import ActorSystem

FORMAT = 1
"""The version of reliable delivery's part of a checkpoint."""

_ERRORS: dict[str, type[SpaceActorsError]] = {
    "DeliveryFailed": DeliveryFailed,
    "UnknownMessage": UnknownMessage,
}


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
    from spaceactors.checkpoint.engine import _walk  # (engine imports this module)

    found: dict[int, ActorCell] = {}
    for _, child in _walk(system.user):
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
                f"cannot checkpoint {where}: a fault plan holds copies of it back (fault plans "
                "are not checkpointed yet)"
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
                    "fault plan delays (fault plans are not checkpointed yet)"
                )
            what = ["idle", None]  # its owner moved on: it does nothing when due
        entries.append([deadline, sequence, *what])
    return {"next": schedule.next_sequence, "compact_at": schedule._compact_at, "entries": entries}


# --- restore ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _damaged() -> Iterator[None]:
    try:
        yield
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(
            f"the checkpoint's reliable-delivery state is damaged: {exc!r}"
        ) from None


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
    with _damaged():
        _Restorer(system, doc, restoring).run()


class _Restorer:
    def __init__(self, system: ActorSystem, doc: Mapping[str, Any], restoring: Restoring):
        self.system = system
        self.doc = doc
        self.restoring = restoring
        self.retries = system.reliable._retries
        self.offset = self.retries.offset
        self.cells: dict[int, ActorCell] = {}
        self.options: list[RetryOptions] = []
        self.streams: dict[int, Stream] = {}
        self.envelopes: dict[int, Reliably] = {}

    def run(self) -> None:
        doc = self.doc
        state = self.system.reliable.state
        self._actors(doc["actors"])
        self._options(doc["options"])
        for data in doc["streams"]:
            self._stream(data)
        for data in doc["envelopes"]:
            self._envelope(data)
        for data in doc["streams"]:
            stream = self.streams[int(data["id"])]
            stream.unacked = {int(seq): self._message(i) for seq, i in data["unacked"]}
            stream.held = {int(seq): self._message(i) for seq, i in data["held"]}
        for data in doc["actors"]:
            self._ends(data)
        state.pending = {}
        for message_id in doc["pending"]:
            state.pending[int(message_id)] = self._message(message_id)
        counters = doc["counters"]
        for name in ("streams", "withdrawn", "acknowledged", "retried", "failed", "duplicates"):
            setattr(state, name, int(counters[name]))
        self._book(doc["book"])
        rng = self.restoring.value(doc["rng"])
        self.retries._rng.setstate(rng.getstate())
        self._schedule(doc["schedule"])

    def _message(self, message_id: Any) -> Reliably:
        envelope = self.envelopes.get(int(message_id))
        if envelope is None:
            raise CheckpointError(
                f"the checkpoint's reliable-delivery state names message {message_id!r}, "
                "which it lacks"
            )
        return envelope

    def _stream_of(self, stream_id: Any) -> Stream:
        stream = self.streams.get(int(stream_id))
        if stream is None:
            raise CheckpointError(
                f"the checkpoint's reliable-delivery state names stream {stream_id!r}, "
                "which it lacks"
            )
        return stream

    def _ref(self, actor_id: Any) -> ActorRef:
        cell = self.cells.get(int(actor_id))
        if cell is None:
            raise CheckpointError(
                f"the checkpoint's reliable-delivery state names actor #{actor_id!r}, which "
                "it lacks"
            )
        return cell.ref

    def _actors(self, actors: list[Any]) -> None:
        for data in actors:
            actor_id, name = int(data["id"]), str(data["name"])
            cell = self.restoring.cells.get(actor_id)
            if cell is None and not 0 < actor_id < self.system.registry.next_id:
                raise CheckpointError(
                    f"the checkpoint's reliable-delivery state names actor #{actor_id} "
                    f"({name!r}), an id the run never gave out"
                )
            if cell is None:  # it left the tree: a stopped stand-in keeps its id and name
                cell = _stopped_cell(self.system, actor_id, name, int(data["capacity"]))
            elif cell.ref.name != name:
                raise CheckpointError(
                    f"reliable delivery's actor #{actor_id} is {name!r} in the checkpoint, "
                    f"{cell.ref.name!r} in the resumed run"
                )
            self.cells[actor_id] = cell

    def _options(self, options: list[Any]) -> None:
        retries = self.retries
        defaults = retries.defaults
        first_checks = self.system.reliable.state.first_checks
        listed: dict[tuple[object, ...], RetryOptions] = {}
        for data in options:
            values = self.restoring.value(data["values"])
            checks = retries.options(*values)  # validated again, as a send would
            if data["listed"] and defaults is not None and checks.key == defaults.key:
                checks = defaults  # the system's own object: sends' fast path checks it
            if data["listed"]:
                listed[checks.key] = checks
            self.options.append(checks)
        first_checks.clear()
        first_checks.update(listed)

    def _stream(self, data: Mapping[str, Any]) -> None:
        sender = None if data["sender"] is None else self._ref(data["sender"])
        stream = Stream(int(data["id"]), self._ref(data["ref"]), sender, bool(data["ordered"]))
        stream.next_seq = int(data["next_seq"])
        stream.acked = int(data["acked"])
        stream.low = int(data["low"])
        stream.starts = [int(n) for n in data["starts"]]
        stream.ends = [int(n) for n in data["ends"]]
        if len(stream.starts) != len(stream.ends):
            raise CheckpointError(f"reliable stream {stream.id}: its settled runs do not pair")
        stream.sacked = [int(n) for n in data["sacked"]]
        stream.touched = bool(data["touched"])
        if stream.id in self.streams:
            raise CheckpointError(f"the checkpoint holds reliable stream {stream.id} twice")
        self.streams[stream.id] = stream

    def _envelope(self, data: Mapping[str, Any]) -> None:
        message_id = int(data["id"])
        index = int(data["options"])
        if not 0 <= index < len(self.options):
            raise CheckpointError(f"reliable message {message_id} names unknown options {index}")
        envelope = Reliably(
            message_id,
            self.restoring.value(data["message"]),
            self._stream_of(data["stream"]),
            int(data["seq"]),
            self.options[index],
            float(data["started"]) - self.offset,
        )
        envelope.attempts = int(data["attempts"])
        settled = data["settled_at"]
        envelope.settled_at = None if settled is None else float(settled) - self.offset
        saved = data["extra"]
        if saved is not None:
            extra = envelope.more()
            extra.done = trio.Event() if saved["waited"] else None
            extra.held = [] if saved["held"] else None
            if saved["timer"] is False:  # a timer that went off or was called off
                extra.timer = Scheduled(0.0, None, None, cancelled=True)
            if saved["error"] is not None:
                kind, text = saved["error"]
                error_type = _ERRORS.get(kind)
                if error_type is None:
                    raise CheckpointError(f"reliable message {message_id}: unknown error {kind!r}")
                extra.error = error_type(str(text))
            extra.topic = None if saved["topic"] is None else str(saved["topic"])
        if message_id in self.envelopes:
            raise CheckpointError(f"the checkpoint holds reliable message {message_id} twice")
        self.envelopes[message_id] = envelope

    def _ends(self, data: Mapping[str, Any]) -> None:
        """An actor's receiver state and outbound streams."""
        cell = self.cells[int(data["id"])]
        saved = data["receiver"]
        if saved is None:
            cell._receiver = None
        else:
            receiver = ReceiverState(self.system.reliable.acknowledge)
            for sender, ordered, stream_id in saved["streams"]:
                key = (None if sender is None else int(sender), bool(ordered))
                receiver.streams[key] = self._stream_of(stream_id)
            receiver.touched = [self._stream_of(i) for i in saved["touched"]]
            cell._receiver = receiver
        outbound = data["outbound"]
        cell.outbound = None if outbound is None else {self._stream_of(i) for i in outbound}

    def _book(self, saved: Mapping[str, Any]) -> None:
        book = self.system.reliable.state.book
        for message_id, attempts, latency in saved["ring"]:
            slot = int(message_id) & book.mask
            book.ids[slot] = int(message_id)
            book.attempts[slot] = int(attempts)
            book.latencies[slot] = float(latency)
        book.failures.clear()
        for message_id, text in saved["failures"]:
            envelope = self.envelopes.get(int(message_id))
            error = None if envelope is None or envelope.extra is None else envelope.extra.error
            book.failures[int(message_id)] = error or DeliveryFailed(str(text))
        book.withdrawn.clear()
        for message_id, text in saved["withdrawn"]:
            book.withdrawn[int(message_id)] = UnknownMessage(str(text))
        book.issued = int(saved["issued"])
        book.forgotten = int(saved["forgotten"])
        book.forgotten_through = int(saved["forgotten_through"])

    def _schedule(self, saved: Mapping[str, Any]) -> None:
        retries = self.retries
        items: list[tuple[float, int, Scheduled]] = []
        for deadline, sequence, kind, arg in saved["entries"]:
            deadline = float(deadline)
            if kind == "first":
                checks = self.options[int(arg)]
                entry = Scheduled(
                    deadline, None, None, on_due=functools.partial(retries._first_check, checks)
                )
                checks.timer = entry
            elif kind == "retry":
                envelope = self._message(arg)
                entry = Scheduled(
                    deadline, None, None, on_due=functools.partial(retries._due, envelope)
                )
                envelope.more().timer = entry
            elif kind == "idle":
                entry = Scheduled(deadline, None, None, on_due=_nothing)
            elif kind == "off":
                entry = Scheduled(deadline, None, None, on_due=_nothing, cancelled=True)
            else:
                raise CheckpointError(f"a reliable timer of unknown kind {kind!r}")
            items.append((deadline, int(sequence), entry))
        for index, checks in enumerate(self.options):
            if checks.timer is None and self.doc["options"][index]["timer"]:
                raise CheckpointError(f"reliable retry options {index} lost their timer")
            checks.queue = {}
        for index, data in enumerate(self.doc["options"]):
            queue = self.options[index].queue
            for message_id in data["queue"]:
                queue[int(message_id)] = self._message(message_id)
        schedule = self.system.reliable.state.schedule
        schedule.restore(items, int(saved["next"]))
        schedule._compact_at = int(saved["compact_at"])


def _nothing(entry: Scheduled) -> None:
    """What a retry timer whose message moved on does when due."""


def _stopped_cell(system: ActorSystem, actor_id: int, name: str, capacity: int) -> ActorCell:
    """A stand-in for an actor that stopped for good and left the tree: its id, name and
    mailbox size; sends to it are refused (dead letters), as they were."""
    from spaceactors.actor import Actor

    registry = system.registry
    next_id, registry.next_id = registry.next_id, actor_id
    try:
        cell = ActorCell(ChildSpec(name, Actor, mailbox_size=capacity), system, system.user)
    finally:
        registry.next_id = next_id
    cell.close()
    return cell
