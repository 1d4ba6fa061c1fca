"""The exception taxonomy: every error spaceactors raises derives from `SpaceActorsError`.

Each error says what happened, to which actor, and what the caller can do about it.
"""

from __future__ import annotations


class SpaceActorsError(Exception):
    """Base class of every error raised by spaceactors."""


class InvalidMessage(SpaceActorsError, ValueError):
    """A protocol message was built with a value outside its domain; the text names the field."""


class DecodeError(SpaceActorsError, ValueError):
    """Wire bytes could not be decoded into a message.

    Attributes:
        problems: one line per problem, each ending in the field path where it was found
            (``$`` is the whole payload), e.g. ``"must be finite, got nan @ $.body.location.x"``.
    """

    def __init__(self, summary: str, problems: tuple[str, ...] = ()) -> None:
        self.summary = summary
        self.problems = problems
        text = summary if not problems else f"{summary}: {'; '.join(problems)}"
        super().__init__(text)


class EncodeError(SpaceActorsError, ValueError):
    """A message could not be encoded (unregistered type, oversize payload, unencodable text)."""


class InvalidSpec(SpaceActorsError, ValueError):
    """A child spec, supervisor option or spawn argument is invalid; the text says which and why."""


class NameTaken(SpaceActorsError, ValueError):
    """A name is already registered to a live actor or child of the same supervisor."""


class ActorNotFound(SpaceActorsError, LookupError):
    """No actor is registered under the given id or name."""


class ActorUnavailable(SpaceActorsError):
    """The actor has stopped (or is stopping) and accepts no more messages."""


class MailboxFull(SpaceActorsError):
    """`try_send` found the actor's bounded mailbox full; `send` would have waited instead."""


class AskTimeout(SpaceActorsError, TimeoutError):
    """An `ask` got no reply in time; the timeout covers enqueueing, handling and the reply."""


class ActorCrashed(SpaceActorsError):
    """The actor raised while handling this request; the original exception is the ``__cause__``."""


class StartFailed(SpaceActorsError):
    """An actor's constructor or `on_start` raised; the original exception is the ``__cause__``."""


class SupervisorGaveUp(SpaceActorsError):
    """A supervisor exceeded its restart intensity, stopped its children and gave up.

    Attributes:
        supervisor: the name of the supervisor that gave up.
        child: the name of the child whose failure exceeded the intensity.
        cause: the last failure (also the ``__cause__``).
    """

    def __init__(self, supervisor: str, child: str, cause: BaseException | None) -> None:
        self.supervisor = supervisor
        self.child = child
        self.cause = cause
        super().__init__(
            f"supervisor {supervisor!r} gave up: restart intensity exceeded by child {child!r}"
            + (f" ({type(cause).__name__}: {cause})" if cause is not None else "")
        )


class InvalidTopic(SpaceActorsError, ValueError):
    """A topic or subscription pattern is malformed; the text says what a valid one looks like."""


class PublishFailed(SpaceActorsError):
    """Some receivers with the ``fail`` policy had a full mailbox; everyone else got the message.

    Attributes:
        delivered: how many receivers got the message.
        failed: the names of the receivers whose mailbox was full.
    """

    def __init__(self, what: str, delivered: int, failed: list[str]) -> None:
        self.delivered = delivered
        self.failed = failed
        shown = ", ".join(repr(name) for name in failed[:5]) + (", ..." if len(failed) > 5 else "")
        super().__init__(
            f"{what}: {len(failed)} receiver(s) with a full mailbox did not get it ({shown}); "
            f"{delivered} did"
        )


class QueueFull(SpaceActorsError):
    """A flow controller refused: its permits are in use and its wait queue is at its limit."""


class DeliveryFailed(SpaceActorsError):
    """A reliably sent message was not acknowledged after every retry; it is a dead letter."""


class UnknownMessage(SpaceActorsError, KeyError):
    """`Reliable.delivered` was given an id that `Reliable.send` never returned."""

    def __str__(self) -> str:  # KeyError would quote the text
        return str(self.args[0]) if self.args else ""


class OutcomeForgotten(SpaceActorsError):
    """The outcome of an old reliable message is no longer known: more than `KEEP_FAILURES`
    messages failed since, and the reliable layer dropped the oldest failures to stay bounded."""


class RateLimited(SpaceActorsError):
    """A rate-limited sender had no token for this message; `send_waiting` would have waited."""


class CheckpointError(SpaceActorsError):
    """State could not be captured into a checkpoint, or restored from one.

    Capturing names the actor, the field path and the type that cannot be saved, and what to
    do (give the actor ``snapshot_state()``/``restore_state()``, or keep the value out of its
    attributes). Restoring names where in the saved state the data is wrong (an unknown tag,
    type or shape, a type the file may not name). A checkpoint is data, never code: nothing in
    it is imported or executed.
    """


class StateFileError(SpaceActorsError, ValueError):
    """A state file (``--state run.db``) is refused, or cannot be created, read or written.

    One line naming the file and what is wrong with it: not a file, empty, truncated, not a
    spaceactors state file, another format version, damaged (a checksum does not match, a
    column is missing or holds the wrong type), written by another scenario or code, or a
    write the disk refused. A file's content never causes any other exception.
    """
