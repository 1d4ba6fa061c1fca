"""Reliable delivery's part of a checkpoint, rebuilt (`spaceactors.checkpoint.reliable` says
what it holds and why): actors (stopped stand-ins for those that left the tree), retry options,
streams, messages, receivers' and senders' ends, the outcome book, the service's schedule."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from spaceactors.cell import ActorCell
from spaceactors.delivery import Scheduled
from spaceactors.errors import CheckpointError, DeliveryFailed, SpaceActorsError, UnknownMessage
from spaceactors.receiver import ReceiverState, Reliably, Stream
from spaceactors.retries import RetryOptions
from spaceactors.specs import ChildSpec

if TYPE_CHECKING:
    from spaceactors.checkpoint.engine import Restoring
    from spaceactors.ref import ActorRef
    from spaceactors.system import ActorSystem

_ERRORS: dict[str, type[SpaceActorsError]] = {
    "DeliveryFailed": DeliveryFailed,
    "UnknownMessage": UnknownMessage,
}


class Restorer:
    """One restore: the tables of rebuilt actors, options, streams and messages."""

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
