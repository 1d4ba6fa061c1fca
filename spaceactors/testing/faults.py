"""Hypothesis strategies for fault plans and crash schedules.

Every strategy draws a valid `FaultPlan` rule; shrinking moves towards fewer rules, lower
probabilities and shorter delays, so a failing example shrinks to the smallest fault that
still breaks the property.

Every argument is checked when the strategy is built: a bad one (a bool, NaN, an infinity, a
huge integer, a probability past 1, a name that is not a string) raises ``ValueError`` naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from hypothesis import strategies as st

from spaceactors import checks
from spaceactors.faultplan import (
    CrashActor,
    DelayMessages,
    DropMessages,
    DuplicateMessages,
    FaultPlan,
    Partition,
    PauseActor,
    ReorderMessages,
    Rule,
    SlowActor,
)


def probabilities(maximum: float = 0.5) -> st.SearchStrategy[float]:
    """Probabilities in [0, `maximum`], in steps of 0.05 (they shrink to 0).

    Raises:
        ValueError: `maximum` is not a number in [0, 1].
    """
    return _probabilities("maximum", maximum)


def _probabilities(name: str, maximum: object) -> st.SearchStrategy[float]:
    top = checks.fraction(name, maximum)
    return st.integers(0, int(top * 20)).map(lambda twentieths: twentieths / 20)


def _horizon(value: object) -> float:
    """A horizon in seconds: finite, > 0, and small enough to count in tenths."""
    horizon = checks.seconds("horizon", value, zero=False)
    if not math.isfinite(horizon * 10):
        raise ValueError(f"horizon is too large: {checks.short_repr(value)} seconds")
    return horizon


def _actors(value: object, *, least: int) -> list[str]:
    """A sequence of at least `least` actor names."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValueError(f"actors must be a list of actor names, got {checks.short_repr(value)}")
    if len(value) < least:
        raise ValueError(
            f"actors must name at least {least} actor(s), got {checks.short_repr(value)}"
        )
    return [checks.name(f"actors[{index}]", name) for index, name in enumerate(value)]


def _seconds(maximum: float) -> st.SearchStrategy[float]:
    return st.integers(0, int(maximum * 10)).map(lambda tenths: tenths / 10)


def message_faults(max_probability: float = 0.5) -> st.SearchStrategy[Rule]:
    """One of drop, duplicate, delay (uniform or long-tailed) or reorder, on every message.

    Raises:
        ValueError: `max_probability` is not a number in [0, 1].
    """
    p = _probabilities("max_probability", max_probability)
    return st.one_of(
        st.builds(DropMessages, probability=p),
        st.builds(DuplicateMessages, probability=p),
        st.builds(
            DelayMessages,
            probability=p,
            minimum=st.just(0.0),
            maximum=_seconds(3.0),
            mean=st.none() | _seconds(1.0).filter(bool),
        ),
        st.builds(ReorderMessages, probability=p, max_hold=_seconds(2.0).filter(bool)),
    )


def partitions(actors: Sequence[str], horizon: float = 60.0) -> st.SearchStrategy[Partition]:
    """A partition splitting `actors` in two non-empty groups for a while within `horizon`.

    Raises:
        ValueError: fewer than two actor names, or `horizon` is not a finite number of
            seconds > 0.
    """
    if isinstance(actors, Sequence) and not isinstance(actors, str) and len(actors) < 2:
        raise ValueError("a partition needs at least two actors to split")
    actors = _actors(actors, least=2)
    horizon = _horizon(horizon)
    return st.tuples(
        st.permutations(actors),
        st.integers(1, len(actors) - 1),
        _seconds(horizon),
        _seconds(horizon).filter(bool),
    ).map(
        lambda drawn: Partition(
            groups=(tuple(drawn[0][: drawn[1]]), tuple(drawn[0][drawn[1] :])),
            start=drawn[2],
            stop=drawn[2] + drawn[3],
        )
    )


def crash_schedules(
    actors: Sequence[str], max_crashes: int = 3, max_nth: int = 50
) -> st.SearchStrategy[tuple[CrashActor, ...]]:
    """Crashes of `actors`, each on its n-th message (at most `max_crashes` of them).

    Raises:
        ValueError: `actors` is not a non-empty list of names, `max_crashes` not an int >= 0
            or `max_nth` not an int >= 1.
    """
    names = _actors(actors, least=1)
    max_crashes = checks.integer("max_crashes", max_crashes, high=2**31)
    max_nth = checks.integer("max_nth", max_nth, low=1, high=2**63 - 1)
    crash = st.builds(CrashActor, actors=st.sampled_from(names), nth=st.integers(1, max_nth))
    return st.lists(crash, max_size=max_crashes).map(tuple)


def actor_faults(actors: Sequence[str], horizon: float = 60.0) -> st.SearchStrategy[Rule]:
    """A pause or a slowdown of one of `actors`.

    Raises:
        ValueError: `actors` is not a non-empty list of names, or `horizon` is not a finite
            number of seconds > 0.
    """
    horizon = _horizon(horizon)
    names = st.sampled_from(_actors(actors, least=1))
    return st.one_of(
        st.builds(
            PauseActor, actors=names, start=_seconds(horizon), duration=_seconds(10.0).filter(bool)
        ),
        st.builds(
            SlowActor,
            actors=names,
            seconds=_seconds(1.0).filter(bool),
            probability=probabilities(0.5),
        ),
    )


def fault_plans(
    actors: Sequence[str] = (),
    *,
    max_rules: int = 4,
    max_probability: float = 0.5,
    horizon: float = 60.0,
) -> st.SearchStrategy[FaultPlan]:
    """Fault plans of up to `max_rules` message faults, plus (given `actors`) crashes, pauses,
    slowdowns and partitions among them.

    Raises:
        ValueError: `actors` is not a list of names, `max_rules` not an int >= 0,
            `max_probability` not in [0, 1], or `horizon` not a finite number of seconds > 0.
    """
    actors = _actors(actors, least=0)
    max_rules = checks.integer("max_rules", max_rules, high=2**31)
    horizon = _horizon(horizon)
    rules: st.SearchStrategy[Rule] = message_faults(max_probability)
    if actors:
        rules = rules | actor_faults(actors, horizon)
        if len(actors) >= 2:
            rules = rules | partitions(actors, horizon)
    crashes = crash_schedules(actors) if actors else st.just(())
    return st.tuples(st.lists(rules, max_size=max_rules), crashes).map(
        lambda drawn: FaultPlan([*drawn[0], *drawn[1]])
    )
