"""A service never crash-loops on one request: a bad target is refused at the call (`TypeError`
for a wrong type, `ActorNotFound` for an unknown name or id), and a queued request that still
fails inside a service becomes a dead letter while the service goes on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa


class Inbox(sa.Actor):
    """Keeps what it receives in a shared list; on ("send", target, msg) it sends `msg`."""

    def __init__(self, got: list[Any]) -> None:
        self.got = got

    async def handle(self, message: object) -> object:
        if isinstance(message, tuple) and message[0] == "send":
            await self.ctx.send(message[1], message[2])
            return None
        if isinstance(message, tuple) and message[0] == "subscribe":
            self.ctx.subscribe(message[1])
            return None
        self.got.append(message)
        return None


Call = Callable[[sa.ActorSystem, Any], Awaitable[object]]


async def _sync(value: object) -> object:
    await trio.lowlevel.checkpoint()
    return value


def limiter(system: sa.ActorSystem) -> sa.RateLimitedSender:
    return sa.RateLimitedSender(system.router, max_concurrent=1, queue_limit=4, rate=100.0)


# Every entry point that takes a target, as the user calls it.
ENTRY_POINTS: dict[str, Call] = {
    "router.route": lambda s, t: s.router.route(t, "m"),
    "router.try_route": lambda s, t: _sync(s.router.try_route(t, "m")),
    "router.ask": lambda s, t: s.router.ask(t, "m", 1.0),
    "router.send_later": lambda s, t: _sync(s.router.send_later(1.0, t, "m")),
    "router.subscribe": lambda s, t: _sync(s.router.subscribe(t, "news")),
    "router.unsubscribe": lambda s, t: _sync(s.router.unsubscribe(t, "news")),
    "system.send": lambda s, t: s.send(t, "m"),
    "system.try_send": lambda s, t: _sync(s.try_send(t, "m")),
    "system.ask": lambda s, t: s.ask(t, "m", 1.0),
    "system.lookup": lambda s, t: _sync(s.lookup(t)),
    "reliable.send": lambda s, t: s.reliable.send(t, "m"),
    "limiter.submit": lambda s, t: _sync(limiter(s).submit(t, "m")),
    "RateLimitedSender.send": lambda s, t: limiter(s).send(t, "m"),
    "RateLimitedSender.send_waiting": lambda s, t: limiter(s).send_waiting(t, "m"),
}

WRONG_TYPES: dict[str, object] = {
    "None": None,
    "float": 3.14,
    "bool": True,
    "bytes": b"inbox",
    "list": ["inbox"],
    "tuple": ("inbox",),
    "object": object(),
    "ActorSystem": "system",  # replaced by the system itself below
}

UNKNOWN: dict[str, object] = {
    "unknown name": "nobody",
    "unknown id": 10_000,
    "negative id": -1,
    "huge id": 10**5000,
    "very long name": "x" * 4000,
}


async def still_works(system: sa.ActorSystem, inbox: sa.ActorRef, got: list[Any]) -> None:
    """The system carries on: a good send through the router and the limiter arrives."""
    before = len(got)
    await system.router.route("inbox", "good")
    sender = limiter(system)
    sender.submit("inbox", "queued")
    await trio.sleep(0.5)
    assert got[before:] == ["good", "queued"]
    assert system.gave_up is None
    assert system.services.child("router").restarts == 0
    assert system.services.child("limiter").restarts == 0
    assert inbox.alive


@pytest.mark.parametrize("target_kind", list(WRONG_TYPES))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_a_target_of_the_wrong_type_is_a_type_error_at_the_call(
    autojump_clock: trio.testing.MockClock, entry: str, target_kind: str
) -> None:
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        target = system if target_kind == "ActorSystem" else WRONG_TYPES[target_kind]
        letters = system.dead_letters.total
        with pytest.raises(TypeError, match="a target is an ActorRef") as error:
            await ENTRY_POINTS[entry](system, target)
        assert type(target).__name__ in str(error.value)
        assert len(str(error.value)) < 200
        assert system.dead_letters.total == letters  # refused, not sent: no dead letter
        await still_works(system, inbox, got)


@pytest.mark.parametrize("target_kind", list(UNKNOWN))
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_an_unknown_name_or_id_is_actor_not_found_at_the_call(
    autojump_clock: trio.testing.MockClock, entry: str, target_kind: str
) -> None:
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        with pytest.raises(sa.ActorNotFound, match="no live actor has the") as error:
            await ENTRY_POINTS[entry](system, UNKNOWN[target_kind])
        assert len(str(error.value)) < 200  # the target is cut, never echoed in full
        await still_works(system, inbox, got)


async def test_an_actor_sending_to_a_bad_target_crashes_itself_not_the_router(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        sender = await system.spawn(Inbox, [], name="sender")
        with pytest.raises(sa.ActorCrashed) as crash:
            await sender.ask(("send", None, "m"))
        assert isinstance(crash.value.__cause__, TypeError)
        with pytest.raises(sa.ActorCrashed):
            await sender.ask(("subscribe", 42))  # not a topic: InvalidTopic
        await still_works(system, inbox, got)


async def test_the_issue_input_a_float_target_on_the_limiter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        sender = limiter(system)
        with pytest.raises(TypeError, match=r"got float 3\.14"):
            sender.submit(3.14, "x")  # type: ignore[arg-type]
        sender.submit(inbox, "good")
        await trio.sleep(1.0)
        assert got == ["good"]
        assert sender.queued == 0
        assert system.services.child("limiter").restarts == 0
        with pytest.raises(TypeError, match="got NoneType None"):
            await system.router.route(None, "m")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        lambda s, r: s.router.send_later(1.0, r, "m", sender="me"),
        lambda s, r: s.router.try_route(r, "m", sender=3),
        lambda s, r: s.router.ask(r, "m", sender=object()),
        lambda s, r: s.router.route("inbox", "m", sender="me"),
        lambda s, r: s.router.broadcast("m", sender="me"),
        lambda s, r: s.router.publish("news", "m", sender="me"),
        lambda s, r: s.reliable.send(r, "m", sender="me"),
        lambda s, r: s.router.subscribe(r, "news", policy="block"),
        lambda s, r: s.router.broadcast("m", policy="drop"),
    ],
    ids=[
        "send_later",
        "try_route",
        "ask",
        "route-by-name",
        "broadcast",
        "publish",
        "reliable",
        "subscribe-policy",
        "broadcast-policy",
    ],
)
async def test_a_bad_sender_or_policy_is_a_type_error_at_the_call(
    autojump_clock: trio.testing.MockClock, call: Callable[[sa.ActorSystem, sa.ActorRef], Any]
) -> None:
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        system.router.subscribe(inbox, "news")

        async def attempt() -> None:
            result = call(system, inbox)
            if isinstance(result, Awaitable):
                await result

        with pytest.raises((TypeError, ValueError)) as refused:
            await attempt()
        # The sender names an actor (a TypeError, as for targets); the policy is a value.
        kind, words = (
            (ValueError, "policy must be")
            if "policy must be" in str(refused.value)
            else (TypeError, "sender must be an ActorRef")
        )
        assert type(refused.value) is kind
        assert words in str(refused.value)
        await trio.sleep(2.0)
        assert got == []  # nothing went out
        await still_works(system, inbox, got)


@pytest.mark.parametrize("bad_id", ["1", 1.0, None, True, [1]])
async def test_delivered_with_an_id_of_the_wrong_type_is_a_value_error(
    autojump_clock: trio.testing.MockClock, bad_id: object
) -> None:
    async with sa.open_system() as system:
        inbox = await system.spawn(Inbox, [], name="inbox")
        message_id = await system.reliable.send(inbox, "m")
        with pytest.raises(ValueError, match="reliable message id is the int"):
            await system.reliable.delivered(bad_id)  # type: ignore[arg-type]
        with pytest.raises(KeyError):
            await system.reliable.delivered(message_id + 1000)
        receipt = await system.reliable.delivered(message_id)
        assert receipt.attempts == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda s, r: s.router.send_later(1.0, r, sa.GetStatus()),
        lambda s, r: limiter(s).submit(r, sa.GetStatus()),
    ],
    ids=["send_later", "limiter.submit"],
)
async def test_a_get_status_cannot_be_queued_for_later(
    autojump_clock: trio.testing.MockClock, call: Callable[[sa.ActorSystem, sa.ActorRef], Any]
) -> None:
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        with pytest.raises(ValueError, match="GetStatus has a reply"):
            call(system, inbox)
        await still_works(system, inbox, got)


async def test_a_queued_message_whose_actor_stops_is_a_dead_letter_and_the_queue_goes_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        got: list[Any] = []
        doomed = await system.spawn(Inbox, [], name="doomed")
        inbox = await system.spawn(Inbox, got, name="inbox")
        sender = sa.RateLimitedSender(
            system.router, max_concurrent=1, queue_limit=4, rate=1.0, burst=1.0
        )
        sender.submit(inbox, 1)  # goes out at once (one token)
        sender.submit(doomed, "lost")  # waits a second for its token...
        sender.submit(inbox, 2)
        await doomed.stop()  # ... and its actor stops meanwhile
        await trio.sleep(3.0)
        assert got == [1, 2]
        letters = [letter for letter in system.dead_letters.recent() if letter.message == "lost"]
        assert [letter.reason for letter in letters] == [sa.DeadLetterReason.ACTOR_STOPPED]
        assert system.services.child("limiter").restarts == 0


async def test_an_unexpected_error_sending_a_queued_message_is_a_dead_letter_with_the_reason(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = sa.Router.route

    async def fail_on_poison(self: sa.Router, target: Any, message: object, **kw: Any) -> None:
        if message == "poison":
            raise RuntimeError("something broke")
        await route(self, target, message, **kw)

    monkeypatch.setattr(sa.Router, "route", fail_on_poison)
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        sender = limiter(system)
        for message in (1, "poison", 2):
            sender.submit(inbox, message)
        await trio.sleep(1.0)
        assert got == [1, 2]
        letter = system.dead_letters.recent()[-1]
        assert (letter.message, letter.reason) == ("poison", sa.DeadLetterReason.SERVICE_FAILED)
        assert "something broke" in letter.detail
        assert system.services.child("limiter").restarts == 0


async def test_an_unexpected_error_delivering_a_scheduled_message_is_a_dead_letter(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    try_send = sa.ActorRef.try_send

    def fail_on_poison(self: sa.ActorRef, message: object) -> None:
        if message == "poison":
            raise RuntimeError("something broke")
        try_send(self, message)

    monkeypatch.setattr(sa.ActorRef, "try_send", fail_on_poison)
    async with sa.open_system() as system:
        got: list[Any] = []
        inbox = await system.spawn(Inbox, got, name="inbox")
        for delay, message in ((1.0, 1), (2.0, "poison"), (3.0, 2)):
            system.router.send_later(delay, inbox, message)
        await trio.sleep(4.0)
        assert got == [1, 2]
        letter = system.dead_letters.recent()[-1]
        assert (letter.message, letter.reason) == ("poison", sa.DeadLetterReason.SERVICE_FAILED)
        assert "something broke" in letter.detail
        assert system.services.child("router").restarts == 0
        assert system.router.stats().failed_deliveries == 1
