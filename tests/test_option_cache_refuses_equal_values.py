"""Option caches never let a value skip validation because it equals one seen.

`reliable.send` validates each (timeout, max_delay, jitter) combination once and caches it, and
`ChildSpec` (so `spawn` and `spawn_many`) each class's (restart, shutdown, mailbox_size).
``True == 1``, ``False == 0`` and ``Decimal(1) == 1``, so a cache keyed by value alone let
``timeout=True`` ride on a cached ``timeout=1``: the cache is keyed by type too.
"""

from __future__ import annotations

import fractions
from decimal import Decimal

import pytest
import trio

import spaceactors as sa

# (option, the valid value sent first, an equal value of the wrong type sent after it)
EQUAL_BUT_WRONG: list[tuple[str, object, object]] = [
    ("timeout", 1, True),
    ("timeout", 1.0, True),
    ("timeout", 2, Decimal(2)),
    ("timeout", 0.5, fractions.Fraction(1, 2)),
    ("max_delay", 30, Decimal(30)),
    ("max_delay", 1.0, True),
    ("jitter", 0, False),
    ("jitter", 0.0, False),
    ("jitter", 0.5, fractions.Fraction(1, 2)),
]


class Idle(sa.Actor):
    async def handle(self, message: object) -> None:
        pass


@pytest.mark.parametrize(("option", "good", "bad"), EQUAL_BUT_WRONG)
async def test_an_equal_value_of_the_wrong_type_is_refused_after_a_cached_one(
    autojump_clock: trio.testing.MockClock, option: str, good: object, bad: object
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Idle, name="idle")
        await system.reliable.send(ref, "first", **{option: good})
        with pytest.raises(ValueError, match=f"^{option} must be a number, got "):
            await system.reliable.send(ref, "second", **{option: bad})
        # refused every time, not only the first
        with pytest.raises(ValueError, match=f"^{option} must be a number"):
            await system.reliable.send(ref, "third", **{option: bad})
        # and the valid value still works, from the cache
        await system.reliable.send(ref, "fourth", **{option: good})
        assert system.reliable.stats().sent == 2


async def test_a_bool_is_refused_whether_or_not_its_number_was_used_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Idle, name="idle")
        with pytest.raises(ValueError, match=r"^timeout must be a number, got True"):
            await system.reliable.send(ref, 1, timeout=True)
        await system.reliable.send(ref, 1, timeout=1)
        with pytest.raises(ValueError, match=r"^timeout must be a number, got True"):
            await system.reliable.send(ref, 1, timeout=True)
        await system.reliable.send(ref, 1, jitter=0)
        with pytest.raises(ValueError, match=r"^jitter must be a number, got False"):
            await system.reliable.send(ref, 1, jitter=False)


# (spawn option, the valid value used first, an equal value of the wrong type used after it)
SPAWN_EQUAL_BUT_WRONG: list[tuple[str, object, object]] = [
    ("mailbox_size", 1, True),
    ("mailbox_size", 2, Decimal(2)),
    ("mailbox_size", 2, 2.0),
    ("shutdown", 1, True),
    ("shutdown", 0, False),
    ("shutdown", 0.5, fractions.Fraction(1, 2)),
]


@pytest.mark.parametrize(("option", "good", "bad"), SPAWN_EQUAL_BUT_WRONG)
async def test_a_spawn_option_equal_to_a_cached_one_but_of_the_wrong_type_is_refused(
    autojump_clock: trio.testing.MockClock, option: str, good: object, bad: object
) -> None:
    async with sa.open_system() as system:
        await system.spawn(Idle, **{option: good})
        for attempt in range(2):  # refused every time, not only the first
            with pytest.raises(sa.InvalidSpec, match=option):
                await system.spawn(Idle, name=f"bad-{attempt}", **{option: bad})
        with pytest.raises(sa.InvalidSpec, match=option):
            sa.ChildSpec("direct", Idle, **{option: bad})  # type: ignore[arg-type]
        await system.spawn(Idle, name="good-again", **{option: good})  # from the cache
        names = [info.name for info in system.user.which_children()]
        assert "good-again" in names
        assert not [name for name in names if "bad" in name]


async def test_args_and_kwargs_are_checked_whatever_the_cache_holds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sa.ChildSpec("first", Idle)
    with pytest.raises(sa.InvalidSpec, match="args must be a tuple"):
        sa.ChildSpec("second", Idle, args=[1])  # type: ignore[arg-type]
    with pytest.raises(sa.InvalidSpec, match="kwargs must be a mapping of argument names"):
        sa.ChildSpec("third", Idle, kwargs={1: 2})  # type: ignore[dict-item]


@pytest.mark.parametrize("option", ["restart", "shutdown", "mailbox_size"])
async def test_an_unhashable_spawn_option_is_refused_not_looked_up(
    autojump_clock: trio.testing.MockClock, option: str
) -> None:
    async with sa.open_system() as system:
        await system.spawn(Idle)  # the cache holds this class's defaults
        with pytest.raises(sa.InvalidSpec, match=option):
            await system.spawn(Idle, **{option: [1]})
