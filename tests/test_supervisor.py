"""Supervision as OTP defines it: restart types, strategies, intensity, shutdown, escalation.

Every test runs in virtual time (``autojump_clock``). Actors record what happens to them in a
shared list of ``(name, event)`` pairs, so a test reads as the order of starts and stops.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import pytest
import trio
import trio.testing
from otp_rules import RESTART_MATRIX

import spaceactors as sa

Log = list[tuple[str, str]]


class Boom(Exception):
    """The failure the tests inject."""


class Probe(sa.Actor):
    """An actor that logs its life and does what its messages say.

    ``"whoami"`` answers with the instance itself (a new incarnation is a new instance),
    ``"boom"`` (or any exception instance) crashes it, ``"stop"`` ends it normally, ``"hang"``
    never returns. `on_start` takes `start_takes` seconds and raises once `fail_starts_after`
    starts have succeeded; `on_stop` takes `stop_takes` seconds (``math.inf``: it never ends).
    """

    def __init__(
        self,
        log: Log,
        *,
        start_takes: float = 0.0,
        stop_takes: float = 0.0,
        fail_starts_after: int | None = None,
    ) -> None:
        self.log = log
        self.start_takes = start_takes
        self.stop_takes = stop_takes
        self.fail_starts_after = fail_starts_after

    async def on_start(self) -> None:
        await trio.sleep(self.start_takes)
        name = self.ctx.name
        limit = self.fail_starts_after
        if limit is not None and self.log.count((name, "start")) >= limit:
            self.log.append((name, "start-failed"))
            raise Boom(f"{name} cannot start")
        self.log.append((name, "start"))

    async def handle(self, message: object) -> object:
        if message == "whoami":
            return self
        if message == "boom":
            raise Boom(f"{self.ctx.name} crashed")
        if isinstance(message, Exception):
            raise message
        if message == "stop":
            self.ctx.stop()
            return None
        if message == "hang":
            await trio.sleep_forever()
        if message == "tick-every-second":
            self.ctx.every(1.0, "tick")
        return message

    async def on_stop(self) -> None:
        await trio.sleep(self.stop_takes)
        self.log.append((self.ctx.name, "stop"))


class BrokenConstructor(sa.Actor):
    def __init__(self, log: Log) -> None:
        raise Boom("no constructor today")


class Flaky(sa.Actor):
    """Records the time of each start; the first `crashes` incarnations crash at once."""

    def __init__(self, starts: list[float], crashes: int) -> None:
        self.starts = starts
        self.crashes = crashes

    async def on_start(self) -> None:
        self.starts.append(trio.current_time())
        if len(self.starts) <= self.crashes:
            self.ctx.after(0, "boom")

    async def handle(self, message: object) -> object:
        if message == "boom":
            raise Boom("flaky")
        return message


PROBE_OPTIONS = ("start_takes", "stop_takes", "fail_starts_after")


def probe(name: str, log: Log, **options: Any) -> sa.ChildSpec:
    """A child spec for a `Probe`; options go to the spec or, if they are Probe's, to it."""
    probe_options = {k: options.pop(k) for k in PROBE_OPTIONS if k in options}
    return sa.ChildSpec(name, Probe, (log,), probe_options, **options)


async def settle() -> None:
    """Wait until every task is blocked: restarts that need no time have all happened."""
    await trio.testing.wait_all_tasks_blocked()


def starts(log: Log, name: str) -> int:
    return log.count((name, "start"))


def tail(log: Log, mark: int) -> Log:
    return log[mark:]


# --- restart type x exit reason -----------------------------------------------------------

EXITS: dict[str, object] = {"normal": "stop", "shutdown": sa.Shutdown(), "error": "boom"}


