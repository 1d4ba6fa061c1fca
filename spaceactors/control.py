"""The runtime's control messages: what every actor obeys from anyone, and its status.

`Shutdown`, `Pause`, `Resume` and `GetStatus` travel in an `ActorControl` envelope (or on their
own); the runtime answers `GetStatus` with an `ActorStatus`. `spaceactors.messages` re-exports them
with the rest of the protocol.
"""

from __future__ import annotations

import attrs

from spaceactors import reprs
from spaceactors.fields import _MAX_ACTOR_ID, ActorId, _actor_id, _instance_of, _int_in, _name

# --- what the runtime understands from anyone ------------------------------------------------


@attrs.frozen(repr=False)
class Shutdown(reprs.CodeRepr):
    """Stop the actor gracefully: `on_stop` runs; a transient actor is not restarted."""


@attrs.frozen(repr=False)
class Pause(reprs.CodeRepr):
    """Stop consuming the mailbox until `Resume`; senders feel backpressure meanwhile."""


@attrs.frozen(repr=False)
class Resume(reprs.CodeRepr):
    """Resume consuming the mailbox after `Pause`."""


@attrs.frozen(repr=False)
class GetStatus(reprs.CodeRepr):
    """Ask the runtime for the actor's status."""


ControlCommand = Shutdown | Pause | Resume | GetStatus
"""What the runtime obeys from anyone: the `command` of an `ActorControl` envelope."""


class ActorState(reprs.CodeEnum):
    """Where an actor is in its life, as `GetStatus` reports it."""

    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"  # between incarnations
    STOPPING = "stopping"  # stopping for good: ends its message and on_stop, takes no new ones
    STOPPED = "stopped"


@attrs.frozen(repr=False)
class ActorStatus(reprs.CodeRepr):
    """The runtime's answer to `GetStatus`."""

    actor_id: ActorId = attrs.field(validator=_actor_id)
    name: str = attrs.field(validator=_name)
    state: ActorState = attrs.field(validator=_instance_of(ActorState))
    mailbox_depth: int = attrs.field(validator=_int_in(0, _MAX_ACTOR_ID))
    mailbox_size: int = attrs.field(validator=_int_in(1, _MAX_ACTOR_ID))
    restarts: int = attrs.field(validator=_int_in(0, _MAX_ACTOR_ID))
    handled: int = attrs.field(validator=_int_in(0, _MAX_ACTOR_ID))
    last_error: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_instance_of(str))
    )
