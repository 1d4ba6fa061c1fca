"""Nothing scheduled vanishes silently: a message still waiting to go out when the system closes
(`send_later`, a copy a fault plan held back) becomes a dead letter, `unsent_at_close`; timer
ticks die with their actor and are no dead letters."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import spaceactors as sa


class Log(sa.Actor):
    def __init__(self, log: list[object]) -> None:
        self.log = log

    async def on_start(self) -> None:
        self.ctx.every(10.0, "tick")
        self.ctx.after(50.0, "alarm")

    async def handle(self, message: object) -> object:
        self.log.append(message)
        return None


def unsent(system: sa.ActorSystem) -> list[sa.DeadLetter]:
    return [
        letter
        for letter in system.dead_letters.recent()
        if letter.reason is sa.DeadLetterReason.UNSENT_AT_CLOSE
    ]


async def test_a_send_later_not_yet_due_at_close_is_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[object] = []
    async with sa.open_system(trace=True) as system:
        await system.spawn(Log, log, name="log")
        system.router.send_later(100.0, "log", "late")
        system.router.send_later(1.0, "log", "early")
        entry = system.router.send_later(200.0, "log", "called off")
        entry.cancel()
        await trio.sleep(15.0)
    assert log == ["early", "tick"]
    letters = unsent(system)
    assert [(letter.target, letter.message) for letter in letters] == [("log", "late")]
    assert "85 s before it was due" in letters[0].detail
    assert system.trace is not None
    on_trace = [
        event
        for event in system.trace.events
        if event.kind is sa.EventKind.DEAD_LETTER and "unsent_at_close" in event.detail
    ]
    assert len(on_trace) == 1  # the trace counts what the dead letters count


async def test_a_copy_a_fault_held_back_at_close_is_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan([sa.DelayMessages(minimum=30.0, maximum=30.0, scope=sa.Scope(["str"]))])
    log: list[object] = []
    async with sa.open_system(faults=plan) as system:
        await system.spawn(Log, log, name="log")
        await system.router.route("log", "held")
        await trio.sleep(5.0)
    assert "held" not in log
    assert [letter.message for letter in unsent(system)] == ["held"]


async def test_messages_still_queued_in_a_rate_limited_sender_at_close_are_dead_letters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[object] = []
    async with sa.open_system() as system:
        await system.spawn(Log, log, name="log")
        limiter = sa.RateLimitedSender(system.router, 2, 10, rate=0.1, burst=1)
        for n in range(5):
            limiter.submit("log", f"m{n}")
        await trio.sleep(0.5)
    assert log == ["m0"]
    assert [letter.message for letter in unsent(system)] == ["m1", "m2", "m3", "m4"]
    assert limiter.queued == 0
    with pytest.raises(sa.ActorUnavailable, match="limiter service has stopped"):
        sa.RateLimitedSender(system.router, 2, 10, rate=1.0)
