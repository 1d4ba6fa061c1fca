"""A system that sends reliably (ordered and unordered streams, retries, duplicates, failures,
a sender that stops with messages in flight), checkpointed at a quiescent point and resumed in
a fresh Trio run, continues exactly: the same events, the same deliveries, the same reliable
statistics at the end. A damaged checkpoint is refused with a `CheckpointError` naming what is
wrong."""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable
from typing import Any

import pytest
import trio

import spaceactors as sa
from spaceactors.checkpoint import engine, quiescence
from spaceactors.checkpoint import reliable as reliable_part
from spaceactors.errors import CheckpointError
from tests.checkpoint_support import VALUES, resume_from_point, resumed_clock, take_at

END = 24.0
SINKS = ["sink_u", "sink_o"]
WAIT_AT = 1.55  # when the main task waits a moment for a message in flight


class Recorder(sa.Actor):
    """Keeps what the sinks handled, in order (it never crashes: its log is the outcome)."""

    def __init__(self) -> None:
        self.log: list[tuple[float, str, str]] = []

    async def handle(self, message: object) -> object:
        assert isinstance(message, tuple)
        name, text = message
        self.log.append((trio.current_time(), str(name), str(text)))
        return None


class Sink(sa.Actor):
    """Handles reliable messages; crashes on some (a retry brings them back), is slow on some
    (retries of later messages go out meanwhile: duplicates), and always crashes on poison
    (its message fails after its retries). The burst's first transmissions crash it: they come
    back with their retries, the burst's sender stopped meanwhile."""

    async def on_start(self) -> None:
        self.ctx.subscribe("alerts.*")

    async def handle(self, message: object) -> object:
        text = str(message)
        now = trio.current_time()
        rng = self.ctx.system.rng(f"{self.ctx.name}/{text}/{now!r}")
        if text.startswith("poison") or rng.random() < 0.2 or (text[0] == "b" and now < 2.0):
            raise RuntimeError(f"cannot take {text}")
        if rng.random() < 0.25:
            await trio.sleep(0.08)  # longer than the senders' timeout
        await self.ctx.send("recorder", (self.ctx.name, text))
        return None


class Sender(sa.Actor):
    """On each tick, sends reliably to both sinks: unordered, ordered, and now and then poison
    or a reliable publish to the sinks' topic."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.count = 0

    async def on_start(self) -> None:
        self.ctx.every(self.period, "tick")

    async def handle(self, message: object) -> object:
        self.count += 1
        me, reliable = self.ctx.self_ref, self.ctx.system.reliable
        text = f"{self.ctx.name}:{self.count}"
        await reliable.send("sink_u", text, timeout=0.05, max_retries=4, sender=me)
        await reliable.send("sink_o", text, timeout=0.05, max_retries=4, sender=me, ordered=True)
        if self.count % 9 == 0:
            await reliable.send("sink_u", f"poison {text}", timeout=0.03, max_retries=2, sender=me)
        if self.count % 4 == 0:
            await reliable.publish("alerts.count", f"alert {text}", timeout=0.05, sender=me)
        return None


class Burst(sa.Actor):
    """Sends a burst reliably (ordered) with the default options, then stops for good at once:
    its streams outlive it with messages in flight."""

    async def on_start(self) -> None:
        self.ctx.after(1.5, "go")

    async def handle(self, message: object) -> object:
        for n in range(4):
            await self.ctx.system.reliable.send(
                "sink_o", f"burst {n}", sender=self.ctx.self_ref, ordered=True
            )
        await self.ctx.system.reliable.send("sink_u", "anonymous burst")
        self.ctx.stop()
        return None


async def build(system: sa.ActorSystem) -> None:
    await system.spawn(Recorder, name="recorder")
    sinks = await system.spawn_supervisor("sinks", max_restarts=1000, within=1.0)
    for name in SINKS:
        await sinks.start_child(sa.ChildSpec(name, Sink))
    for i, period in enumerate((0.5, 0.7, 1.1)):
        await system.spawn(Sender, period, name=f"s{i}")
    await system.spawn(Burst, name="burst", restart=sa.Restart.TEMPORARY)


def recorder_log(system: sa.ActorSystem) -> list[Any]:
    cell = system.registry.get("recorder")._cell  # type: ignore[union-attr]
    assert isinstance(cell.actor, Recorder)
    return list(cell.actor.log)


async def outcomes(system: sa.ActorSystem) -> list[object]:
    """What `delivered` answers for every id sent so far (receipts, failures, pending)."""
    reliable = system.reliable
    found: list[object] = []
    for message_id in range(1, reliable.state.book.issued + 1):
        if message_id in reliable.state.pending:
            found.append("pending")
            continue
        try:
            found.append(await reliable.delivered(message_id))
        except sa.SpaceActorsError as error:
            found.append((type(error).__name__, str(error)))
    return found


def plain_rng(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with its jitter generator as its state (generators compare by identity)."""
    return {**doc, "rng": doc["rng"].getstate()}


