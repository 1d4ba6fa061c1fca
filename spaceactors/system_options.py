"""The checks and conversions of `open_system`'s options: resuming, observing, joining a
cluster, the trace level, and the options' domains (split from `spaceactors.system`).

Each raises the error `open_system` documents, naming the option, before anything opens; the
extras (the observation server, a transport) are imported only when asked for.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from spaceactors.checks import integer, short_repr
from spaceactors.errors import InvalidSpec
from spaceactors.faultplan import FaultPlan
from spaceactors.policy import validate_intensity
from spaceactors.trace import Trace, TraceLevel

if TYPE_CHECKING:
    from spaceactors.checkpoint.program import Resume
    from spaceactors.system import ActorSystem
    from spaceactors.transport.node import Node


def _resume(path: object) -> Resume | None:
    """The checkpoint `open_system` resumes from: `path`'s, else the one
    ``spaceactors.run(main, resume_from=...)`` holds for the first system opened inside."""
    from spaceactors.virtual import take_resume

    resume = take_resume() if path is None else None
    if path is None and resume is None:
        return None
    from spaceactors.checkpoint import program

    if resume is None:
        if not isinstance(path, str | os.PathLike):
            raise InvalidSpec(f"resume_from must be a state file path, got {short_repr(path)}")
        resume = program.load(path)
    program.at_its_time(resume)  # (a main that let time pass before opening it is refused)
    return resume


def _observe_address(observe: object, token: object) -> str | None:
    """The address `observe` asks for (None: no server), checked with the token rules.

    Raises:
        InvalidSpec: `observe` or `token` is invalid (see `open_system`).
        ImportError: the ``observe`` extra is not installed.
    """
    if observe is None or observe is False:
        return None
    if observe is True:
        observe = "127.0.0.1:0"
    if not isinstance(observe, str):
        raise InvalidSpec(f"observe must be 'HOST:PORT', True or None, got {short_repr(observe)}")
    if token is not None and not isinstance(token, str):
        raise InvalidSpec(f"observe_token must be a str or None, got {short_repr(token)}")
    try:
        from spaceactors.observe import check_address, require

        require()
    except ImportError as exc:
        raise ImportError(
            f"observe= needs the observation server ({exc}): pip install 'spaceactors[observe]'"
        ) from exc
    check_address(observe, token)
    return observe


def _observer(address: str, token: str | None) -> Any:
    """The observation server, bound to `address` (the extra is imported only now)."""
    from spaceactors.observe import Observer

    return Observer(address, token)


def _cluster(cluster: object, node: object) -> Callable[[ActorSystem], Node] | None:
    """How the system joins `cluster` as `node` (the transport is imported only now).

    Raises:
        InvalidSpec: `cluster` or `node` is invalid.
        ImportError: `cluster` is a Redis URL and the ``redis`` extra is not installed.
    """
    if cluster is None:
        if node is not None:
            raise InvalidSpec("node= names this system in a cluster: give cluster= too")
        return None
    from spaceactors.transport import joining

    return joining(cluster, node)


def _trace_level(trace: object, level: object) -> TraceLevel:
    """The level of the trace `open_system` opens (`trace_level` needs one it opens)."""
    if level is None:
        return TraceLevel.EVERYTHING
    if isinstance(trace, Trace):
        raise InvalidSpec(
            "trace_level is for a trace open_system opens (a path or True): give a sa.Trace "
            "its own, sa.Trace(level=...)"
        )
    if trace is None or trace is False:
        raise InvalidSpec(
            f"trace_level={short_repr(level)} needs a trace (trace=PATH or trace=True)"
        )
    try:
        return TraceLevel.of(level)
    except ValueError as exc:
        raise InvalidSpec(f"trace_level: {exc}") from None


def _check_options(
    seed: object,
    dead_letter_keep: object,
    max_restarts: int,
    within: float,
    trace: object,
    faults: object,
) -> None:
    """`open_system`'s options, each named as the caller wrote it."""
    if seed is not None:
        integer("seed", seed, InvalidSpec, low=-(2**63), high=2**64 - 1)
    integer("dead_letter_keep", dead_letter_keep, InvalidSpec, high=sys.maxsize)
    validate_intensity(max_restarts, within)
    if trace is not None and not isinstance(trace, Trace | str | os.PathLike | bool):
        raise InvalidSpec(
            f"trace must be a sa.Trace, a file path, True or None, got {short_repr(trace)}"
        )
    if faults is not None and not isinstance(faults, FaultPlan):
        raise InvalidSpec(f"faults must be a sa.FaultPlan or None, got {short_repr(faults)}")
