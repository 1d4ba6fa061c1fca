"""The issue's promise as a property: for every shipped scenario, several seeds, with and
without a fault plan, a run killed at any moment and resumed from its last checkpoint ends with
the same trace hash and summary as the run that never stopped: in-process (the checkpoint a
kill at a drawn moment leaves), and with a real SIGKILL of ``spaceactors run --state`` at a
drawn moment (checkpoints every few simulated seconds, so kills land during writes too)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.scenarios import large_fleet
from tests.test_checkpoint_sim import SCENARIOS, comparable, run
from tests.test_resume_command import kill_after, spaceactors

PLAN = sa.FaultPlan(
    [
        sa.DelayMessages(probability=0.4, minimum=0.1, maximum=3.0),
        sa.DuplicateMessages(probability=0.2),
        sa.ReorderMessages(probability=0.2, max_hold=2.0, start=20.0),
    ]
)
SMALL_FLEET = 100
"""large-fleet's ships here (its code, at a size an example runs in a fraction of a second)."""


@pytest.fixture(scope="module", autouse=True)
def small_fleet() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(large_fleet, "SHIPS", SMALL_FLEET)
        yield


DURATION = 120.0
"""Simulated seconds of each run: short, so each example is fast."""


@functools.cache
def uninterrupted(name: str, seed: int, faulted: bool) -> tuple[Any, list[Any]]:
    summary, events, _ = run(name, DURATION, seed=seed, faults=_plan(faulted))
    return comparable(summary), events


def _plan(faulted: bool) -> sa.FaultPlan | None:
    return PLAN if faulted else None


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    name=st.sampled_from(sorted(SCENARIOS)),
    seed=st.integers(0, 2),
    faulted=st.booleans(),
    every=st.floats(0.15, 0.5),  # checkpoint interval, as a share of the run
    kill=st.floats(0.0, 1.0),  # when the run is killed, as a share of the run
)
def test_killed_anywhere_in_process_a_run_resumes_to_the_same_end(
    name: str, seed: int, faulted: bool, every: float, kill: float
) -> None:
    duration = DURATION
    whole, events = uninterrupted(name, seed, faulted)
    checked, _, taken = run(
        name, duration, seed=seed, faults=_plan(faulted), every=every * duration
    )
    assert comparable(checked) == whole  # taking checkpoints changed nothing
    left = [point for point in taken if point["time"] <= kill * duration]
    if not left:
        return  # killed before the first checkpoint: nothing to resume (the command says so)
    point = left[-1]  # what a kill at that moment leaves: the last checkpoint written
    resumed, rest, _ = run(name, duration, seed=seed, faults=_plan(faulted), resume_from=point)
    assert rest == events
    assert comparable(resumed) == whole  # the trace hash is in the summary


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_plan_bends_every_scenario(name: str) -> None:
    """The faulted examples are faulted: every scenario's messages meet the plan."""
    _, events = uninterrupted(name, 0, True)
    assert {"delay", "duplicate"} <= {event.kind.value for event in events}


RUN = ["run", "asteroid-convoy", "--duration", "300", "--progress", "never"]


def plan_file(where: Path, faulted: bool) -> list[str]:
    if not faulted:
        return []
    (where / "plan.json").write_bytes(PLAN.to_json())
    return ["--faults", str(where / "plan.json")]


@pytest.fixture(scope="module")
def whole_command(tmp_path_factory: pytest.TempPathFactory) -> Callable[[int, bool], list[str]]:
    """The summary (less its wall-clock line) of the command that never stopped, by (seed,
    faulted); each run once."""
    where = tmp_path_factory.mktemp("whole")

    @functools.cache
    def summary(seed: int, faulted: bool) -> list[str]:
        extra = plan_file(where, faulted)
        state = f"whole-{seed}-{faulted}.db"
        done = spaceactors(*RUN, "--seed", str(seed), *extra, "--state", state, cwd=where)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()[1:]

    return summary


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 3), faulted=st.booleans(), wait=st.floats(0.0, 1.5))
def test_sigkilled_anywhere_the_command_resumes_to_the_same_end(
    seed: int,
    faulted: bool,
    wait: float,
    tmp_path_factory: pytest.TempPathFactory,
    whole_command: Callable[[int, bool], list[str]],
) -> None:
    where = tmp_path_factory.mktemp("kill")
    extra = plan_file(where, faulted)
    state = where / "run.db"
    # A write every few moments: kills land in them too.
    args = [*RUN, "--seed", str(seed), *extra, "--state", str(state), "--checkpoint-every", "5"]
    kill_after(args, state, where, wait)
    # Whether the kill cut a checkpoint's write short (its transaction's journal is left).
    event("killed during a write" if _cut_short(state) else "killed between writes")
    resumed = spaceactors("resume", str(state), "--progress", "never", cwd=where)
    if resumed.returncode == 2 and "no checkpoint yet" in resumed.stderr:
        event("killed before the first checkpoint")
        return  # killed before its first checkpoint: refused, saying so
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[1:] == whole_command(seed, faulted)


def _cut_short(state: Path) -> bool:
    return any(state.parent.glob(state.name + "-*"))  # a hot journal (or WAL) beside it