Wanted = Callable[[sa.ActorSystem], bool]


def in_flight(system: sa.ActorSystem) -> bool:
    return system.reliable.pending_count() > 0


async def main(
    resume: dict[str, Any] | None = None,
    at: float | None = None,
    out: list[Any] | None = None,
    wanted: Wanted = in_flight,
    trace: bool = True,
    system_seed: int = 5,
) -> dict[str, Any]:
    watch = quiescence.Quiescence()
    trio.lowlevel.add_instrument(watch)
    again: list[dict[str, Any]] = []
    async with sa.open_system(seed=system_seed, trace=trace) as system:
        if resume is None:
            await build(system)
        else:
            check = await resume_from_point(system, resume)

            def save_again() -> bool:  # at the first quiescent point: the state as it was
                again.append(plain_rng(reliable_part.save(system, engine.Saving(VALUES, {}))))
                return True

            watch.wait(save_again)
        if at is not None and out is not None:
            take_at(system, at, out, wanted)
        fingerprint: list[dict[str, Any]] = []

        def look() -> bool:
            if trio.current_time() < END - 2.0 or engine.busy(system) is not None:
                return False
            fingerprint.append(plain_rng(reliable_part.save(system, engine.Saving(VALUES, {}))))
            return True

        watch.wait(look)
        if trio.current_time() < WAIT_AT:  # a `delivered` wait that gives up: its mark stays
            await trio.sleep_until(WAIT_AT)
            with trio.move_on_after(0.001):
                await system.reliable.delivered(max(system.reliable.state.pending))
        await trio.sleep_until(END)
        events = [] if system.trace is None else list(system.trace.events)
        result = {
            "stats": system.reliable.stats(),
            "log": recorder_log(system),
            "dead": system.dead_letters.total,
            "outcomes": await outcomes(system),
            "state": fingerprint,
            "again": again,
        }
    if resume is not None:
        check()
    result["events"] = [
        (e.time, e.kind.value, e.actor, e.peer, e.message_type, e.detail) for e in events
    ]
    return result


def resume_from(point: dict[str, Any], trace: bool = True, system_seed: int = 5) -> dict[str, Any]:
    assert point["engine"]["time"] < END - 2.0  # before the state is compared (see `main`)
    resumed = functools.partial(main, point, trace=trace, system_seed=system_seed)
    result: dict[str, Any] = sa.run(resumed, clock=resumed_clock(point), seed=9)
    return result


@pytest.fixture(scope="module")
def whole() -> dict[str, Any]:
    result: dict[str, Any] = sa.run(main, seed=9)
    stats = result["stats"]
    # The run exercises what a checkpoint must hold: retries, duplicates, failures.
    assert stats.retried > 20, stats
    assert stats.duplicates_suppressed > 0, stats
    assert stats.failed > 0, stats
    assert len(result["state"]) == 1
    return result


