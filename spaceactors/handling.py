"""What an actor's loop does beyond the plain case: messages of ordered reliable streams,
handled in turn, and a crash reported (the asker told, a dead letter, one log line).

Split from `spaceactors.cell`, whose `ActorCell.run` calls these.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import outcome
import trio

from spaceactors.checks import describe
from spaceactors.deadletters import DeadLetterReason
from spaceactors.delivery import Tick
from spaceactors.errors import ActorCrashed
from spaceactors.faultplan import InjectedCrash
from spaceactors.logfields import actor_path, cause_text
from spaceactors.policy import Exit, failed
from spaceactors.receiver import ReceiverState, Reliably
from spaceactors.ref import Ask

if TYPE_CHECKING:
    from spaceactors.cell import ActorCell

# The documented logger of actor crashes: named for the module users know, not for this one.
logger = logging.getLogger("spaceactors.actor")


def payload(message: object) -> object:
    """The user's message inside a runtime wrapper (an ask, a reliable envelope, a tick)."""
    return message.message if isinstance(message, Ask | Reliably | Tick) else message


def crashed(cell: ActorCell, message: object, exc: Exception) -> Exit:
    """`cell`'s handler raised `exc` on `message`: the asker told, a dead letter, one log
    line; returns the exit."""
    if cell._crashed_on is not None:
        message, cell._crashed_on = cell._crashed_on, None
    elif (
        isinstance(message, Reliably)
        and cell._receiver is not None
        and cell._receiver.handling is message  # `handle` raised on it, not the runtime
    ):
        cell._receiver.handling = None
        exc.add_note(f"while handling reliable message {message.message_id}")
    cell.last_error = describe(exc)
    what = type(payload(message)).__name__
    if isinstance(message, Ask):
        crash = ActorCrashed(f"actor {cell.name!r} crashed while handling {what}: {describe(exc)}")
        crash.__cause__ = exc
        message.resolve(outcome.Error(crash))
    cell.dead_letter(message, DeadLetterReason.CRASHED_WHILE_HANDLING, describe(exc))
    now = trio.current_time()
    path = actor_path(cell.supervisor.path, cell.name)
    fields = {"event": "crash", "actor": path, "sim_time": now, "cause": cause_text(exc)}
    if isinstance(exc, InjectedCrash):  # planned: one line at INFO, its stack says nothing
        logger.info(
            "actor %r crashed handling %s at t=%.6g s: injected by fault rule %s",
            cell.name,
            what,
            now,
            exc.rule,
            extra=fields,
        )
    else:
        logger.warning("actor %r crashed handling %s", cell.name, what, exc_info=exc, extra=fields)
    return failed(exc)


async def _handle_reliably(
    cell: ActorCell, handle: Callable[[object], Awaitable[object]], envelope: Reliably
) -> None:
    """Handle a reliable message; settle it (to be acknowledged) once `handle` returns."""
    receiver = typing.cast(ReceiverState, cell._receiver)  # made by the send
    receiver.handling = envelope
    try:
        await handle(envelope.message)  # a crash here settles nothing: the retry comes
    except Exception as exc:
        exc.add_note(f"while handling reliable message {envelope.message_id}")
        cell._crashed_on = envelope  # the dead letter names this one, not the arrival
        raise
    finally:
        receiver.handling = None
    receiver.settle(envelope)


async def handle_in_order(
    cell: ActorCell, handle: Callable[[object], Awaitable[object]], envelope: Reliably
) -> None:
    """Handle a message of an ordered stream when its turn comes, then those it held up."""
    stream = envelope.stream
    if envelope.seq != stream.low:
        stream.held[envelope.seq] = envelope  # early: wait for the gap to fill
        return
    ready: Reliably | None = envelope
    while ready is not None:
        await _handle_reliably(cell, handle, ready)
        ready = stream.held.pop(stream.low, None)
