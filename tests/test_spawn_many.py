"""`ActorSystem.spawn_many`: a batch starts whole or not at all, and the process's garbage
collector is left as it was found."""

from __future__ import annotations

import gc

import pytest
import trio
import trio.testing

import spaceactors as sa
from tests.test_start_handshake import Sleeper


class Probe(sa.Actor):
    started: list[str] = []

    def __init__(self, fails: bool = False) -> None:
        if fails:
            raise RuntimeError("no hull")

    async def handle(self, message: object) -> object:
        return self.ctx.name


class Slow(sa.Actor):
    """Its start takes a virtual second; one named "bad" fails it."""

    async def on_start(self) -> None:
        await trio.sleep(1)
        if self.ctx.name == "bad":
            raise RuntimeError("no fuel")
        Probe.started.append(self.ctx.name)


def names(system: sa.ActorSystem) -> list[str]:
    return [info.name for info in system.user.which_children()]


async def test_a_batch_starts_in_order_and_every_actor_answers(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        refs = await system.spawn_many(sa.ChildSpec(f"p{i}", Probe) for i in range(100))
        assert [ref.name for ref in refs] == [f"p{i}" for i in range(100)]
        assert names(system) == [f"p{i}" for i in range(100)]
        assert [await ref.ask("who") for ref in refs[:3]] == ["p0", "p1", "p2"]
        assert await system.spawn_many([]) == []


async def test_the_on_starts_of_a_batch_run_side_by_side(
    virtual_clock: trio.testing.MockClock,
) -> None:
    Probe.started.clear()
    async with sa.open_system() as system:
        await system.spawn_many(sa.ChildSpec(f"s{i}", Slow) for i in range(10))
        assert trio.current_time() == 1.0  # ten starts of a second each, at once
        assert sorted(Probe.started) == sorted(f"s{i}" for i in range(10))


@pytest.mark.parametrize(
    ("specs", "error", "words"),
    [
        (["a", "b", "a"], sa.NameTaken, "the name 'a' appears twice in the batch"),
        (["a", "taken"], sa.NameTaken, "the name 'taken' is taken by live actor"),
    ],
)
async def test_a_name_taken_refuses_the_batch_before_anything_starts(
    virtual_clock: trio.testing.MockClock, specs: list[str], error: type[Exception], words: str
) -> None:
    async with sa.open_system() as system:
        await system.spawn(Probe, name="taken")
        with pytest.raises(error, match=words):
            await system.spawn_many(sa.ChildSpec(name, Probe) for name in specs)
        assert names(system) == ["taken"]


async def test_a_constructor_that_raises_discards_the_whole_batch(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        specs = [sa.ChildSpec("a", Probe), sa.ChildSpec("b", Probe, (True,))]
        with pytest.raises(sa.StartFailed, match=r"'b' failed to start: RuntimeError\('no hull'\)"):
            await system.spawn_many(specs)
        assert names(system) == []
        with pytest.raises(sa.ActorNotFound):
            system.lookup("a")
        await system.spawn_many(specs[:1])  # the names are free again


async def test_an_on_start_that_raises_stops_the_batch_and_names_the_actor(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        specs = [sa.ChildSpec(name, Slow) for name in ("s0", "bad", "s2")]
        specs.append(sa.ChildSpec("plain", Probe))
        with pytest.raises(
            sa.StartFailed, match=r"'bad' failed to start: RuntimeError\('no fuel'\)"
        ):
            await system.spawn_many(specs)
        assert names(system) == []
        assert system.registry.local("s0") is None
        assert system.registry.local("plain") is None


async def test_something_that_is_not_a_spec_is_refused(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        with pytest.raises(TypeError, match="spawn_many takes ChildSpecs, got 'a'"):
            await system.spawn_many(["a"])  # type: ignore[list-item]
        assert names(system) == []


async def test_a_closed_system_refuses_a_batch(virtual_clock: trio.testing.MockClock) -> None:
    async with sa.open_system() as system:
        pass
    with pytest.raises(sa.ActorUnavailable, match="cannot start 1 actors"):
        await system.spawn_many([sa.ChildSpec("late", Probe)])


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_collector_is_left_as_it_was_found(
    virtual_clock: trio.testing.MockClock, enabled: bool
) -> None:
    thresholds = gc.get_threshold()
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        async with sa.open_system() as system:
            await system.spawn_many(sa.ChildSpec(f"p{i}", Probe) for i in range(50))
            assert gc.isenabled() is enabled
            with pytest.raises(sa.StartFailed):
                await system.spawn_many([sa.ChildSpec("x", Probe, (True,))])
            assert gc.isenabled() is enabled
        assert gc.get_threshold() == thresholds
    finally:
        (gc.enable if was else gc.disable)()


class FailsAt(sa.Actor):
    async def on_start(self) -> None:
        await trio.sleep(1)
        raise RuntimeError("no fuel")


@pytest.mark.parametrize("order", [["slow", "fails"], ["fails", "slow"], ["a", "slow", "fails"]])
async def test_a_start_that_fails_is_raised_at_once_whatever_starts_before_it(
    virtual_clock: trio.testing.MockClock, order: list[str]
) -> None:
    Sleeper.cancelled.clear()
    kinds = {"slow": Sleeper, "fails": FailsAt, "a": Probe}
    async with sa.open_system() as system:
        with trio.fail_after(60), pytest.raises(sa.StartFailed, match="'fails' failed to start"):
            await system.spawn_many(sa.ChildSpec(name, kinds[name]) for name in order)
        assert trio.current_time() == 1.0  # when it failed, not when the slow one would end
        assert Sleeper.cancelled == ["slow"]  # called off
        assert names(system) == []
