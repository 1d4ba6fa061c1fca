"""Topic tables: who subscribed to what, with which slow-subscriber policy.

A topic is a dotted name (``market.sol``). A subscription is either a topic or a pattern with a
trailing wildcard: ``market.*`` matches ``market.sol`` and ``market.sol.belt``; ``*`` matches
every topic. A plain state object, so it survives restarts of the tasks that use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from spaceactors import checks, reprs
from spaceactors.errors import InvalidTopic

if TYPE_CHECKING:
    from spaceactors.ref import ActorRef

WILDCARD = "*"


class Delivery(reprs.CodeEnum):
    """What a publisher (or broadcaster) does when a receiver's mailbox is full."""

    BLOCK = "block"
    """Wait for room: backpressure on the publisher, nothing lost (the default)."""
    DROP_NEWEST = "drop_newest"
    """Drop the message for that receiver and record a dead letter."""
    FAIL = "fail"
    """Deliver to everyone else, then raise `PublishFailed` to the publisher."""


def check_topic(topic: object, *, pattern: bool) -> str:
    """Return `topic` if valid, else raise `InvalidTopic` saying why.

    A topic is a non-empty string of dot-separated non-empty parts; a pattern may also end in
    ``.*`` or be ``*`` alone. The topics found valid are remembered (up to `_CHECKED` of them):
    a fleet's ships subscribe to, and publish on, the same few topics over and over.
    """
    if type(topic) is str and (topic, pattern) in _checked:
        return topic
    text = _check_topic(topic, pattern)
    if len(_checked) >= _CHECKED:
        _checked.clear()
    _checked[text, pattern] = None
    return text


_CHECKED = 4096
"""How many valid topics `check_topic` remembers (then it starts again)."""
_checked: dict[tuple[str, bool], None] = {}


def _check_topic(topic: object, pattern: bool) -> str:
    text = checks.name("a topic", topic, InvalidTopic)
    parts = text.split(".")
    if pattern and parts[-1] == WILDCARD:
        parts = parts[:-1]
        if not parts:
            return text
    if any(not part or part != part.strip() or WILDCARD in part for part in parts):
        where = "a wildcard may only end a subscription ('market.*' or '*')"
        raise InvalidTopic(
            f"invalid topic {checks.short_repr(text)}: parts must be non-empty names; {where}"
        )
    return text


@attrs.define
class TopicTable:
    """Subscriptions by topic and by wildcard prefix, and by actor for clean removal."""

    _exact: dict[str, dict[ActorRef, Delivery]] = attrs.field(factory=dict)
    _prefixes: dict[str, dict[ActorRef, Delivery]] = attrs.field(factory=dict)
    _by_actor: dict[ActorRef, set[str]] = attrs.field(factory=dict)

    def subscribe(self, ref: ActorRef, topic: str, policy: Delivery) -> None:
        """Add (or re-policy) `ref`'s subscription to `topic` (a topic or pattern)."""
        table, key = self._slot(check_topic(topic, pattern=True))
        table.setdefault(key, {})[ref] = policy
        self._by_actor.setdefault(ref, set()).add(topic)

    def unsubscribe(self, ref: ActorRef, topic: str) -> bool:
        """Remove one subscription; False if there was none."""
        table, key = self._slot(check_topic(topic, pattern=True))
        subscribers = table.get(key)
        if subscribers is None or subscribers.pop(ref, None) is None:
            return False
        if not subscribers:
            del table[key]
        topics = self._by_actor[ref]
        topics.discard(topic)
        if not topics:
            del self._by_actor[ref]
        return True

    def forget(self, ref: ActorRef) -> None:
        """Remove every subscription of `ref` (it stopped)."""
        for topic in list(self._by_actor.get(ref, ())):
            self.unsubscribe(ref, topic)

    def match(self, topic: str) -> dict[ActorRef, Delivery]:
        """The subscribers a publish to `topic` reaches, each once.

        An exact subscription's policy wins over a wildcard's; a longer pattern's over a
        shorter one's.
        """
        check_topic(topic, pattern=False)
        found: dict[ActorRef, Delivery] = {}
        exact = self._exact.get(topic)
        if exact:
            found.update(exact)
        if self._prefixes:
            cut = len(topic)
            while cut > 0:
                cut = topic.rfind(".", 0, cut)
                prefix = topic[: cut + 1] if cut >= 0 else ""
                for ref, policy in self._prefixes.get(prefix, {}).items():
                    found.setdefault(ref, policy)
                if cut < 0:
                    break
        return found

    def by_actor(self) -> dict[ActorRef, set[str]]:
        """Each subscribed actor's topics and patterns (the table's own: do not change it)."""
        return self._by_actor

    def exact(self, topic: str) -> list[ActorRef]:
        """The subscribers of exactly `topic` (no wildcard subscriptions)."""
        return list(self._exact.get(topic, ()))

    def counts(self) -> dict[str, int]:
        """Subscribers per topic or pattern."""
        counts = {topic: len(refs) for topic, refs in self._exact.items()}
        for prefix, refs in self._prefixes.items():
            counts[prefix + WILDCARD] = len(refs)
        return counts

    def _slot(self, topic: str) -> tuple[dict[str, dict[ActorRef, Delivery]], str]:
        if topic.endswith(WILDCARD):
            return self._prefixes, topic[: -len(WILDCARD)]
        return self._exact, topic
