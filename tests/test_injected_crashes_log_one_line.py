"""A crash the fault plan injected is logged as one line (actor, message type, time,
"injected"), never with a traceback; a real crash keeps its traceback, so it stands out."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

import spaceactors as sa


class Teller(sa.Actor):
    """Counts deposits; a negative one is a real bug (it raises)."""

    def __init__(self) -> None:
        self.total = 0

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        if message < 0:
            raise ValueError(f"negative deposit {message}")
        self.total += message
        return self.total


def crash_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "spaceactors.actor" and "crashed" in r.message]


@pytest.mark.parametrize(
    "rule",
    [
        sa.CrashActor(actors=["teller"], every=3),
        sa.CrashActor(actors=["teller-*"], nth=2, name="second"),
        sa.CrashActor(actors=["teller"], probability=0.5),
    ],
)
async def test_injected_crashes_are_one_line_each_without_a_traceback(
    rule: sa.CrashActor, caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="spaceactors")
    name = "teller-1" if rule.nth else "teller"
    plan = sa.FaultPlan([rule])
    async with sa.open_system(seed=3, faults=plan, trace=True, max_restarts=100) as system:
        ref = await system.spawn(Teller, name=name)
        for amount in range(1, 13):
            await trio.sleep(0.5)
            await ref.send(amount)
        await trio.sleep(1.0)
        assert system.trace is not None
        crashes = [
            e for e in system.trace.events if e.kind is sa.EventKind.CRASH and e.actor == name
        ]
    lines = crash_lines(caplog)
    assert crashes, "the rule never fired: the test would prove nothing"
    assert len(lines) == len(crashes)
    for record, crash in zip(lines, crashes, strict=True):
        text = record.getMessage()
        assert record.exc_info is None
        assert record.levelno == logging.INFO
        assert "\n" not in text
        assert "Traceback" not in caplog.text
        assert f"actor {name!r} crashed handling int" in text
        assert f"t={crash.time:.6g} s" in text
        assert f"injected by fault rule {rule.name or 'CrashActor'}" in text


async def test_a_real_crash_keeps_its_traceback_beside_injected_ones(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    caplog.set_level(logging.INFO, logger="spaceactors")
    plan = sa.FaultPlan([sa.CrashActor(actors=["teller"], nth=1)])
    async with sa.open_system(seed=1, faults=plan) as system:
        ref = await system.spawn(Teller, name="teller")
        await ref.send(5)  # injected crash on the first message
        await trio.sleep(1.0)
        await ref.send(-2)  # a real bug
        await trio.sleep(1.0)
    injected, real = crash_lines(caplog)
    assert "injected" in injected.getMessage()
    assert injected.exc_info is None
    assert "injected" not in real.getMessage()
    assert real.exc_info is not None
    assert (injected.levelno, real.levelno) == (logging.INFO, logging.WARNING)
    assert isinstance(real.exc_info[1], ValueError)
    assert "negative deposit -2" in caplog.text
    assert caplog.text.count("Traceback") == 1


def test_an_injected_crash_names_its_rule() -> None:
    crash = sa.InjectedCrash("fault rule boom crashed 'a' on int", rule="boom")
    assert crash.rule == "boom"
    assert sa.InjectedCrash("x").rule == "CrashActor"


async def test_at_the_default_level_only_real_crashes_show(
    caplog: pytest.LogCaptureFixture, autojump_clock: trio.testing.MockClock
) -> None:
    # What a failing test's captured log shows by default: warnings and up.
    caplog.set_level(logging.WARNING, logger="spaceactors")
    plan = sa.FaultPlan([sa.CrashActor(actors=["teller"], every=2)])
    async with sa.open_system(seed=1, faults=plan, max_restarts=100) as system:
        ref = await system.spawn(Teller, name="teller")
        for amount in (1, 2, 3, 4, -1, 5, 6):
            await ref.send(amount)
            await trio.sleep(1.0)
    (line,) = crash_lines(caplog)
    assert "injected" not in line.getMessage()
    assert isinstance(line.exc_info[1], ValueError)  # type: ignore[index]
