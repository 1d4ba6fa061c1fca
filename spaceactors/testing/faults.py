"""Hypothesis strategies for fault plans and crash schedules.

Every strategy draws a valid `FaultPlan` rule; shrinking moves towards fewer rules, lower
probabilities and shorter delays, so a failing example shrinks to the smallest fault that
still breaks the property.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

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
    """Probabilities in [0, `maximum`], in steps of 0.05 (they shrink to 0)."""
    return st.integers(0, int(maximum * 20)).map(lambda twentieths: twentieths / 20)


def _seconds(maximum: float) -> st.SearchStrategy[float]:
    return st.integers(0, int(maximum * 10)).map(lambda tenths: tenths / 10)


def message_faults(max_probability: float = 0.5) -> st.SearchStrategy[Rule]:
    """One of drop, duplicate, delay (uniform or long-tailed) or reorder, on every message."""
    p = probabilities(max_probability)
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
    """A partition splitting `actors` in two non-empty groups for a while within `horizon`."""
    if len(actors) < 2:
        raise ValueError("a partition needs at least two actors to split")
    return st.tuples(
        st.permutations(list(actors)),
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
    """Crashes of `actors`, each on its n-th message (at most `max_crashes` of them)."""
    crash = st.builds(CrashActor, actors=st.sampled_from(list(actors)), nth=st.integers(1, max_nth))
    return st.lists(crash, max_size=max_crashes).map(tuple)


def actor_faults(actors: Sequence[str], horizon: float = 60.0) -> st.SearchStrategy[Rule]:
    """A pause or a slowdown of one of `actors`."""
    names = st.sampled_from(list(actors))
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
    slowdowns and partitions among them."""
    rules: st.SearchStrategy[Rule] = message_faults(max_probability)
    if actors:
        rules = rules | actor_faults(actors, horizon)
        if len(actors) >= 2:
            rules = rules | partitions(actors, horizon)
    crashes = crash_schedules(actors) if actors else st.just(())
    return st.builds(_plan, st.lists(rules, max_size=max_rules), crashes)


def _plan(rules: list[Rule], crashes: tuple[CrashActor, ...]) -> FaultPlan:
    return FaultPlan((*rules, *crashes))