@pytest.mark.parametrize(("restart", "how", "restarted"), RESTART_MATRIX)
async def test_restart_type_and_exit_reason_decide_the_restart_as_in_otp(
    autojump_clock: trio.testing.MockClock, restart: sa.Restart, how: str, restarted: bool
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup", children=[probe("kid", log, restart=restart)])
        ref = sup.child("kid")
        first = await ref.ask("whoami")
        await ref.send(EXITS[how])
        await settle()

        assert log == [("kid", "start"), ("kid", "stop")] + [("kid", "start")] * restarted
        names = [info.name for info in sup.which_children()]
        if restarted:
            assert ref.alive
            assert await ref.ask("whoami") is not first
            assert names == ["kid"]
        else:
            assert not ref.alive
            with pytest.raises(sa.ActorUnavailable):
                await ref.send("hello")
            # A temporary child's spec is deleted; a static transient one is kept.
            assert names == ([] if restart is sa.Restart.TEMPORARY else ["kid"])


async def test_stopping_a_permanent_actor_through_its_ref_does_not_restart_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        ref = await system.spawn(Probe, log, name="worker")
        await ref.stop()
        await settle()
        assert log == [("worker", "start"), ("worker", "stop")]
        assert not ref.alive
        assert [info.name for info in system.user.which_children()] == []


# --- strategies -----------------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_failed_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup", children=[probe("a", log), probe("b", log), probe("c", log)]
        )
        mark = len(log)
        await sup.child("b").send("boom")
        await settle()
        assert tail(log, mark) == [("b", "stop"), ("b", "start")]


async def test_one_for_all_stops_siblings_in_reverse_and_restarts_all_in_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            strategy=sa.Strategy.ONE_FOR_ALL,
            children=[probe("a", log), probe("b", log), probe("c", log), probe("d", log)],
        )
        refs = {name: sup.child(name) for name in "abcd"}
        before = {name: await ref.ask("whoami") for name, ref in refs.items()}
        mark = len(log)

        await refs["b"].send("boom")
        await settle()

        assert tail(log, mark) == [
            ("b", "stop"),  # the crashed incarnation's own on_stop
            ("d", "stop"),
            ("c", "stop"),
            ("a", "stop"),
            ("a", "start"),
            ("b", "start"),
            ("c", "start"),
            ("d", "start"),
        ]
        for name, ref in refs.items():
            assert sup.child(name) is ref  # refs survive the restart
            assert await ref.ask("whoami") is not before[name]  # a new incarnation


async def test_rest_for_one_keeps_earlier_children(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            strategy=sa.Strategy.REST_FOR_ONE,
            children=[probe("a", log), probe("b", log), probe("c", log), probe("d", log)],
        )
        refs = {name: sup.child(name) for name in "abcd"}
        before = {name: await ref.ask("whoami") for name, ref in refs.items()}
        mark = len(log)

        await refs["b"].send("boom")
        await settle()

        assert tail(log, mark) == [
            ("b", "stop"),
            ("d", "stop"),
            ("c", "stop"),
            ("b", "start"),
            ("c", "start"),
            ("d", "start"),
        ]
        assert await refs["a"].ask("whoami") is before["a"]  # untouched
        for name in "bcd":
            assert sup.child(name) is refs[name]
            assert await refs[name].ask("whoami") is not before[name]


@pytest.mark.parametrize("strategy", [sa.Strategy.ONE_FOR_ALL, sa.Strategy.REST_FOR_ONE])
async def test_temporary_bystander_is_not_restarted_by_a_group_restart(
    autojump_clock: trio.testing.MockClock, strategy: sa.Strategy
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            strategy=strategy,
            children=[
                probe("a", log),
                probe("crasher", log),
                probe("temp", log, restart=sa.Restart.TEMPORARY),
                probe("z", log),
            ],
        )
        temp = sup.child("temp")
        mark = len(log)

        await sup.child("crasher").send("boom")
        await settle()

        after = tail(log, mark)
        assert ("temp", "stop") in after
        assert ("temp", "start") not in after
        assert after[-1] == ("z", "start")
        assert not temp.alive
        assert [info.name for info in sup.which_children()] == ["a", "crasher", "z"]
        assert sup.count_children().specs == 3


# --- restart intensity ----------------------------------------------------------------------


async def test_crashes_spaced_wider_than_the_window_restart_forever(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup", max_restarts=3, within=5.0, children=[probe("kid", log)]
        )
        ref = sup.child("kid")
        for _ in range(20):
            await trio.sleep(6.0)
            await ref.send("boom")
            await settle()
        assert starts(log, "kid") == 21
        assert ref.status().restarts == 20
        assert sup.running


