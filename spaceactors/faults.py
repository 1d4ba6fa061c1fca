"""Fault plans: Jepsen-style faults injected into a running system, decided by its seed.

A `FaultPlan` is a value: a tuple of rules. Message rules act on the delivery path (the
router's point-to-point, broadcast and publish, and every reliable transmission and retry):
`DropMessages`, `DuplicateMessages`, `DelayMessages`, `ReorderMessages`, and `Partition`
between named groups of actors. Actor rules act where a message is handled: `CrashActor`,
`PauseActor`, `SlowActor`. Each rule can be scoped (`Scope`: message types, actors, topics),
limited to a window of time (`start`, `stop`), and switched off and on by `name` during a run.

Give the plan to ``open_system(faults=...)``; `FaultInjector` (``system.faults``) makes the
decisions with the system's seeded RNG, so a plan and a seed replay exactly, and every fault
it injects is recorded on the trace. Plans load from JSON (`FaultPlan.from_json`) for the
``spaceactors run --faults`` option.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import trio

from spaceactors.checks import seconds, short_repr
from spaceactors.codec import Codec
from spaceactors.errors import DecodeError, InvalidSpec

MAX_COUNT = 2**63 - 1
"""The largest message count `CrashActor` takes for `nth` and `every`."""


def _probability(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
        raise InvalidSpec(
            f"{attribute.name} must be a probability in [0, 1], got {short_repr(value)}"
        )


def _seconds(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    seconds(attribute.name, value, InvalidSpec)


def _optional_seconds(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None:
        seconds(attribute.name, value, InvalidSpec)


def _names(value: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable) or isinstance(value, bytes | Mapping):
        raise InvalidSpec(f"expected a name or a list of names, got {short_repr(value)}")
    return tuple(value)


def _name_list(_: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    for name in value:
        if not isinstance(name, str) or not name:
            raise InvalidSpec(
                f"{attribute.name} must hold non-empty names, got {short_repr(name)}"
            )


def _targets(inst: object, attribute: attrs.Attribute[Any], value: tuple[object, ...]) -> None:
    """Validator: a non-empty list of actor names or ``"prefix-*"`` patterns."""
    _name_list(inst, attribute, value)
    if not value:
        raise InvalidSpec(
            f"{type(inst).__name__} needs at least one actor name or pattern in {attribute.name}; "
            "an empty list matches no actor, so the rule would never fire"
        )


def _rule_name(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidSpec(f"name must be a non-empty string or None, got {short_repr(value)}")


def matches_name(patterns: tuple[str, ...], name: str | None) -> bool:
    """Whether `name` matches one of `patterns` (``"ship-*"`` matches by prefix)."""
    if name is None:
        return False
    for pattern in patterns:
        if pattern == name or (pattern.endswith("*") and name.startswith(pattern[:-1])):
            return True
    return False


def _groups(groups: Any) -> tuple[tuple[str, ...], ...]:
    if isinstance(groups, str) or not isinstance(groups, Iterable):
        raise InvalidSpec(
            "partition groups are a list of groups, like [['a'], ['b', 'c']]; "
            f"got {short_repr(groups)}"
        )
    return tuple(_names(group) for group in groups)


@attrs.frozen
class Scope:
    """Which messages a rule applies to; an empty field means "any".

    Attributes:
        message_types: class names of the user's message (``"TradeOffer"``).
        actors: names of the receiving or sending actor; ``"ship-*"`` matches by prefix.
        topics: topics published to (a scoped rule then leaves point-to-point traffic alone).
    """

    message_types: tuple[str, ...] = attrs.field(
        default=(), converter=_names, validator=_name_list
    )
    actors: tuple[str, ...] = attrs.field(default=(), converter=_names, validator=_name_list)
    topics: tuple[str, ...] = attrs.field(default=(), converter=_names, validator=_name_list)

    def covers(self, target: str, sender: str | None, message: object, topic: str | None) -> bool:
        """Whether a message of this kind, on this path, is in scope."""
        if self.message_types and type(message).__name__ not in self.message_types:
            return False
        if self.actors and not (
            matches_name(self.actors, target) or matches_name(self.actors, sender)
        ):
            return False
        return not self.topics or matches_name(self.topics, topic)


EVERYTHING = Scope()


def _scope(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Scope):
        raise InvalidSpec(f"scope must be a sa.Scope, got {short_repr(value)}")


@attrs.frozen(kw_only=True)
class _Rule:
    name: str | None = attrs.field(default=None, validator=_rule_name)
    """Switch the rule off and on by this name (`FaultInjector.disable`/`enable`)."""
    start: float = attrs.field(default=0.0, validator=_seconds)
    stop: float | None = attrs.field(default=None, validator=_optional_seconds)
    """The rule acts from `start` until `stop` (None: to the end), in seconds since the system
    opened."""

    @stop.validator
    def _after_start(self, _: attrs.Attribute[Any], stop: float | None) -> None:
        if stop is not None and stop < self.start:
            raise InvalidSpec(f"stop ({stop}) must not come before start ({self.start})")


@attrs.frozen(kw_only=True)
class _MessageRule(_Rule):
    probability: float = attrs.field(default=1.0, validator=_probability)
    scope: Scope = attrs.field(default=EVERYTHING, validator=_scope)


@attrs.frozen(kw_only=True)
class DropMessages(_MessageRule):
    """Lose each message in scope with `probability` (the sender is not told)."""


@attrs.frozen(kw_only=True)
class DuplicateMessages(_MessageRule):
    """Deliver a second copy of each message in scope with `probability`."""


@attrs.frozen(kw_only=True)
class DelayMessages(_MessageRule):
    """Hold each message in scope back with `probability` for a random time.

    The delay is uniform in [`minimum`, `maximum`] seconds; with `mean` it is `minimum` plus an
    exponential draw of that mean, capped at `maximum` (a long tail, like a real network).
    """

    minimum: float = attrs.field(default=0.0, validator=_seconds)
    maximum: float = attrs.field(default=1.0, validator=_seconds)
    mean: float | None = attrs.field(default=None, validator=_optional_seconds)

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.minimum:
            raise InvalidSpec(f"maximum ({self.maximum}) must be >= minimum ({self.minimum})")

    def draw(self, rng: random.Random) -> float:
        """One delay, in seconds."""
        if self.mean is None:
            return rng.uniform(self.minimum, self.maximum)
        extra = rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0
        return min(self.minimum + extra, self.maximum)


@attrs.frozen(kw_only=True)
class ReorderMessages(_MessageRule):
    """Hold each message in scope back with `probability` until the next message to the same
    actor has been delivered (or `max_hold` seconds pass), so that one overtakes it."""

    max_hold: float = attrs.field(default=1.0, validator=_seconds)


@attrs.frozen(kw_only=True)
class Partition(_Rule):
    """Cut the network between `groups` of actors (names, ``"ship-*"`` prefixes) from `start`
    until `stop` (the heal): a message from one group to another is lost. Traffic within a
    group, and to or from actors in no group (or from outside any actor), flows."""

    groups: tuple[tuple[str, ...], ...] = attrs.field(converter=_groups)

    def __attrs_post_init__(self) -> None:
        if len(self.groups) < 2:
            raise InvalidSpec(
                f"a partition needs at least two groups, got {short_repr(self.groups)}"
            )
        for index, group in enumerate(self.groups):
            if not group:
                raise InvalidSpec(
                    f"partition group {index} is empty: it matches no actor, so nothing "
                    "would be cut off from it; name at least one actor or pattern"
                )
            for name in group:
                if not isinstance(name, str) or not name:
                    raise InvalidSpec(
                        f"partition group {index} must hold non-empty names, "
                        f"got {short_repr(name)}"
                    )
        names = [name for group in self.groups for name in group]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidSpec(f"a partition's groups must not share actors: {twice}")

    def group_of(self, name: str | None) -> int | None:
        for index, group in enumerate(self.groups):
            if matches_name(group, name):
                return index
        return None


@attrs.frozen(kw_only=True)
class CrashActor(_Rule):
    """Crash matching `actors` while handling a message: on their `nth` message (once), on
    every `every`-th, or with `probability` per message. Messages are counted per actor
    name, across restarts. The crash is an `InjectedCrash`, handled like any other."""

    actors: tuple[str, ...] = attrs.field(converter=_names, validator=_targets)
    nth: int | None = None
    every: int | None = None
    probability: float = attrs.field(default=0.0, validator=_probability)

    def __attrs_post_init__(self) -> None:
        for label, value in (("nth", self.nth), ("every", self.every)):
            if value is not None and (type(value) is not int or value < 1):
                raise InvalidSpec(
                    f"{label} must be a message count >= 1, got {short_repr(value)}"
                )
            if value is not None and value > MAX_COUNT:
                raise InvalidSpec(
                    f"{label} must be a message count <= 2**63 - 1, got {short_repr(value)}"
                )
        if self.nth is None and self.every is None and not self.probability:
            raise InvalidSpec("CrashActor needs nth, every or a probability > 0")

    def fires(self, count: int, rng: random.Random) -> bool:
        """Whether the `count`-th message (1-based) crashes the actor."""
        if self.nth is not None and count == self.nth:
            return True
        if self.every is not None and count % self.every == 0:
            return True
        return bool(self.probability) and rng.random() < self.probability


@attrs.frozen(kw_only=True)
class PauseActor(_Rule):
    """Pause the actors named by `actors` at `start` for `duration` seconds (their senders
    feel backpressure meanwhile), then resume them."""

    actors: tuple[str, ...] = attrs.field(converter=_names, validator=_targets)
    duration: float = attrs.field(validator=_seconds)

    def __attrs_post_init__(self) -> None:
        if self.stop is not None:
            raise InvalidSpec("a PauseActor ends after its duration; it takes no stop")


@attrs.frozen(kw_only=True)
class SlowActor(_Rule):
    """Make matching `actors` take `seconds` longer over each message, with `probability`."""

    actors: tuple[str, ...] = attrs.field(converter=_names, validator=_targets)
    seconds: float = attrs.field(validator=_seconds)
    probability: float = attrs.field(default=1.0, validator=_probability)


MessageRule = DropMessages | DuplicateMessages | DelayMessages | ReorderMessages
Rule = MessageRule | Partition | CrashActor | PauseActor | SlowActor
_TAGS: dict[type, str] = {
    DropMessages: "drop",
    DuplicateMessages: "duplicate",
    DelayMessages: "delay",
    ReorderMessages: "reorder",
    Partition: "partition",
    CrashActor: "crash",
    PauseActor: "pause",
    SlowActor: "slow",
}
_TAGS_TUPLE = tuple(_TAGS)


def _rules(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    if not isinstance(rules, Iterable) or isinstance(rules, str | bytes | Mapping):
        raise InvalidSpec(f"a fault plan takes a list of rules, got {short_repr(rules)}")
    return tuple(rules)


@attrs.frozen
class FaultPlan:
    """The faults to inject into a system: give it to ``open_system(faults=...)``."""

    rules: tuple[Rule, ...] = attrs.field(converter=_rules)

    def __attrs_post_init__(self) -> None:
        for rule in self.rules:
            if not isinstance(rule, _TAGS_TUPLE):
                raise InvalidSpec(
                    f"a fault plan holds rules such as sa.DropMessages, got {short_repr(rule)}"
                )
        names = [rule.name for rule in self.rules if rule.name is not None]
        if len(names) != len(set(names)):
            raise InvalidSpec(f"fault rule names must be unique, got {names}")

    def to_json(self) -> bytes:
        """The plan as a JSON document (what `from_json` reads)."""
        return _codec().encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> FaultPlan:
        """Read a plan written by `to_json` (or by hand: see the testing guide).

        Raises:
            DecodeError: the document is not a valid plan; its problems name the paths.
        """
        # surrogatepass: a lone surrogate becomes bytes the parser refuses, as a DecodeError.
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        plan = _codec().decode(raw)
        if not isinstance(plan, FaultPlan):
            raise DecodeError(f"expected a FaultPlan, got {type(plan).__name__}")
        return plan


class InjectedCrash(Exception):
    """The exception a `CrashActor` rule raises inside an actor."""


_CODEC: Codec | None = None


def _codec() -> Codec:
    global _CODEC
    if _CODEC is None:
        codec = Codec(protocol=False)
        codec.register(Scope)
        for cls, tag in _TAGS.items():
            codec.register(cls, tag=tag)
        codec.register_union(Rule)
        codec.register(FaultPlan)
        _CODEC = codec
    return _CODEC


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
    and reports the rules that did nothing (`unmatched`)."""

    def __init__(self, plan: FaultPlan, rng: random.Random, origin: float = 0.0) -> None:
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
        elapsed = now - self.origin
        return rule.start <= elapsed and (rule.stop is None or elapsed < rule.stop)

    def partitioned(self, target: str, sender: str | None, now: float) -> Partition | None:
        """The active partition that separates `sender` from `target`, if any."""
        for partition in self._partitions:
            if not self.active(partition, now):
                continue
            theirs, ours = partition.group_of(target), partition.group_of(sender)
            if theirs is not None and ours is not None and theirs != ours:
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
        return extra

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
        - a message rule whose scope covered no message while it was active.

        The system records each on its trace (``unmatched`` events) when it closes, and
        ``spaceactors run`` prints them in its summary.
        """
        if now is None:
            now = trio.current_time()
        elapsed = now - self.origin
        found: list[Unmatched] = []
        for rule in self.plan.rules:
            dead = [
                f"no actor matched {where} {pattern!r}"
                for where, patterns in _patterns(rule)
                for pattern in patterns
                if pattern not in self._named
            ]
            found += [Unmatched(rule, reason) for reason in dead]
            if rule.start > elapsed:
                found.append(
                    Unmatched(
                        rule,
                        f"its window opens at {rule.start:g} s, after the run ended "
                        f"(at {elapsed:g} s)",
                    )
                )
            elif isinstance(rule, MessageRule) and not dead and id(rule) not in self._covered:
                found.append(Unmatched(rule, "no message in its scope was sent while it was on"))
        return found
