"""What happens to actors, for whoever watches: restarts with their cause, give-ups, dead
letters, fault rules firing and failed expectations (``system.lifecycle``).

These events are rare (nothing here runs per message): each one is built only when somebody
listens, so a system nobody observes pays one truth test per event. The counters an observer
reads (messages handled, restarts, crashes) are the ones the runtime keeps anyway on each
`ActorCell`, `ServiceCell` and `Supervisor`. While an observer watches (`Lifecycle.tallying`),
`Lifecycle.live` holds the children in the tree by kind (and `Lifecycle.troubled` those of
them that ever restarted or crashed), so that per-kind figures are read without walking the
tree, and `Lifecycle.retired` keeps the counts of actors that left it, so that totals never go
down.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal

import attrs

from spaceactors.logfields import cause_text

if TYPE_CHECKING:
    from spaceactors.children import Child
    from spaceactors.deadletters import DeadLetter, DeadLetters

EventName = Literal[
    "restart", "give_up", "dead_letter", "expectation_failed", "fault", "node_up", "node_down"
]
"""The kinds of lifecycle events (the ``event:`` names of the server's ``/events`` stream)."""


@attrs.frozen
class LifecycleEvent:
    """One lifecycle event.

    Attributes:
        kind: what happened (`EventName`).
        time: when, in seconds on the system's clock (simulated time in virtual runs).
        actor: the path (supervisors and their children, ``user/fleet/ship:1``) or name of the
            actor concerned.
        detail: what happened, in words.
        restarts: for a restart, how many times this actor has now been restarted.
        cause: for a restart, why (the error that ended the previous incarnation), if known.
    """

    kind: EventName
    time: float
    actor: str
    detail: str
    restarts: int | None = None
    cause: str | None = None

    def to_json(self) -> dict[str, object]:
        """The event as the JSON object the ``/events`` stream sends."""
        data: dict[str, object] = {"time": self.time, "actor": self.actor, "detail": self.detail}
        if self.restarts is not None:
            data["restarts"] = self.restarts
        if self.kind == "restart":
            data["cause"] = self.cause
        return data


@attrs.define
class Tally:
    """Counts kept for actors of one kind that are no longer in the tree."""

    actors: int = 0
    handled: int = 0
    restarts: int = 0
    crashes: int = 0


Listener = Callable[[LifecycleEvent], None]


class Lifecycle:
    """The system's lifecycle-event hook and the counts of retired actors.

    A listener is called in the system's own Trio thread, synchronously, as the event happens;
    it must not block or raise (a server hands the event to its own thread and returns).
    """

    def __init__(self, dead_letters: DeadLetters) -> None:
        self._dead_letters = dead_letters
        self.listeners: list[Listener] = []
        self.retired: dict[str, Tally] = {}
        """Per actor kind: the counts of actors removed from the tree (their totals stay),
        kept while `tallying`."""
        self.live: dict[str, dict[Child, None]] = {}
        """Per actor kind: the children in the tree now (as an ordered set), kept while
        `tallying`. Read from another thread by C-level copies (``list(...)``)."""
        self.troubled: dict[str, dict[Child, None]] = {}
        """Per actor kind: the children in the tree now that have restarted or crashed at
        least once, kept while `tallying`: the restarts and crashes of a kind are summed over
        these few, not over every actor of it."""
        self.changes = 0
        """How many times a child joined or left the tree since `tallying` began: a walk of
        the tree stays true while this count does not change."""
        self.tallying = False
        """Whether to keep `live`, `troubled` and `retired` (`start_tallying` turns it on)."""

    def start_tallying(self, children: Iterable[Child]) -> None:
        """Keep `live`, `troubled` and `retired` from now on; `children` are those in the
        tree now."""
        self.tallying = True
        children = list(children)
        for child in children:
            self.enter(child)
        self.note_troubled(children)

    def enter(self, child: Child) -> None:
        """`child` joined the tree (called while `tallying`)."""
        self.changes += 1
        kind = kind_of(child.spec)
        members = self.live.get(kind)
        if members is None:
            members = self.live[kind] = {}
        members[child] = None

    def note(self, child: Child) -> None:
        """`child` crashed or is being restarted (called while `tallying`), or came back from
        a checkpoint with counts of either: it joins `troubled`."""
        kind = kind_of(child.spec)
        members = self.troubled.get(kind)
        if members is None:
            members = self.troubled[kind] = {}
        members[child] = None

    def note_troubled(self, children: Iterable[Child]) -> None:
        """`note` each of `children` that has restarted or crashed (those in the tree when
        tallying starts, or those a checkpoint restores)."""
        for child in children:
            if child.crashes or child.runtime.restarts:
                self.note(child)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event from now on; returns the function that stops it."""
        if not self.listeners:  # dead letters are forwarded only while somebody listens
            self._dead_letters.listeners.append(self._dead_letter)
        self.listeners.append(listener)

        def stop() -> None:
            if listener in self.listeners:
                self.listeners.remove(listener)
                if not self.listeners:
                    self._dead_letters.listeners.remove(self._dead_letter)

        return stop

    def _dead_letter(self, letter: DeadLetter) -> None:
        self.emit(
            "dead_letter",
            letter.time,
            letter.target,
            f"{letter.message_type}: {letter.reason.value} ({letter.detail})",
        )

    def emit(
        self,
        kind: EventName,
        time: float,
        actor: str,
        detail: str,
        *,
        restarts: int | None = None,
        cause: str | None = None,
    ) -> None:
        """Tell every listener (callers test ``lifecycle.listeners`` first, to build nothing)."""
        event = LifecycleEvent(kind, time, actor, detail, restarts, cause)
        for listener in list(self.listeners):
            listener(event)

    def retire(self, child: Child) -> None:
        """`child` left the tree (called while `tallying`): keep its counts."""
        self.changes += 1
        kind = kind_of(child.spec)
        for table in (self.live, self.troubled):
            members = table.get(kind)
            if members is not None:
                members.pop(child, None)
        tally = self.retired.get(kind)
        if tally is None:
            tally = self.retired[kind] = Tally()
        runtime = child.runtime
        tally.actors += 1
        tally.handled += getattr(runtime, "handled", 0)  # supervisors and services handle none
        tally.restarts += runtime.restarts
        tally.crashes += child.crashes


REASON_LENGTH = 500
"""The longest crash reason kept (characters); a longer one is cut, ending in "...". """


def crash_reason(error: BaseException | None) -> str:
    """Why an incarnation ended, for people: the log's cause (`cause_text`, one line,
    ``ValueError: fuel < 0``) cut to `REASON_LENGTH` characters; never raises."""
    reason = cause_text(error)
    return reason if len(reason) <= REASON_LENGTH else reason[: REASON_LENGTH - 3] + "..."


def kind_of(spec: object) -> str:
    """The kind of a child as observers label it, from its spec: the actor's class name (its
    factory's name), ``Supervisor`` or ``Service``."""
    factory = getattr(spec, "factory", None)
    if factory is not None:
        name = getattr(factory, "__name__", None)
        return name if isinstance(name, str) else type(factory).__name__
    return "Supervisor" if hasattr(spec, "strategy") else "Service"