@pytest.mark.parametrize("at", [1.0, 1.6, 2.3, 5.0, 9.4, 17.0])
def test_a_resumed_run_continues_reliable_delivery_exactly(
    whole: dict[str, Any], at: float
) -> None:
    saved: list[Any] = []
    interrupted = sa.run(main, None, at, saved, seed=9)
    assert interrupted == whole  # taking the checkpoint changed nothing
    (point,) = saved
    held = point["engine"]["reliable"]
    assert held["pending"], "the checkpoint was to be taken with messages in flight"
    rest = resume_from(point)
    assert rest["again"] == [plain_rng(held)]  # saved again at once: the same state
    assert rest["events"] == whole["events"][point["events"] :]
    assert rest["log"] == whole["log"]
    assert rest["stats"] == whole["stats"]
    assert rest["dead"] == whole["dead"]
    assert rest["outcomes"] == whole["outcomes"]
    assert rest["state"] == whole["state"]  # reliable delivery's whole state, late in the run


def with_timers_and_held(system: sa.ActorSystem) -> bool:
    """A point with a message held by an ordered stream and retries armed."""
    state = system.reliable.state
    receiver = system.registry.get("sink_o")._cell._receiver  # type: ignore[union-attr]
    return (
        receiver is not None
        and any(s.held for s in receiver.streams.values())
        and any(e.extra is not None and e.extra.timer is not None for e in state.pending.values())
    )


def stopped_sender_in_flight(system: sa.ActorSystem) -> bool:
    """A point where the stopped burst actor's messages are still in flight."""
    return any(
        e.stream.sender is not None and not e.stream.sender.alive
        for e in system.reliable.state.pending.values()
    )


def ordered_gap_of_a_live_sender(system: sa.ActorSystem) -> bool:
    """A point where a live sender's ordered stream has a message in flight that its next
    message must wait for (the stream must be the same one after the resume)."""
    return any(
        e.stream.ordered and e.stream.sender is not None and e.stream.sender.alive
        for e in system.reliable.state.pending.values()
        if e.extra is not None and e.extra.timer is not None
    )


def published_in_flight(system: sa.ActorSystem) -> bool:
    """A point where a reliable publish's message is in flight."""
    return any(
        e.extra is not None and e.extra.topic is not None
        for e in system.reliable.state.pending.values()
    )


def waited_for_in_flight(system: sa.ActorSystem) -> bool:
    """A point where a message somebody waited for (and gave up on) is still in flight."""
    return any(
        e.extra is not None and e.extra.done is not None
        for e in system.reliable.state.pending.values()
    )


@pytest.mark.parametrize(
    "wanted",
    [
        waited_for_in_flight,
        with_timers_and_held,
        stopped_sender_in_flight,
        ordered_gap_of_a_live_sender,
        published_in_flight,
    ],
)
def test_a_resume_from_each_kind_of_reliable_state(whole: dict[str, Any], wanted: Wanted) -> None:
    saved: list[Any] = []
    sa.run(main, None, 0.0, saved, wanted, seed=9)
    (point,) = saved
    rest = resume_from(point)
    assert rest["events"] == whole["events"][point["events"] :]
    assert (rest["log"], rest["stats"]) == (whole["log"], whole["stats"])
    assert (rest["outcomes"], rest["state"]) == (whole["outcomes"], whole["state"])
    assert rest["again"] == [plain_rng(point["engine"]["reliable"])]


@pytest.mark.parametrize("at", [2.3, 11.0])
def test_without_a_trace_too(at: float) -> None:
    """Without a trace, sends take the fast path (no tap): the same deliveries and counts."""
    whole = sa.run(main, None, None, None, in_flight, False, seed=9)
    saved: list[Any] = []
    sa.run(main, None, at, saved, in_flight, False, seed=9)
    (point,) = saved
    rest = resume_from(point, trace=False)
    assert (rest["log"], rest["stats"], rest["dead"]) == (
        whole["log"],
        whole["stats"],
        whole["dead"],
    )


def _plain(value: object, where: str) -> None:
    """Fail unless `value` is plain data (what msgpack carries without ext types)."""
    if value is None or type(value) in (bool, int, float, str):
        return
    if type(value) is list:
        for i, item in enumerate(value):
            _plain(item, f"{where}[{i}]")
        return
    assert type(value) is dict, f"{where} is a {type(value).__name__}"
    for key, item in value.items():
        assert type(key) is str, f"{where} has a {type(key).__name__} key"
        _plain(item, f"{where}.{key}")