async def test_r_plus_one_crashes_inside_the_window_give_up_after_exactly_r_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            max_restarts=3,
            within=5.0,
            restart=sa.Restart.TEMPORARY,  # so the user supervisor lets it go
            children=[probe("kid", log), probe("bystander", log)],
        )
        ref = sup.child("kid")
        for _ in range(4):
            await ref.send("boom")
            await settle()
            await trio.sleep(1.0)  # four crashes within 3 s: inside one 5 s window

        assert starts(log, "kid") == 4  # the first start and exactly three restarts
        assert ref.status().restarts == 3
        assert log[-1] == ("bystander", "stop")  # giving up stops the other children
        assert not sup.running
        assert not ref.alive
        assert [info.name for info in system.user.which_children()] == []


async def test_root_giving_up_raises_from_open_system_with_the_whole_chain_of_causes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    sent: list[Boom] = []

    async def crash_until_the_root_gives_up() -> None:
        # The user supervisor gives up at its first restart; the root (3 restarts within 5 s)
        # gives up the fourth time.
        async with sa.open_system(max_restarts=0, within=5.0) as system:
            for round_ in range(4):
                await settle()
                assert system.user.running
                fleet = await system.spawn_supervisor(
                    f"fleet-{round_}",
                    max_restarts=2,
                    within=5.0,
                    children=[probe(f"ship-{round_}", log)],
                )
                ship = fleet.child(f"ship-{round_}")
                for crash in range(3):
                    sent.append(Boom(f"round {round_} crash {crash}"))
                    await ship.send(sent[-1])
                    await settle()  # the last one is cancelled when the root gives up
                assert starts(log, f"ship-{round_}") == 3
            await trio.sleep_forever()  # cancelled when the root gives up

    with pytest.raises(sa.SupervisorGaveUp) as info:
        await crash_until_the_root_gives_up()

    root = info.value
    assert root.supervisor == "root"
    assert root.child == "user"
    user = root.cause
    assert isinstance(user, sa.SupervisorGaveUp)
    assert root.__cause__ is user
    assert user.supervisor == "root/user"
    assert user.child == "fleet-3"
    fleet_gave_up = user.cause
    assert isinstance(fleet_gave_up, sa.SupervisorGaveUp)
    assert user.__cause__ is fleet_gave_up
    assert fleet_gave_up.supervisor == "root/user/fleet-3"
    assert fleet_gave_up.child == "ship-3"
    assert fleet_gave_up.cause is sent[-1]
    assert fleet_gave_up.__cause__ is sent[-1]


async def test_a_failing_start_counts_as_a_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            max_restarts=3,
            within=5.0,
            restart=sa.Restart.TEMPORARY,
            children=[probe("kid", log, fail_starts_after=1)],
        )
        ref = sup.child("kid")
        await ref.send("boom")
        await settle()
        assert log == [("kid", "start"), ("kid", "stop")] + [("kid", "start-failed")] * 3
        assert not sup.running
        assert not ref.alive


@pytest.mark.parametrize("failing", ["on_start", "constructor"])
async def test_start_child_that_fails_to_start_raises_and_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, failing: str
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup")
        if failing == "on_start":
            spec = probe("kid", log, fail_starts_after=0)
        else:
            spec = sa.ChildSpec("kid", BrokenConstructor, (log,))
        with pytest.raises(sa.StartFailed) as info:
            await sup.start_child(spec)
        assert isinstance(info.value.__cause__, Boom)
        assert "kid" in str(info.value)

        assert sup.which_children() == []
        assert sup.count_children() == sa.ChildCounts(specs=0, active=0, supervisors=0, workers=0)
        with pytest.raises(sa.ActorNotFound):
            system.lookup("kid")
        await settle()
        assert sup.running
        # The name is free again.
        ref = await sup.start_child(probe("kid", log))
        assert await ref.ask("ping") == "ping"


# --- backoff ----------------------------------------------------------------------------------


async def _restart_delays(backoff: sa.Backoff, *, seed: int, crashes: int) -> list[float]:
    started: list[float] = []
    async with sa.open_system(seed=seed) as system:
        await system.spawn_supervisor(
            "sup",
            max_restarts=1000,
            within=1.0,
            backoff=backoff,
            children=[sa.ChildSpec("flaky", Flaky, (started, crashes))],
        )
        await trio.sleep(60.0)
    assert len(started) == crashes + 1
    return [later - earlier for earlier, later in itertools.pairwise(started)]


