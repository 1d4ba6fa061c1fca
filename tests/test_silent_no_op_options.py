"""Options that would silently do nothing are refused at construction: fault rules with no
target, empty partition groups, and mailbox bounds too large to ever push back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

import spaceactors as sa
from spaceactors.specs import MAX_MAILBOX_SIZE


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: sa.CrashActor(actors=[], nth=1), "CrashActor needs at least one actor"),
        (lambda: sa.CrashActor(actors=(), every=2), "CrashActor needs at least one actor"),
        (lambda: sa.PauseActor(actors=[], duration=1.0), "PauseActor needs at least one actor"),
        (lambda: sa.SlowActor(actors=[], seconds=1.0), "SlowActor needs at least one actor"),
        (lambda: sa.CrashActor(actors=[""], nth=1), "must hold non-empty names"),
        (lambda: sa.Partition(groups=[[], ["b"]]), "partition group 0 is empty"),
        (lambda: sa.Partition(groups=[["a"], ()]), "partition group 1 is empty"),
        (lambda: sa.Partition(groups=[["a"], ["b"], []]), "partition group 2 is empty"),
        (lambda: sa.Partition(groups=[["a"], [""]]), "must hold non-empty names"),
        (lambda: sa.Partition(groups=[["a"], [7]]), "must hold non-empty names"),
        (lambda: sa.Scope(actors=[""]), "must hold non-empty names"),
    ],
)
def test_a_fault_rule_with_no_target_is_refused_at_construction(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(sa.InvalidSpec, match=message):
        build()


def test_a_plan_read_from_json_refuses_empty_targets_too() -> None:
    plan = sa.FaultPlan([sa.CrashActor(actors=["ship-*"], nth=3)])
    text = plan.to_json().decode().replace('["ship-*"]', "[]")
    with pytest.raises(sa.DecodeError, match="CrashActor needs at least one actor"):
        sa.FaultPlan.from_json(text)
    assert sa.FaultPlan.from_json(plan.to_json()) == plan


def test_an_empty_scope_still_means_any() -> None:
    assert sa.Scope(actors=[]).covers("a", None, "m", None)


@pytest.mark.parametrize("size", [0, -1, 10**12, MAX_MAILBOX_SIZE + 1, 1.5, True, "64", None])
def test_child_spec_refuses_mailbox_sizes_out_of_range(size: Any) -> None:
    with pytest.raises(sa.InvalidSpec, match=r"child 'a': mailbox_size must be an int") as caught:
        sa.ChildSpec("a", sa.Actor, mailbox_size=size)
    assert len(str(caught.value)) < 200


async def test_spawn_caps_the_mailbox_and_the_cap_itself_works(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        with pytest.raises(
            sa.InvalidSpec, match=rf"mailbox_size must be an int in \[1, {MAX_MAILBOX_SIZE}\]"
        ):
            await system.spawn(sa.Actor, name="huge", mailbox_size=10**12)
        assert "huge" not in {child.name for child in system.user.which_children()}
        ref = await system.spawn(sa.Actor, name="big", mailbox_size=MAX_MAILBOX_SIZE)
        assert ref.status().mailbox_size == MAX_MAILBOX_SIZE
        ref.pause()
        for n in range(100):
            ref.try_send(n)
        assert ref.mailbox_depth == 100