def test_the_reliable_state_is_plain_data(point: dict[str, Any]) -> None:
    """Everything but what went through the converter (messages, option values, the jitter
    generator: the stand-in converter keeps those as they are) is plain data."""
    held = copy.deepcopy(point["engine"]["reliable"])
    assert held["envelopes"]
    assert held["schedule"]["entries"]
    del held["rng"]
    for envelope in held["envelopes"]:
        assert isinstance(envelope.pop("message"), str)
    for options in held["options"]:
        assert all(type(v) in (int, float) for v in options.pop("values"))
    _plain(held, "reliable")


SWEEP = [
    (system_seed, round(random.Random(system_seed).uniform(0.5, END / 2 - 1.0), 3) + shift)
    for system_seed in (11, 23, 37)
    for shift in (0.0, END / 2 - 4.0)  # (before END - 2, where the state is compared)
]


@pytest.mark.parametrize(("system_seed", "at"), SWEEP)
def test_other_seeds_and_moments_continue_exactly_too(system_seed: int, at: float) -> None:
    """Other systems (their sinks crash and dawdle on other messages) at other moments."""
    whole = sa.run(functools.partial(main, system_seed=system_seed), seed=9)
    saved: list[Any] = []
    run = functools.partial(main, None, at, saved, system_seed=system_seed)
    assert sa.run(run, seed=9) == whole
    (point,) = saved
    rest = resume_from(point, system_seed=system_seed)
    assert rest["events"] == whole["events"][point["events"] :]
    for part in ("log", "stats", "dead", "outcomes", "state"):
        assert rest[part] == whole[part], part


@pytest.fixture(scope="module")
def point() -> dict[str, Any]:
    saved: list[Any] = []
    sa.run(main, None, 2.3, saved, seed=9)
    return dict(saved[0])


def _damage(doc: dict[str, Any], path: list[Any], value: object) -> None:
    *parents, last = path
    for key in parents:
        doc = doc[key]
    if value is KeyError:
        del doc[last]
    else:
        doc[last] = value


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (["format"], 99, "format 99"),
        (["pending", 0], 10**9, "message 1000000000"),
        (["streams", 0, "id"], 10**6, "stream"),
        (["envelopes", 0, "stream"], 777, "stream 777"),
        (["envelopes", 0, "options"], 55, "options 55"),
        (["actors", 0, "id"], 4242, "actor #4242"),
        (["schedule", "entries", 0, 2], "later", "'later'"),
        (["counters"], KeyError, "damaged"),
        (["book", "ring"], "everything", "damaged"),
    ],
)
def test_a_damaged_reliable_state_is_refused_naming_what(
    point: dict[str, Any], path: list[Any], value: object, named: str
) -> None:
    damaged = copy.deepcopy(point)
    _damage(damaged["engine"]["reliable"], path, value)
    with pytest.raises(CheckpointError, match="reliable") as caught:
        resume_from(damaged)
    assert named in str(caught.value)


def test_a_send_waiting_for_room_is_no_moment_for_a_checkpoint() -> None:
    """A send blocked in its first transmission (a task mid-await) cannot be held."""

    class Slow(sa.Actor):
        async def handle(self, message: object) -> object:
            return None

    reasons: list[str | None] = []

    async def scenario() -> None:
        async with sa.open_system(seed=1) as system:
            ref = await system.spawn(Slow, name="slow", mailbox_size=1)
            ref.pause()
            await trio.sleep(0.1)
            await ref.send("fills the mailbox")
            watch = quiescence.Quiescence()

            def look() -> bool:
                reasons.append(reliable_part.busy(system))
                return True

            watch.wait(look)
            trio.lowlevel.add_instrument(watch)
            with trio.move_on_after(1.0):
                await system.reliable.send(ref, "waits for room")
            ref.resume()

    sa.run(scenario, seed=1)
    (reason,) = reasons
    assert reason is not None
    assert "first transmission" in reason