async def test_backoff_without_jitter_doubles_exactly_up_to_the_maximum(
    autojump_clock: trio.testing.MockClock,
) -> None:
    delays = await _restart_delays(sa.Backoff(initial=0.1, maximum=1.0), seed=1, crashes=7)
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0], abs=1e-9)


async def test_backoff_jitter_stays_within_its_fraction_and_follows_the_seed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backoff = sa.Backoff(initial=0.1, maximum=1.0, jitter=0.2)
    delays = await _restart_delays(backoff, seed=7, crashes=8)
    for n, delay in enumerate(delays):
        base = min(0.1 * 2**n, 1.0)
        assert 0.8 * base - 1e-9 <= delay <= 1.2 * base + 1e-9
    assert delays != pytest.approx([min(0.1 * 2**n, 1.0) for n in range(8)], abs=1e-9)
    # (approx: the second run starts at a later virtual time, so differences round apart)
    assert await _restart_delays(backoff, seed=7, crashes=8) == pytest.approx(delays, abs=1e-9)
    assert await _restart_delays(backoff, seed=8, crashes=8) != pytest.approx(delays, abs=1e-9)


async def test_backoff_starts_over_after_a_quiet_period(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started: list[float] = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            max_restarts=1000,
            within=1.0,
            backoff=sa.Backoff(initial=0.1, maximum=1.0, reset_after=2.0),
            children=[sa.ChildSpec("flaky", Flaky, (started, 3))],
        )
        await trio.sleep(5.0)  # three crashes, waiting 0.1, 0.2 and 0.4 s
        ref = sup.child("flaky")

        await ref.send("boom")  # after running 4.3 s > reset_after: from the start again
        await trio.sleep(1.5)  # restarted after 0.1 s, then runs 1.4 s < reset_after
        await ref.send("boom")
        await trio.sleep(5.0)
    delays = [later - earlier for earlier, later in itertools.pairwise(started)]
    assert delays[:3] == pytest.approx([0.1, 0.2, 0.4], abs=1e-9)
    assert delays[3] == pytest.approx(4.3 + 0.1, abs=1e-9)
    assert delays[4] == pytest.approx(1.4 + 0.2, abs=1e-9)


async def test_backoff_keeps_a_slow_crash_loop_going_past_a_thousand_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Restarts 10 ms apart never exceed 1 restart within 5 ms, so this child restarts forever;
    # its backoff attempt count grows with every restart.
    started: list[float] = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            max_restarts=1,
            within=0.005,
            backoff=sa.Backoff(initial=0.01, maximum=0.01),
            children=[sa.ChildSpec("flaky", Flaky, (started, 1100))],
        )
        await trio.sleep(12.0)
        assert len(started) == 1101
        assert sup.running


