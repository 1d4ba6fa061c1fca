"""The tap: where a traced or fault-injected system observes and bends its own traffic.

With neither a trace nor a fault plan, a system has no tap and its hot paths pay one ``is None``
check. Otherwise the router, the reliable layer, the actor loop and the supervisors hand each
event to `Tap`, which records it on the trace and asks the `FaultInjector` what to do with it.
Copies a fault holds back (delays, reorders) go on the schedule of the service that owns the
path (the router's or the reliable one), so a service restart loses none of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from spaceactors.deadletters import DeadLetter
from spaceactors.delivery import DeliverySchedule, Scheduled
from spaceactors.faultplan import InjectedCrash, Partition, PauseActor, matches_name
from spaceactors.faults import FaultInjector
from spaceactors.handling import payload
from spaceactors.receiver import Reliably
from spaceactors.trace import EventKind, Trace
from spaceactors.trace_event import FAULT_KINDS

if TYPE_CHECKING:
    from spaceactors.cell import ActorCell
    from spaceactors.ref import ActorRef
    from spaceactors.system import ActorSystem


__all__ = ["FAULT_KINDS", "Tap"]


def _unwrap(message: object) -> tuple[object, int | None]:
    """The user's message inside a runtime wrapper, and its reliable id if it has one."""
    message_id = message.message_id if isinstance(message, Reliably) else None
    return payload(message), message_id


