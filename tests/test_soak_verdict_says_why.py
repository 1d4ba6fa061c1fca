"""A soak run that fails says which guarantee broke, with the value measured."""

from __future__ import annotations

import attrs
import pytest

from spaceactors.testing.memory import MemoryProbe
from spaceactors.testing.soak import SoakReport

KEPT = SoakReport(
    messages=1_000,
    acknowledged=1_000,
    failed=0,
    pending=0,
    lost=0,
    processed_twice=0,
    retried=10,
    duplicates_suppressed=5,
    faults={"crash": 4, "drop": 7},
    restarts=4,
    virtual_seconds=10.0,
    wall_seconds=1.0,
)


def test_a_run_that_kept_every_guarantee_has_no_problems() -> None:
    assert KEPT.problems == []
    assert KEPT.ok
    assert KEPT.render().endswith("verdict             PASS")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"lost": 3}, "lost: 3 > 0"),
        ({"processed_twice": 1_200}, "processed twice: 1,200 > 0"),
        ({"failed": 2}, "failed: 2 > 0"),
        ({"pending": 9}, "pending: 9 > 0"),
        ({"unknown_outcomes": 1}, "unknown outcomes: 1 > 0"),
        ({"restarts": 3}, "restarts: 3 != 4 crashes injected"),
    ],
)
def test_each_broken_guarantee_is_named_with_its_value(
    change: dict[str, int], problem: str
) -> None:
    report = attrs.evolve(KEPT, **change)  # type: ignore[arg-type]
    assert report.problems == [problem]
    assert not report.ok
    assert report.render().endswith(f"verdict             FAIL ({problem})")


def test_memory_that_was_not_shown_flat_is_a_problem_with_its_figures() -> None:
    report = attrs.evolve(KEPT, lost=1, memory=MemoryProbe(warm_up=1_000, every=1_000).result())
    assert report.problems == [
        "lost: 1 > 0",
        "memory: no samples (the run ended before its warm-up)",
    ]
