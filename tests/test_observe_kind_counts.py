"""/metrics reads its per-kind figures from `Lifecycle.live` (the children in the tree by kind,
kept while an observer watches) instead of walking the tree. That table must never drift from
the tree: every way a child joins it (spawn, a supervisor's children, a restart of a subtree)
and every way one leaves it (stop, terminate and delete, a transient exit, a failed start, a
whole subtree stopped, the system closing) is checked against a walk after each step, and the
per-kind counters against the sums over the tree plus the retired ones."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.cell import ActorCell
from spaceactors.clocks import run_control
from spaceactors.lifecycle import kind_of
from spaceactors.observe.model import take
from spaceactors.observe.tree import Walks, trouble, walk
from tests.test_observe_metrics import scrape, value


class Ship(sa.Actor):
    async def handle(self, message: object) -> object:
        if message == "boom":
            raise ValueError("hull breach")
        return message


class Station(Ship):
    pass


class Refuses(sa.Actor):
    async def on_start(self) -> None:
        raise RuntimeError("no berth")


def assert_live_is_the_tree(system: sa.ActorSystem) -> None:
    tree: dict[str, set[object]] = collections.defaultdict(set)
    for child in walk(system).children:
        tree[kind_of(child.spec)].add(child)
    live = {kind: set(members) for kind, members in system.lifecycle.live.items() if members}
    assert live == dict(tree)


def assert_counts_add_up(system: sa.ActorSystem, walks: Walks | None = None) -> None:
    """Per kind: the registry's sums equal the tree's, the retired ones apart; the restarts
    and crashes summed over the troubled few equal those summed over the tree; a kept walk
    (`walks`) is the tree now."""
    snapshot = take(system, run_control())
    tree = walk(system)
    if walks is not None:
        kept = walks.tree(system)
        assert (kept.children, kept.prefixes) == (tree.children, tree.prefixes)
    assert trouble(system) == (sum(tree.restarts), sum(tree.crashes))
    for kind, members in system.lifecycle.troubled.items():
        assert set(members) <= set(system.lifecycle.live[kind]), kind
    by_kind: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0])
    for child in walk(system).children:
        counts = by_kind[kind_of(child.spec)]
        counts[0] += 1
        counts[1] += getattr(child.runtime, "handled", 0)
        counts[2] += child.runtime.restarts
        counts[3] += child.crashes
    for kind, counts in snapshot.kinds.items():
        assert [counts.actors, counts.handled, counts.restarts, counts.crashes] == by_kind.get(
            kind, [0, 0, 0, 0]
        ), kind


async def test_the_per_kind_table_follows_every_change_of_the_tree(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        user = system.user

        async def spawn_fleet() -> None:
            for i in range(5):
                await system.spawn(Ship, name=f"ship-{i}")
            await system.spawn(Station, name="station-0")

        async def nested() -> None:
            fighters = [sa.ChildSpec(f"fighter-{i}", Ship) for i in range(4)]
            squad = sa.SupervisorSpec("squad", max_restarts=50, children=fighters)
            await system.spawn_supervisor(
                "wing", max_restarts=50, children=[squad, sa.ChildSpec("tender", Station)]
            )

        async def crash_some() -> None:
            for name in ("ship-0", "fighter-1", "tender"):
                with pytest.raises(sa.ActorCrashed, match="hull breach"):
                    await system.lookup(name).ask("boom")
            await trio.sleep(1)  # the restarts happen

        async def handle_some() -> None:
            for i in range(5):
                await system.lookup(f"ship-{i}").ask(i)

        async def stop_one() -> None:
            await system.lookup("ship-1").stop()

        async def terminate_and_delete_static() -> None:
            squad = user.child("wing").child("squad")
            await squad.terminate_child("fighter-0")
            squad.delete_child("fighter-0")
            await squad.stop_child("fighter-3")  # a static child stopped for good

        async def failed_start() -> None:
            with pytest.raises(sa.StartFailed):
                await system.spawn(Refuses, name="refuses")

        async def restart_a_subtree() -> None:
            wing = user.child("wing")
            await wing.terminate_child("squad")
            assert_live_is_the_tree(system)
            await wing.restart_child("squad")
            with pytest.raises(sa.ActorCrashed, match="hull breach"):
                await system.lookup("fighter-2").ask("boom")  # its subtree restarts it
            await trio.sleep(1)

        async def restart_siblings() -> None:
            # one_for_all: the crew restarts without having crashed
            await system.spawn_supervisor(
                "pair",
                strategy=sa.Strategy.ONE_FOR_ALL,
                max_restarts=50,
                children=[sa.ChildSpec("pilot", Ship), sa.ChildSpec("crew", Station)],
            )
            with pytest.raises(sa.ActorCrashed, match="hull breach"):
                await system.lookup("pilot").ask("boom")
            await trio.sleep(1)
            crew = system.user.child("pair")._children["crew"]
            assert (crew.runtime.restarts, crew.crashes) == (1, 0)

        async def stop_a_subtree() -> None:
            await user.stop_child("wing")

        steps: list[Callable[[], Awaitable[object]]] = [
            spawn_fleet,
            nested,
            handle_some,
            crash_some,
            stop_one,
            terminate_and_delete_static,
            failed_start,
            restart_a_subtree,
            restart_siblings,
            stop_a_subtree,
        ]
        assert_live_is_the_tree(system)  # the services the system started with
        walks = Walks()
        for step in steps:
            await step()
            assert_live_is_the_tree(system)
            assert_counts_add_up(system, walks)
        url = system.observe_url
        assert url is not None
        families = await scrape(url)
        # Counters never fall: the ships, the stopped and the restarted ones together.
        assert value(families, "spaceactors_messages_handled", kind="Ship") == 5
        # ship-0, fighter-1 and fighter-2 of the subtree that left, and the pair's pilot
        assert value(families, "spaceactors_restarts", kind="Ship") == 4
        assert value(families, "spaceactors_crashes", kind="Ship") == 4
        # the tender (crashed), and the pair's crew (restarted with the pilot, no crash)
        assert value(families, "spaceactors_restarts", kind="Station") == 2
        assert value(families, "spaceactors_crashes", kind="Station") == 1
        assert value(families, "spaceactors_actors", kind="Ship") == 5  # ship-1 stopped
        assert value(families, "spaceactors_actors", kind="Station") == 2  # the tender left


async def test_a_system_nobody_observes_keeps_no_table(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        await system.spawn(Ship, name="ship")
        assert not system.lifecycle.tallying
        assert system.lifecycle.live == {}
        assert system.lifecycle.retired == {}


async def test_a_walk_is_kept_while_the_tree_does_not_change(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        walks = Walks()
        ship = await system.spawn(Ship, name="ship")
        first = walks.tree(system)
        before = sum(first.handled)
        await ship.ask("hello")
        again = walks.tree(system)
        assert again.children is first.children  # not walked again
        assert sum(again.handled) == before + 1  # its counters read afresh
        with pytest.raises(sa.ActorCrashed):
            await ship.ask("boom")
        await trio.sleep(1)  # restarted: the same child, the tree unchanged
        assert walks.tree(system).children is first.children
        await system.spawn(Station, name="station")
        grown = walks.tree(system)
        assert grown.children is not first.children
        assert len(grown) == len(first) + 1


def test_restored_counts_join_an_observers_sums(tmp_path: Path) -> None:
    state = tmp_path / "run.db"

    async def program(resume: bool) -> None:  # one program for both runs, as a resume needs
        async with sa.open_system(observe=True, resume_from=state if resume else None) as system:
            if resume:
                assert_live_is_the_tree(system)
                assert_counts_add_up(system)
                assert trouble(system) == (3, 3)
                await trio.sleep(1)  # the rebuilt tasks run (the resume checks them at the end)
                return
            ship = await system.spawn(Ship, name="ship")
            for _ in range(3):
                with pytest.raises(sa.ActorCrashed):
                    await ship.ask("boom")
                await trio.sleep(1)
            await system.checkpoint(state)

    for resume in (False, True):  # each a run of its own, as a resume is
        trio.run(program, resume, clock=trio.testing.MockClock(autojump_threshold=0))


class StopFails(Ship):
    async def on_stop(self) -> None:
        raise RuntimeError("stuck airlock")


async def test_a_crash_while_stopping_is_counted_once(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        ref = await system.spawn(StopFails, name="bad")
        with pytest.raises(sa.ActorCrashed):
            await ref.ask("boom")
        await ref.ask("again")  # restarted (the crashed incarnation's on_stop raised too)
        await ref.stop()  # on_stop raises once more: a second crash, as it leaves the tree
        await trio.sleep(1)
        assert_live_is_the_tree(system)
        assert_counts_add_up(system)
        assert not system.lifecycle.troubled.get("StopFails")  # it left: counted as retired
        tally = system.lifecycle.retired["StopFails"]
        assert (tally.actors, tally.restarts, tally.crashes) == (1, 1, 2)


async def test_a_walk_read_while_a_child_leaves_is_not_kept(
    virtual_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's thread may read at any point of the system's: here, in the middle of a
    stop (as the stopped cell closes), which is where a kept walk could miss the change."""
    async with sa.open_system(observe=True) as system:
        walks = Walks()
        ref = await system.spawn(Ship, name="leaving")
        cell = ref._cell
        close = ActorCell.close

        def read_then_close(self: ActorCell) -> None:
            if self is cell:
                walks.tree(system)  # the server reads now
            close(self)

        monkeypatch.setattr(ActorCell, "close", read_then_close)
        await ref.stop()
        await trio.sleep(1)
        assert walks.tree(system).children == walk(system).children
        assert "leaving" not in [child.spec.name for child in walks.tree(system).children]


