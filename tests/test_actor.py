"""Actors, refs and mailboxes: delivery, backpressure, ask, crashes, control commands, timers."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

import spaceactors as sa


class Recorder(sa.Actor):
    """Records what it handles; answers "get" with the record; raises on "boom"."""

    def __init__(self, seen: list[Any] | None = None, gate: trio.Event | None = None) -> None:
        self.seen = [] if seen is None else seen
        self.gate = gate

    async def handle(self, message: object) -> object:
        if self.gate is not None:
            await self.gate.wait()
        if message == "boom":
            raise RuntimeError("boom")
        if message == "get":
            return list(self.seen)
        if message == "slow":
            await trio.sleep(10)
            return "done"
        self.seen.append(message)
        return None


async def test_messages_arrive_in_order_by_ref_id_and_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, seen, name="rec")
        await ref.send(1)
        await system.send(ref.id, 2)
        await system.send("rec", 3)
        ref.try_send(4)
        assert await ref.ask("get") == [1, 2, 3, 4]
        assert system.lookup("rec") is ref
        assert system.lookup(ref.id) is ref


async def test_a_sender_blocks_on_a_full_mailbox_and_resumes_when_the_actor_drains(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    seen: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, seen, gate, mailbox_size=2)
        sent = 0

        async def producer() -> None:
            nonlocal sent
            for i in range(10):
                await ref.send(i)
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            await trio.sleep(1)
            # One message is being handled (blocked on the gate), two wait in the mailbox.
            assert sent == 3
            assert ref.mailbox_depth == 2
            gate.set()
        assert sent == 10
        await ref.ask("get")
        assert seen == list(range(10))


async def test_try_send_raises_mailbox_full_naming_the_actor_and_capacity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, None, trio.Event(), name="ship-7", mailbox_size=3)
        for i in range(4):  # one taken by the (blocked) handler, three queued
            ref.try_send(i)
            await trio.lowlevel.checkpoint()
        with pytest.raises(sa.MailboxFull, match=r"mailbox of 'ship-7' \(3 slots\) is full"):
            ref.try_send("one too many")
        assert ref.mailbox_depth == 3


async def test_a_cancelled_blocked_send_enqueues_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    seen: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, seen, gate, mailbox_size=1)
        await ref.send("first")  # taken by the handler, which waits on the gate
        await trio.lowlevel.checkpoint()
        await ref.send("queued")
        with trio.move_on_after(5):
            await ref.send("never")
        gate.set()
        assert await ref.ask("get") == ["first", "queued"]


async def test_ask_timeout_covers_waiting_for_room_in_a_full_mailbox(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, None, trio.Event(), name="jammed", mailbox_size=1)
        await ref.send("a")
        await trio.lowlevel.checkpoint()
        await ref.send("b")  # now full, and the handler never finishes
        start = trio.current_time()
        with pytest.raises(sa.AskTimeout, match="room in its full mailbox") as caught:
            await ref.ask("get", timeout=2.5)
        assert trio.current_time() - start == pytest.approx(2.5)
        assert isinstance(caught.value, TimeoutError)


async def test_a_reply_after_the_ask_timed_out_becomes_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, name="slowpoke")
        with pytest.raises(sa.AskTimeout, match="waiting for a reply"):
            await ref.ask("slow", timeout=1.0)
        await trio.sleep(20)
        (letter,) = system.dead_letters.recent()
        assert letter.reason is sa.DeadLetterReason.REPLY_AFTER_TIMEOUT
        assert (letter.target, letter.message) == ("slowpoke", "done")


async def test_a_crash_during_ask_fails_the_caller_at_once_with_the_cause_chained(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, name="fragile")
        start = trio.current_time()
        with pytest.raises(sa.ActorCrashed, match="'fragile' crashed while handling str") as caught:
            await ref.ask("boom", timeout=60)
        assert trio.current_time() == start
        assert isinstance(caught.value.__cause__, RuntimeError)
        (letter,) = system.dead_letters.recent()
        assert letter.reason is sa.DeadLetterReason.CRASHED_WHILE_HANDLING
        assert letter.message == "boom"
        await trio.sleep(0.1)
        assert ref.alive
        assert ref.status().restarts == 1
        assert await ref.ask("get") == []  # a fresh instance after the restart


async def test_queued_messages_survive_a_restart(autojump_clock: trio.testing.MockClock) -> None:
    seen: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, seen, mailbox_size=8)
        for message in ["a", "boom", "b", "c"]:
            ref.try_send(message)
        assert await ref.ask("get") == ["a", "b", "c"]
        assert ref.status().restarts == 1


async def test_asking_a_stopped_actor_fails_at_once(autojump_clock: trio.testing.MockClock) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, name="gone")
        await ref.stop()
        assert not ref.alive
        with pytest.raises(sa.ActorUnavailable, match="'gone'"):
            await ref.ask("get", timeout=5)
        with pytest.raises(sa.ActorUnavailable):
            ref.try_send("x")
        reasons = [letter.reason for letter in system.dead_letters.recent()]
        assert reasons == [sa.DeadLetterReason.ACTOR_STOPPED] * 2


async def test_sending_to_an_unknown_actor_raises_and_records_a_dead_letter(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        with pytest.raises(sa.ActorNotFound, match="no live actor has the name 'nobody'"):
            await system.send("nobody", "hello")
        with pytest.raises(sa.ActorNotFound, match="id 999"):
            system.try_send(999, "hello")
        letters = system.dead_letters.recent()
        assert [(d.target, d.reason) for d in letters] == [
            ("nobody", sa.DeadLetterReason.UNKNOWN_ACTOR),
            ("999", sa.DeadLetterReason.UNKNOWN_ACTOR),
        ]


async def test_messages_left_in_the_mailbox_of_a_stopped_actor_become_dead_letters(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, None, gate, name="busy", mailbox_size=4, shutdown=1.0)
        await ref.send("handling")
        while ref.mailbox_depth:  # the actor is busy with "handling"
            await trio.lowlevel.checkpoint()
        await ref.send("left-1")
        await ref.send("left-2")
        async with trio.open_nursery() as nursery:

            async def asker() -> None:
                with pytest.raises(sa.ActorUnavailable, match="stopped before answering"):
                    await ref.ask("get")

            nursery.start_soon(asker)
            while ref.mailbox_depth < 3:  # the ask is queued before the stop begins
                await trio.lowlevel.checkpoint()
            await ref.stop()  # the handler never finishes: hard-cancelled after 1 s
        reasons = {(d.message, d.reason) for d in system.dead_letters.recent()}
        assert reasons == {
            ("handling", sa.DeadLetterReason.ACTOR_STOPPED),
            ("left-1", sa.DeadLetterReason.LEFT_IN_MAILBOX),
            ("left-2", sa.DeadLetterReason.LEFT_IN_MAILBOX),
            ("get", sa.DeadLetterReason.LEFT_IN_MAILBOX),
        }


async def test_a_sender_blocked_on_a_full_mailbox_gets_actor_unavailable_when_it_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, None, trio.Event(), mailbox_size=1, shutdown=0.5)
        await ref.send("a")
        await trio.lowlevel.checkpoint()
        await ref.send("b")
        async with trio.open_nursery() as nursery:

            async def blocked() -> None:
                with pytest.raises(sa.ActorUnavailable):
                    await ref.send("c")

            nursery.start_soon(blocked)
            await trio.sleep(1)
            await ref.stop()


class Lifecycle(sa.Actor):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_start(self) -> None:
        self.log.append(f"start:{self.ctx.name}:{self.ctx.restarts}")

    async def handle(self, message: object) -> object:
        if message == "stop":
            self.ctx.stop()
        elif message == "boom":
            raise RuntimeError("boom")
        return message

    async def on_stop(self) -> None:
        self.log.append(f"stop:{self.ctx.name}")


async def test_shutdown_runs_on_stop_and_a_transient_actor_stays_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Lifecycle, log, name="t", restart=sa.Restart.TRANSIENT)
        await ref.send(sa.Shutdown())
        await trio.sleep(1)
        assert log == ["start:t:0", "stop:t"]
        assert not ref.alive
        assert system.user.count_children().specs == 0


async def test_ctx_stop_is_a_normal_exit_after_the_current_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Lifecycle, log, name="n", restart=sa.Restart.TRANSIENT)
        assert await ref.ask("stop") == "stop"
        await trio.sleep(1)
        assert log == ["start:n:0", "stop:n"]
        assert not ref.alive


async def test_on_stop_also_runs_after_a_crash(autojump_clock: trio.testing.MockClock) -> None:
    log: list[str] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Lifecycle, log, name="c")
        ref.try_send("boom")
        await trio.sleep(1)
        assert log == ["start:c:0", "stop:c", "start:c:1"]


async def test_pause_stops_consumption_and_resume_gets_through_a_full_mailbox(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, seen, mailbox_size=2)
        ref.pause()
        await trio.sleep(1)
        assert ref.status().state is sa.ActorState.PAUSED
        sent = 0

        async def producer() -> None:
            nonlocal sent
            for i in range(5):
                await ref.send(i)
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(producer)
            await trio.sleep(10)
            assert (sent, seen, ref.mailbox_depth) == (2, [], 2)  # backpressure while paused
            await ref.send(sa.Resume())  # out of band: does not wait for room
        assert await ref.ask("get") == [0, 1, 2, 3, 4]
        assert ref.status().state is sa.ActorState.RUNNING


async def test_pause_sent_as_a_message_is_out_of_band_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Any] = []
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, seen)
        await ref.send(sa.Pause())
        await ref.send("x")
        await trio.sleep(1)
        assert seen == []
        ref.resume()
        await trio.sleep(0.1)
        assert seen == ["x"]


async def test_get_status_is_answered_by_the_runtime_even_while_busy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, None, trio.Event(), name="st", mailbox_size=4)
        for i in range(3):
            await ref.send(i)
        await trio.lowlevel.checkpoint()
        status = await ref.ask(sa.GetStatus(), timeout=1)
        assert status == sa.ActorStatus(
            actor_id=ref.id,
            name="st",
            state=sa.ActorState.RUNNING,
            mailbox_depth=2,
            mailbox_size=4,
            restarts=0,
            handled=0,
            last_error=None,
        )
        assert sa.decode(sa.encode(status)) == status  # it travels on the wire too
        with pytest.raises(ValueError, match=r"use `await ref.ask\(GetStatus\(\)\)`"):
            await ref.send(sa.GetStatus())


class Ticker(sa.Actor):
    def __init__(self, log: list[tuple[float, str]]) -> None:
        self.log = log

    async def on_start(self) -> None:
        self.ctx.after(1.5, "once")
        self.ctx.every(2.0, "tick")

    async def handle(self, message: object) -> object:
        self.log.append((trio.current_time(), str(message)))
        if message == "boom":
            raise RuntimeError("boom")
        return None


async def test_timers_fire_on_virtual_time_without_drift(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[tuple[float, str]] = []
    async with sa.open_system() as system:
        start = trio.current_time()
        await system.spawn(Ticker, log)
        await trio.sleep(7)
    assert [(round(t - start, 6), m) for t, m in log] == [
        (1.5, "once"),
        (2.0, "tick"),
        (4.0, "tick"),
        (6.0, "tick"),
    ]


async def test_timers_die_with_their_incarnation(autojump_clock: trio.testing.MockClock) -> None:
    log: list[tuple[float, str]] = []
    async with sa.open_system() as system:
        start = trio.current_time()
        ref = await system.spawn(Ticker, log)
        await trio.sleep(3)
        ref.try_send("boom")  # the restart re-arms fresh timers from its own start
        await trio.sleep(3)
        await ref.stop()
        await trio.sleep(10)
    times = [(round(t - start, 6), m) for t, m in log]
    assert times == [
        (1.5, "once"),
        (2.0, "tick"),
        (3.0, "boom"),
        (4.5, "once"),
        (5.0, "tick"),
    ]


async def test_timer_handles_cancel_and_reject_bad_delays(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Canceller(sa.Actor):
        async def on_start(self) -> None:
            self.timer = self.ctx.every(1.0, "tick")

        async def handle(self, message: object) -> object:
            self.timer.cancel()
            return self.timer.cancelled

    async with sa.open_system() as system:
        ref = await system.spawn(Canceller)
        await trio.sleep(5)
        assert ref.status().handled == 1
        ctx = sa.ActorContext(system.user._children[ref.name].runtime)  # type: ignore[arg-type]
        for bad in (-1.0, math.nan, math.inf):
            with pytest.raises(ValueError, match="delay must be"):
                ctx.after(bad, "x")
        with pytest.raises(ValueError, match="interval must be a finite number of seconds > 0"):
            ctx.every(0, "x")


async def test_spawn_reports_a_failed_start_and_keeps_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Broken(sa.Actor):
        async def on_start(self) -> None:
            raise OSError("no fuel")

    class BadInit(sa.Actor):
        def __init__(self) -> None:
            raise ValueError("bad args")

    async with sa.open_system() as system:
        with pytest.raises(sa.StartFailed, match="'broken' failed to start: OSError") as caught:
            await system.spawn(Broken, name="broken")
        assert isinstance(caught.value.__cause__, OSError)
        with pytest.raises(sa.StartFailed, match="ValueError"):
            await system.spawn(BadInit, name="badinit")
        with pytest.raises(sa.StartFailed, match=r"not a sa\.Actor"):
            await system.spawn(lambda: object(), name="notactor")
        assert system.user.count_children().specs == 0
        assert len(system.registry) == 0
        await system.spawn(Recorder, name="broken")  # the name is free again


async def test_names_are_unique_among_live_actors_and_reusable_after_stop(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        first = await system.spawn(Recorder, name="ceres")
        with pytest.raises(sa.NameTaken, match="'ceres'"):
            await system.spawn(Recorder, name="ceres")
        await first.stop()
        second = await system.spawn(Recorder, name="ceres")
        assert second.id != first.id
        assert system.lookup("ceres") is second


async def test_spawn_names_actors_it_is_not_given_a_name_for(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        a = await system.spawn(Recorder)
        b = await system.spawn(Recorder)
        assert (a.name, b.name) == ("recorder-1", "recorder-2")


async def test_a_busy_actor_yields_every_few_messages_so_others_progress(
    autojump_clock: trio.testing.MockClock,
) -> None:
    order: list[str] = []

    class Tagger(sa.Actor):
        def __init__(self, tag: str) -> None:
            self.tag = tag

        async def handle(self, message: object) -> object:
            order.append(self.tag)  # never awaits: only the loop's checkpoints yield
            return None

    async with sa.open_system() as system:
        a = await system.spawn(Tagger, "a", mailbox_size=1000)
        b = await system.spawn(Tagger, "b", mailbox_size=1000)
        for _ in range(1000):
            a.try_send(0)
            b.try_send(0)
        await trio.sleep(1)
    assert len(order) == 2000
    longest_run, run = 1, 1
    for previous, current in itertools.pairwise(order):
        run = run + 1 if current == previous else 1
        longest_run = max(longest_run, run)
    # Each actor yields every CHECKPOINT_EVERY messages; Trio may run it twice in a row.
    assert longest_run <= 2 * sa.actor.CHECKPOINT_EVERY


async def test_a_handler_error_in_a_plain_send_leaves_no_caller_hanging(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder)
        await ref.send("boom")
        assert await ref.ask("get", timeout=1) == []


async def test_leaving_open_system_propagates_the_block_error_unwrapped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def body() -> None:
        async with sa.open_system() as system:
            await system.spawn(Recorder)
            raise KeyError("lost")

    with pytest.raises(KeyError, match="lost"):
        await body()


class Starter(Recorder):
    async def on_start(self) -> None:
        pass


async def test_control_commands_take_no_mailbox_slot_even_right_after_a_wake_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Starter, name="woken", mailbox_size=2)
        await trio.sleep(1)  # parked on its empty mailbox
        for i in range(3):  # the first goes straight to the parked loop, two fill the mailbox
            ref.try_send(i)
        ref.pause()  # the loop has not run yet: its lane is read before the next message
        assert ref.mailbox_depth == 2
        with pytest.raises(sa.MailboxFull):
            ref.try_send("no room")
        await ref.stop()  # must not need a mailbox slot either
        assert not ref.alive


async def test_unavailable_errors_name_the_users_message_type_not_the_ask_wrapper(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Recorder, name="gone")
        await ref.stop()
        with pytest.raises(sa.ActorUnavailable, match="str recorded as a dead letter"):
            await ref.ask("get")


async def test_a_duplicate_spawn_name_is_reported_without_internal_paths(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        await system.spawn(Recorder, name="ceres")
        with pytest.raises(sa.NameTaken) as caught:
            await system.spawn(Recorder, name="ceres")
        assert str(caught.value).startswith("the name 'ceres' is taken by live actor #")


async def test_status_says_restarting_between_incarnations_and_stopped_at_the_end(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        fleet = await system.spawn_supervisor(
            "fleet", backoff=sa.Backoff(initial=2.0, maximum=2.0), children=[]
        )
        ref = await fleet.start_child(sa.ChildSpec("ship", Recorder))
        ref.try_send("boom")
        await trio.sleep(1)  # inside the 2 s backoff
        assert ref.status().state is sa.ActorState.RESTARTING
        await trio.sleep(2)
        assert ref.status().state is sa.ActorState.RUNNING
        await ref.stop()
        assert ref.status().state is sa.ActorState.STOPPED
