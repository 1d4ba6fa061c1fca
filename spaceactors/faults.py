"""Faults at work: a `FaultPlan` applied to a running system, decided by its seed.

Give the plan (`spaceactors.faultplan`) to ``open_system(faults=...)``; `FaultInjector`
(``system.faults``) makes the decisions with the system's seeded RNG, so a plan and a seed
replay exactly, and every fault it injects is recorded on the trace. It also reports the rules
that did nothing in a run (`Unmatched`).

This module also re-exports the plan's names, so ``spaceactors.faults`` offers the whole
vocabulary of faults.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable

import attrs
import trio

from spaceactors.checks import finite, short_repr
from spaceactors.errors import InvalidSpec
from spaceactors.faultplan import (
    _TAGS,
    EVERYTHING,
    MAX_COUNT,
    CrashActor,
    DelayMessages,
    DropMessages,
    DuplicateMessages,
    FaultPlan,
    InjectedCrash,
    MessageRule,
    Partition,
    PauseActor,
    ReorderMessages,
    Rule,
    Scope,
    SlowActor,
    _Rule,
    matches_name,
)

__all__ = [
    "EVERYTHING",
    "MAX_COUNT",
    "CrashActor",
    "DelayMessages",
    "DropMessages",
    "DuplicateMessages",
    "Fate",
    "FaultInjector",
    "FaultPlan",
    "InjectedCrash",
    "MessageRule",
    "Partition",
    "PauseActor",
    "ReorderMessages",
    "Rule",
    "Scope",
    "SlowActor",
    "Unmatched",
    "matches_name",
]


@attrs.define
class Fate:
    """What the delivery path does with one transmission: deliver `now` copies at once, and
    `later` copies after the given delays; `dropped` says why nothing goes out. Each fault
    applied is counted once in `FaultInjector.injected` and traced once."""

    now: int = 1
    later: list[tuple[float, str]] = attrs.field(factory=list)  # (delay, the fault's kind)
    dropped: str | None = None
    duplicates: int = 0  # extra copies a fault added


@attrs.frozen
class Unmatched:
    """A fault rule (or part of one) that did nothing in a run, and why (`FaultInjector.unmatched`).

    Attributes:
        rule: the rule, as in the plan.
        reason: what never happened, in words (``"no actor matched 'shp-*'"``).
    """

    rule: Rule
    reason: str

    @property
    def label(self) -> str:
        """The rule's name, else its class name."""
        return self.rule.name or type(self.rule).__name__

    def __str__(self) -> str:
        return f"{self.label}: {self.reason}"


def _patterns(rule: Rule) -> list[tuple[str, tuple[str, ...]]]:
    """The actor patterns of `rule`, each with what it is called in a report."""
    if isinstance(rule, Partition):
        return [(f"group {index + 1}", group) for index, group in enumerate(rule.groups)]
    if isinstance(rule, CrashActor | PauseActor | SlowActor):
        return [("actors", rule.actors)]
    return [("scope.actors", rule.scope.actors)] if rule.scope.actors else []