class StartsOnce(Ship):
    """Starts, crashes on "boom", then fails its next start, then starts again."""

    starts = 0

    async def on_start(self) -> None:
        type(self).starts += 1
        if type(self).starts == 2:
            raise RuntimeError("reactor cold")


async def test_a_restart_that_fails_to_start_is_counted_as_a_crash(
    virtual_clock: trio.testing.MockClock,
) -> None:
    """As ``spaceactors_crashes`` says: incarnations that ended with an error, failed
    starts included."""
    StartsOnce.starts = 0
    async with sa.open_system(observe=True, max_restarts=10, within=60) as system:
        ref = await system.spawn(StartsOnce, name="tug")
        with pytest.raises(sa.ActorCrashed):
            await ref.ask("boom")
        await trio.sleep(5)  # restarted: the start fails, then the next one works
        assert await ref.ask("ping") == "ping"
        (child,) = [c for c in walk(system).children if c.spec.name == "tug"]
        assert (child.runtime.restarts, child.crashes) == (2, 2)
        assert child.last_crash is not None
        assert child.last_crash[1] == "RuntimeError: reactor cold"
        assert_counts_add_up(system)
        assert system.observe_url is not None
        families = await scrape(system.observe_url)
        assert value(families, "spaceactors_crashes", kind="StartsOnce") == 2
        assert value(families, "spaceactors_restarts", kind="StartsOnce") == 2