# --- shutdown -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shutdown", "stop_takes", "elapsed", "on_stop_finished"),
    [
        pytest.param(2.0, 0.5, 0.5, True, id="cooperative-within-deadline"),
        pytest.param(1.0, math.inf, 1.0, False, id="hung-on_stop-hard-cancelled"),
        pytest.param(sa.BRUTAL_KILL, 0.5, 0.0, False, id="brutal-kill-skips-on_stop"),
        pytest.param(math.inf, 30.0, 30.0, True, id="infinity-waits-as-long-as-needed"),
    ],
)
async def test_terminate_child_honours_the_shutdown_policy(
    autojump_clock: trio.testing.MockClock,
    shutdown: sa.policy.ShutdownPolicy,
    stop_takes: float,
    elapsed: float,
    on_stop_finished: bool,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup")
        await sup.start_child(probe("kid", log, shutdown=shutdown, stop_takes=stop_takes))
        start = trio.current_time()
        await sup.terminate_child("kid")
        assert trio.current_time() - start == pytest.approx(elapsed)
        assert (("kid", "stop") in log) is on_stop_finished


@pytest.mark.parametrize("hang", ["in-handle", "in-on_stop"])
async def test_a_hung_child_is_hard_cancelled_while_its_siblings_stop_cleanly(
    autojump_clock: trio.testing.MockClock, hang: str
) -> None:
    log: Log = []
    hung_options: dict[str, Any] = {"shutdown": 1.0}
    if hang == "in-on_stop":
        hung_options["stop_takes"] = math.inf
    async with sa.open_system() as system:
        await system.spawn_supervisor(
            "sup",
            children=[
                probe("first", log, stop_takes=0.25),
                probe("hung", log, **hung_options),
                probe("last", log, stop_takes=0.25),
            ],
        )
        if hang == "in-handle":
            await system.user.child("sup").child("hung").send("hang")
        await settle()
        start = trio.current_time()
        await system.user.terminate_child("sup")
        assert trio.current_time() - start == pytest.approx(0.25 + 1.0 + 0.25)
    assert tail(log, 3) == [("last", "stop"), ("first", "stop")]


@pytest.mark.parametrize("how", ["terminate-supervisor", "leave-open_system"])
async def test_dynamic_children_shut_down_in_parallel(
    autojump_clock: trio.testing.MockClock, how: str
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("fleet")
        for name, stop_takes in [("one", 1.0), ("two", 1.0), ("slow", 5.0)]:
            await sup.start_child(probe(name, log, shutdown=2.0, stop_takes=stop_takes))
        start = trio.current_time()
        if how == "terminate-supervisor":
            await system.user.terminate_child("fleet")
            elapsed = trio.current_time() - start
    if how == "leave-open_system":
        elapsed = trio.current_time() - start
    assert 1.0 <= elapsed < 5.0
    # In parallel: max(1, 1, min(5, 2)) = 2 s; one after the other would take 1 + 1 + 2 = 4 s.
    assert elapsed == pytest.approx(2.0)
    assert sorted(tail(log, 3)) == [("one", "stop"), ("two", "stop")]


def _all_tasks() -> set[trio.lowlevel.Task]:
    tasks: set[trio.lowlevel.Task] = set()
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        tasks.add(task)
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return tasks


async def test_leaving_open_system_leaves_no_task_running(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    before = _all_tasks()
    async with trio.open_nursery() as outer:
        async with sa.open_system() as system:
            ticker = await system.spawn(Probe, log, name="ticker")
            await ticker.send("tick-every-second")
            sup = await system.spawn_supervisor(
                "sup",
                strategy=sa.Strategy.ONE_FOR_ALL,
                backoff=sa.Backoff(initial=30.0, maximum=60.0),
                children=[probe("a", log), probe("b", log)],
            )
            nested = await sup.start_child(
                sa.SupervisorSpec("nested", children=[probe("deep", log, shutdown=1.0)])
            )
            await nested.child("deep").send("hang")
            await system.spawn(Probe, log, name="hung", stop_takes=math.inf, shutdown=0.5)
            await sup.child("a").send("boom")  # a restart is now waiting for its backoff
            await trio.sleep(2.5)
            assert len(_all_tasks()) > len(before)
        assert len(outer.child_tasks) == 0
    assert _all_tasks() == before
    assert not ticker.alive
    with pytest.raises(sa.ActorUnavailable):
        await ticker.send("tick")


# --- escalation -----------------------------------------------------------------------------


async def test_parent_restarts_a_sub_supervisor_that_gave_up_with_new_incarnations(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        parent = await system.spawn_supervisor(
            "parent",
            max_restarts=3,
            within=60.0,
            children=[
                sa.SupervisorSpec(
                    "sub",
                    max_restarts=1,
                    within=60.0,
                    children=[probe("worker", log), probe("sibling", log)],
                ),
                probe("neighbour", log),
            ],
        )
        sub = parent.child("sub")
        worker, sibling = sub.child("worker"), sub.child("sibling")
        before = {ref.name: await ref.ask("whoami") for ref in (worker, sibling)}
        mark = len(log)

        await worker.send("boom")  # restart 1 of 1: allowed
        await settle()
        await worker.send("boom")  # restart 2 of 1: the sub-supervisor gives up
        await settle()

        assert tail(log, mark) == [
            ("worker", "stop"),
            ("worker", "start"),
            ("worker", "stop"),
            ("sibling", "stop"),  # giving up stops the other children
            ("worker", "start"),  # the parent restarts the sub-supervisor and its children
            ("sibling", "start"),
        ]
        assert parent.child("sub") is sub
        assert sub.running
        assert sub.child("worker") is worker
        assert sub.child("sibling") is sibling
        for ref in (worker, sibling):
            assert await ref.ask("whoami") is not before[ref.name]
        assert starts(log, "neighbour") == 1  # one_for_one in the parent


async def test_restarted_sub_supervisor_starts_with_a_fresh_restart_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # OTP: a restarted supervisor is a new process with an empty restart history.
    log: Log = []
    async with sa.open_system() as system:
        parent = await system.spawn_supervisor(
            "parent",
            max_restarts=3,
            within=60.0,
            children=[
                sa.SupervisorSpec(
                    "sub",
                    max_restarts=1,
                    within=60.0,
                    children=[probe("worker", log), probe("sibling", log)],
                )
            ],
        )
        worker = parent.child("sub").child("worker")
        for _ in range(2):  # the second crash makes the first incarnation of "sub" give up
            await worker.send("boom")
            await settle()
        assert starts(log, "sibling") == 2
        mark = len(log)

        await worker.send("boom")  # the new incarnation's first restart: allowed
        await settle()

        assert tail(log, mark) == [("worker", "stop"), ("worker", "start")]
        assert starts(log, "sibling") == 2


async def test_a_parent_that_exceeds_its_own_intensity_escalates_further(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system(max_restarts=3, within=5.0) as system:
        parent = await system.spawn_supervisor(
            "parent",
            max_restarts=0,  # gives up rather than restart the sub-supervisor
            within=5.0,
            children=[
                probe("neighbour", log),
                sa.SupervisorSpec("sub", max_restarts=0, children=[probe("worker", log)]),
            ],
        )
        mark = len(log)
        await parent.child("sub").child("worker").send("boom")
        await settle()

        assert tail(log, mark) == [
            ("worker", "stop"),  # crashed; "sub" gives up at once
            ("neighbour", "stop"),  # "parent" gives up: stops its other children
            ("neighbour", "start"),  # "user" restarts "parent" with everything under it
            ("worker", "start"),
        ]
        assert system.user.child("parent") is parent
        assert parent.running
        assert system.user.running


async def test_terminating_a_supervisor_that_is_still_starting_stops_it_once_started(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []

    async def spawn_fleet() -> None:
        # The stop overtook the start: the caller gets no handle on a stopped supervisor.
        with pytest.raises(sa.ActorUnavailable, match=r"'fleet' .* stopped while starting"):
            await system.spawn_supervisor("fleet", children=[probe("slow", log, start_takes=1.0)])

    async with sa.open_system() as system, trio.open_nursery() as nursery:
        begin = trio.current_time()
        nursery.start_soon(spawn_fleet)
        await trio.sleep(0.5)  # "fleet" is starting "slow"
        with trio.fail_after(60.0):
            await system.user.terminate_child("fleet")
        assert trio.current_time() - begin == pytest.approx(1.0)
        assert log == [("slow", "start"), ("slow", "stop")]
        assert system.user.which_children() == []


@pytest.mark.parametrize(
    "shutdown",
    [pytest.param(sa.BRUTAL_KILL, id="brutal-kill"), pytest.param(1.0, id="deadline-passed")],
)
async def test_a_hard_cancelled_sub_supervisor_is_stopped_with_its_dynamic_children(
    autojump_clock: trio.testing.MockClock, shutdown: sa.policy.ShutdownPolicy
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        parent = await system.spawn_supervisor(
            "parent",
            children=[sa.SupervisorSpec("sub", shutdown=shutdown, children=[probe("crew", log)])],
        )
        sub = parent.child("sub")
        passenger = await sub.start_child(probe("passenger", log, shutdown=math.inf))
        await passenger.send("hang")  # so a graceful stop of "sub" cannot finish
        await settle()

        await parent.terminate_child("sub")

        assert not sub.running
        assert not passenger.alive
        with pytest.raises(sa.ActorNotFound):
            system.lookup("passenger")
        with pytest.raises(sa.ActorUnavailable):
            await sub.start_child(probe("latecomer", log))

        # Restarting "sub" starts its static children only, as a fresh supervisor would.
        assert await parent.restart_child("sub") is sub
        await settle()
        assert sub.running
        assert [info.name for info in sub.which_children()] == ["crew"]
        assert starts(log, "crew") == 2
        assert starts(log, "passenger") == 1


async def test_spawn_supervisor_whose_child_fails_to_start_stops_the_others_and_keeps_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        with pytest.raises(sa.StartFailed) as info:
            await system.spawn_supervisor(
                "fleet",
                children=[
                    probe("a", log),
                    probe("b", log),
                    probe("broken", log, fail_starts_after=0),
                    probe("never", log),
                ],
            )
        assert "fleet" in str(info.value)
        assert log == [
            ("a", "start"),
            ("b", "start"),
            ("broken", "start-failed"),
            ("b", "stop"),
            ("a", "stop"),
        ]
        assert system.user.which_children() == []
        for name in ("a", "b", "broken", "never"):
            with pytest.raises(sa.ActorNotFound):
                system.lookup(name)
        fleet = await system.spawn_supervisor("fleet", children=[probe("a", log)])
        assert fleet.running


async def test_an_error_in_the_block_propagates_unchanged_after_everything_stopped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    error = Boom("the scenario failed")
    refs: list[sa.ActorRef] = []

    async def scenario() -> None:
        async with sa.open_system() as system:
            refs.append(await system.spawn(Probe, log, name="ship"))
            raise error

    with pytest.raises(Boom) as info:
        await scenario()
    assert info.value is error
    assert log == [("ship", "start"), ("ship", "stop")]
    assert not refs[0].alive


# --- the dynamic API --------------------------------------------------------------------------


async def test_start_child_returns_a_routable_ref_and_refuses_a_taken_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup")
        ref = await sup.start_child(probe("kid", log))
        assert isinstance(ref, sa.ActorRef)
        assert system.lookup("kid") is ref
        assert await system.ask("kid", "ping") == "ping"
        with pytest.raises(sa.NameTaken):
            await sup.start_child(probe("kid", log))
        assert starts(log, "kid") == 1


async def test_terminate_child_deletes_a_dynamic_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup")
        ref = await sup.start_child(probe("kid", log))
        await sup.terminate_child("kid")
        await settle()
        assert log == [("kid", "start"), ("kid", "stop")]  # stopped, and not restarted
        assert sup.which_children() == []
        assert not ref.alive
        with pytest.raises(sa.ActorNotFound):
            await sup.restart_child("kid")


async def test_terminate_child_keeps_a_static_spec_for_restart_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup", children=[probe("kid", log)])
        ref = sup.child("kid")
        first = await ref.ask("whoami")
        await sup.terminate_child("kid")
        await settle()
        assert log == [("kid", "start"), ("kid", "stop")]
        [info] = sup.which_children()
        assert (info.name, info.running, info.handle) == ("kid", False, ref)
        with pytest.raises(sa.ActorUnavailable):
            await ref.send("hello")

        assert await sup.restart_child("kid") is ref
        assert starts(log, "kid") == 2
        assert await ref.ask("whoami") is not first
        assert sup.which_children()[0].running


async def test_restart_child_and_delete_child_refuse_a_running_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup", children=[probe("kid", log)])
        with pytest.raises(sa.ActorUnavailable):
            await sup.restart_child("kid")
        with pytest.raises(sa.ActorUnavailable):
            sup.delete_child("kid")
        assert starts(log, "kid") == 1
        assert sup.which_children()[0].running


async def test_delete_child_forgets_a_stopped_child_and_frees_its_name(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup", children=[probe("kid", log)])
        await sup.terminate_child("kid")
        sup.delete_child("kid")
        assert sup.which_children() == []
        with pytest.raises(sa.ActorNotFound):
            sup.delete_child("kid")
        with pytest.raises(sa.ActorNotFound):
            await sup.restart_child("kid")
        ref = await sup.start_child(probe("kid", log))
        assert await ref.ask("ping") == "ping"


async def test_unknown_child_names_raise_actor_not_found(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup")
        with pytest.raises(sa.ActorNotFound, match="nobody"):
            await sup.terminate_child("nobody")
        with pytest.raises(sa.ActorNotFound, match="nobody"):
            sup.child("nobody")


async def test_which_children_and_count_children_describe_the_children_in_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor(
            "sup",
            children=[
                probe("a", log),
                sa.SupervisorSpec("inner", children=[probe("deep", log)]),
            ],
        )
        b = await sup.start_child(probe("b", log, restart=sa.Restart.TRANSIENT))
        await sup.start_child(probe("c", log, restart=sa.Restart.TEMPORARY))
        await b.send("stop")  # a dynamic transient child that ends normally is deleted
        await sup.terminate_child("a")  # a static one keeps its spec
        await settle()

        rows = [(i.name, i.kind, i.running, i.restart) for i in sup.which_children()]
        assert rows == [
            ("a", "worker", False, sa.Restart.PERMANENT),
            ("inner", "supervisor", True, sa.Restart.PERMANENT),
            ("c", "worker", True, sa.Restart.TEMPORARY),
        ]
        handles = [i.handle for i in sup.which_children()]
        assert handles[0] is sup.child("a")
        assert isinstance(handles[1], sa.Supervisor)
        assert handles[1].child("deep").alive
        assert sup.count_children() == sa.ChildCounts(specs=3, active=2, supervisors=1, workers=2)


async def test_start_child_on_a_stopped_supervisor_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("sup")
        await system.user.terminate_child("sup")
        with pytest.raises(sa.ActorUnavailable, match="sup"):
            await sup.start_child(probe("kid", log))
    assert log == []


# --- invalid specs ----------------------------------------------------------------------------


def _specs() -> Iterator[Any]:
    yield pytest.param(
        lambda: sa.ChildSpec("ship-7", Probe, mailbox_size=0),
        ["ship-7", "mailbox_size"],
        id="mailbox_size=0",
    )
    yield pytest.param(
        lambda: sa.ChildSpec("ship-7", Probe, shutdown=-1),
        ["ship-7", "shutdown"],
        id="shutdown=-1",
    )
    yield pytest.param(
        lambda: sa.SupervisorSpec("fleet", max_restarts=-1),
        ["fleet", "max_restarts"],
        id="max_restarts=-1",
    )
    yield pytest.param(
        lambda: sa.SupervisorSpec("fleet", within=0),
        ["fleet", "within"],
        id="within=0",
    )
    yield pytest.param(
        lambda: sa.SupervisorSpec(
            "fleet", children=[sa.ChildSpec("ship-1", Probe), sa.ChildSpec("ship-1", Probe)]
        ),
        ["fleet", "ship-1"],
        id="duplicate-child-names",
    )
    yield pytest.param(
        lambda: sa.Backoff(initial=1.0, maximum=0.5),
        ["Backoff.maximum", "initial"],
        id="backoff-maximum-below-initial",
    )


@pytest.mark.parametrize(("build", "words"), list(_specs()))
def test_invalid_specs_name_the_child_and_the_field(build: Any, words: list[str]) -> None:
    with pytest.raises(sa.InvalidSpec) as info:
        build()
    for word in words:
        assert word in str(info.value)


async def test_spawn_options_are_validated_before_anything_starts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        with pytest.raises(sa.InvalidSpec, match=r"'ship-7'.*mailbox_size"):
            await system.spawn(Probe, log, name="ship-7", mailbox_size=0)
        with pytest.raises(sa.InvalidSpec, match=r"'ship-7'.*shutdown"):
            await system.spawn(Probe, log, name="ship-7", shutdown=-1)
        with pytest.raises(sa.InvalidSpec, match=r"'fleet'.*max_restarts"):
            await system.spawn_supervisor("fleet", max_restarts=-1)
        with pytest.raises(sa.InvalidSpec, match=r"'fleet'.*within"):
            await system.spawn_supervisor("fleet", within=0)
        assert system.user.which_children() == []
    assert log == []


async def test_a_terminated_static_child_is_supervised_again_after_its_supervisor_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        fleet = await system.spawn_supervisor(
            "fleet", max_restarts=0, children=[probe("a", log), probe("b", log)]
        )
        await fleet.terminate_child("b")
        await fleet.child("a").send(Boom("fleet gives up; user restarts it"))
        await settle()
        assert fleet.running
        b = fleet.child("b")
        assert b.alive
        await b.send(Boom("b crashes after the fleet restarted"))
        await settle()
        # max_restarts=0: b's crash makes the fleet give up and the user supervisor restart it.
        assert fleet.running
        assert b.alive
        assert starts(log, "b") == 3


async def test_a_supervisor_can_stop_itself_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: Log = []
    async with sa.open_system() as system:
        fleet = await system.spawn_supervisor("fleet", children=[probe("a", log)])
        a = fleet.child("a")
        await fleet.stop()
        assert not fleet.running
        assert not a.alive
        assert system.user.count_children().specs == 0
