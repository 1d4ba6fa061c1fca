"""What `spaceactors.trace_analysis` reads from a trace: counts, restarts with their causes,
dead letters with their reasons, filters, and the first event where two traces part."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trace_runs import CRASH_AT, crew_run

import spaceactors as sa
from spaceactors.trace_analysis import first_divergence, restart_causes, select, summarize

K = sa.EventKind


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[sa.TraceEvent]]:
    """Real traces: the crew run with seed 0 (twice), seed 1, and seed 0 without loss."""
    folder = tmp_path_factory.mktemp("analysis")
    runs = {"seed0": (0, 0.3), "seed0-again": (0, 0.3), "seed1": (1, 0.3), "lossless": (0, 0.0)}
    for name, (seed, drop) in runs.items():
        crew_run(folder / f"{name}.jsonl", seed=seed, drop=drop)
    return {name: sa.load_trace(folder / f"{name}.jsonl") for name in runs}


def test_the_summary_counts_what_the_run_did(traces: dict[str, list[sa.TraceEvent]]) -> None:
    summary = summarize(traces["seed0"])
    assert summary.events == len(traces["seed0"]) == sum(summary.by_kind.values())
    assert summary.by_kind["send"] == 20 + 20 + 1  # every send of the run, "crash" included
    assert summary.by_kind["crash"] == 1
    lost = summary.by_kind["drop"]
    assert lost > 0
    pilot_handled = len(select(traces["seed0"], actors=["pilot"], kinds={K.HANDLE}))
    assert pilot_handled + lost == 21  # what the fault plan did not lose was handled
    assert summary.by_message_type["int"] == sum(
        1 for e in traces["seed0"] if e.message_type == "int"
    )
    assert set(summary.by_actor) == {"pilot", "engineer", "nobody"}
    assert list(summary.by_actor.values()) == sorted(summary.by_actor.values(), reverse=True)
    assert (summary.start, summary.end) == (0.0, 20.0)
    assert summary.hash == sa.trace_hash(traces["seed0"])
    assert "drop" not in summarize(traces["lossless"]).by_kind


def test_each_restart_names_the_crash_that_caused_it(
    traces: dict[str, list[sa.TraceEvent]],
) -> None:
    pilot, engineer = summarize(traces["seed0"]).restarts
    assert (pilot.actor, pilot.crashed, pilot.time) == ("pilot", "pilot", CRASH_AT)
    assert pilot.cause == "RuntimeError('pilot was told to crash')"
    assert pilot.supervisor == engineer.supervisor == "root/user/crew"
    assert (engineer.actor, engineer.crashed) == ("engineer", "pilot")  # one_for_all
    assert engineer.cause == pilot.cause
    assert pilot.detail == "incarnation 2"


def test_a_restart_without_a_crash_before_it_has_no_cause() -> None:
    restart = sa.TraceEvent(1.0, K.RESTART, "a", "root/user", detail="incarnation 2")
    (found,) = restart_causes([restart])
    assert (found.crashed, found.cause) == (None, None)
    crash = sa.TraceEvent(0.5, K.CRASH, "a", "root/other", detail="Boom()")
    (found,) = restart_causes([crash, restart])  # a crash under another supervisor
    assert found.cause is None


def test_a_crash_explains_one_restart_of_its_own_only() -> None:
    crash = sa.TraceEvent(0.5, K.CRASH, "a", "sup", detail="Boom(1)")
    restart = sa.TraceEvent(1.0, K.RESTART, "a", "sup", detail="incarnation 2")
    b_restart = sa.TraceEvent(1.0, K.RESTART, "b", "sup", detail="incarnation 2")
    first, sibling, again = restart_causes([crash, restart, b_restart, restart])
    assert (first.crashed, first.cause) == ("a", "Boom(1)")
    assert (sibling.crashed, sibling.cause) == ("a", "Boom(1)")
    assert (again.crashed, again.cause) == ("a", "Boom(1)")  # the last crash under "sup"


def test_dead_letters_keep_their_reasons(traces: dict[str, list[sa.TraceEvent]]) -> None:
    summary = summarize(traces["seed0"])
    assert summary.dead_letters_by_reason == {"crashed_while_handling": 1, "unknown_actor": 1}
    crashed, unknown = summary.dead_letters
    assert (crashed.actor, crashed.message_type, crashed.time) == ("pilot", "str", CRASH_AT)
    assert (unknown.actor, unknown.reason) == ("nobody", "unknown_actor")


def test_filters_combine(traces: dict[str, list[sa.TraceEvent]]) -> None:
    events = traces["seed0"]
    chosen = select(events, actors=["engineer"], kinds={K.CRASH, K.RESTART})
    assert [(e.kind, e.actor, e.time) for _, e in chosen] == [(K.RESTART, "engineer", CRASH_AT)]
    window = select(events, start=CRASH_AT, end=CRASH_AT)
    assert window
    assert all(e.time == CRASH_AT for _, e in window)
    assert K.CRASH in {e.kind for _, e in window}
    assert select(events, actors=["pil*"]) == select(events, actors=["pilot"])
    everything = select(events)
    assert [e for _, e in everything] == events
    assert [n for n, _ in everything] == list(range(1, len(events) + 1))
    numbers = [n for n, _ in select(events, kinds={K.DROP})]
    assert all(events[n - 1].kind is K.DROP for n in numbers)
    assert select(events, start=21.0) == []


def test_the_same_seed_gives_no_divergence(traces: dict[str, list[sa.TraceEvent]]) -> None:
    assert first_divergence(traces["seed0"], traces["seed0-again"]) is None


def test_another_seed_diverges_at_the_first_differing_event(
    traces: dict[str, list[sa.TraceEvent]],
) -> None:
    a, b = traces["seed0"], traces["seed1"]
    found = first_divergence(a, b, context=2)
    assert found is not None
    assert a[: found.index] == b[: found.index]
    assert found.first == a[found.index] != found.second == b[found.index]
    assert found.before == tuple(a[found.index - 2 : found.index])
    assert found.after_first == tuple(a[found.index + 1 : found.index + 3])
    assert found.after_second == tuple(b[found.index + 1 : found.index + 3])
    assert found.fields
    assert all(getattr(found.first, f) != getattr(found.second, f) for f in found.fields)


def test_a_trace_that_stops_early_diverges_where_it_ends(
    traces: dict[str, list[sa.TraceEvent]],
) -> None:
    a = traces["seed0"]
    found = first_divergence(a[:10], a)
    assert found is not None
    assert (found.index, found.first, found.second) == (10, None, a[10])
    assert len(found.fields) == 7
    assert found.before == tuple(a[7:10])


def test_a_negative_context_is_refused() -> None:
    with pytest.raises(ValueError, match="context must be 0 or more events, got -1"):
        first_divergence([], [], context=-1)


events = st.builds(
    sa.TraceEvent,
    st.sampled_from([0.0, -0.0, 1.0, 1.0 + 2**-40, 2.5]),
    st.sampled_from(list(K)),
    st.sampled_from([None, "a", "b"]),
    st.sampled_from([None, "a", "sup"]),
    st.sampled_from([None, "int", "Ping"]),
    st.sampled_from([None, 0, 1]),
    st.sampled_from(["", "x"]),
)


@given(st.lists(events, max_size=12), st.lists(events, max_size=12))
def test_two_traces_diverge_exactly_when_their_hashes_differ(
    first: list[sa.TraceEvent], second: list[sa.TraceEvent]
) -> None:
    found = first_divergence(first, second)
    assert (found is None) == (sa.trace_hash(first) == sa.trace_hash(second))
    if found is not None:
        assert sa.trace_hash(first[: found.index]) == sa.trace_hash(second[: found.index])
        assert found.first == (first[found.index] if found.index < len(first) else None)
        assert found.second == (second[found.index] if found.index < len(second) else None)


def test_times_that_print_alike_still_differ() -> None:
    one = sa.TraceEvent(1.0, K.SEND, "a")
    two = sa.TraceEvent(1.0 + 2**-40, K.SEND, "a")
    found = first_divergence([one], [two])
    assert found is not None
    assert found.fields == ("time",)