class Tap:
    """Traces and fault-injects one system's traffic (``system.tap``)."""

    def __init__(
        self, system: ActorSystem, trace: Trace | None, faults: FaultInjector | None
    ) -> None:
        self.trace = trace
        self.traced = frozenset() if trace is None else trace.kinds
        """The kinds of event the trace records (none without one): what the level leaves
        out is not even built."""
        self.faults = faults
        self._lifecycle = system.lifecycle
        self._held: dict[ActorRef, list[tuple[DeliverySchedule, Scheduled]]] = {}
        self._paused: dict[ActorRef, PauseActor] = {}  # actors a pause rule holds now
        if EventKind.DEAD_LETTER in self.traced:
            system.dead_letters.listeners.append(self._dead_letter)

    def record(
        self,
        kind: EventKind,
        actor: str | None = None,
        *,
        peer: str | None = None,
        message: object = None,
        message_id: int | None = None,
        detail: str = "",
    ) -> None:
        """Put an event on the trace, if there is one; tell lifecycle listeners of faults."""
        if kind in self.traced:
            assert self.trace is not None
            self.trace.record(
                kind, actor, peer=peer, message=message, message_id=message_id, detail=detail
            )
        if self._lifecycle.listeners and kind in FAULT_KINDS:
            what = kind.value if message is None else f"{kind.value} {type(message).__name__}"
            self._lifecycle.emit(
                "fault",
                trio.current_time(),
                actor or "",
                f"{what}: {detail}" if detail else what,
            )

    # --- the delivery path ----------------------------------------------------------------

    def transmit(
        self,
        ref: ActorRef,
        message: object,
        sender: ActorRef | None,
        schedule: DeliverySchedule,
        *,
        topic: str | None = None,
        report: Callable[[Scheduled, bool], None] | None = None,
        retry: int = 0,
        held: list[Scheduled] | None = None,
    ) -> int:
        """One transmission of `message` to `ref`: trace it, apply the faults, schedule what
        is held back. Returns how many copies the caller puts in the mailbox now (0, 1, 2...).

        `report` (as `DeliverySchedule.add` takes it) is told about each held-back copy, and
        `held` (if given) collects them, so that a send that fails can call them off.
        """
        if self.faults is None and EventKind.SEND not in self.traced:
            return 1  # nothing to record, nothing to inject
        payload, message_id = _unwrap(message)
        peer = None if sender is None else sender.name

        def note(kind: EventKind, detail: str) -> None:
            self.record(
                kind, ref.name, peer=peer, message=payload, message_id=message_id, detail=detail
            )

        if EventKind.SEND in self.traced:
            note(EventKind.SEND, f"retry {retry}" if retry else (f"topic {topic}" if topic else ""))
        if self.faults is None:
            return 1
        fate = self.faults.fate(ref.name, peer, payload, topic, trio.current_time())
        if fate.dropped is not None:
            note(EventKind.DROP, fate.dropped)
            return 0
        if fate.duplicates:
            note(EventKind.DUPLICATE, f"{fate.duplicates} extra")
        for delay, kind in fate.later:
            entry = schedule.add(
                ref, delay, message, report=functools.partial(self._landed, report)
            )
            if held is not None:
                held.append(entry)
            reordered = kind == "reorder"
            note(EventKind.REORDER if reordered else EventKind.DELAY, f"{delay:.6g} s")
            if reordered:
                self._held.setdefault(ref, []).append((schedule, entry))
        if fate.now and ref in self._held:
            self._overtaken(ref)
        return fate.now

    def _overtaken(self, ref: ActorRef) -> None:
        """A message to `ref` is going out now: release what a reorder held back, to follow
        it (the schedule's service delivers them at its next turn, after the current sender's
        copy unless that one has to wait for room)."""
        for schedule, entry in self._held.pop(ref):
            if entry.active and not entry.waiting_for_room:
                schedule.bring_forward(entry, trio.current_time())

    def _landed(
        self, report: Callable[[Scheduled, bool], None] | None, entry: Scheduled, delivered: bool
    ) -> None:
        if entry.ref in self._held:  # a reordered copy that went out on its own: forget it
            waiting = [pair for pair in self._held[entry.ref] if pair[1] is not entry]
            if waiting:
                self._held[entry.ref] = waiting
            else:
                del self._held[entry.ref]
        if delivered and EventKind.DELIVER in self.traced:
            payload, message_id = _unwrap(entry.message)
            assert entry.ref is not None
            self.record(EventKind.DELIVER, entry.ref.name, message=payload, message_id=message_id)
        if report is not None:
            report(entry, delivered)

    # --- where messages are handled --------------------------------------------------------

    async def before_handle(self, cell: ActorCell, message: object) -> None:
        """Trace that `cell` handles `message`; slow it down or crash it as the plan says.

        Raises:
            InjectedCrash: a `CrashActor` rule fired (the actor crashes as on any error).
        """
        if self.faults is None and EventKind.HANDLE not in self.traced:
            return  # nothing to record, nothing to inject
        payload, message_id = _unwrap(message)
        name = cell.name
        self.record(EventKind.HANDLE, name, message=payload, message_id=message_id)
        if self.faults is None:
            return
        now = trio.current_time()
        extra = self.faults.slowdown(name, now)
        if extra:
            self.record(EventKind.SLOW, name, message=payload, detail=f"{extra:.6g} s")
            await trio.sleep(extra)
        rule = self.faults.crash_due(name, now)
        if rule is not None:
            label = rule.name or "CrashActor"
            if self._lifecycle.listeners:
                self._lifecycle.emit(
                    "fault", now, name, f"crash on {type(payload).__name__}: fault rule {label}"
                )
            raise InjectedCrash(
                f"fault rule {label} crashed {name!r} on {type(payload).__name__}", rule=label
            )

    # --- timed faults ------------------------------------------------------------------------

    def install(self, system: ActorSystem, schedule: DeliverySchedule) -> None:
        """Put the plan's timed faults (pauses, partitions, rule windows) on `schedule`."""
        faults = self.faults
        if faults is None:
            return
        faults.on_switch = self._switched
        origin = faults.origin
        for pause in faults.pauses():
            opens = functools.partial(self._pause_window_opens, system, pause)
            closes = functools.partial(self._pause_window_closes, pause)
            schedule.call_at(origin + pause.start, opens)
            schedule.call_at(origin + pause.start + pause.duration, closes)
        for rule in faults.plan.rules:
            label = rule.name or type(rule).__name__
            partition = isinstance(rule, Partition)
            if rule.start > 0 or partition:
                starts = EventKind.PARTITION if partition else EventKind.FAULT
                schedule.call_at(origin + rule.start, self._announce(starts, f"{label} on"))
            if rule.stop is not None:
                ends = EventKind.HEAL if partition else EventKind.FAULT
                schedule.call_at(origin + rule.stop, self._announce(ends, f"{label} off"))

    def closing(self) -> None:
        """The system has stopped: record each fault rule that did nothing (`UNMATCHED`)."""
        if self.faults is not None:
            for unmatched in self.faults.unmatched():
                self.record(EventKind.UNMATCHED, detail=str(unmatched))

    def _switched(self, detail: str) -> None:
        self.record(EventKind.FAULT, detail=detail)

    def _announce(self, kind: EventKind, detail: str) -> functools.partial[None]:
        return functools.partial(self._announced, kind, detail)

    def _announced(self, kind: EventKind, detail: str, _: Scheduled) -> None:
        self.record(kind, detail=detail)

    # A pause covers the matching actors live when it begins and those (re)started during it.

    def actor_started(self, cell: ActorCell) -> None:
        """`cell` is starting an incarnation: pause it if a pause window covers it now."""
        if self.faults is None:
            return
        self.faults.saw_actor(cell.name)
        self._paused.pop(cell.ref, None)  # a pause ended with the incarnation it held
        for pause in self.faults.pauses():
            if matches_name(pause.actors, cell.name) and self._pausing(pause):
                self._pause(cell.ref, pause)
                return

    def _pausing(self, pause: PauseActor) -> bool:
        assert self.faults is not None
        now = trio.current_time()
        closes_at = self.faults.origin + pause.start + pause.duration  # as its timer is set
        return self.faults.active(pause, now) and now < closes_at

    def _pause(self, ref: ActorRef, pause: PauseActor) -> None:
        if ref in self._paused or not ref.alive or ref._cell.stopping:
            return  # held already, or stopping for good: it takes no more commands
        ref.pause()
        self._paused[ref] = pause
        assert self.faults is not None  # pauses come from its plan
        self.faults.paused(pause)
        self.record(EventKind.PAUSE, ref.name)

    def _pause_window_opens(self, system: ActorSystem, pause: PauseActor, _: Scheduled) -> None:
        if self._pausing(pause):
            for ref in _matching(system, pause.actors):
                self._pause(ref, pause)

    def _pause_window_closes(self, pause: PauseActor, _: Scheduled) -> None:
        for ref, by in list(self._paused.items()):
            if by is pause:
                del self._paused[ref]
                if ref.alive and not ref._cell.stopping:
                    ref.resume()
                    self.record(EventKind.RESUME, ref.name)

    def _dead_letter(self, letter: DeadLetter) -> None:
        self.record(
            EventKind.DEAD_LETTER,
            letter.target,
            peer=letter.sender,
            message=letter.message,
            detail=letter.reason.value,
        )


def _matching(system: ActorSystem, patterns: tuple[str, ...]) -> list[ActorRef]:
    return [ref for ref in system.registry.refs() if matches_name(patterns, ref.name)]