class FaultInjector:
    """A `FaultPlan` at work in one system (``system.faults``): decides, counts, switches,
    and reports the rules that did nothing (`unmatched`).

    Raises:
        InvalidSpec: `plan` is not a `FaultPlan`, `rng` not a ``random.Random``, or `origin`
            (seconds) not a finite number.
    """

    def __init__(self, plan: FaultPlan, rng: random.Random, origin: float = 0.0) -> None:
        if not isinstance(plan, FaultPlan):
            raise InvalidSpec(f"plan must be a sa.FaultPlan, got {short_repr(plan)}")
        if not isinstance(rng, random.Random):
            raise InvalidSpec(f"rng must be a random.Random, got {short_repr(rng)}")
        origin = finite("origin", origin, InvalidSpec)
        self.plan = plan
        self.origin = origin
        """The clock's time when the system opened: rule times count from it."""
        self.on_switch: Callable[[str], None] | None = None
        """Told ``"<name> on"``/``"<name> off"`` when a rule is switched (the tap traces it)."""
        self._rng = rng
        self._off: set[str] = set()
        self.injected: collections.Counter[str] = collections.Counter()
        self._counts: collections.Counter[str] = collections.Counter()
        self._message_rules = [rule for rule in plan.rules if isinstance(rule, MessageRule)]
        self._partitions = [rule for rule in plan.rules if isinstance(rule, Partition)]
        self._crashes = [rule for rule in plan.rules if isinstance(rule, CrashActor)]
        self._slows = [rule for rule in plan.rules if isinstance(rule, SlowActor)]
        self._named: set[str] = set()  # every actor pattern some actor's name matched
        self._covered: set[int] = set()  # id() of the message rules that covered a message
        self._fired: set[int] = set()  # id() of the rules that did something at least once

    def enable(self, name: str) -> None:
        """Switch the rule called `name` back on.

        Raises:
            KeyError: no rule has that name.
        """
        self._switch(name, on=True)

    def disable(self, name: str) -> None:
        """Switch the rule called `name` off until `enable`.

        Raises:
            KeyError: no rule has that name.
        """
        self._switch(name, on=False)

    def _switch(self, name: str, *, on: bool) -> None:
        self._rule(name)
        if on:
            self._off.discard(name)
        else:
            self._off.add(name)
        if self.on_switch is not None:
            self.on_switch(f"{name} {'on' if on else 'off'}")

    def _rule(self, name: str) -> Rule:
        for rule in self.plan.rules:
            if rule.name == name:
                return rule
        known = sorted(rule.name for rule in self.plan.rules if rule.name)
        raise KeyError(f"no fault rule is named {name!r}; named rules: {known}")

    def active(self, rule: _Rule, now: float) -> bool:
        """Whether `rule` acts at clock time `now`."""
        if rule.name is not None and rule.name in self._off:
            return False
        # Absolute times, computed as the timers that announce the window are set (origin +
        # offset): `now - origin` can round to the other side of an edge when the clock is
        # far from 0 (a MockClock shared by many Hypothesis examples), and a window must
        # never be open for one and closed for the other.
        origin = self.origin
        return origin + rule.start <= now and (rule.stop is None or now < origin + rule.stop)

    def partitioned(self, target: str, sender: str | None, now: float) -> Partition | None:
        """The active partition that separates `sender` from `target`, if any."""
        for partition in self._partitions:
            if not self.active(partition, now):
                continue
            theirs, ours = partition.group_of(target), partition.group_of(sender)
            if theirs is not None and ours is not None and theirs != ours:
                self._fired.add(id(partition))
                return partition
        return None

    def fate(
        self, target: str, sender: str | None, message: object, topic: str | None, now: float
    ) -> Fate:
        """Decide what happens to one transmission of `message` (rules apply in plan order)."""
        fate = Fate()
        if self._partitions and self.partitioned(target, sender, now) is not None:
            fate.now, fate.dropped = 0, "partition"
            self.injected["partition"] += 1
            return fate
        rng = self._rng
        for rule in self._message_rules:
            if not self.active(rule, now) or not rule.scope.covers(target, sender, message, topic):
                continue
            self._covered.add(id(rule))
            if isinstance(rule, DelayMessages | ReorderMessages) and not fate.now:
                continue  # every copy is held back already
            if rule.probability < 1.0 and rng.random() >= rule.probability:
                continue
            kind = _TAGS[type(rule)]
            self.injected[kind] += 1
            self._fired.add(id(rule))
            if isinstance(rule, DropMessages):
                return Fate(now=0, dropped="drop")
            if isinstance(rule, DuplicateMessages):
                fate.now += 1
                fate.duplicates += 1
            else:
                delay = rule.draw(rng) if isinstance(rule, DelayMessages) else rule.max_hold
                fate.now -= 1
                fate.later.append((delay, kind))
        return fate

    def crash_due(self, actor: str, now: float) -> CrashActor | None:
        """Count one message handled by `actor`; the crash rule it triggers, if any."""
        rules = [rule for rule in self._crashes if matches_name(rule.actors, actor)]
        if not rules:
            return None  # only actors a crash rule names are counted
        self._counts[actor] += 1
        count = self._counts[actor]
        for rule in rules:
            if self.active(rule, now) and rule.fires(count, self._rng):
                self.injected["crash"] += 1
                self._fired.add(id(rule))
                return rule
        return None

    def slowdown(self, actor: str, now: float) -> float:
        """Extra seconds `actor` takes over its next message (0.0 for none)."""
        extra = 0.0
        for rule in self._slows:
            if not self.active(rule, now) or not matches_name(rule.actors, actor):
                continue
            if rule.probability >= 1.0 or self._rng.random() < rule.probability:
                self.injected["slow"] += 1
                extra += rule.seconds
                if rule.seconds > 0:  # a 0-second slowdown does nothing
                    self._fired.add(id(rule))
        return extra

    def paused(self, rule: PauseActor) -> None:
        """`rule` has just paused an actor (the tap applies pauses)."""
        self._fired.add(id(rule))

    def pauses(self) -> list[PauseActor]:
        return [rule for rule in self.plan.rules if isinstance(rule, PauseActor)]

    # --- what did nothing -------------------------------------------------------------------

    def saw_actor(self, name: str) -> None:
        """An actor called `name` is starting: the patterns it matches are not dead (the
        tap tells the injector of every actor that starts)."""
        for rule in self.plan.rules:
            for _, patterns in _patterns(rule):
                for pattern in patterns:
                    if pattern not in self._named and matches_name((pattern,), name):
                        self._named.add(pattern)

    def unmatched(self, now: float | None = None) -> list[Unmatched]:
        """The rules that did nothing so far (at clock time `now`, default the current one),
        in plan order, one entry per reason:

        - an actor pattern (of `CrashActor`, `PauseActor`, `SlowActor`, a `Scope`, or a
          `Partition` group) that no actor's name matched;
        - a window that has not opened (`start` is later than `now`: a run shorter than the
          plan assumed);
        - a message rule whose scope covered no message while it was active;
        - any other rule that never fired while it was on (a probability of 0, an `nth` the
          run never reached, a window or pause of length 0, a 0-second slowdown...).

        The system records each on its trace (``unmatched`` events) when it closes, and
        ``spaceactors run`` prints them in its summary.
        """
        if now is None:
            now = trio.current_time()
        elapsed = now - self.origin  # (for the words only; the test is on absolute times)
        found: list[Unmatched] = []
        for rule in self.plan.rules:
            dead = [
                f"no actor matched {where} {pattern!r}"
                for where, patterns in _patterns(rule)
                for pattern in patterns
                if pattern not in self._named
            ]
            found += [Unmatched(rule, reason) for reason in dead]
            if self.origin + rule.start > now:
                found.append(
                    Unmatched(
                        rule,
                        f"its window opens at {rule.start:g} s, after the run ended "
                        f"(at {elapsed:g} s)",
                    )
                )
            elif isinstance(rule, MessageRule) and not dead and id(rule) not in self._covered:
                found.append(Unmatched(rule, "no message in its scope was sent while it was on"))
            elif not dead and id(rule) not in self._fired:
                found.append(Unmatched(rule, "it never fired while it was on"))
        return found
