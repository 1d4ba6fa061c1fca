"""Reliable messages to a topic: `Reliable.publish` sends one reliable message per subscriber.

A reliable publish is a fan-out of `Reliable.send`: every actor subscribed to the topic when the
call is made (wildcard subscriptions included, matched as `Router.publish` matches them, the
sender left out) gets its own reliable message over its own sender→subscriber stream, with
exactly the guarantees of a point-to-point reliable send (exactly-once processing, retries,
`DeliveryFailed`, order within the stream with ``ordered=True``).

Each transmission, retries included, carries the topic to the tap, so fault rules scoped to
topics (`Scope(topics=...)`) apply to it as they do to a plain publish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from spaceactors.checks import fraction, integer, seconds, short_repr
from spaceactors.registry import check_sender

if TYPE_CHECKING:
    from spaceactors.receiver import MessageId
    from spaceactors.ref import ActorRef
    from spaceactors.system import ActorSystem


def check_options(max_retries: object, timeout: object, max_delay: object, jitter: object) -> None:
    """Raise `ValueError` unless the retry options are what `Reliable.send` accepts."""
    integer("max_retries", max_retries)
    shortest = seconds("timeout", timeout, zero=False)
    longest = seconds("max_delay", max_delay, zero=False)
    if longest < shortest:
        raise ValueError(f"max_delay must be >= timeout ({shortest:g}), got {longest:g}")
    fraction("jitter", jitter, one=False)


async def publish(
    system: ActorSystem,
    topic: str,
    message: object,
    *,
    max_retries: int,
    timeout: float,  # noqa: ASYNC109 - the acknowledgement deadline, not a call timeout
    max_delay: float,
    jitter: float,
    ordered: bool,
    sender: ActorRef | None,
) -> dict[ActorRef, MessageId]:
    """`Reliable.publish`: one `Reliable.send` per subscriber of `topic`; see its docstring.

    The subscribers are taken once, when the call is made. Every check comes before the first
    transmission, so a refused call sends nothing; a call cancelled before its first
    transmission sends nothing either.
    """
    reliable, router = system.reliable, system.router
    if not reliable.life.serving:
        router.refuse_if_stopped(f"publish reliably to {short_repr(topic)}", reliable.life)
    receivers = router.state.topics.match(topic)  # InvalidTopic for a malformed topic
    check_sender(sender)
    check_options(max_retries, timeout, max_delay, jitter)
    if sender is not None:
        receivers.pop(sender, None)
    await trio.lowlevel.checkpoint_if_cancelled()
    ids: dict[ActorRef, MessageId] = {}
    if not receivers:
        router.state.unheard += 1
    for ref in receivers:  # each subscriber's policy is for plain publishes: all wait for room
        if not ref.alive:  # stopped while the call waited for room at an earlier subscriber
            ref._cell.unavailable(message, sender)  # a dead letter, as reliable.send records
            continue
        ids[ref] = await reliable.send(
            ref,
            message,
            max_retries=max_retries,
            timeout=timeout,
            max_delay=max_delay,
            jitter=jitter,
            ordered=ordered,
            sender=sender,
            _topic=topic,
        )
    await trio.lowlevel.cancel_shielded_checkpoint()  # every message is out: keep their ids
    return ids
