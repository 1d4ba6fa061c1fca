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
