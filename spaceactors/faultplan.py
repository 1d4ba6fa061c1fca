"""Fault plans: Jepsen-style faults to inject into a running system, as values.

A `FaultPlan` is a value: a tuple of rules. Message rules act on the delivery path (the
router's point-to-point, broadcast and publish, and every reliable transmission and retry):
`DropMessages`, `DuplicateMessages`, `DelayMessages`, `ReorderMessages`, and `Partition`
between named groups of actors. Actor rules act where a message is handled: `CrashActor`,
`PauseActor`, `SlowActor`. Each rule can be scoped (`Scope`: message types, actors, topics),
limited to a window of time (`start`, `stop`), and switched off and on by `name` during a run.
Plans load from JSON (`FaultPlan.from_json`) for the ``spaceactors run --faults`` option.

`spaceactors.faults` puts a plan to work (`FaultInjector`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from spaceactors import checks
from spaceactors.checks import seconds, short_repr
from spaceactors.codec import Codec
from spaceactors.errors import DecodeError, InvalidSpec
from spaceactors.reprs import PREFIX, CodeRepr, code, pretty

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
        checks.name(f"{attribute.name} entry", name, InvalidSpec)  # UTF-8 can encode it


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
    if value is not None:
        checks.name("name", value, InvalidSpec)  # UTF-8 can encode it


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


@attrs.frozen(repr=False)
class Scope(CodeRepr):
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


@attrs.frozen(kw_only=True, repr=False)
class _Rule(CodeRepr):
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


@attrs.frozen(kw_only=True, repr=False)
class _MessageRule(_Rule):
    probability: float = attrs.field(default=1.0, validator=_probability)
    scope: Scope = attrs.field(default=EVERYTHING, validator=_scope)


@attrs.frozen(kw_only=True, repr=False)
class DropMessages(_MessageRule):
    """Lose each message in scope with `probability` (the sender is not told)."""


@attrs.frozen(kw_only=True, repr=False)
class DuplicateMessages(_MessageRule):
    """Deliver a second copy of each message in scope with `probability`."""


@attrs.frozen(kw_only=True, repr=False)
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


@attrs.frozen(kw_only=True, repr=False)
class ReorderMessages(_MessageRule):
    """Hold each message in scope back with `probability` until the next message to the same
    actor has been delivered (or `max_hold` seconds pass), so that one overtakes it."""

    max_hold: float = attrs.field(default=1.0, validator=_seconds)


@attrs.frozen(kw_only=True, repr=False)
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
                checks.name(f"partition group {index} entry", name, InvalidSpec)
        names = [name for group in self.groups for name in group]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidSpec(f"a partition's groups must not share actors: {twice}")

    def group_of(self, name: str | None) -> int | None:
        for index, group in enumerate(self.groups):
            if matches_name(group, name):
                return index
        return None


@attrs.frozen(kw_only=True, repr=False)
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


@attrs.frozen(kw_only=True, repr=False)
class PauseActor(_Rule):
    """Pause the actors named by `actors` at `start` for `duration` seconds (their senders
    feel backpressure meanwhile), then resume them."""

    actors: tuple[str, ...] = attrs.field(converter=_names, validator=_targets)
    duration: float = attrs.field(validator=_seconds)

    def __attrs_post_init__(self) -> None:
        if self.stop is not None:
            raise InvalidSpec("a PauseActor ends after its duration; it takes no stop")


@attrs.frozen(kw_only=True, repr=False)
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


@attrs.frozen(repr=False)
class FaultPlan:
    """The faults to inject into a system: give it to ``open_system(faults=...)``.

    Its repr is Python that rebuilds it (``sa.FaultPlan([sa.DropMessages(probability=0.1)])``),
    so a plan printed by a failing test can be pasted back into it.
    """

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

    def __repr__(self) -> str:
        return f"{PREFIX}FaultPlan({code(list(self.rules))})"

    _repr_pretty_ = pretty

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
    """The exception a `CrashActor` rule raises inside an actor.

    It is logged on ``spaceactors.actor`` at ``INFO`` as one line (actor, message type, time,
    "injected", `rule`), never with a traceback: the crash is planned, its stack says nothing,
    and a real crash (``WARNING``, with its traceback) stands out.

    Attributes:
        rule: the name of the rule that fired (``"CrashActor"`` for an unnamed one).
    """

    def __init__(self, message: str, *, rule: str = "CrashActor") -> None:
        super().__init__(message)
        self.rule = rule


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
