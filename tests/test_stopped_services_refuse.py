"""Every entry point of the router, the reliable service and the limiter refuses once its owner
stops (`ActorUnavailable`, saying so), instead of accepting work that nobody will do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa


class Inbox(sa.Actor):
    async def handle(self, message: object) -> object:
        return None


async def _sync(value: object) -> object:
    await trio.lowlevel.checkpoint()
    return value


Call = Callable[[sa.ActorSystem, sa.ActorRef, sa.RateLimitedSender], Awaitable[object]]

ENTRY_POINTS: dict[str, Call] = {
    "router.subscribe": lambda s, r, _: _sync(s.router.subscribe(r, "news")),
    "router.publish": lambda s, r, _: s.router.publish("news", "m"),
    "router.broadcast": lambda s, r, _: s.router.broadcast("m"),
    "router.send_later": lambda s, r, _: _sync(s.router.send_later(1.0, r, "m")),
    "reliable.send": lambda s, r, _: s.reliable.send(r, "m"),
    "limiter.submit": lambda s, r, limiter: _sync(limiter.submit(r, "m")),
}


def service_of(entry: str) -> str:
    return entry.split(".")[0]


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_every_entry_point_refuses_after_leaving_open_system(
    autojump_clock: trio.testing.MockClock, entry: str
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, name="inbox")
        limiter = sa.RateLimitedSender(system.router, max_concurrent=1, queue_limit=4, rate=1.0)
    with pytest.raises(sa.ActorUnavailable, match=f"the {service_of(entry)} service has stopped"):
        await ENTRY_POINTS[entry](system, ref, limiter)
    assert limiter.queued == 0
    assert system.router.state.schedule.pending() == 0


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_every_entry_point_refuses_once_the_services_are_stopped(
    autojump_clock: trio.testing.MockClock, entry: str
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, name="inbox")
        limiter = sa.RateLimitedSender(system.router, max_concurrent=1, queue_limit=4, rate=1.0)
        system.router.subscribe(ref, "news")
        await system.services.stop()
        assert ref.alive  # the user's actors still run: only the services are gone
        with pytest.raises(
            sa.ActorUnavailable, match=f"the {service_of(entry)} service has stopped"
        ):
            await ENTRY_POINTS[entry](system, ref, limiter)
        assert limiter.queued == 0
        assert system.router.state.schedule.pending() == 0
        assert system.reliable.pending_count() == 0


async def test_a_pending_reliable_message_cannot_be_waited_for_after_the_system_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Deaf(sa.Actor):
        async def handle(self, message: object) -> object:
            await trio.sleep_forever()
            return None

    async with sa.open_system() as system:
        ref = await system.spawn(Deaf, name="deaf", shutdown=sa.BRUTAL_KILL)
        await ref.send("busy")
        message_id = await system.reliable.send(ref, "m", timeout=20.0)
    with pytest.raises(sa.ActorUnavailable, match="reliable service has stopped"):
        await system.reliable.delivered(message_id)


async def test_a_crashed_router_service_still_takes_calls_and_serves_them_once_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    got: list[Any] = []

    class Keep(sa.Actor):
        async def handle(self, message: object) -> object:
            got.append(message)
            return None

    def crash(_: Any) -> None:
        raise RuntimeError("router service failure")

    async with sa.open_system() as system:
        ref = await system.spawn(Keep, name="keep")
        schedule = system.router.state.schedule
        schedule.call_at(trio.current_time() + 1.0, crash)
        await trio.sleep(1.0)  # the service crashed at 1.0 s (and restarts at once)
        system.router.send_later(0.5, ref, "later")
        system.router.subscribe(ref, "news")
        assert await system.router.publish("news", "published") == 1
        await trio.sleep(1.0)
        assert system.services.child("router").restarts == 1
        assert got == ["published", "later"]


async def test_the_limiter_refuses_as_soon_as_it_has_stopped_while_the_services_shut_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Inbox, name="inbox")
        limiter = sa.RateLimitedSender(system.router, max_concurrent=1, queue_limit=4, rate=1.0)
        limiter.submit(ref, "before")
        refused: list[str] = []

        async def submit_while_stopping() -> None:
            while system.limiter.life.serving:  # the services stop in reverse: limiter first
                await trio.lowlevel.checkpoint()
            with pytest.raises(sa.ActorUnavailable, match="the limiter service has stopped"):
                limiter.submit(ref, "during")
            refused.append("during")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(submit_while_stopping)
            await system.services.stop()
        assert refused == ["during"]


class Silent(sa.Actor):
    """Never acknowledges: every reliable message to it stays unsettled."""

    async def handle(self, message: object) -> object:
        await trio.sleep_forever()
        return None


async def test_a_delivered_call_waiting_when_the_system_closes_is_woken_and_refused(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcome: list[str] = []

    async def waiter(system: sa.ActorSystem, message_id: int) -> None:
        try:
            await system.reliable.delivered(message_id)
        except sa.ActorUnavailable as error:
            outcome.append(str(error))

    with trio.fail_after(60):
        async with trio.open_nursery() as outside, sa.open_system() as system:
            ref = await system.spawn(Silent, name="silent")
            message_id = await system.reliable.send(ref, "m", max_retries=100, timeout=5.0)
            outside.start_soon(waiter, system, message_id)
            await trio.sleep(1.0)
            assert outcome == []  # still waiting while the system runs
    assert len(outcome) == 1
    assert f"reliable message {message_id} was settled" in outcome[0]
