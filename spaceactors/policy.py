"""The supervisor's rulebook, as pure functions of timestamps, specs and exit reasons.

These follow Erlang/OTP's ``supervisor.erl``: which exits restart which children, the sliding
restart-intensity window, and (an addition of ours) an exponential backoff with seeded jitter.
The supervisor task calls them; they touch no task and no clock, so they are tested on their own.
"""

from __future__ import annotations

import bisect
import enum
import random
from collections.abc import Sequence

import attrs

from spaceactors import reprs
from spaceactors.checks import fraction, integer, positive, seconds, short_repr
from spaceactors.errors import InvalidSpec


class Strategy(reprs.CodeEnum):
    """Which children a supervisor restarts when one of them fails (OTP's restart strategies)."""

    ONE_FOR_ONE = "one_for_one"
    """Only the failed child."""
    ONE_FOR_ALL = "one_for_all"
    """All children: the others stop in reverse start order, then all start in start order."""
    REST_FOR_ONE = "rest_for_one"
    """The failed child and every child started after it; earlier children are untouched."""


class Restart(reprs.CodeEnum):
    """When a child that exited is restarted (OTP's ``restart`` of a child spec)."""

    PERMANENT = "permanent"
    """Always, whatever the exit."""
    TRANSIENT = "transient"
    """Only after an abnormal exit: not after a normal exit or a `Shutdown`."""
    TEMPORARY = "temporary"
    """Never, not even when a sibling's failure restarts the group; its spec is then deleted."""


class BrutalKill(enum.Enum):
    """Type of `BRUTAL_KILL`."""

    BRUTAL_KILL = "brutal_kill"


BRUTAL_KILL = BrutalKill.BRUTAL_KILL
"""Shutdown policy: cancel the child at once; its `on_stop` does not run."""

ShutdownPolicy = float | BrutalKill
"""Seconds a child gets to stop gracefully before it is hard-cancelled (``math.inf``: no limit),
or `BRUTAL_KILL`."""


class ExitKind(enum.Enum):
    """Why an incarnation ended; the kind decides whether it is restarted."""

    NORMAL = "normal"
    SHUTDOWN = "shutdown"
    ERROR = "error"


@attrs.frozen
class Exit:
    """The end of one incarnation of a child."""

    kind: ExitKind
    error: BaseException | None = None

    @property
    def abnormal(self) -> bool:
        """True for a failure: neither a normal exit nor a shutdown."""
        return self.kind is ExitKind.ERROR


NORMAL_EXIT = Exit(ExitKind.NORMAL)
SHUTDOWN_EXIT = Exit(ExitKind.SHUTDOWN)


def failed(error: BaseException) -> Exit:
    """An abnormal exit caused by `error`."""
    return Exit(ExitKind.ERROR, error)


def should_restart(restart: Restart, exit: Exit) -> bool:
    """Whether a child of type `restart` that ended with `exit` is restarted (OTP's rule)."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return exit.abnormal
    return False


def add_restart(
    history: Sequence[float], now: float, max_restarts: int, within: float
) -> tuple[tuple[float, ...], bool]:
    """Record a restart at `now` in the sliding window and say whether it is allowed.

    Keeps the restarts that happened at most `within` seconds before `now` (OTP's ``inPeriod``:
    ``Now =< Then + Period``, so the window ``[now - within, now]`` is closed), adds this one,
    and allows it if at most `max_restarts` remain: R+1 failures inside one window give up
    after exactly R restarts, while failures spaced wider than the window restart forever.

    Returns:
        The new history, and True if the restart is within the intensity.
    """
    # `history` is in time order (each call appends `now`): cut its old part off in C.
    recent = (*history[bisect.bisect_left(history, now - within) :], now)
    return recent, len(recent) <= max_restarts


def validate_intensity(max_restarts: int, within: float) -> None:
    """Raise `InvalidSpec` unless `max_restarts` is an int >= 0 and `within` is seconds > 0
    (``math.inf``: restarts are counted forever)."""
    integer("max_restarts", max_restarts, InvalidSpec)
    seconds("within", within, InvalidSpec, zero=False, infinite=True)


def validate_shutdown(shutdown: ShutdownPolicy) -> None:
    """Raise `InvalidSpec` unless `shutdown` is `BRUTAL_KILL`, ``math.inf`` or seconds >= 0."""
    if shutdown is BRUTAL_KILL:
        return
    try:
        seconds("shutdown", shutdown, InvalidSpec, infinite=True)
    except InvalidSpec:
        raise InvalidSpec(
            f"shutdown must be seconds >= 0, math.inf or sa.BRUTAL_KILL, got {short_repr(shutdown)}"
        ) from None


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    positive(f"Backoff.{attribute.name}", value, InvalidSpec)


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    fraction(f"Backoff.{attribute.name}", value, InvalidSpec, one=False)


@attrs.frozen(repr=False)
class Backoff(reprs.CodeRepr):
    """Exponential delay before restarting a failed child.

    The n-th consecutive restart of a child (n = 0, 1, ...) waits
    ``min(initial * 2**n, maximum)`` seconds, scaled by a factor drawn uniformly from
    ``[1 - jitter, 1 + jitter]`` with the supervisor's seeded RNG. A child that ran for
    `reset_after` seconds (default: `maximum`) without failing starts again from n = 0.
    """

    initial: float = attrs.field(validator=_positive)
    maximum: float = attrs.field(validator=_positive)
    jitter: float = attrs.field(default=0.0, validator=_fraction)
    reset_after: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_positive)
    )

    def __attrs_post_init__(self) -> None:
        if self.maximum < self.initial:
            raise InvalidSpec(
                f"Backoff.maximum ({self.maximum}) must be >= initial ({self.initial})"
            )

    @property
    def quiet_period(self) -> float:
        """Seconds of running without failure after which the attempt count resets."""
        return self.maximum if self.reset_after is None else self.reset_after

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before restart number `attempt` (0-based)."""
        # 2.0 ** 1024 overflows; past 2 ** 1023 the product is inf or capped anyway.
        base = min(self.initial * 2.0 ** min(attempt, 1023), self.maximum)
        if self.jitter:
            base *= rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return base


def restart_group(strategy: Strategy, order: Sequence[str], failed_child: str) -> list[str]:
    """The children, in start order, that a failure of `failed_child` stops and restarts."""
    if strategy is Strategy.ONE_FOR_ONE:
        return [failed_child]
    if strategy is Strategy.ONE_FOR_ALL:
        return list(order)
    return list(order[order.index(failed_child) :])
